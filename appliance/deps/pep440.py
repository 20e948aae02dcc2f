"""Python requirement strings: where the specifier is written, and how to rewrite it.

:func:`split_requirement` finds the character span of the specifiers in a PEP 508
requirement (after the name and extras, before the ``;`` of a marker), so a rewrite
touches nothing else. :func:`rewrite_specifier` produces the new specifier text for a
target version under one of the three range strategies:

* ``pin``: ``==X``.
* ``bump``: raise every lower bound to the target, keeping each operator and the number
  of release components written (``>=1.2`` → ``>=1.4``, ``~=1.4.2`` → ``~=1.6.0``,
  ``==1.4.*`` → ``==1.6.*``); an upper bound that would exclude the target is widened.
  When keeping the precision would not raise the bound (``>=1.2`` to 1.2.5) the full
  version is written.
* ``widen``: leave the lower bounds and move only what excludes the target: ``<2`` →
  ``<3``, ``<1.5`` → ``<1.8`` (the upper bound keeps its granularity), ``~=1.4`` →
  ``>=1.4,<3``; a pin ``==X`` can only be replaced. A spec that already admits the
  target comes back unchanged.

Each clause is rewritten in place (its spacing survives); the result is checked with
``packaging`` to admit the target, or ``None`` is returned and the bump is skipped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

RangeStrategy = Literal["pin", "bump", "widen"]

_NAME = re.compile(r"\s*([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*(\[[^\]]*\])?\s*")
_CLAUSE = re.compile(r"(===|~=|==|!=|<=|>=|<|>)(\s*)([^\s,;()]+)")


@dataclass(frozen=True)
class RequirementParts:
    name: str
    requirement: Requirement
    spec_start: int  # span of the specifiers inside the requirement text
    spec_end: int

    def spec(self, text: str) -> str:
        return text[self.spec_start : self.spec_end]


def split_requirement(text: str) -> RequirementParts | None:
    """The name and specifier span of ``text``; None when it is no plain index requirement
    (invalid, or a direct ``name @ url`` reference)."""
    try:
        requirement = Requirement(text)
    except InvalidRequirement:
        return None
    if requirement.url is not None:
        return None
    match = _NAME.match(text)
    if match is None:  # pragma: no cover - packaging accepted it, so the name is there
        return None
    start = match.end()
    marker = text.find(";", start)
    end = len(text) if marker < 0 else marker
    while end > start and text[end - 1].isspace():
        end -= 1
    if end > start and text[start] == "(" and text[end - 1] == ")":
        start, end = start + 1, end - 1
    return RequirementParts(match.group(1), requirement, start, end)


def parse_version(text: str) -> Version | None:
    try:
        return Version(text)
    except InvalidVersion:
        return None


def floor_of(spec: str) -> Version | None:
    """The lowest version ``spec`` declares: a pin, or the highest lower bound."""
    floors: list[Version] = []
    for op, _, raw in _CLAUSE.findall(spec):
        if (op in ("==", "===") and not raw.endswith(".*")) or op in ("~=", ">=", ">"):
            version = parse_version(raw)
            if version is not None:
                floors.append(version)
    return max(floors) if floors else None


def admits(spec: str, version: Version) -> bool:
    try:
        return SpecifierSet(spec).contains(version, prereleases=True)
    except InvalidSpecifier:
        return False


def with_precision(target: Version, components: int, floor: Version | None = None) -> str:
    """``target`` written with ``components`` release numbers (``1.4.2``, 2 → ``1.4``);
    the full version when it is a pre-release or when trimming would not exceed ``floor``."""
    if target.pre is not None or target.dev is not None or target.post is not None:
        return str(target)
    release = list(target.release) + [0] * max(0, components - len(target.release))
    trimmed = ".".join(str(n) for n in release[: max(components, 1)])
    if floor is not None and Version(trimmed) <= floor:
        return str(target)
    return trimmed


def upper_boundary(upper: Version, target: Version) -> str:
    """A new exclusive upper bound above ``target`` with the granularity of ``upper``:
    ``<2`` → ``<3``, ``<2.0`` → ``<3.0``, ``<1.5`` → ``<1.8`` for 1.7.2."""
    release = upper.release
    significant = max((i for i, n in enumerate(release) if n), default=0)
    head = list(target.release[:significant]) + [0] * max(0, significant - len(target.release))
    nth = target.release[significant] if significant < len(target.release) else 0
    parts = [*head, nth + 1]
    parts += [0] * max(0, len(release) - len(parts))
    return ".".join(str(n) for n in parts)


def _next_major(target: Version) -> str:
    if target.major > 0:
        return str(target.major + 1)
    minor = target.release[1] if len(target.release) > 1 else 0
    return f"0.{minor + 1}"


def rewrite_specifier(spec: str, target: Version, strategy: RangeStrategy) -> str | None:
    """The new specifier text admitting ``target``, or None when no rewrite can."""
    if strategy == "pin":
        return f"=={target}"
    if strategy == "widen" and admits(spec, target):
        return spec
    pieces: list[str] = []
    last = 0
    for match in _CLAUSE.finditer(spec):
        op, space, raw = match.groups()
        version = parse_version(raw.removesuffix(".*"))
        if version is None:
            return None
        replacement = _rewrite_clause(op, raw, version, target, strategy)
        if replacement is None:
            return None
        new_op, new_raw = replacement
        pieces.append(spec[last : match.start()] + new_op + space + new_raw)
        last = match.end()
    pieces.append(spec[last:])
    new = "".join(pieces)
    if not _CLAUSE.search(spec):
        new = f">={target}" if strategy == "bump" else spec
    return new if admits(new, target) else None


def _rewrite_clause(
    op: str, raw: str, version: Version, target: Version, strategy: RangeStrategy
) -> tuple[str, str] | None:
    clause_admits = admits(f"{op}{raw}", target)
    width = len(version.release)
    if op == "!=":
        return None if not clause_admits else (op, raw)
    if op in ("<", "<="):
        if clause_admits:
            return op, raw
        return ("<", upper_boundary(version, target)) if op == "<" else (op, str(target))
    if strategy == "widen":
        if clause_admits:
            return op, raw
        if op == "~=":
            return ">=", f"{raw},<{_next_major(target)}"
        if raw.endswith(".*"):
            return ">=", f"{raw.removesuffix('.*')},<{_next_major(target)}"
        return op, str(target)  # a pin cannot be widened, only replaced
    # bump
    if op in ("==", "===") and raw.endswith(".*"):
        return op, with_precision(target, width) + ".*"
    if op in ("==", "==="):
        return op, str(target)
    if op == "~=":
        return op, with_precision(target, max(width, 2), floor=version)
    if op == ">":
        return ">=", with_precision(target, width, floor=version)
    return op, with_precision(target, width, floor=version)  # >=
