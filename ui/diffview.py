"""Unified diffs for the review page: parsed per file and hunk, highlighted by Pygments
on the server, laid out unified or side by side.

Each side of a hunk (old: context + removed lines; new: context + added lines) is lexed
as one text, so multi-line strings and comments colour right, then split back into
lines. Token classes are Pygments' short names (``k``, ``s2``…), styled by the vendored
``pygments-*.css``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from html import escape

from markupsafe import Markup
from pygments.lexer import Lexer
from pygments.lexers import TextLexer, get_lexer_for_filename
from pygments.token import STANDARD_TYPES, _TokenType
from pygments.util import ClassNotFound

MAX_HIGHLIGHT_LINES = 20_000  # past this, plain text: a huge diff must still open
INLINE_LINES = 500  # diff lines the review page renders at once; later files load on demand


@dataclass
class Line:
    kind: str  # ctx | add | del
    old_no: int | None
    new_no: int | None
    html: Markup
    text: str = ""  # the line as in the diff, without its sign: indentation kept


@dataclass
class Hunk:
    index: int
    header: str
    old_start: int = 0
    new_start: int = 0
    lines: list[Line] = field(default_factory=list)

    def text(self) -> str:
        """The hunk as unified diff text, each line as it was (the model reads the code's
        indentation; highlighted HTML with its tags stripped would lose it)."""
        sign = {"ctx": " ", "add": "+", "del": "-"}
        return self.header + "\n" + "\n".join(sign[ln.kind] + ln.text for ln in self.lines)

    def rows(self) -> list[tuple[Line | None, Line | None]]:
        """Side by side: context on both sides, a run of removals paired with the run of
        additions that follows it."""
        out: list[tuple[Line | None, Line | None]] = []
        dels: list[Line] = []
        adds: list[Line] = []

        def flush() -> None:
            for i in range(max(len(dels), len(adds))):
                out.append((dels[i] if i < len(dels) else None, adds[i] if i < len(adds) else None))
            dels.clear()
            adds.clear()

        for line in self.lines:
            if line.kind == "del":
                if adds:
                    flush()
                dels.append(line)
            elif line.kind == "add":
                adds.append(line)
            else:
                flush()
                out.append((line, line))
        flush()
        return out


@dataclass
class FileDiff:
    path: str
    old_path: str
    status: str  # added | removed | modified | renamed | binary
    added: int = 0
    removed: int = 0
    hunks: list[Hunk] = field(default_factory=list)

    @property
    def anchor(self) -> str:
        return "f-" + "".join(c if c.isalnum() else "-" for c in self.path)

    @property
    def lines(self) -> int:
        return sum(len(h.lines) for h in self.hunks)


def window(
    files: tuple[FileDiff, ...] | list[FileDiff], opened: set[str], budget: int = INLINE_LINES
) -> set[str]:
    """The paths the review page renders in full: files from the top while their lines
    fit in ``budget``, plus those asked for (``opened``). The others render as a header
    and a link that loads the file's diff, so a huge diff's first response stays small."""
    shown: set[str] = set()
    used = 0
    for f in files:
        used += f.lines
        if used > budget:
            break
        shown.add(f.path)
    return shown | (opened & {f.path for f in files})


@functools.lru_cache(maxsize=256)
def _lexer(path: str) -> Lexer:
    lexer: Lexer
    try:
        lexer = get_lexer_for_filename(path, stripnl=False, ensurenl=False)
    except ClassNotFound:
        lexer = TextLexer(stripnl=False, ensurenl=False)
    return lexer


def _css(token: _TokenType) -> str:
    found: _TokenType | None = token
    while found is not None and found not in STANDARD_TYPES:
        found = found.parent
    return STANDARD_TYPES[found] if found is not None else ""


def highlight_lines(path: str, lines: list[str]) -> list[Markup]:
    """Each line as HTML with token spans; the lexer sees the lines as one text."""
    if not lines:
        return []
    out: list[list[str]] = [[]]
    for token, value in _lexer(path).get_tokens("\n".join(lines)):
        css = _css(token)
        parts = value.split("\n")
        for i, part in enumerate(parts):
            if i:
                out.append([])
            if part:
                out[-1].append(
                    f'<span class="{css}">{escape(part)}</span>' if css else escape(part)
                )
    while len(out) < len(lines):
        out.append([])
    return [Markup("".join(chunks)) for chunks in out[: len(lines)]]  # noqa: S704 - built from escaped parts


def _strip(path: str) -> str:
    return path[2:] if path.startswith(("a/", "b/")) else path


def parse(diff: str, *, highlight: bool = True) -> list[FileDiff]:
    """Split a unified diff (``git diff`` output) into files and hunks."""
    files: list[FileDiff] = []
    current: FileDiff | None = None
    raw: list[tuple[Hunk, list[tuple[str, str]]]] = []
    hunk: Hunk | None = None
    body: list[tuple[str, str]] = []
    for line in diff.splitlines():
        if line.startswith("diff --git "):
            parts = line.split(" ")
            path = _strip(parts[-1]) if len(parts) >= 4 else line[11:]
            current = FileDiff(
                path=path, old_path=_strip(parts[2]) if len(parts) >= 4 else path, status="modified"
            )
            files.append(current)
            hunk = None
        elif current is None:
            continue
        elif hunk is None and line.startswith("new file"):
            current.status = "added"
        elif hunk is None and line.startswith("deleted file"):
            current.status = "removed"
        elif hunk is None and line.startswith("rename from "):
            current.status, current.old_path = "renamed", line[12:]
        elif hunk is None and line.startswith("Binary files"):
            current.status = "binary"
        elif line.startswith("@@"):
            nums = (line.split("@@")[1:2] or [""])[0].split()
            try:
                old_start = abs(int(nums[0].split(",")[0]))
                new_start = int(nums[1].split(",")[0].lstrip("+"))
            except (IndexError, ValueError):
                old_start = new_start = 1
            hunk = Hunk(len(current.hunks), line, old_start, new_start)
            current.hunks.append(hunk)
            body = []
            raw.append((hunk, body))
        elif hunk is not None and line[:1] in ("+", "-", " ", ""):
            kind = {"+": "add", "-": "del"}.get(line[:1], "ctx")
            body.append((kind, line[1:]))
            if kind == "add":
                current.added += 1
            elif kind == "del":
                current.removed += 1
    total = sum(len(b) for _, b in raw)
    do_highlight = highlight and total <= MAX_HIGHLIGHT_LINES
    owner = {id(h): f for f in files for h in f.hunks}
    for hunk, body in raw:
        path = owner[id(hunk)].path
        old_no, new_no = hunk.old_start, hunk.new_start
        old_src = [t for k, t in body if k != "add"]
        new_src = [t for k, t in body if k != "del"]
        if do_highlight:
            old_html, new_html = highlight_lines(path, old_src), highlight_lines(path, new_src)
        else:
            old_html = [Markup(escape(t)) for t in old_src]  # noqa: S704 - escaped
            new_html = [Markup(escape(t)) for t in new_src]  # noqa: S704 - escaped
        oi = ni = 0
        for kind, text in body:
            if kind == "add":
                hunk.lines.append(Line("add", None, new_no, new_html[ni], text))
                ni += 1
                new_no += 1
            elif kind == "del":
                hunk.lines.append(Line("del", old_no, None, old_html[oi], text))
                oi += 1
                old_no += 1
            else:
                hunk.lines.append(Line("ctx", old_no, new_no, new_html[ni], text))
                oi += 1
                ni += 1
                old_no += 1
                new_no += 1
    return files


@functools.lru_cache(maxsize=32)
def parse_cached(diff: str) -> tuple[FileDiff, ...]:
    """:func:`parse`, remembered: a reviewed diff never changes (its event is immutable),
    so re-opening a review does not lex it again. Callers must not modify the result."""
    return tuple(parse(diff))
