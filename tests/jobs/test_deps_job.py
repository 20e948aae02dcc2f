"""The deps job end to end: a real git remote, the local package index over HTTP, tests
run by a subprocess runner, and a repair runner that edits the worktree as the agent
would. Both runners are test implementations of the job's Protocols."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from appliance.config import Settings
from appliance.jobs import CommandResult, JobServices, RepairOutcome, runs
from appliance.store.db import Database
from appliance.store.models import JobOutcome, JobRun, Repository
from tests.deps.conftest import IndexServer
from tests.gitrepos import Upstream, make_upstream, plain_git
from tests.jobs.conftest import Factory, add_repo

# attrs 23.1.0 -> 23.2.0 (minor; 24.1.0 is a day old, held back), flask 2.3.3 -> 3.0.3 (major)
REQUIREMENTS = "attrs==23.1.0\nflask==2.3.3\n"
CHECK = """\
import pathlib, sys
pins = dict(l.split("==") for l in pathlib.Path("requirements.txt").read_text().split())
compat = pathlib.Path("compat.py")
fixed = compat.exists() and "FLASK3 = True" in compat.read_text()
if pins["flask"].startswith("3.") and not fixed:
    sys.exit("FAILED test_app: flask 3 removed flask.escape; compat.py must say FLASK3 = True")
print("2 passed")
"""


class SubprocessRunner:
    """Runs the command with subprocess in the worktree (the appliance uses the sandbox)."""

    def __init__(self) -> None:
        self.commands: list[list[str]] = []

    async def run(self, worktree: Path, argv: Sequence[str], *, time_limit: float) -> CommandResult:
        argv = [sys.executable if a == "python" else a for a in argv]
        self.commands.append(list(argv))
        done = await asyncio.to_thread(
            subprocess.run, argv, cwd=worktree, capture_output=True, text=True, timeout=time_limit
        )
        return CommandResult(done.returncode, done.stdout + done.stderr)


class EditingRepairRunner:
    """Stands in for the agent pipeline: reads the failure, edits the worktree."""

    def __init__(self, fix: bool) -> None:
        self.fix = fix
        self.requests: list[tuple[str, str]] = []

    async def submit_repair(
        self, repository: Repository, branch: str, worktree: Path, failure_output: str
    ) -> str:
        self.requests.append((branch, failure_output))
        if self.fix and "FLASK3 = True" in failure_output:
            (worktree / "compat.py").write_text("FLASK3 = True\n")
        return f"task-{len(self.requests)}"

    async def wait(self, task_id: str) -> RepairOutcome:
        if self.fix:
            return RepairOutcome(True, "set FLASK3 in compat.py")
        return RepairOutcome(False, "flask 3 needs changes I could not make")


@pytest.fixture
def upstream(tmp_path: Path) -> Upstream:
    up = make_upstream(tmp_path)
    up.commit({"requirements.txt": REQUIREMENTS, "check.py": CHECK}, "app")
    return up


def remote_branches(upstream: Upstream) -> dict[str, str]:
    out = plain_git(upstream.bare, "for-each-ref", "--format=%(refname:short) %(subject)")
    return dict(line.split(" ", 1) for line in out.splitlines())


@pytest.fixture
def settings(settings: Settings, index_server: IndexServer) -> Settings:
    settings.deps.python_index_url = f"{index_server.url}/simple"
    return settings


async def run_deps(
    make_scheduler: Factory, db: Database, upstream: Upstream, fix: bool
) -> EditingRepairRunner:
    add_repo(db, "shop", upstream.url, test_command="python check.py")
    repair = EditingRepairRunner(fix)
    scheduler = make_scheduler(services=JobServices(sandbox=SubprocessRunner(), repair=repair))
    await scheduler.start(process=False)
    await scheduler.run_now("deps:shop", actor="test", wait=True)
    return repair


def the_run(db: Database) -> JobRun:
    with db.session() as session:
        [run] = runs.list_runs(session, job_id="deps:shop")
    return run


async def test_green_bumps_are_published_and_a_red_one_is_repaired_then_published(
    make_scheduler: Factory, db: Database, upstream: Upstream
) -> None:
    repair = await run_deps(make_scheduler, db, upstream, fix=True)
    run = the_run(db)
    assert run.outcome == JobOutcome.ok, run.message
    groups = {g["branch"]: g for g in run.details["groups"]}
    assert {g["status"] for g in groups.values()} == {"published"}
    assert run.task_ids == ["task-1"]  # only the major bump needed the repair
    [(_, failure)] = repair.requests
    assert "flask 3 removed flask.escape" in failure

    branches = remote_branches(upstream)
    bumps = {b: s for b, s in branches.items() if b.startswith("deps/")}
    assert set(bumps) == set(groups)
    major = next(b for b in bumps if "flask" in b)
    files = plain_git(upstream.bare, "show", f"{major}:requirements.txt")
    assert "flask==3.0.3" in files
    assert plain_git(upstream.bare, "show", f"{major}:compat.py") == "FLASK3 = True"
    minor = next(b for b in bumps if b != major)
    assert "attrs==23.2.0" in plain_git(upstream.bare, "show", f"{minor}:requirements.txt")
    # Scratch branches and worktrees are gone; main is untouched.
    assert not [b for b in branches if b.startswith("appliance-jobs/")]
    assert "flask==2.3.3" in plain_git(upstream.bare, "show", "main:requirements.txt")


async def test_a_bump_still_red_after_the_repair_is_published_needing_a_human(
    make_scheduler: Factory, db: Database, upstream: Upstream
) -> None:
    await run_deps(make_scheduler, db, upstream, fix=False)
    run = the_run(db)
    groups = {g["branch"]: g for g in run.details["groups"]}
    major = next(g for b, g in groups.items() if "flask" in b)
    assert major["status"] == "needs-human"
    assert "flask 3 needs changes I could not make" in major["diagnosis"]
    assert "FAILED test_app" in major["diagnosis"]
    assert any(g["status"] == "published" for g in groups.values())
