"""The per-repository bump policy, :class:`BumpPolicy`.

* ``update_types``: which updates may be proposed (``patch``, ``minor``, ``major``).
* ``grouping``: ``non_major_together`` puts all patch and minor bumps of one ecosystem in
  one group (one PR) and each major alone; ``none`` gives every package its own group.
* ``range_strategy``: how a spec is rewritten — ``pin`` writes the exact version,
  ``bump`` raises the lower bound keeping the operator (``^1.2.3`` → ``^1.4.0``,
  ``>=1.2`` → ``>=1.4``), ``widen`` keeps the lower bound and widens what excludes the
  new version (``<2`` → ``<3``). Details in :mod:`appliance.deps.pep440` and
  :mod:`appliance.deps.npm_ranges`.
* ``min_release_age_days``: a version uploaded less than this long ago is not proposed
  (a pulled or compromised release usually disappears within days); with an age set, a
  version whose upload time the index does not give is not proposed either (skipped as
  too young, "release date unknown"). Go proxies date every version (``.info``); Maven
  repositories only through the ``Last-Modified`` of a version's POM, so behind a mirror
  that sends none, Maven bumps need ``min_release_age_days = 0``.
* ``ignore``: package names (never bumped) or ``name@major`` patterns (``django@5``:
  no 5.x version is proposed; other versions still are). Names compare as the
  ecosystem's index does (PEP 503 normalisation for Python).
* ``max_open_prs``: at most this many bump PRs open at once, existing ones included.
"""

from __future__ import annotations

from typing import Literal

from packaging.utils import canonicalize_name
from pydantic import BaseModel, ConfigDict, Field, field_validator

from appliance.deps.model import Ecosystem
from appliance.deps.pep440 import RangeStrategy
from appliance.deps.versions import UpdateType

Grouping = Literal["none", "non_major_together"]


def _split_pattern(pattern: str) -> tuple[str, int | None]:
    at = pattern.rfind("@")
    if at > 0:  # "@scope/pkg" starts with "@": that one is part of the name
        name, major = pattern[:at], pattern[at + 1 :]
        if not major.isdigit():
            raise ValueError(f"ignore pattern {pattern!r}: write name@MAJOR, e.g. django@5")
        return name, int(major)
    return pattern, None


class BumpPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    update_types: frozenset[UpdateType] = Field(
        default=frozenset({"patch", "minor", "major"}),
        description="Which updates may be proposed: patch, minor, major.",
    )
    grouping: Grouping = Field(
        default="non_major_together",
        description="non_major_together: patch+minor bumps in one PR per ecosystem, "
        "each major alone; none: one PR per package.",
    )
    range_strategy: RangeStrategy = Field(
        default="bump", description="pin (==X), bump (raise the lower bound) or widen."
    )
    min_release_age_days: float = Field(
        default=3,
        ge=0,
        description="Versions uploaded less than this many days ago are not proposed.",
    )
    ignore: tuple[str, ...] = Field(
        default=(), description="Package names, or name@MAJOR to skip one major series."
    )
    max_open_prs: int = Field(default=5, ge=0, description="Most bump PRs open at once.")

    @field_validator("ignore")
    @classmethod
    def _valid_patterns(cls, patterns: tuple[str, ...]) -> tuple[str, ...]:
        for pattern in patterns:
            _split_pattern(pattern)
        return patterns

    def _patterns(self, ecosystem: Ecosystem) -> list[tuple[str, int | None]]:
        out = []
        for pattern in self.ignore:
            name, major = _split_pattern(pattern)
            out.append((canonicalize_name(name) if ecosystem == "python" else name, major))
        return out

    def ignores_package(self, ecosystem: Ecosystem, key: str) -> bool:
        return any(n == key and m is None for n, m in self._patterns(ecosystem))

    def ignores_version(self, ecosystem: Ecosystem, key: str, major: int) -> str | None:
        """The pattern that rules out this major series of ``key``, if any."""
        for pattern, (name, ignored) in zip(self.ignore, self._patterns(ecosystem), strict=True):
            if name == key and ignored == major:
                return pattern
        return None
