"""``go.mod``: the module requirements, with the exact span of each version.

The file is read line by line the way the go command lexes it: ``//`` starts a comment
outside quoted strings, a directive is a verb and its arguments, and ``verb (`` opens a
block whose lines are arguments of that verb until ``)``. Only two verbs matter here:

* ``require path version`` (single or in a block): a :class:`Dependency` keyed by the
  module path, whose span is the version token. A ``// indirect`` comment puts it in the
  group ``indirect`` (required only for a dependency's sake), others in ``require``.
  Pseudo-versions (``v0.0.0-20240506185415-9bf2ced13842``, a commit rather than a
  release) are listed but frozen: which release to move to is a person's decision.
* ``replace old [version] => new [version]``: a required module that is replaced (every
  version of it, or the very version required) is frozen, since the code built is the
  replacement's, and bumping the requirement would change nothing that matters.

``module``, ``go``, ``toolchain``, ``exclude``, ``retract``, ``godebug`` and comments are
left alone; the file is never re-serialised, so a rewrite changes the version characters
and nothing else. Lines the reader cannot make sense of become :class:`ScanNote` records.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from appliance.deps import go_versions
from appliance.deps.model import Dependency, Location, Scan, ScanNote
from appliance.deps.requirements_txt import read_text, relative

_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|`[^`]*`|=>|[()]|[^\s()"`]+')


@dataclass(frozen=True)
class _Token:
    text: str
    start: int  # offset in the file
    end: int


@dataclass(frozen=True)
class _Require:
    path: str
    version: _Token
    line: int
    indirect: bool


@dataclass(frozen=True)
class _Replace:
    path: str
    version: str | None  # None: every version of ``path``
    target: str


def _code_and_comment(line: str) -> tuple[str, str]:
    """``line`` split at the ``//`` that starts its comment (not one inside quotes)."""
    quote: str | None = None
    i = 0
    while i < len(line):
        char = line[i]
        if quote is not None:
            if char == "\\" and quote == '"':
                i += 1
            elif char == quote:
                quote = None
        elif char in '"`':
            quote = char
        elif line.startswith("//", i):
            return line[:i], line[i + 2 :]
        i += 1
    return line, ""


def _unquote(text: str) -> str | None:
    if text.startswith("`"):
        return text[1:-1]
    if text.startswith('"'):
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            return None
        return value if isinstance(value, str) else None
    return text


def _is_indirect(comment: str) -> bool:
    words = comment.split()
    return bool(words) and (words[0] == "indirect" or words[0].startswith("indirect;"))


def scan_go_mod(root: Path, path: Path) -> Scan:
    rel = relative(path, root)
    text = read_text(path)
    scan = Scan([], [])
    requires: list[_Require] = []
    replaces: list[_Replace] = []
    block: str | None = None
    offset = 0
    for number, raw in enumerate(text.splitlines(keepends=True), start=1):
        start = offset
        offset += len(raw)
        code, comment = _code_and_comment(raw.rstrip("\r\n"))
        tokens = [
            _Token(m.group(), start + m.start(), start + m.end()) for m in _TOKEN.finditer(code)
        ]
        if not tokens:
            continue
        if block is None:
            verb, args = tokens[0].text, tokens[1:]
            if [t.text for t in args] == ["("]:
                block = verb
                continue
            if args and args[0].text == "(":
                continue  # "require ()": an empty block on one line
        elif tokens[0].text == ")":
            block = None
            continue
        else:
            verb, args = block, tokens

        def note(reason: str, number: int = number, code: str = code) -> None:
            scan.notes.append(ScanNote(rel, number, code.strip(), reason))

        if verb == "require":
            module = _unquote(args[0].text) if len(args) == 2 else None
            if module is None:
                note("require line the engine cannot read (want: module-path version): ignored")
            elif args[1].text.startswith(('"', "`")):
                note("quoted version: not rewritten (write it without quotes)")
            else:
                requires.append(_Require(module, args[1], number, _is_indirect(comment)))
        elif verb == "replace":
            replace = _replace(args)
            if replace is None:
                note("replace directive the engine cannot read: ignored")
            else:
                replaces.append(replace)
    for require in requires:
        scan.dependencies.append(_dependency(rel, require, replaces))
    return scan


def _replace(args: list[_Token]) -> _Replace | None:
    texts = [t.text for t in args]
    if "=>" not in texts:
        return None
    arrow = texts.index("=>")
    old, new = texts[:arrow], texts[arrow + 1 :]
    if len(old) not in (1, 2) or len(new) not in (1, 2):
        return None
    path = _unquote(old[0])
    target = " ".join(t for t in (_unquote(n) for n in new) if t)
    if path is None or not target:
        return None
    return _Replace(path, old[1] if len(old) == 2 else None, target)


def _dependency(rel: PurePosixPath, require: _Require, replaces: list[_Replace]) -> Dependency:
    version = require.version.text
    replaced = next(
        (
            r
            for r in replaces
            if r.path == require.path and (r.version is None or r.version == version)
        ),
        None,
    )
    frozen: str | None = None
    if replaced is not None:
        frozen = (
            f"replaced by {replaced.target} (a replace directive): the replacement is what "
            "is built; update it by hand"
        )
    elif go_versions.is_pseudo(version):
        frozen = "pseudo-version (a commit, not a tagged release): move to a release by hand"
    return Dependency(
        ecosystem="go",
        name=require.path,
        key=require.path,
        spec=version,
        current=version if go_versions.parse(version) is not None else None,
        location=Location(rel, require.version.start, require.version.end, version, require.line),
        group="indirect" if require.indirect else "require",
        frozen_reason=frozen,
    )
