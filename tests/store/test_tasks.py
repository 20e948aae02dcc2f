from __future__ import annotations

import pytest

from appliance.errors import InvalidInput, InvalidTransition
from appliance.states import TaskStatus
from appliance.store import audit
from appliance.store import tasks as task_store
from appliance.store.db import Database
from appliance.store.models import Repository, Task, TaskCreate


def _repo(db: Database) -> int:
    with db.write() as s:
        repo = Repository(name="demo", clone_url="/tmp/demo.git")
        s.add(repo)
        s.flush()
        assert repo.id is not None
        return repo.id


def _task(db: Database, repo_id: int, prompt: str = "p") -> Task:
    with db.write() as s:
        return task_store.create_task(
            s,
            task_in=TaskCreate(repository_id=repo_id, prompt=prompt),
            created_by="dana",
            max_prompt_chars=100,
        )


def test_create_task_records_event_and_audit(db: Database) -> None:
    repo_id = _repo(db)
    task = _task(db, repo_id, "add a flag")
    with db.session() as s:
        events = task_store.events_after(s, task.id, 0)
        records = audit.read(s, subject=f"task:{task.id}")
    assert [(e.seq, e.kind, e.payload["status"]) for e in events] == [(1, "status", "queued")]
    assert [(r.actor, r.action) for r in records] == [("dana", "task.create")]


def test_over_long_prompt_is_refused_with_the_limit(db: Database) -> None:
    repo_id = _repo(db)
    with db.write() as s, pytest.raises(InvalidInput, match="limit is 10") as err:
        task_store.create_task(
            s,
            task_in=TaskCreate(repository_id=repo_id, prompt="x" * 11),
            created_by="dana",
            max_prompt_chars=10,
        )
    assert err.value.field == "prompt"


def test_illegal_transition_changes_nothing(db: Database) -> None:
    repo_id = _repo(db)
    task = _task(db, repo_id)
    with pytest.raises(InvalidTransition, match="queued; it cannot become done"), db.write() as s:
        task_store.transition(s, task_store.get_task(s, task.id), TaskStatus.done, actor="x")
    with db.session() as s:
        assert task_store.get_task(s, task.id).status == TaskStatus.queued
        assert len(task_store.events_after(s, task.id, 0)) == 1


def test_keyed_event_is_written_once(db: Database) -> None:
    repo_id = _repo(db)
    task = _task(db, repo_id)
    for _ in range(3):
        with db.write() as s:
            task_store.add_event(s, task_id=task.id, kind="log", payload={}, key="branch-made")
    with db.session() as s:
        kinds = [e.kind for e in task_store.events_after(s, task.id, 0)]
    assert kinds == ["status", "log"]


def test_transition_writes_checkpoint_event_and_audit_together(db: Database) -> None:
    repo_id = _repo(db)
    task = _task(db, repo_id)
    with db.write() as s:
        task_store.transition(
            s,
            task_store.get_task(s, task.id),
            TaskStatus.preparing,
            actor="system:runner",
            node="preparing",
            state={"k": 1},
        )
    with db.session() as s:
        cp = task_store.latest_checkpoint(s, task.id)
        assert cp is not None
        assert (cp.node, cp.state) == ("preparing", {"k": 1})
        t = task_store.get_task(s, task.id)
        assert t.status == TaskStatus.preparing
        assert t.started_at is not None
        assert audit.read(s, action="task.transition")[0].details["to"] == "preparing"
