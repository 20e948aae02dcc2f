"""reindex, retention and branch clean-up against real git repositories and real data."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlmodel import select

from appliance.jobs import runs
from appliance.repos import Worktrees
from appliance.states import TaskStatus
from appliance.store import tasks as task_store
from appliance.store.db import Database
from appliance.store.models import AuditRecord, JobOutcome, JobRun, Task, TaskCreate, TaskEvent
from tests.gitrepos import make_upstream, plain_git
from tests.jobs.conftest import Clock, Factory, add_repo


def last_run(db: Database, job_id: str) -> JobRun:
    with db.session() as session:
        return runs.list_runs(session, job_id=job_id, limit=1)[0]


async def test_reindex_indexes_when_the_default_branch_moved_and_not_otherwise(
    make_scheduler: Factory, db: Database, tmp_path: Path, clock: Clock
) -> None:
    up = make_upstream(tmp_path)
    first = up.commit({"app.py": "def hello():\n    return 1\n"}, "one")
    add_repo(db, "shop", up.url)
    scheduler = make_scheduler()
    await scheduler.start(process=False)

    await scheduler.run_now("reindex:shop", actor="t", wait=True)
    run = last_run(db, "reindex:shop")
    assert run.outcome == JobOutcome.ok, run.message
    assert run.message.startswith(f"indexed main at {first[:12]}")
    assert scheduler.index.status("shop").commit == first  # type: ignore[union-attr]

    clock.advance(minutes=1)
    await scheduler.run_now("reindex:shop", actor="t", wait=True)
    assert "has not moved" in last_run(db, "reindex:shop").message

    second = up.commit({"app.py": "def hello():\n    return 2\n"}, "two")
    clock.advance(minutes=1)
    await scheduler.run_now("reindex:shop", actor="t", wait=True)
    assert last_run(db, "reindex:shop").message.startswith(f"indexed main at {second[:12]}")


async def test_retention_purges_old_task_data_and_deleted_repositories_never_audit(
    make_scheduler: Factory, db: Database, tmp_path: Path, clock: Clock
) -> None:
    up = make_upstream(tmp_path)
    up.commit({"a.txt": "a\n"}, "one")
    shop = add_repo(db, "shop", up.url)
    gone = add_repo(db, "gone", up.url)
    scheduler = make_scheduler()
    await scheduler.start(process=False)
    mirror = scheduler.index.mirrors.ensure("shop", up.url)
    scheduler.index.mirrors.ensure("gone", up.url)
    scheduler.index.refresh("gone", up.url, "main", with_vectors=False)
    with db.write() as session:
        old = task_store.create_task(
            session,
            task_in=TaskCreate(repository_id=shop.id, prompt="old"),  # type: ignore[arg-type]
            created_by="dana",
            max_prompt_chars=1000,
        )
        new = task_store.create_task(
            session,
            task_in=TaskCreate(repository_id=shop.id, prompt="new"),  # type: ignore[arg-type]
            created_by="dana",
            max_prompt_chars=1000,
        )
        for task, age in ((old, 40), (new, 5)):
            task.status = TaskStatus.done
            task.finished_at = clock.now - timedelta(days=age)
            session.add(task)
        session.delete(session.get(type(gone), gone.id))
    worktrees: Worktrees = scheduler.worktrees
    for task in (old, new):
        worktrees.create(mirror, task_id=task.id, branch=f"appliance/t-{task.prompt}", base="main")

    await scheduler.run_now("retention", actor="t", wait=True)

    run = last_run(db, "retention")
    assert run.outcome == JobOutcome.ok, run.message
    assert [w.task_id for w in worktrees.list()] == [new.id]
    with db.session() as session:
        left = {e.task_id for e in session.exec(select(TaskEvent))}
        audited = list(session.exec(select(AuditRecord)))
    assert left == {new.id}
    assert any(r.action == "task.create" and r.subject == f"task:{old.id}" for r in audited)
    assert run.details["repositories"] == ["gone"]
    assert not scheduler.index.exists("gone")
    assert not scheduler.index.mirrors.path("gone").exists()
    assert scheduler.index.mirrors.path("shop").exists()


async def test_branch_cleanup_deletes_mirror_branches_of_finished_tasks(
    make_scheduler: Factory, db: Database, tmp_path: Path
) -> None:
    up = make_upstream(tmp_path)
    up.commit({"a.txt": "a\n"}, "one")
    shop = add_repo(db, "shop", up.url)
    scheduler = make_scheduler()
    await scheduler.start(process=False)
    mirror = scheduler.index.mirrors.ensure("shop", up.url)
    ids = {}
    with db.write() as session:
        for name, status in (("done", TaskStatus.done), ("live", TaskStatus.implementing)):
            task = task_store.create_task(
                session,
                task_in=TaskCreate(repository_id=shop.id, prompt=name),  # type: ignore[arg-type]
                created_by="dana",
                max_prompt_chars=1000,
            )
            task.status, task.branch = status, f"appliance/20240701-0000-{name}"
            ids[name] = task.id
    for name, task_id in ids.items():
        scheduler.worktrees.create(
            mirror, task_id=task_id, branch=f"appliance/20240701-0000-{name}", base="main"
        )
    scheduler.worktrees.remove(ids["done"])

    await scheduler.run_now("branch_cleanup:shop", actor="t", wait=True)

    run = last_run(db, "branch_cleanup:shop")
    assert run.details["deleted"] == ["appliance/20240701-0000-done"]
    assert not mirror.has_branch("appliance/20240701-0000-done")
    assert mirror.has_branch("appliance/20240701-0000-live")
    refspecs = plain_git(mirror.path, "config", "--get-all", "remote.origin.fetch")
    assert "^refs/heads/appliance/20240701-0000-done" not in refspecs
    assert "^refs/heads/appliance/20240701-0000-live" in refspecs
    with db.session() as session:
        assert session.get(Task, ids["done"]) is not None
