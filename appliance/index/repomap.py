"""The repo map: the repository's most relevant files and their key definitions, as text
that fits a token budget, for the model's prompt.

::

    appliance/index/graph.py:
      class FileGraph:
        def rank(self, seeds=None, *, seed_names=()) -> dict[str, float]:
    appliance/index/types.py:
      class FileSymbols:
    README.md

Files come in rank order (the scores of :meth:`FileGraph.rank`, ties by path); a file's
definitions in line order, indented by nesting (a method under its class; an enclosing
definition is shown whenever something inside it is). A file without definitions is a
bare path line.

**What gets shown.** Each (file, definition) pair is an *item*; a file's definitions are
ordered by how useful they are to see: those named in ``focus_names`` first, then by how
many other files reference the name, public before ``_private``, then by line. The item
for the file at rank position ``i`` and its ``j``-th definition has priority
``1 / ((i + 1) * (j + 1))``: the top file's second definition ties the second file's first,
the top file's tenth ties the tenth file's first. So the budget buys breadth — many files,
each with its best definition — while the best files get more of their API. The map is the
longest prefix of the items, in priority order, whose rendering fits the budget, found by
galloping then binary search (a dozen renderings, each no longer than about twice the
budget). Everything is sorted with explicit tie-breaks, so the same input gives the same map.

Tokens are counted by ``count_tokens`` when given (the serving model's tokenizer), else
by :func:`models.actions.estimate_tokens`, the project's one fallback estimate, so the map
agrees with whoever budgets the rest of the prompt.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from appliance.index.types import Definition, FileSymbols
from models.actions import estimate_tokens

INDENT = "  "
MAX_SIGNATURE_CHARS = 200


@dataclass(frozen=True)
class _Entry:
    """One definition as it will be printed."""

    depth: int
    text: str
    parent_index: int | None  # the enclosing entry of the same file, if any


def render_repo_map(
    ranked: Mapping[str, float],
    symbols: Mapping[str, FileSymbols],
    *,
    token_budget: int,
    count_tokens: Callable[[str], int] | None = None,
    focus_names: Iterable[str] = (),
) -> str:
    """The repo map of the files in ``ranked`` (path → score) that fits ``token_budget``;
    ``""`` when not even one line fits. ``symbols`` supplies the definitions (files missing
    from it are shown as bare paths) and, over all its files, the counts of referencing
    files that order each file's definitions."""
    count = count_tokens or estimate_tokens
    if token_budget <= 0 or not ranked:
        return ""
    files = sorted(ranked, key=lambda path: (-ranked[path], path))
    focus = {name.lower() for name in focus_names}
    referrers = _referrer_counts(symbols, files)

    entries: dict[str, list[_Entry]] = {}
    order: dict[str, list[int]] = {}  # a file's entry indexes, most useful first
    items: list[tuple[float, int, int, str, int | None]] = []
    for i, path in enumerate(files):
        fs = symbols.get(path)
        defs = sorted(fs.definitions if fs else (), key=lambda d: (d.line_start, -d.line_end))
        entries[path] = _entries(defs)
        own_refs = {r.name for r in fs.references} if fs else set()
        order[path] = _by_usefulness(defs, focus, referrers, own_refs)
        if not defs:
            items.append((-1 / (i + 1), i, 0, path, None))
        for j, index in enumerate(order[path]):
            items.append((-1 / ((i + 1) * (j + 1)), i, j, path, index))
    items.sort(key=lambda item: item[:3])

    def render(n: int) -> str:
        chosen: dict[str, set[int]] = {}
        for _, _, _, path, index in items[:n]:
            shown = chosen.setdefault(path, set())
            while index is not None and index not in shown:
                shown.add(index)
                index = entries[path][index].parent_index
        lines: list[str] = []
        for path in files:
            if path not in chosen:
                continue
            if not entries[path]:
                lines.append(path)
                continue
            lines.append(path + ":")
            for index in sorted(chosen[path]):
                entry = entries[path][index]
                lines.append(INDENT * (entry.depth + 1) + entry.text)
        return "\n".join(lines) + "\n" if lines else ""

    def fits(n: int) -> bool:
        return count(render(n)) <= token_budget

    # Gallop to a prefix length that does not fit, then binary-search the largest that does.
    low, high = 0, 1
    while high <= len(items) and fits(high):
        low, high = high, high * 2
    high = min(high, len(items) + 1)
    while high - low > 1:
        middle = (low + high) // 2
        if fits(middle):
            low = middle
        else:
            high = middle
    return render(low)


def _referrer_counts(symbols: Mapping[str, FileSymbols], files: list[str]) -> dict[str, float]:
    """For each name defined in ``files``: how many files of ``symbols`` reference it, per
    file defining it (``forward``, defined in 800 files and called from 900, scores ~1)."""
    wanted = {d.name for path in files if path in symbols for d in symbols[path].definitions}
    referencing = dict.fromkeys(wanted, 0)
    defining = dict.fromkeys(wanted, 0)
    for fs in symbols.values():
        for name in {r.name for r in fs.references} & wanted:
            referencing[name] += 1
        for name in {d.name for d in fs.definitions} & wanted:
            defining[name] += 1
    return {name: referencing[name] / max(defining[name], 1) for name in wanted}


def _by_usefulness(
    defs: list[Definition], focus: set[str], referrers: Mapping[str, float], own_refs: set[str]
) -> list[int]:
    """Indexes into ``defs`` (in line order), most useful first. A dunder (``__init__``)
    is referenced everywhere and says nothing, so it counts as unreferenced."""

    def key(k: int) -> tuple[bool, float, bool, int]:
        name = defs[k].name
        dunder = name.startswith("__") and name.endswith("__")
        used = 0.0 if dunder or name not in referrers else referrers[name]
        if name in own_refs:  # only what *other* files use counts
            used = max(used - 1.0, 0.0)
        return (name.lower() not in focus, -used, name.startswith("_"), k)

    return sorted(range(len(defs)), key=key)


def _entries(defs: list[Definition]) -> list[_Entry]:
    """``defs`` (in line order), each with its nesting depth (by line containment) and text."""
    entries: list[_Entry] = []
    stack: list[int] = []  # indexes of the enclosing entries
    for d in defs:
        while stack and defs[stack[-1]].line_end < d.line_start:
            stack.pop()
        parent = stack[-1] if stack else None
        entries.append(_Entry(len(stack), _signature(d), parent))
        stack.append(len(entries) - 1)
    return entries


def _signature(d: Definition) -> str:
    text = " ".join(d.signature.split()) or f"{d.kind} {d.name}"
    if len(text) > MAX_SIGNATURE_CHARS:
        text = text[: MAX_SIGNATURE_CHARS - 1] + "…"
    return text
