"""The syntax guard: an edit may not turn a file that parses into one that does not.

Files whose extension has a grammar (``appliance.index.languages``) are parsed with
tree-sitter before and after the change. A change that makes a clean (or new) file fail to
parse is refused with what tree-sitter reports (``missing ')'``, ``unexpected 'for i'``),
where, and a numbered snippet of the lines the change touched and the lines around the error
(tree-sitter's recovery often places an error a few lines after its cause). A file that
already failed to parse may be changed and stay broken: the model may be fixing it a step at
a time, and the result says so.
"""

from __future__ import annotations

import difflib

from tree_sitter import Node

from appliance.errors import InvalidInput
from appliance.index.languages import language_for, parser_for
from appliance.index.types import Language
from appliance.tools import matching

_RADIUS = 2
_PROBLEMS = 3
_SNIPPET_LINES = 16


def check_syntax(rel: str, before: str | None, after: str) -> str | None:
    """None when ``after`` parses (or ``rel`` has no grammar); a note for the result when
    ``before`` was already broken; ``InvalidInput`` when this change breaks the file."""
    language = language_for(rel)
    if language is None:
        return None
    problems = syntax_problems(language, after)
    if not problems:
        return None
    summary = "; ".join(text for _, text in problems)
    if before is not None and syntax_problems(language, before):
        return (
            f"note: {rel} had syntax errors before this change and still has ({summary}); "
            "fix them if they are in the code you are working on"
        )
    lines = after.splitlines()
    first, last = _changed_rows(before, after)
    error_row = problems[0][0]
    low = max(min(first, error_row) - _RADIUS, 0)
    high = min(max(last, error_row) + _RADIUS, len(lines) - 1)
    if high - low >= _SNIPPET_LINES:  # far apart: the error and what is around it
        low, high = max(error_row - _RADIUS, 0), min(error_row + _RADIUS, len(lines) - 1)
    snippet = matching.numbered(lines[low : high + 1], low + 1)
    changed = f"lines {first + 1}-{last + 1}" if last > first else f"line {first + 1}"
    raise InvalidInput(
        f"refused: the change would break the syntax of {rel}: {summary} (the change is on "
        f"{changed}; the cause is often there)\n{snippet}\n"
        f"{rel} was not changed; fix the new text and try again.",
        field="path",
    )


def syntax_problems(language: Language, text: str) -> list[tuple[int, str]]:
    """The first few syntax problems as (0-based row, ``line L, column C: what``); missing
    tokens come first, as they say best what to add."""
    source = text.encode("utf-8")
    root = parser_for(language).parse(source).root_node
    if not root.has_error:
        return []
    missing: list[Node] = []
    errors: list[Node] = []
    stack = [root]
    while stack and len(missing) + len(errors) < 2 * _PROBLEMS:
        node = stack.pop()
        if node.is_missing:
            missing.append(node)
        elif node.is_error:
            errors.append(node)
        else:
            stack.extend(reversed([c for c in node.children if c.has_error or c.is_missing]))
    found = []
    for node in (missing + errors)[:_PROBLEMS]:
        row, column = node.start_point
        if node.is_missing:
            what = f"missing {node.type!r}"
        else:
            raw = source[node.start_byte : node.end_byte].decode("utf-8", "replace")
            token = raw.strip().split("\n")[0][:40]
            what = f"unexpected {token!r}" if token else "syntax error"
        found.append((row, f"line {row + 1}, column {column + 1}: {what}"))
    if not found:
        return [(0, "syntax error")]
    return found


def _changed_rows(before: str | None, after: str) -> tuple[int, int]:
    """The first and last 0-based rows of ``after`` that the change touched."""
    new = after.splitlines()
    if before is None:
        return 0, max(len(new) - 1, 0)
    old = before.splitlines()
    rows = [
        (j1, max(j2 - 1, j1))
        for tag, _, _, j1, j2 in difflib.SequenceMatcher(
            None, old, new, autojunk=False
        ).get_opcodes()
        if tag != "equal"
    ]
    if not rows:
        return 0, 0
    last = min(max(high for _, high in rows), max(len(new) - 1, 0))
    return min(low for low, _ in rows), last
