"""The dry-run report behind ``appliance deps check``."""

from __future__ import annotations

import json
from pathlib import Path

from appliance.deps import BumpPolicy, NpmRegistry, PythonIndex, check
from appliance.deps.apply import lockfile_command
from tests.deps.conftest import NOW


def test_report_lists_bumps_and_why_others_were_skipped(
    tmp_path: Path, python_index: PythonIndex, npm_registry: NpmRegistry
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "requirements.txt").write_text(
        "requests==2.31.0\nflask==2.3.3\nattrs==23.2.0\npydantic-core==2.18.0\n-e .\n"
    )
    (repo / "package.json").write_text(json.dumps({"dependencies": {"react": "^18.2.0"}}))
    before = {p: p.read_bytes() for p in repo.iterdir()}
    policy = BumpPolicy(
        update_types=frozenset({"patch", "minor"}), ignore=("react",), min_release_age_days=14
    )
    report = check(repo, policy, {"python": python_index, "npm": npm_registry}, now=NOW)
    assert "Bump requests from 2.31.0 to 2.32.3  [deps/python-non-major, new PR]" in report
    assert "requests 2.31.0 -> 2.32.3 (minor) requirements.txt:1 '==2.31.0' -> '==2.32.3'" in report
    assert "Update type not allowed: 2\n  - flask '==2.3.3'" in report
    assert "3.0.3: major updates are not allowed" in report
    assert "24.1.0: major updates are not allowed" in report  # attrs: calendar versions
    assert "Too young (minimum release age): 1\n  - pydantic-core" in report
    assert "2.20.1: released 10.0 days ago, the policy wants 14" in report
    assert "Ignored by the policy: 1\n  - react" in report
    assert "requirements.txt:5 '-e .': editable install: ignored" in report
    assert {p: p.read_bytes() for p in repo.iterdir()} == before  # a dry run


def test_report_without_an_index_for_an_ecosystem(
    tmp_path: Path, python_index: PythonIndex
) -> None:
    (tmp_path / "package.json").write_text('{"dependencies": {"react": "^18.2.0"}}')
    report = check(tmp_path, BumpPolicy(), {"python": python_index}, now=NOW)
    assert "No package index configured: 1\n  - react" in report
    assert "Planned bump PRs: 0" in report


def test_lockfile_commands_follow_the_lockfile_present(tmp_path: Path) -> None:
    assert lockfile_command(tmp_path, "python") is None
    (tmp_path / "uv.lock").write_text("")
    assert lockfile_command(tmp_path, "python", update=["flask"]) == [
        "uv",
        "lock",
        "--upgrade-package",
        "flask",
    ]
    assert lockfile_command(tmp_path, "npm") is None
