"""Retention never deletes the evidence of a quarantined task (secrets found in its diff):
its worktree, events and checkpoints stay however old it is, and the job's report lists
it as kept with the reason; other old tasks are cleaned up as usual."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlmodel import select

from appliance.config import Settings
from appliance.jobs import runs
from appliance.repos import Worktrees
from appliance.review.quarantine import quarantine
from appliance.states import TaskStatus
from appliance.store import tasks as task_store
from appliance.store.db import Database
from appliance.store.models import JobOutcome, JobRun, TaskCreate, TaskEvent
from tests.gitrepos import make_upstream
from tests.jobs.conftest import Clock, Factory, add_repo


def last_run(db: Database, job_id: str) -> JobRun:
    with db.session() as session:
        return runs.list_runs(session, job_id=job_id, limit=1)[0]


async def test_retention_keeps_a_quarantined_worktree_and_says_why(
    make_scheduler: Factory, db: Database, settings: Settings, tmp_path: Path, clock: Clock
) -> None:
    up = make_upstream(tmp_path)
    up.commit({"a.txt": "a\n"}, "one")
    shop = add_repo(db, "shop", up.url)
    scheduler = make_scheduler()
    await scheduler.start(process=False)
    mirror = scheduler.index.mirrors.ensure("shop", up.url)
    with db.write() as session:
        tasks = {}
        for name in ("leaky", "plain"):
            task = task_store.create_task(
                session,
                task_in=TaskCreate(repository_id=shop.id, prompt=name),  # type: ignore[arg-type]
                created_by="dana",
                max_prompt_chars=1000,
            )
            task.status = TaskStatus.failed
            task.finished_at = clock.now - timedelta(days=90)
            session.add(task)
            task_store.add_event(session, task_id=task.id, kind="error", payload={"n": name})
            tasks[name] = task.id
    worktrees: Worktrees = scheduler.worktrees
    for name, task_id in tasks.items():
        worktrees.create(mirror, task_id=task_id, branch=f"appliance/t-{name}", base="main")
    quarantine(
        settings.data_dir,
        tasks["leaky"],
        "secret scan: 1 finding(s) (1 critical); blocking\n- critical aws-access-key a.py:1",
    )

    await scheduler.run_now("retention", actor="t", wait=True)

    run = last_run(db, "retention")
    assert run.outcome == JobOutcome.ok, run.message
    assert [w.task_id for w in worktrees.list()] == [tasks["leaky"]]
    assert worktrees.get(tasks["leaky"]).path.is_dir()
    assert run.details["kept"] == {
        tasks["leaky"]: "quarantined: secret scan: 1 finding(s) (1 critical); blocking"
    }
    assert f"kept 1 quarantined task(s): {tasks['leaky']}" in run.message
    assert run.details["worktrees"] == 1
    with db.session() as session:
        left = {e.task_id for e in session.exec(select(TaskEvent))}
    assert tasks["leaky"] in left
    assert tasks["plain"] not in left
