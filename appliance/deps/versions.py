"""One view of versions across ecosystems, and how an update is classified.

:class:`Ver` wraps a PEP 440 :class:`~packaging.version.Version`, an npm or Go
:class:`~appliance.deps.semver.SemVer` or a
:class:`~appliance.deps.maven_versions.MavenVersion` behind the three things the planner
needs: order, the numeric release, and whether it is a pre-release. :data:`RULES` maps an
ecosystem to its parser, its spec rewriter and, where the ecosystem has one, a rule that
refuses a candidate outright (a Go major version lives at another module path; a Maven
version of another variant, ``-android`` for ``-jre``, is in effect another artifact).

Go and Maven specs are one exact version (Go's is a minimum that MVS may raise, Maven's
a soft requirement), so every range strategy writes the target as it is; Maven ranges
are frozen by the reader.

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

from appliance.deps import go_versions, npm_ranges, pep440
from appliance.deps.maven_versions import MavenVersion
from appliance.deps.model import Ecosystem
from appliance.deps.pep440 import RangeStrategy
from appliance.deps.semver import SemVer, satisfies

UpdateType = Literal["patch", "minor", "major"]


@dataclass(frozen=True, order=False)
class Ver:
    text: str
    release: tuple[int, ...]
    prerelease: bool
    native: Version | SemVer | MavenVersion = field(compare=False)

    def __lt__(self, other: Ver) -> bool:
        a, b = self.native, other.native
        if isinstance(a, Version) and isinstance(b, Version):
            return a < b
        if isinstance(a, SemVer) and isinstance(b, SemVer):
            return a < b
        if isinstance(a, MavenVersion) and isinstance(b, MavenVersion):
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


def parse_go(text: str) -> Ver | None:
    """A Go version, its text kept as written (``v`` prefix, ``+incompatible``)."""
    version = go_versions.parse(text)
    if version is None:
        return None
    return Ver(text, version.release, version.is_prerelease, version)


def parse_maven(text: str) -> Ver | None:
    version = MavenVersion.parse(text)
    if version is None or version.is_snapshot:
        return None
    return Ver(version.text, version.release, version.is_prerelease, version)


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


def _exact(spec: str, target: Ver, strategy: RangeStrategy) -> str:
    return target.text


def _admits_go(spec: str, version: Ver) -> bool:
    current = parse_go(spec)
    return current is not None and current.native == version.native


def _admits_maven(spec: str, version: Ver) -> bool:
    current = parse_maven(spec)
    return current is not None and current.native == version.native


def _refuse_go(key: str, current: Ver, candidate: Ver) -> str | None:
    return go_versions.refusal(key, current.text, candidate.text)


def _refuse_maven(key: str, current: Ver, candidate: Ver) -> str | None:
    old, new = current.native, candidate.native
    if not isinstance(old, MavenVersion) or not isinstance(new, MavenVersion):
        return None
    if old.variant == new.variant:
        return None
    theirs = "-".join(new.variant) or "none"
    ours = "-".join(old.variant) or "none"
    return f"another variant of the artifact ({theirs} instead of {ours})"


@dataclass(frozen=True)
class Rules:
    parse: Callable[[str], Ver | None]
    rewrite: Callable[[str, Ver, RangeStrategy], str | None]
    admits: Callable[[str, Ver], bool]
    # (key, current, candidate) → why the candidate can never be had by a version edit
    refuse: Callable[[str, Ver, Ver], str | None] | None = None


RULES: dict[Ecosystem, Rules] = {
    "python": Rules(parse_python, _rewrite_python, _admits_python),
    "npm": Rules(parse_npm, _rewrite_npm, _admits_npm),
    "go": Rules(parse_go, _exact, _admits_go, _refuse_go),
    "maven": Rules(parse_maven, _exact, _admits_maven, _refuse_maven),
}


def classify(old: Ver, new: Ver) -> UpdateType:
    a = (*old.release, 0, 0)
    b = (*new.release, 0, 0)
    if a[0] != b[0] or (a[0] == 0 and a[1] != b[1]):
        return "major"
    if a[1] != b[1]:
        return "minor"
    return "patch"
