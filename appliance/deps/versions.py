"""One view of versions across ecosystems, and how an update is classified.

:class:`Ver` wraps a PEP 440 :class:`~packaging.version.Version` or an npm
:class:`~appliance.deps.semver.SemVer` behind the three things the planner needs: order,
the numeric release, and whether it is a pre-release. :data:`RULES` maps an ecosystem to
its parser and its spec rewriter.

Update types (:func:`classify`) compare release numbers: a different first number is
``major``, a different second number ``minor``, anything else ``patch`` (including
post-releases and a pre-release to its final). **A 0.x minor bump counts as major**
(0.4 → 0.5): below 1.0, semver and npm's caret treat the second number as the breaking
one, and most Python projects do too. A 0.0.x change stays a patch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from packaging.version import Version

from appliance.deps import npm_ranges, pep440
from appliance.deps.model import Ecosystem
from appliance.deps.pep440 import RangeStrategy
from appliance.deps.semver import SemVer, satisfies

UpdateType = Literal["patch", "minor", "major"]


@dataclass(frozen=True, order=False)
class Ver:
    text: str
    release: tuple[int, ...]
    prerelease: bool
    native: Version | SemVer = field(compare=False)

    def __lt__(self, other: Ver) -> bool:
        a, b = self.native, other.native
        if isinstance(a, Version) and isinstance(b, Version):
            return a < b
        if isinstance(a, SemVer) and isinstance(b, SemVer):
            return a < b
        raise TypeError("versions of different ecosystems do not compare")

    def __gt__(self, other: Ver) -> bool:
        return other < self

    def __le__(self, other: Ver) -> bool:
        return not other < self

    def __ge__(self, other: Ver) -> bool:
        return not self < other


def parse_python(text: str) -> Ver | None:
    version = pep440.parse_version(text)
    if version is None:
        return None
    return Ver(str(version), version.release, version.is_prerelease, version)


def parse_npm(text: str) -> Ver | None:
    version = SemVer.parse(text)
    if version is None:
        return None
    return Ver(str(version), version.release, version.is_prerelease, version)


def _rewrite_python(spec: str, target: Ver, strategy: RangeStrategy) -> str | None:
    assert isinstance(target.native, Version)
    return pep440.rewrite_specifier(spec, target.native, strategy)


def _rewrite_npm(spec: str, target: Ver, strategy: RangeStrategy) -> str | None:
    assert isinstance(target.native, SemVer)
    return npm_ranges.rewrite_range(spec, target.native, strategy)


def _admits_python(spec: str, version: Ver) -> bool:
    return isinstance(version.native, Version) and pep440.admits(spec, version.native)


def _admits_npm(spec: str, version: Ver) -> bool:
    return isinstance(version.native, SemVer) and satisfies(version.native, spec)


@dataclass(frozen=True)
class Rules:
    parse: Callable[[str], Ver | None]
    rewrite: Callable[[str, Ver, RangeStrategy], str | None]
    admits: Callable[[str, Ver], bool]


RULES: dict[Ecosystem, Rules] = {
    "python": Rules(parse_python, _rewrite_python, _admits_python),
    "npm": Rules(parse_npm, _rewrite_npm, _admits_npm),
}


def classify(old: Ver, new: Ver) -> UpdateType:
    a = (*old.release, 0, 0)
    b = (*new.release, 0, 0)
    if a[0] != b[0] or (a[0] == 0 and a[1] != b[1]):
        return "major"
    if a[1] != b[1]:
        return "minor"
    return "patch"
