"""Secret scan of the diff an agent wrote, before a human reviews it.

:func:`scan_diff` scans only the lines a diff *adds* (a secret the agent removed is not a
finding; one already in the repository and untouched is not the agent's doing) and reports
each secret with its new-file line number, rule, severity and a masked excerpt.
:func:`scan_text` does the same for a whole file. Rules, in the order they win where they
overlap on a line:

1. ``private-key`` — PEM / OpenSSH / PGP / PuTTY private key blocks, across lines or on one
   line with ``\\n`` escapes (JSON service-account files). A header with no key material (a
   mention in code or docs) is not a finding. The fingerprint is that of the base64 body.
2. Known token shapes (:mod:`appliance.review.rules`, mostly detect-secrets plugins).
3. ``connection-string-with-password`` — ``scheme://user:password@host``.
4. ``jwt``, then keyword assignments and high-entropy strings
   (:mod:`appliance.review.heuristics`; not run on lock files and other non-text files).

Severities are in :data:`appliance.review.findings.RULE_SEVERITY`. Downgrades to ``medium``,
never drops: a token whose value looks fake (``AKIA...EXAMPLE``, ``ghp_xxxx...``), and a
heuristic finding (assignment, URL password, JWT) in a test path (``tests/``, ``test_*.py``
...). Placeholders (``changeme``, ``${VAR}``, ``<password>`` ...) are not findings at all.

``allow`` takes sha256 fingerprints of secrets and path globs (gitignore syntax) that an admin
allow-listed. The scanner never logs, and no finding, message or exception holds a secret.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from detect_secrets.plugins.private_key import PrivateKeyDetector

from appliance.review.diffs import added_lines
from appliance.review.findings import (
    RULE_SEVERITY,
    AllowList,
    Finding,
    Severity,
    fingerprint_of,
    mask,
)
from appliance.review.heuristics import (
    assignment_candidates,
    entropy_candidates,
    is_placeholder,
    is_test_path,
    looks_fake,
    skips_heuristics,
)
from appliance.review.rules import (
    Candidate,
    priority,
    token_candidates,
    url_password_candidates,
)

__all__ = ["Finding", "scan_diff", "scan_text"]

_EXCERPT_CHARS = 160
_MAX_KEY_LINES = 200
_MIN_KEY_BODY = 64
_KEY_END = re.compile(r"-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|^Private-MAC:")
_KEY_HEADER = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----")
_BASE64_RUN = re.compile(r"[A-Za-z0-9+/=]{16,}")
_KEY_LINE = re.compile(
    r"[\"'`+(]*(?:[A-Za-z0-9+/=]*|[A-Za-z][\w-]*: .*)(?:\\[nr])*[\"'`+,;)]*(?:\\[nr])*"
)
_HEURISTIC_RULES = frozenset(r for r in RULE_SEVERITY if priority(r) > 0)
_PRIVATE_KEY_DETECTOR = PrivateKeyDetector()

NumberedLine = tuple[int, str]


@dataclass(frozen=True)
class _KeyBlock:
    line: int
    excerpt: str
    body: str
    consumed: frozenset[int]


def scan_diff(diff_text: str, *, allow: Sequence[str] = ()) -> list[Finding]:
    """Secrets on the lines a unified diff adds, in diff order.

    Raises DiffUnreadable when the text is not a diff: treat that as blocking, not as clean.
    """
    allow_list = AllowList(allow)
    findings: list[Finding] = []
    for path, lines in added_lines(diff_text):
        if not allow_list.allows_path(path):
            findings += _scan_lines(path, [(line.number, line.text) for line in lines])
    return [f for f in findings if not allow_list.allows(f)]


def scan_text(path: str, text: str, *, allow: Sequence[str] = ()) -> list[Finding]:
    """Secrets anywhere in one file's text (every line counts as added)."""
    allow_list = AllowList(allow)
    if allow_list.allows_path(path):
        return []
    numbered = list(enumerate(text.splitlines(), start=1))
    return [f for f in _scan_lines(path, numbered) if not allow_list.allows(f)]


def _scan_lines(path: str, lines: list[NumberedLine]) -> list[Finding]:
    findings: list[Finding] = []
    consumed: set[int] = set()
    for block in _key_blocks(lines):
        consumed |= block.consumed
        severity = Severity.MEDIUM if looks_fake(block.body, markers=False) else Severity.CRITICAL
        findings.append(
            Finding(
                path, block.line, "private-key", severity, block.excerpt, fingerprint_of(block.body)
            )
        )
    heuristics = not skips_heuristics(path)
    for number, text in lines:
        if number in consumed:
            continue
        chosen = _resolve(_candidates(path, text, heuristics=heuristics))
        excerpt_line = _masked(text, chosen)
        findings += [
            Finding(
                path,
                number,
                c.rule,
                _severity(path, c),
                _excerpt(excerpt_line, mask(c.secret)),
                fingerprint_of(c.secret),
            )
            for c in chosen
        ]
    return sorted(findings, key=lambda f: f.line)


def _candidates(path: str, text: str, *, heuristics: bool) -> Iterator[Candidate]:
    yield from token_candidates(text)
    for candidate in url_password_candidates(text):
        if not is_placeholder(candidate.secret):
            yield candidate
    if heuristics:
        yield from assignment_candidates(path, text)
        yield from entropy_candidates(path, text)


def _resolve(candidates: Iterator[Candidate]) -> list[Candidate]:
    """Keep the most specific candidate where spans overlap; one per span."""
    ordered = sorted(set(candidates), key=lambda c: (priority(c.rule), c.start - c.end, c.start))
    chosen: list[Candidate] = []
    for candidate in ordered:
        if all(candidate.end <= c.start or c.end <= candidate.start for c in chosen):
            chosen.append(candidate)
    return sorted(chosen, key=lambda c: c.start)


def _severity(path: str, candidate: Candidate) -> Severity:
    if looks_fake(candidate.secret):
        return Severity.MEDIUM
    if candidate.rule in _HEURISTIC_RULES and is_test_path(path):
        return Severity.MEDIUM
    return RULE_SEVERITY[candidate.rule]


def _masked(text: str, chosen: list[Candidate]) -> str:
    """The line with every occurrence of every chosen secret masked (longest first)."""
    for secret in sorted({c.secret for c in chosen}, key=len, reverse=True):
        text = text.replace(secret, mask(secret))
    return text


def _excerpt(masked_line: str, anchor: str) -> str:
    """The masked line, trimmed to a window around ``anchor`` when it is long."""
    line = masked_line.strip()
    if len(line) <= _EXCERPT_CHARS:
        return line
    at = max(line.find(anchor), 0)
    start = max(0, min(at - _EXCERPT_CHARS // 3, len(line) - _EXCERPT_CHARS))
    window = line[start : start + _EXCERPT_CHARS]
    return ("…" if start else "") + window + ("…" if start + _EXCERPT_CHARS < len(line) else "")


# --- private keys ---------------------------------------------------------------------------


def _key_body(texts: list[str]) -> str:
    joined = "\n".join(texts).replace("\\n", "\n").replace("\\r", "\n")
    return "".join(_BASE64_RUN.findall(joined))


def _fits_key(text: str) -> bool:
    """A line that can be part of a key block: base64, a header field, quoted or escaped."""
    return bool(_KEY_LINE.fullmatch(text.strip()))


def _key_blocks(lines: list[NumberedLine]) -> Iterator[_KeyBlock]:
    """Private key blocks with enough key material to be keys, header line first."""
    index = 0
    while index < len(lines):
        number, text = lines[index]
        index += 1
        if not any(True for _ in _PRIVATE_KEY_DETECTOR.analyze_string(text)):
            continue
        header = _KEY_HEADER.search(text)
        if header is None and "PuTTY-User-Key-File" not in text:
            continue  # "BEGIN RSA PRIVATE KEY" named in prose or code, not a key
        start = header.end() if header else 0
        end = _KEY_END.search(text, start)
        if header and end:  # the whole key on one line: "-----BEGIN ...-----\nMIIE...\n-----END"
            body = _key_body([text[start : end.start()]])
            excerpt = text[:start] + mask(body) + text[end.start() :]
            if len(body) >= _MIN_KEY_BODY:
                yield _KeyBlock(number, _excerpt(excerpt, mask(body)), body, frozenset({number}))
            continue
        block = [(number, text[start:])]
        while index < len(lines) and len(block) < _MAX_KEY_LINES:
            next_number, next_text = lines[index]
            stop = _KEY_END.search(next_text)
            part = next_text[: stop.start()] if stop else next_text
            if next_number != block[-1][0] + 1 or not (stop or _fits_key(part)):
                break  # not an added line, or not key material: the block ends here
            index += 1
            block.append((next_number, part))
            if stop:
                break
        body = _key_body([t for _, t in block])
        if len(body) >= _MIN_KEY_BODY:
            consumed = frozenset(n for n, _ in block)
            yield _KeyBlock(number, _excerpt(text, ""), body, consumed)
