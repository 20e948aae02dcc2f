"""Spec rewriting per range strategy, for PEP 440 specifiers and npm ranges."""

from __future__ import annotations

import pytest
from packaging.version import Version

from appliance.deps.npm_ranges import rewrite_range
from appliance.deps.pep440 import RangeStrategy, rewrite_specifier
from appliance.deps.semver import SemVer, floor_of, satisfies


@pytest.mark.parametrize(
    ("spec", "target", "strategy", "expected"),
    [
        (">=1.2", "1.4.1", "bump", ">=1.4"),
        (">=1.2", "1.2.5", "bump", ">=1.2.5"),  # the trimmed bound would not move
        (">= 1.2, < 2", "1.4.1", "bump", ">= 1.4, < 2"),
        ("~=1.4.2", "1.6.0", "bump", "~=1.6.0"),
        ("==1.4.*", "1.6.2", "bump", "==1.6.*"),
        (">=1.2,<2", "2.1.0", "widen", ">=1.2,<3"),
        (">=1.2,<2.0", "2.1.0", "widen", ">=1.2,<3.0"),
        (">=0.4,<0.5", "0.7.1", "widen", ">=0.4,<0.8"),
        ("~=1.4", "2.1", "widen", ">=1.4,<3"),
        ("==1.4.0", "1.5.0", "widen", "==1.5.0"),
        (">=1.2,<2", "1.9", "widen", ">=1.2,<2"),
        (">=1.2,!=1.5.0", "1.5.0", "bump", None),
        (">=1.2", "1.5.0", "pin", "==1.5.0"),
    ],
)
def test_pep440_rewrites(spec: str, target: str, strategy: RangeStrategy, expected: str) -> None:
    assert rewrite_specifier(spec, Version(target), strategy) == expected


@pytest.mark.parametrize(
    ("spec", "target", "strategy", "expected"),
    [
        ("^1.2.3", "1.4.0", "bump", "^1.4.0"),
        ("^1.2.3", "2.1.3", "bump", "^2.1.3"),
        ("~1.2", "1.4.0", "bump", "~1.4"),
        ("1.x", "2.1.3", "bump", "2.x"),
        (">=1.2.3 <2", "2.1.3", "bump", ">=2.1.3 <3"),
        ("^1.2.3", "2.1.3", "widen", "^1.2.3 || ^2.1.3"),
        (">=1.2.3 <2", "2.1.3", "widen", ">=1.2.3 <3"),
        ("1.2.3", "2.1.3", "widen", "2.1.3"),
        ("^1.2.3", "1.4.0", "widen", "^1.2.3"),
        ("^1.2.3", "1.4.0", "pin", "1.4.0"),
        ("1.2.3 - 1.4", "2.0.0", "bump", None),
    ],
)
def test_npm_rewrites(spec: str, target: str, strategy: RangeStrategy, expected: str) -> None:
    version = SemVer.parse(target)
    assert version is not None
    assert rewrite_range(spec, version, strategy) == expected


@pytest.mark.parametrize(
    ("version", "spec", "expected"),
    [
        ("0.2.9", "^0.2.3", True),
        ("0.3.0", "^0.2.3", False),  # caret below 1.0 stops at the minor
        ("0.0.4", "^0.0.3", False),
        ("2.0.0-beta.1", "^1.2.3", False),
        ("1.3.0-beta.1", "^1.3.0-alpha", True),
        ("1.3.0-beta.1", ">=1.2.0", False),  # pre-releases only where a range names them
        ("1.9.9", "1.2 - 1.9", True),
        ("2.0.0", "1.x || >=2.0.0 <2.1", True),
    ],
)
def test_npm_satisfies(version: str, spec: str, expected: bool) -> None:
    parsed = SemVer.parse(version)
    assert parsed is not None
    assert satisfies(parsed, spec) is expected


def test_npm_floor_and_ordering() -> None:
    assert str(floor_of("^1.2.3 || ^2.0.1")) == "2.0.1"
    assert floor_of("*") is None
    ordered = sorted(
        SemVer.parse(v) or SemVer(0, 0, 0) for v in ["1.0.0", "1.0.0-rc.1", "1.0.0-alpha"]
    )
    assert [str(v) for v in ordered] == ["1.0.0-alpha", "1.0.0-rc.1", "1.0.0"]
