"""Heuristic rules (keyword assignments, high entropy) and the checks that keep them quiet.

* ``generic-password-assignment`` — a key whose last word is password/passwd/pwd/pass/
  passphrase, assigned a literal: ``password = "..."`` (Python, JS, Go ``:=``, Ruby ``=>``,
  JSON/YAML ``key: "..."``) in any file; unquoted ``PASSWORD=...`` / ``password: ...`` only in
  config and shell files (.env, YAML, TOML, INI, properties, Dockerfile, shell), where an
  unquoted value is a literal and not an expression such as ``os.environ["DB_PASSWORD"]``.
* ``generic-secret-assignment`` — the same for secret / token / api_key / secret_key /
  access_key / private_key ...; the value must also look random (mixed classes, entropy).
* ``high-entropy-string`` — a quoted string (or a config value) of 20+ characters whose
  Shannon entropy passes detect-secrets' limits (4.5 base64, 3.0 hex); pure hex only next to
  a secret-like word, never next to hash words (sha256, integrity, checksum, commit ...).

Placeholders (``changeme``, ``xxx``, ``<password>``, ``${VAR}``, ``{{ var }}``, ``example``,
``dummy`` ...) are dropped. Lock files (package-lock.json, go.sum, ...) and other non-text
files get no heuristic rules at all: their hashes are not secrets. UUIDs are not high-entropy
secrets.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache
from itertools import pairwise
from pathlib import PurePosixPath

from detect_secrets.filters.heuristic import (
    is_lock_file,
    is_non_text_file,
    is_potential_uuid,
    is_sequential_string,
)
from detect_secrets.plugins.high_entropy_strings import (
    Base64HighEntropyString,
    HexHighEntropyString,
)

from appliance.review.rules import Candidate

PASSWORD_WORDS = frozenset({"password", "passwd", "pwd", "pass", "passphrase", "pw"})
SECRET_WORDS = frozenset({"secret", "token", "apikey", "secretkey", "accesskey", "privatekey"})
SECRET_PAIRS = frozenset(
    {
        ("api", "key"),
        ("secret", "key"),
        ("access", "key"),
        ("private", "key"),
        ("signing", "key"),
        ("encryption", "key"),
        ("master", "key"),
        ("account", "key"),
    }
)

_LOCK_FILES = frozenset(
    {"go.sum", "pnpm-lock.yaml", "uv.lock", "bun.lock", "flake.lock", "npm-shrinkwrap.json"}
)
_NO_ENTROPY_SUFFIXES = (".min.js", ".min.css", ".ipynb", ".lock", ".sum")
_CONFIG_SUFFIXES = frozenset(
    {".env", ".yaml", ".yml", ".toml", ".ini", ".cfg", ".conf", ".properties", ".sh", ".bash"}
)
_CONFIG_SUFFIXES |= {".zsh", ".tfvars", ".envrc"}
_CONFIG_NAMES = frozenset({"dockerfile", "containerfile", ".env", ".envrc", ".npmrc", ".pypirc"})
_TEST_DIRS = frozenset({"tests", "test", "__tests__", "spec", "testdata", "fixtures", "testing"})
_TEST_DIRS |= {"example", "examples", "samples"}
_TEST_FILE = re.compile(
    r"^(test_.*\.py|.*_test\.(py|go)|.*\.(test|spec)\.[jt]sx?|conftest\.py"
    r"|.*\.(example|sample|template|dist)(\..*)?)$",
    re.IGNORECASE,
)


def is_test_path(path: str) -> bool:
    """Under a test or example directory, or a test / example file (``.env.example``)."""
    parts = PurePosixPath(path).parts
    return any(p.lower() in _TEST_DIRS for p in parts[:-1]) or bool(_TEST_FILE.match(parts[-1]))


def skips_heuristics(path: str) -> bool:
    """Lock files and non-text files: their hashes and blobs are not secrets."""
    name = PurePosixPath(path).name
    return (
        is_lock_file(path)
        or name in _LOCK_FILES
        or is_non_text_file(path)
        or name.endswith(_NO_ENTROPY_SUFFIXES)
    )


def is_config_file(path: str) -> bool:
    """Files whose unquoted values are literals (.env, YAML, TOML, shell ...)."""
    pure = PurePosixPath(path)
    name = pure.name.lower()
    return (
        pure.suffix.lower() in _CONFIG_SUFFIXES
        or name in _CONFIG_NAMES
        or name.startswith((".env.", "dockerfile.", "containerfile."))
    )


# --- placeholders and fakes ---------------------------------------------------------------

_PLACEHOLDER_PARTS = (
    "changeme", "change_me", "change-me", "changethis", "change_this", "placeholder",
    "example", "dummy", "sample", "redacted", "your_", "your-", "yourpass", "xxx", "***",
    "...", "todo", "fixme", "replace_me", "replaceme", "not-a-real", "notreal", "fake",
)  # fmt: skip
_PLACEHOLDER_EXACT = frozenset(
    {"password", "passwd", "secret", "token", "none", "null", "nil", "true", "false"}
    | {"undefined", "empty", "test", "string", "str", "required", "optional", "hidden"}
)
_TEMPLATED = re.compile(
    r"^\$|\{\{|\}\}|\{%|%\(|%s|\{\d*\}|^<.*>$|^\{.*\}$|ENC\[|^vault:|^!|secretRef"
    r"|process\.env|os\.environ|getenv|^env\(|%env\(",
    re.IGNORECASE,
)
# Six letters or more: a random 40-character token holds one by chance about once in 10^7.
_FAKE_PARTS = (
    "example", "dummy", "sample", "placeholder", "redacted", "changeme", "xxxxxx",
    "000000", "123456", "abcdef",
)  # fmt: skip


def is_placeholder(value: str, key: str = "") -> bool:
    """A value that stands for a secret rather than being one."""
    lowered = value.strip().lower()
    if len(lowered) < 4 or len(set(lowered)) <= 2:
        return True
    if lowered in _PLACEHOLDER_EXACT or any(part in lowered for part in _PLACEHOLDER_PARTS):
        return True
    if key and lowered in {key.lower(), _words(key)[-1] if _words(key) else ""}:
        return True
    return bool(_TEMPLATED.search(value.strip()))


def _typed_in_order(value: str) -> bool:
    """Letters that mostly step through the alphabet (``Zx9Yw8Vu7...``, ``abcdef...``)."""
    letters = [ord(c) for c in value.lower() if c.isascii() and c.isalpha()]
    pairs = list(pairwise(letters))
    return len(pairs) >= 8 and sum(abs(a - b) == 1 for a, b in pairs) >= 0.6 * len(pairs)


def looks_fake(secret: str, *, markers: bool = True) -> bool:
    """A real-shaped token whose body says it is not real (AKIA...EXAMPLE, ghp_xxxx...).

    ``markers=False`` judges by the characters' spread alone: for long random material (a
    private key's body) a marker word turns up by chance too often to trust.
    """
    lowered = secret.lower()
    if markers and any(part in lowered for part in _FAKE_PARTS):
        return True
    body = re.sub(r"^[a-z]+[_-]", "", secret, flags=re.IGNORECASE)  # drop ghp_, sk-, ...
    return len(body) >= 16 and (_base64_entropy(body) < 3.0 or _typed_in_order(body))


# --- entropy -------------------------------------------------------------------------------


@cache
def _entropy_plugins() -> tuple[Base64HighEntropyString, HexHighEntropyString]:
    return Base64HighEntropyString(limit=4.5), HexHighEntropyString(limit=3.0)


def _base64_entropy(value: str) -> float:
    return _entropy_plugins()[0].calculate_shannon_entropy(value)


def _has_classes(value: str, needed: int) -> bool:
    classes = (r"[a-z]", r"[A-Z]", r"[0-9]")
    return sum(bool(re.search(c, value)) for c in classes) >= needed


def looks_random(value: str) -> bool:
    """Long enough, mixed character classes, not low-entropy: a token rather than a word."""
    return len(value) >= 8 and _has_classes(value, 2) and _base64_entropy(value) >= 3.0


# --- assignments ---------------------------------------------------------------------------

_QUOTED = re.compile(
    r"(?<![\w.$-])[\"'`]?(?P<key>[A-Za-z_][\w.-]*)[\"'`]?\]?"
    r"(?:\s*:\s*[A-Za-z_][\w\[\], .|]*?(?=\s*=[^=]))?"  # a type annotation before `=`
    r"\s*(?::=|=>|(?<![=!<>])=(?!=)|:(?!:))\s*"
    r"[rbuRBUf]{0,2}(?P<q>[\"'`])(?P<value>(?:\\.|(?!(?P=q)).)*)(?P=q)"
)
_UNQUOTED = re.compile(
    r"^\s*(?:export\s+|ENV\s+|ARG\s+|-\s+|set\s+)?[\"']?(?P<key>[A-Za-z_][\w.-]*)[\"']?"
    r"\s*(?:=|:)[ \t]*(?P<value>[^\s\"'`#|>&*!\[{][^\s#]*)[ \t]*(?:\s#.*)?$"
)
_CAMEL = re.compile(r"[._\-\s]+|(?<=[a-z0-9])(?=[A-Z])")


def _words(key: str) -> list[str]:
    return [w.lower() for w in _CAMEL.split(key) if w]


def key_kind(key: str) -> str | None:
    """The assignment rule a key name calls for, or None when it names no secret."""
    words = _words(key)
    if not words:
        return None
    if words[-1] in PASSWORD_WORDS:
        return "generic-password-assignment"
    if words[-1] in SECRET_WORDS or tuple(words[-2:]) in SECRET_PAIRS:
        return "generic-secret-assignment"
    return None


def _assignment(key: str, value: str, start: int) -> Candidate | None:
    rule = key_kind(key)
    if rule is None or is_placeholder(value, key):
        return None
    if rule == "generic-secret-assignment" and not looks_random(value):
        return None
    if _words(key) in (["pass"], ["pw"], ["pwd"]) and not looks_random(value):
        return None  # {"pass": "passed"}: a bare short key is often no password at all
    return Candidate(rule, start, start + len(value), value)


def assignment_candidates(path: str, line: str) -> Iterator[Candidate]:
    """Secrets assigned to password- or secret-named keys on one line."""
    for match in _QUOTED.finditer(line):
        found = _assignment(match.group("key"), match.group("value"), match.start("value"))
        if found:
            yield found
    if is_config_file(path):
        plain = _UNQUOTED.match(line)
        if plain:
            found = _assignment(plain.group("key"), plain.group("value"), plain.start("value"))
            if found:
                yield found


# --- high entropy --------------------------------------------------------------------------

_HASH_CONTEXT = re.compile(
    r"integrity|checksum|digest|sha\d*|md5|hash|commit|revision|\brev\b|etag|base64,|h1:",
    re.IGNORECASE,
)
_SECRET_CONTEXT = re.compile(r"secret|token|key|passw|pwd|auth|credential", re.IGNORECASE)
_HEX = re.compile(r"^[0-9a-fA-F]+$")
_VALUE_CHARS = re.compile(r"^[A-Za-z0-9+/=_-]+$")


def _quoted_strings(line: str) -> Iterator[tuple[int, str]]:
    base64, _ = _entropy_plugins()
    for value in set(base64.analyze_string(line)):
        quoted = re.escape(value)
        for match in re.finditer(rf"(?<=[\"'`]){quoted}(?=[\"'`])", line):
            yield match.start(), value


def _entropy_secret(value: str, before: str) -> bool:
    if len(value) < 20 or is_potential_uuid(value) or is_sequential_string(value):
        return False
    if _HASH_CONTEXT.search(before) or _HASH_CONTEXT.match(value) or is_placeholder(value):
        return False
    base64, hexadecimal = _entropy_plugins()
    if _HEX.match(value):
        return bool(_SECRET_CONTEXT.search(before)) and (
            hexadecimal.calculate_shannon_entropy(value) > hexadecimal.entropy_limit
        )
    return _has_classes(value, 3) and base64.calculate_shannon_entropy(value) > base64.entropy_limit


def entropy_candidates(path: str, line: str) -> Iterator[Candidate]:
    """Random-looking strings: quoted anywhere, unquoted as a config value."""
    spots = list(_quoted_strings(line))
    if is_config_file(path):
        match = _UNQUOTED.match(line)
        if match and _VALUE_CHARS.match(match.group("value")):
            spots.append((match.start("value"), match.group("value")))
    for start, value in spots:
        if _entropy_secret(value, line[:start]):
            yield Candidate("high-entropy-string", start, start + len(value), value)
