"""Split a file into the chunks that get embedded, aligned to its definitions.

A chunk should hold one idea: a function, a class, a run of small helpers, a section of a
document. The file is first cut into *pieces* that must not be split further, then the
pieces are merged into chunks:

1. Top-level definitions (outermost spans, whatever their ``parent``: a Go method is
   top-level) become pieces, each with the comment or decorator lines right above it. The
   module code between them is a piece of its own.
2. A definition longer than ``max_lines`` is cut the same way at the definitions inside
   it (a class at its methods); a long stretch with no definition inside (a big
   function, module code, a whole markdown file) is cut into windows near
   ``target_lines``, preferring a cut after a blank line and before an unindented line
   (a heading, a new statement), then one that leaves ``min_lines`` for the last window.
3. Neighbouring pieces are merged while the chunk stays within ``target_lines``, or
   within ``max_lines`` while it is shorter than ``min_lines`` (or the next piece is only
   blank lines); a last chunk shorter than
   ``min_lines`` joins the one before when they fit in ``max_lines``.

So a definition that fits in ``max_lines`` is always whole in one chunk, no chunk is
longer than ``max_lines``, and every line of the file is in exactly one chunk. Lines are
counted on ``\\n`` as tree-sitter counts them, 1-based and inclusive. A chunk's ``symbol``
is the longest definition in it (``Class.method`` for a method), or the class a piece of
class body belongs to; None for module code and text files.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from appliance.errors import InvalidInput
from appliance.index.types import Chunk, Definition, FileSymbols

_LEADING = ("#", "//", "/*", "*", "@")  # comment and decorator lines stay with what follows


@dataclass(frozen=True)
class _Piece:
    start: int
    end: int
    symbol: str | None

    @property
    def size(self) -> int:
        return self.end - self.start + 1


def chunk_file(
    path: str,
    text: str,
    symbols: FileSymbols | None,
    *,
    target_lines: int = 60,
    max_lines: int = 80,
    min_lines: int = 40,
) -> list[Chunk]:
    """The chunks of ``text`` (the file at ``path``), aligned to ``symbols`` when given."""
    if not 1 <= min_lines <= target_lines <= max_lines:
        raise InvalidInput(
            f"chunk sizes must satisfy 1 <= min_lines <= target_lines <= max_lines, got "
            f"min_lines={min_lines}, target_lines={target_lines}, max_lines={max_lines}",
            field="target_lines",
        )
    if not text:
        return []
    lines = text.split("\n")
    if text.endswith("\n"):
        lines.pop()
    splitter = _Splitter(lines, target_lines, max_lines, min_lines)
    definitions = symbols.definitions if symbols is not None else ()
    pieces = splitter.pieces(_valid(definitions, len(lines)), 1, len(lines), None)
    return [
        Chunk(
            path=path,
            line_start=group[0].start,
            line_end=group[-1].end,
            text="\n".join(lines[group[0].start - 1 : group[-1].end]),
            symbol=_main_symbol(group),
        )
        for group in splitter.merge(pieces)
    ]


def _valid(definitions: Sequence[Definition], line_count: int) -> list[Definition]:
    """Definitions with a usable span, outermost first at each start line."""
    usable = [
        d for d in definitions if 1 <= d.line_start <= d.line_end and d.line_start <= line_count
    ]
    usable.sort(key=lambda d: (d.line_start, -d.line_end))
    return usable


def _qualified(definition: Definition) -> str:
    if definition.parent and definition.kind == "method":
        return f"{definition.parent}.{definition.name}"
    return definition.name


def _main_symbol(group: list[_Piece]) -> str | None:
    named = [p for p in group if p.symbol is not None]
    return max(named, key=lambda p: p.size).symbol if named else None


class _Splitter:
    def __init__(self, lines: list[str], target: int, maximum: int, minimum: int) -> None:
        self.lines = lines
        self.target = target
        self.max = maximum
        self.min = minimum

    def pieces(
        self, definitions: list[Definition], lo: int, hi: int, owner: str | None
    ) -> list[_Piece]:
        """Lines ``lo..hi`` as unsplittable pieces; code between definitions is ``owner``'s."""
        out: list[_Piece] = []
        cursor = lo
        index = 0
        while index < len(definitions):
            outer = definitions[index]
            end = min(outer.line_end, hi)
            inner: list[Definition] = []
            index += 1
            while index < len(definitions) and definitions[index].line_start <= end:
                if definitions[index].line_end <= end:
                    inner.append(definitions[index])
                index += 1  # a span that straddles ``end`` is dropped: pieces never overlap
            if outer.line_start < cursor:
                continue
            start = self._leading(outer.line_start, cursor)
            if start > cursor:
                out += self.windows(cursor, start - 1, owner)
            symbol = _qualified(outer)
            if end - start + 1 <= self.max:
                out.append(_Piece(start, end, symbol))
            elif inner:
                out += self.pieces(inner, start, end, symbol)
            else:
                out += self.windows(start, end, symbol)
            cursor = end + 1
        if cursor <= hi:
            out += self.windows(cursor, hi, owner)
        return out

    def _leading(self, start: int, floor: int) -> int:
        """Move ``start`` up over the comment/decorator lines right above it."""
        while start > floor and self.lines[start - 2].lstrip().startswith(_LEADING):
            start -= 1
        return start

    def windows(self, lo: int, hi: int, symbol: str | None) -> list[_Piece]:
        """Cut ``lo..hi`` into pieces of at most ``max`` lines at the best nearby breaks."""
        out: list[_Piece] = []
        start = lo
        while hi - start + 1 > self.max:
            candidates = range(start + self.min - 1, start + self.max)
            cut = max(candidates, key=lambda c: self._break_score(c, start, hi))
            out.append(_Piece(start, cut, symbol))
            start = cut + 1
        out.append(_Piece(start, hi, symbol))
        return out

    def _break_score(self, cut: int, start: int, hi: int) -> tuple[int, bool, int]:
        """How good a cut after line ``cut`` is: a blank line, then an unindented line next,
        then a last window of ``min`` lines or more; ties go to the cut nearest the target."""
        line, following = self.lines[cut - 1], self.lines[cut]
        score = 2 if not line.strip() else 0
        if following.strip() and _indent(following) <= _indent(self.lines[start - 1]):
            score += 1
        return score, hi - cut >= self.min, -abs(cut - (start + self.target - 1))

    def merge(self, pieces: list[_Piece]) -> list[list[_Piece]]:
        groups: list[list[_Piece]] = []
        for piece in pieces:
            if groups:
                group = groups[-1]
                size = group[-1].end - group[0].start + 1
                merged = piece.end - group[0].start + 1
                blank = not any(line.strip() for line in self.lines[piece.start - 1 : piece.end])
                small = size < self.min or blank  # blank lines stay with what they follow
                if merged <= self.target or (small and merged <= self.max):
                    group.append(piece)
                    continue
            groups.append([piece])
        if len(groups) > 1:
            last, before = groups[-1], groups[-2]
            tail = last[-1].end - last[0].start + 1
            if tail < self.min and last[-1].end - before[0].start + 1 <= self.max:
                before += groups.pop()
        return groups


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())
