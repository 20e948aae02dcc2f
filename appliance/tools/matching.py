"""Finding the text an edit names, and saying how it differs when it is not there exactly.

A small model often quotes code with the wrong indentation, a stale line or a typo. The
edit tools never apply such a near miss silently; they show the closest window of the file
(with line numbers the model can read back) and say what differs, so the next call can quote
it exactly. :func:`closest_window` ranks windows the size of the quoted text first by how
many of its lines occur in the window (ignoring surrounding whitespace), then by
``difflib``'s similarity of the raw text, so an indentation-only difference wins outright.
"""

from __future__ import annotations

import difflib
import heapq

SHOWN_LINES = 30
SHOWN_CHARS = 200
_RANKED = 20


def find_all(text: str, needle: str) -> list[int]:
    """Every offset where ``needle`` starts in ``text``, overlapping matches included."""
    offsets = []
    start = text.find(needle)
    while start >= 0:
        offsets.append(start)
        start = text.find(needle, start + 1)
    return offsets


def line_at(text: str, offset: int) -> int:
    """The 1-based line number of ``offset`` in ``text``."""
    return text.count("\n", 0, offset) + 1


def numbered(lines: list[str], first: int) -> str:
    """``lines`` as ``   12 | text``, the first numbered ``first``, long ones cut."""
    shown = lines[:SHOWN_LINES]
    width = max(5, len(str(first + len(shown) - 1)))
    out = []
    for number, text in enumerate(shown, start=first):
        if len(text) > SHOWN_CHARS:
            text = text[:SHOWN_CHARS] + " … [line cut]"
        out.append(f"{number:>{width}} | {text}")
    if len(lines) > len(shown):
        out.append(f"{'':>{width}} | … ({len(lines) - len(shown)} more lines)")
    return "\n".join(out)


def closest_window(lines: list[str], wanted: list[str]) -> tuple[int, float] | None:
    """(index of the first line, similarity 0..1) of the window of ``lines`` most like
    ``wanted``; None when the file is empty or nothing is alike at all."""
    if not lines or not wanted:
        return None
    size = min(len(wanted), len(lines))
    stripped = [line.strip() for line in lines]
    wanted_set = {line.strip() for line in wanted if line.strip()}
    hits = [1 if line and line in wanted_set else 0 for line in stripped]
    score = sum(hits[:size])
    scores = [score]
    for start in range(1, len(lines) - size + 1):
        score += hits[start + size - 1] - hits[start - 1]
        scores.append(score)
    ranked = heapq.nlargest(_RANKED, range(len(scores)), key=lambda i: (scores[i], -i))
    if scores[ranked[0]] == 0:
        ranked = _anchored(stripped, wanted, size)
    target = "\n".join(wanted)
    best: tuple[int, float] | None = None
    for start in ranked:
        ratio = _ratio("\n".join(lines[start : start + size]), target)
        if best is None or ratio > best[1]:
            best = (start, ratio)
    if best is None or best[1] < 0.3:
        return None
    return best


def _anchored(stripped: list[str], wanted: list[str], size: int) -> list[int]:
    """Windows starting where a line looks like the first non-blank line of ``wanted``."""
    first = next((line.strip() for line in wanted if line.strip()), "")
    offset = next(i for i, line in enumerate(wanted) if line.strip() == first) if first else 0
    close = difflib.get_close_matches(first, stripped, n=_RANKED, cutoff=0.5)
    starts = {i - offset for i, line in enumerate(stripped) if line in close}
    last = len(stripped) - size
    return sorted({min(max(start, 0), last) for start in starts})


def _ratio(a: str, b: str) -> float:
    return difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()


def explain_difference(
    found: list[str], wanted: list[str], first: int, label: str = "your old text"
) -> str:
    """One or a few sentences on how ``wanted`` (the model's text, called ``label``)
    differs from ``found`` (the file's lines, the first numbered ``first``)."""
    if [line.strip() for line in found] == [line.strip() for line in wanted]:
        if [line.rstrip() for line in found] == [line.rstrip() for line in wanted]:
            return "It differs only in trailing whitespace."
        for number, (have, want) in enumerate(zip(found, wanted, strict=False), start=first):
            if have.lstrip() == want.lstrip() and _indent(have) != _indent(want):
                return (
                    f"It differs only in indentation: line {number} starts with "
                    f"{_describe_indent(_indent(have))} in the file and "
                    f"{_describe_indent(_indent(want))} in {label}."
                )
        return "It differs only in whitespace."
    if [" ".join(line.split()) for line in found] == [" ".join(line.split()) for line in wanted]:
        return "It differs only in whitespace inside lines."
    notes = []
    for number, (have, want) in enumerate(zip(found, wanted, strict=False), start=first):
        if have != want:
            notes.append(f"line {number} is {_cut(have)!r} in the file, {_cut(want)!r} in {label}")
        if len(notes) == 3:
            break
    if len(wanted) > len(found):
        notes.append(f"{label} has {len(wanted)} lines, the file has only {len(found)}")
    return "Differences: " + "; ".join(notes) + "."


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def _describe_indent(indent: str) -> str:
    if not indent:
        return "no indentation"
    tabs, spaces = indent.count("\t"), indent.count(" ")
    parts = []
    if spaces:
        parts.append(f"{spaces} space{'s' if spaces != 1 else ''}")
    if tabs:
        parts.append(f"{tabs} tab{'s' if tabs != 1 else ''}")
    return " and ".join(parts)


def _cut(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[:limit] + "…"
