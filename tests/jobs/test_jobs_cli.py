"""`appliance jobs` and `appliance deps check`, run as a user would: in a subprocess."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from appliance.store.db import Database
from tests.cli.test_cli import cli
from tests.deps.conftest import IndexServer
from tests.gitrepos import make_upstream, plain_git
from tests.jobs.conftest import add_repo

pytestmark = pytest.mark.slow


def test_jobs_list_pause_resume_and_run_here(db: Database) -> None:
    add_repo(db, "shop")
    listed = cli("jobs", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    jobs = {j["id"]: j for j in json.loads(listed.stdout)}
    assert {"retention", "deps:shop", "reindex:shop", "branch_cleanup:shop"} == set(jobs)
    assert jobs["retention"]["last_outcome"] is None

    assert cli("jobs", "pause", "retention").stdout == "retention: paused\n"
    assert "retention" in next(
        line for line in cli("jobs", "list").stdout.splitlines() if " paused " in line
    )
    refused = cli("jobs", "run", "retention")
    assert refused.returncode == 1
    assert "resume it first" in refused.stderr

    ran = cli("jobs", "run", "retention", "--here")
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.startswith("retention: ok: removed 0 worktree(s)")
    assert "resumed, next run" in cli("jobs", "resume", "retention").stdout
    after = {j["id"]: j for j in json.loads(cli("jobs", "list", "--json").stdout)}
    assert after["retention"]["last_outcome"] == "ok"
    assert after["retention"]["paused"] is False

    queued = cli("jobs", "run", "deps:shop")
    assert "the running appliance starts it at its next poll" in queued.stdout
    missing = cli("jobs", "pause", "deps:nope")
    assert missing.returncode == 1
    assert "No scheduled job has id 'deps:nope'" in missing.stderr


def test_deps_check_reports_the_planned_bumps_without_changing_anything(
    db: Database, tmp_path: Path, index_server: IndexServer
) -> None:
    up = make_upstream(tmp_path)
    head = up.commit({"requirements.txt": "flask==2.3.3\nrequests>=2.30\n"}, "app")
    add_repo(db, "shop", up.url)
    env = {"APPLIANCE_DEPS__PYTHON_INDEX_URL": f"{index_server.url}/simple"}
    result = cli("deps", "check", "shop", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Dependency check of shop\n")
    assert "flask 2.3.3 -> 3.0.3 (major)" in result.stdout
    assert "[deps/" in result.stdout
    assert plain_git(up.bare, "rev-parse", "main") == head
    assert plain_git(up.bare, "for-each-ref", "refs/heads/deps/") == ""
    unknown = cli("deps", "check", "nope")
    assert unknown.returncode == 1
    assert "no repository named 'nope'" in unknown.stderr
