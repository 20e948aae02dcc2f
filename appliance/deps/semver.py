"""npm's semantic versions and ranges, the subset package.json files use.

:class:`SemVer` parses ``1.2.3``, ``1.2.3-beta.1`` and ``1.2.3+build`` (build metadata is
ignored in ordering). :func:`parse_range` turns a range into its OR of AND comparator sets
the way node-semver desugars them: ``^``, ``~``, x-ranges (``1.x``, ``1.2``, ``*``),
hyphen ranges (``1.2 - 1.4``), primitive comparators and ``||``. Caret follows npm:
``^0.2.3`` means ``>=0.2.3 <0.3.0`` and ``^0.0.3`` means ``>=0.0.3 <0.0.4``. A pre-release
satisfies a set only when a comparator of that set names the same ``major.minor.patch``
with a pre-release, as in npm.

This is enough to find a range's floor, to check that a rewritten range admits its
target, and to tell which ranges the engine can rewrite; anything it cannot parse
(tags such as ``latest``, ``workspace:``, URLs) returns None and the dependency is left
alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

_VERSION = re.compile(
    r"^v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+[0-9A-Za-z.-]+)?$"
)
_PARTIAL = re.compile(
    r"^v?(\d+|[xX*])(?:\.(\d+|[xX*]))?(?:\.(\d+|[xX*]))?"
    r"(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+[0-9A-Za-z.-]+)?$"
)
_COMPARATOR = re.compile(r"^(<=|>=|<|>|=|\^|~>|~)?(.*)$")

Op = Literal["<", "<=", ">", ">=", "="]


@dataclass(frozen=True)
class SemVer:
    major: int
    minor: int
    patch: int
    pre: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> SemVer | None:
        match = _VERSION.match(text.strip())
        if match is None:
            return None
        pre = tuple(match.group(4).split(".")) if match.group(4) else ()
        return cls(int(match.group(1)), int(match.group(2)), int(match.group(3)), pre)

    @property
    def release(self) -> tuple[int, int, int]:
        return (self.major, self.minor, self.patch)

    @property
    def is_prerelease(self) -> bool:
        return bool(self.pre)

    def key(self) -> tuple[int, int, int, int, tuple[tuple[int, int, str], ...]]:
        pre = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in self.pre)
        return (self.major, self.minor, self.patch, 0 if self.pre else 1, pre)

    def __lt__(self, other: SemVer) -> bool:
        return self.key() < other.key()

    def __le__(self, other: SemVer) -> bool:
        return self.key() <= other.key()

    def __gt__(self, other: SemVer) -> bool:
        return self.key() > other.key()

    def __ge__(self, other: SemVer) -> bool:
        return self.key() >= other.key()

    def __str__(self) -> str:
        core = f"{self.major}.{self.minor}.{self.patch}"
        return f"{core}-{'.'.join(self.pre)}" if self.pre else core


@dataclass(frozen=True)
class Comparator:
    op: Op
    version: SemVer

    def test(self, v: SemVer) -> bool:
        if self.op == "<":
            return v < self.version
        if self.op == "<=":
            return v <= self.version
        if self.op == ">":
            return v > self.version
        if self.op == ">=":
            return v >= self.version
        return v.key() == self.version.key()


Range = list[list[Comparator]]


def _lowest(major: int, minor: int, patch: int) -> SemVer:
    return SemVer(major, minor, patch, ("0",))  # the first pre-release: ``<2.0.0-0``


def _partial(text: str) -> tuple[int | None, int | None, int | None, tuple[str, ...]] | None:
    match = _PARTIAL.match(text)
    if match is None:
        return None
    nums = [None if g is None or g in "xX*" else int(g) for g in match.groups()[:3]]
    for i in range(1, 3):  # after a wildcard everything is a wildcard
        if nums[i - 1] is None:
            nums[i] = None
    pre = tuple(match.group(4).split(".")) if match.group(4) and nums[2] is not None else ()
    return nums[0], nums[1], nums[2], pre


def _expand(op: str, text: str) -> list[Comparator] | None:
    parts = _partial(text)
    if parts is None:
        return None
    ma, mi, pa, pre = parts
    if ma is None:
        return [] if op in ("", "=", ">=", "^", "~", "~>", "<=") else None
    lo = SemVer(ma, mi or 0, pa or 0, pre)
    if op in ("", "="):
        if mi is None:
            return [Comparator(">=", lo), Comparator("<", _lowest(ma + 1, 0, 0))]
        if pa is None:
            return [Comparator(">=", lo), Comparator("<", _lowest(ma, mi + 1, 0))]
        return [Comparator("=", lo)]
    if op in ("~", "~>"):
        hi = _lowest(ma + 1, 0, 0) if mi is None else _lowest(ma, mi + 1, 0)
        return [Comparator(">=", lo), Comparator("<", hi)]
    if op == "^":
        if ma > 0 or mi is None:
            hi = _lowest(ma + 1, 0, 0)
        elif mi > 0 or pa is None:
            hi = _lowest(0, mi + 1, 0)
        else:
            hi = _lowest(0, 0, pa + 1)
        return [Comparator(">=", lo), Comparator("<", hi)]
    if op == ">":
        if mi is None:
            return [Comparator(">=", _lowest(ma + 1, 0, 0))]
        if pa is None:
            return [Comparator(">=", _lowest(ma, mi + 1, 0))]
        return [Comparator(">", lo)]
    if op == "<=" and (mi is None or pa is None):
        hi = _lowest(ma + 1, 0, 0) if mi is None else _lowest(ma, mi + 1, 0)
        return [Comparator("<", hi)]
    if op == "<" and pa is None:
        return [Comparator("<", _lowest(ma, mi or 0, 0))]
    if op == "<":
        return [Comparator("<", lo)]
    if op == "<=":
        return [Comparator("<=", lo)]
    return [Comparator(">=", lo)] if op == ">=" else None


def parse_range(text: str) -> Range | None:
    """The comparator sets of an npm range, or None when it is not a semver range."""
    sets: Range = []
    for alternative in text.split("||"):
        part = re.sub(r"(<=|>=|<|>|=|\^|~>|~)\s+", r"\1", alternative.strip())
        hyphen = re.fullmatch(r"(\S+)\s+-\s+(\S+)", part)
        comparators: list[Comparator] = []
        if hyphen:
            low = _expand(">=", hyphen.group(1))
            high = _expand("<=", hyphen.group(2))
            if low is None or high is None:
                return None
            comparators = low + high
        else:
            for token in part.split():
                match = _COMPARATOR.match(token)
                expanded = _expand(match.group(1) or "", match.group(2)) if match else None
                if expanded is None:
                    return None
                comparators.extend(expanded)
        sets.append(comparators)
    return sets


def satisfies(version: SemVer, spec: str) -> bool:
    sets = parse_range(spec)
    if sets is None:
        return False
    for comparators in sets:
        if not all(c.test(version) for c in comparators):
            continue
        if not version.pre or any(
            c.version.pre and c.version.release == version.release and c.version.pre != ("0",)
            for c in comparators
        ):
            return True
    return False


def floor_of(spec: str) -> SemVer | None:
    """The lowest version the newest alternative of ``spec`` admits (None if unbounded)."""
    sets = parse_range(spec)
    if not sets:
        return None
    floors = [
        max((c.version for c in comparators if c.op in (">=", "=")), default=None)
        for comparators in sets
    ]
    known = [f for f in floors if f is not None]
    return max(known) if known else None
