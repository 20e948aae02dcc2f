"""Planning against the real index: policy, grouping, keys and PR text."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from appliance.deps import BumpPolicy, PythonIndex, plan, plan_bumps
from appliance.deps.manifests import scan_worktree
from appliance.deps.model import Dependency
from tests.deps.conftest import NOW, IndexServer

REQUIREMENTS = "requests==2.31.0\nflask==2.3.3\nattrs==23.1.0\npydantic-core==2.18.0\n"


def _deps(tmp_path: Path, text: str = REQUIREMENTS) -> list[Dependency]:
    repo = tmp_path / "repo"
    repo.mkdir(exist_ok=True)
    (repo / "requirements.txt").write_text(text)
    return scan_worktree(repo).dependencies


def _targets(deps: list[Dependency], index: PythonIndex, policy: BumpPolicy) -> dict[str, str]:
    return {b.dep.name: b.to_version for g in plan_bumps(deps, index, policy, NOW) for b in g.bumps}


def test_yanked_and_pre_releases_are_not_proposed(
    tmp_path: Path, python_index: PythonIndex
) -> None:
    deps = _deps(tmp_path, "requests==2.30.0\n")
    assert _targets(deps, python_index, BumpPolicy()) == {"requests": "2.32.3"}
    young = BumpPolicy(min_release_age_days=40)  # 2.32.3 is 33 days old; 2.32.0 is yanked
    assert _targets(deps, python_index, young) == {"requests": "2.31.0"}


def test_pre_releases_are_proposed_to_a_pre_release(
    tmp_path: Path, python_index: PythonIndex
) -> None:
    deps = _deps(tmp_path, "requests==3.0.0a1\n")
    assert _targets(deps, python_index, BumpPolicy()) == {"requests": "3.0.0b1"}


def test_update_types_hold_back_majors(tmp_path: Path, python_index: PythonIndex) -> None:
    deps = _deps(tmp_path)
    policy = BumpPolicy(update_types=frozenset({"patch", "minor"}))
    result = plan(deps, python_index, policy, NOW)
    targets = {b.dep.name: b for g in result.groups for b in g.bumps}
    assert targets["requests"].to_version == "2.32.3"
    assert "flask" not in targets  # 3.x is major, 2.3.3 is the newest 2.x
    (flask,) = [s for s in result.skipped if s.dep and s.dep.name == "flask"]
    assert flask.kind == "update_type"
    assert "3.0.3: major updates are not allowed" in flask.reason


def test_zero_x_minor_counts_as_major(tmp_path: Path, python_index: PythonIndex) -> None:
    deps = _deps(tmp_path, "httpx==0.26.0\n")
    assert _targets(deps, python_index, BumpPolicy(update_types=frozenset({"minor"}))) == {}
    (group,) = plan_bumps(deps, python_index, BumpPolicy(), NOW)
    assert group.key == "python-httpx-major"
    assert group.bumps[0].update_type == "major"


def test_minimum_age_uses_the_injected_clock(tmp_path: Path, python_index: PythonIndex) -> None:
    deps = _deps(tmp_path, "attrs==23.2.0\n")  # 24.1.0 was uploaded one day before NOW
    policy = BumpPolicy(min_release_age_days=3)
    result = plan(deps, python_index, policy, NOW)
    assert result.groups == []
    assert result.skipped[0].kind == "too_young"
    assert "24.1.0: released 1.0 days ago" in result.skipped[0].reason
    later = plan_bumps(deps, python_index, policy, NOW + timedelta(days=2))
    assert [b.to_version for g in later for b in g.bumps] == ["24.1.0"]


def test_held_back_newest_is_named_in_the_body(tmp_path: Path, python_index: PythonIndex) -> None:
    deps = _deps(tmp_path, "attrs==23.1.0\n")
    (group,) = plan_bumps(deps, python_index, BumpPolicy(), NOW)
    assert group.bumps[0].to_version == "23.2.0"
    assert "attrs 24.1.0: released 1.0 days ago" in group.body


def test_ignore_names_and_major_series(tmp_path: Path, python_index: PythonIndex) -> None:
    deps = _deps(tmp_path)
    policy = BumpPolicy(ignore=("Requests", "flask@3"))
    result = plan(deps, python_index, policy, NOW)
    assert set(_targets(deps, python_index, policy)) == {"attrs", "pydantic-core"}
    kinds = {s.dep.name: (s.kind, s.reason) for s in result.skipped if s.dep}
    assert kinds["requests"][0] == "ignored"
    assert kinds["flask"] == ("ignored", "3.0.3: ignored by flask@3")


def test_ignore_pattern_must_name_a_major() -> None:
    with pytest.raises(ValidationError, match="name@MAJOR"):
        BumpPolicy(ignore=("django@latest",))


def test_grouping_and_titles(tmp_path: Path, python_index: PythonIndex) -> None:
    deps = _deps(tmp_path)
    groups = plan_bumps(deps, python_index, BumpPolicy(), NOW)
    assert [(g.key, g.title) for g in groups] == [
        ("python-non-major", "Bump 3 non-major Python dependencies"),
        ("python-flask-major", "Bump flask from 2.3.3 to 3.0.3"),
    ]
    body = groups[0].body
    assert "| requests | 2.31.0 | 2.32.3 | minor |" in body
    assert "`==2.18.0` → `==2.20.1`" in body
    assert f"key=python-non-major fingerprint={groups[0].fingerprint}" in body
    single = plan_bumps(deps, python_index, BumpPolicy(grouping="none"), NOW)
    assert [g.title for g in single][:1] == ["Bump attrs from 23.1.0 to 23.2.0"]
    assert len(single) == 4
    assert all(len(g.bumps) == 1 for g in single)


def test_release_notes_links_from_the_index(tmp_path: Path, index_server: IndexServer) -> None:
    deps = _deps(tmp_path, "flask==3.0.0\n")
    with PythonIndex(f"{index_server.url}/simple", json_url=f"{index_server.url}/pypi") as index:
        (group,) = plan_bumps(deps, index, BumpPolicy(), NOW)
    assert "- flask: https://example.org/flask/changes" in group.body


@pytest.mark.parametrize(
    ("strategy", "line", "expected"),
    [
        ("pin", "requests>=2.30,<3", "==2.32.3"),
        ("bump", "requests>=2.30,<3", ">=2.32,<3"),
        ("widen", "requests>=2.30,<2.32", ">=2.30,<2.33"),
        ("widen", "flask>=2.3,<3", ">=2.3,<4"),
        ("bump", "flask~=2.3", "~=3.0"),
    ],
)
def test_range_strategies(
    tmp_path: Path, python_index: PythonIndex, strategy: str, line: str, expected: str
) -> None:
    deps = _deps(tmp_path, line + "\n")
    policy = BumpPolicy.model_validate({"range_strategy": strategy})
    (group,) = plan_bumps(deps, python_index, policy, NOW)
    assert group.bumps[0].new_spec == expected


def test_widen_leaves_an_admitting_range_alone(tmp_path: Path, python_index: PythonIndex) -> None:
    deps = _deps(tmp_path, "requests>=2.30,<3\n")
    result = plan(deps, python_index, BumpPolicy(range_strategy="widen"), NOW)
    assert result.groups == []
    assert result.skipped[0].kind == "already_admitted"


def test_keys_are_stable_and_newer_bumps_supersede(
    tmp_path: Path, python_index: PythonIndex
) -> None:
    deps = _deps(tmp_path, "requests==2.30.0\n")
    slow = BumpPolicy(min_release_age_days=40)
    (first,) = plan_bumps(deps, python_index, slow, NOW)
    (again,) = plan_bumps(deps, python_index, slow, NOW)
    assert (first.key, first.fingerprint) == (again.key, again.fingerprint)
    # a week later 2.32.3 is old enough: same package set, higher version → same branch
    (newer,) = plan_bumps(deps, python_index, slow, NOW + timedelta(days=7))
    assert newer.key == first.key
    assert newer.branch == "deps/python-non-major"
    assert newer.fingerprint != first.fingerprint
    assert [b.to_version for b in (first.bumps[0], newer.bumps[0])] == ["2.31.0", "2.32.3"]
    updated = plan(
        deps, python_index, slow, NOW + timedelta(days=7), open_prs={first.key: first.fingerprint}
    )
    assert [g.action for g in updated.groups] == ["update"]
    unchanged = plan(deps, python_index, slow, NOW, open_prs={first.key: first.fingerprint})
    assert [g.action for g in unchanged.groups] == ["unchanged"]


def test_max_open_prs(tmp_path: Path, python_index: PythonIndex) -> None:
    deps = _deps(tmp_path, "flask==2.3.3\npytest==7.4.4\nhttpx==0.26.0\nrequests==2.31.0\n")
    policy = BumpPolicy(max_open_prs=2)
    result = plan(deps, python_index, policy, NOW)
    assert [g.key for g in result.groups] == ["python-non-major", "python-flask-major"]
    assert sorted(s.group.key for s in result.skipped if s.group) == [
        "python-httpx-major",
        "python-pytest-major",
    ]
    # an open PR that is planned again is updated even with no room; obsolete ones are named
    open_prs = {"python-pytest-major": "old", "python-left-pad-major": "old"}
    result = plan(deps, python_index, policy, NOW, open_prs=open_prs)
    assert [(g.key, g.action) for g in result.groups] == [("python-pytest-major", "update")]
    assert result.obsolete == ["python-left-pad-major"]
