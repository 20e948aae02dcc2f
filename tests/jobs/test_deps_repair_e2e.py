"""The deps job with its real repair step: the whole appliance (runner, pipeline, Podman
sandbox) against a scripted model. The major bump breaks the tests; the job hands the
failure to the pipeline, which repairs the code in the job's worktree; the job tests again
and publishes the branch green, with the bump and the repair, linked to the task."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.config import load_settings
from appliance.core import Appliance
from appliance.jobs import runs
from appliance.jobs.repair import ACTOR, PipelineRepairRunner
from appliance.pipeline import pipeline_graph
from appliance.states import TaskStatus
from appliance.store import tasks as task_store
from appliance.store.models import JobOutcome
from tests.deps.conftest import IndexServer
from tests.gitrepos import Upstream, make_upstream, plain_git
from tests.jobs.conftest import START, Clock, add_repo
from tests.jobs.test_deps_job import CHECK, REQUIREMENTS, remote_branches
from tests.models.scripted_server import ScriptedServer
from tests.pipeline.scenario import reply

pytestmark = pytest.mark.slow

UNDERSTANDING = {
    "intent": "bugfix",
    "summary": "flask 3 removed flask.escape; the code must declare it runs on flask 3.",
    "ambiguous": False,
    "search_terms": ["FLASK3", "compat"],
}
PLAN = {
    "steps": [{"title": "Declare flask 3 support in compat.py", "files": ["compat.py"]}],
    "risks": ["code still using flask.escape"],
    "test_strategy": "run the tests; test_app must pass with flask 3.0.3",
}
READ = {"thought": "See what the test checks.", "tool": "read_file", "args": {"path": "check.py"}}
CREATE = {
    "thought": "The test wants compat.py to say FLASK3 = True once flask 3 is pinned.",
    "tool": "create_file",
    "args": {"path": "compat.py", "content": "FLASK3 = True\n"},
}
TEST = {"thought": "Check the repair.", "tool": "run_tests", "args": {}}
FINISH = {
    "thought": "",
    "tool": "finish",
    "args": {"summary": "compat.py declares flask 3 support; the tests pass on flask 3.0.3."},
}
PR = {
    "title": "Adapt to flask 3",
    "summary": "flask 3 removed flask.escape; compat.py now declares flask 3 support.",
    "changes": [{"path": "compat.py", "change": "FLASK3 = True"}],
    "risks": "none known",
    "rollback": "revert the commit",
}


@pytest.fixture
def upstream(tmp_path: Path) -> Upstream:
    up = make_upstream(tmp_path, "shop")
    up.commit({"requirements.txt": REQUIREMENTS, "check.py": CHECK}, "app")
    return up


@pytest.fixture
def model() -> Iterator[ScriptedServer]:
    with ScriptedServer(models=["coder"]) as server:
        yield server


async def test_a_red_major_bump_is_repaired_by_the_pipeline_and_published_green(
    upstream: Upstream, index_server: IndexServer, model: ScriptedServer
) -> None:
    model.add(*(reply(r) for r in (UNDERSTANDING, PLAN, READ, CREATE, TEST, FINISH, PR)))
    settings = load_settings(
        models={"endpoints": [{"base_url": model.url, "model": "coder", "context_length": 8192}]},
        index={"embedder": "none"},
        jobs={"enabled": False, "timezone": "UTC"},
        deps={"python_index_url": f"{index_server.url}/simple"},
    )
    appliance = Appliance(settings, graph=pipeline_graph())
    started = time.monotonic()
    await appliance.start()
    try:
        assert isinstance(appliance.jobs.services.repair, PipelineRepairRunner)
        add_repo(appliance.db, "shop", upstream.url, test_command="python3 check.py")
        appliance.jobs.clock = Clock(START)  # the index's release dates are around START
        await appliance.jobs.start(process=False)
        await appliance.jobs.run_now("deps:shop", actor="test", wait=True)
    finally:
        await appliance.stop()
    elapsed = time.monotonic() - started

    with appliance.db.session() as session:
        [run] = runs.list_runs(session, job_id="deps:shop")
        assert run.outcome == JobOutcome.ok, run.message
        groups = {g["branch"]: g for g in run.details["groups"]}
        assert {g["status"] for g in groups.values()} == {"published"}, groups
        [task_id] = run.task_ids  # only the major bump needed a repair
        task = task_store.get_task(session, task_id)
        assert task.created_by == ACTOR
        # closed: the job published the change
        assert task.status == TaskStatus.rejected, (task.failure_category, task.failure_message)
        assert "breaks the tests" in task.prompt
        assert "flask 3 removed flask.escape" in task.prompt
        assert "requirements*.txt" in task.constraints["avoid_files"]
        repair = task.constraints["repair"]
        assert repair["branch"].startswith("appliance-jobs/")
        kinds = {e.kind for e in task_store.events_after(session, task_id, 0, limit=1000)}
    for kind in ("plan", "tool_call", "file_modified", "iteration", "review_ready"):
        assert kind in kinds, kind

    branches = remote_branches(upstream)
    major = next(b for b in branches if b.startswith("deps/") and "flask" in b)
    assert "flask==3.0.3" in plain_git(upstream.bare, "show", f"{major}:requirements.txt")
    assert plain_git(upstream.bare, "show", f"{major}:compat.py") == "FLASK3 = True"
    log = plain_git(upstream.bare, "log", "--format=%s", f"main..{major}").splitlines()
    assert len(log) == 2, log  # the bump, then the repair
    assert log[0].startswith("Repair the tests after"), log
    minor = next(b for b in branches if b.startswith("deps/") and b != major)
    assert "attrs==23.2.0" in plain_git(upstream.bare, "show", f"{minor}:requirements.txt")
    assert not [b for b in branches if b.startswith(("appliance-jobs/", "appliance/"))]
    assert "flask==2.3.3" in plain_git(upstream.bare, "show", "main:requirements.txt")
    assert elapsed < 90, f"took {elapsed:.0f} s"
