from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from appliance.runner import EventHub, Graph, Outcome, TaskRunner
from appliance.states import Priority, TaskStatus
from appliance.store import audit
from appliance.store import tasks as task_store
from appliance.store.db import Database
from appliance.store.models import Repository, TaskCreate
from tests import graphs


def _create(db: Database, prompt: str, priority: Priority = Priority.normal) -> str:
    with db.write() as s:
        repo = s.get(Repository, 1)
        if repo is None:
            s.add(Repository(id=1, name="demo", clone_url="/tmp/demo.git"))
            s.flush()
        task = task_store.create_task(
            s,
            task_in=TaskCreate(repository_id=1, prompt=prompt, priority=priority),
            created_by="dana",
            max_prompt_chars=1000,
        )
    return task.id


def _status(db: Database, task_id: str) -> TaskStatus:
    with db.session() as s:
        return task_store.get_task(s, task_id).status


async def _until(predicate: object, within: float = 5.0) -> None:
    assert callable(predicate)
    deadline = asyncio.get_running_loop().time() + within
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


@pytest.fixture
async def gated(db: Database) -> AsyncIterator[tuple[graphs.Gated, TaskRunner]]:
    node = graphs.Gated()
    runner = TaskRunner(db=db, graph=graphs.gated_graph(node), hub=EventHub(), concurrency=1)
    await runner.start()
    yield node, runner
    await runner.stop()


async def test_scripted_graph_runs_to_done_with_checkpoints(db: Database) -> None:
    runner = TaskRunner(db=db, graph=graphs.scripted_graph(), hub=EventHub(), concurrency=2)
    await runner.start()
    task_id = _create(db, "do it")
    runner.submit(task_id, Priority.normal)
    await _until(lambda: _status(db, task_id) == TaskStatus.done)
    await runner.stop()
    with db.session() as s:
        events = task_store.events_after(s, task_id, 0)
        task = task_store.get_task(s, task_id)
        statuses = [e.payload["status"] for e in events if e.kind == "status"]
        assert statuses == ["queued", "preparing", "planning", "implementing", "done"]
        assert [e.seq for e in events] == list(range(1, len(events) + 1))
        assert task.summary == "finished after implementing"
        assert task.finished_at is not None
        assert task_store.latest_checkpoint(s, task_id).node == "implementing"  # type: ignore[union-attr]
        assert audit.verify(s).ok


async def test_priority_order_urgent_then_normal_then_background_fifo_within(
    db: Database, gated: tuple[graphs.Gated, TaskRunner]
) -> None:
    node, runner = gated
    first = _create(db, "block first")
    runner.submit(first, Priority.normal)
    await _until(lambda: node.started == [first])
    later = [
        (_create(db, "bg1", Priority.background), Priority.background),
        (_create(db, "n1", Priority.normal), Priority.normal),
        (_create(db, "u1", Priority.urgent), Priority.urgent),
        (_create(db, "n2", Priority.normal), Priority.normal),
        (_create(db, "u2", Priority.urgent), Priority.urgent),
    ]
    for task_id, priority in later:
        runner.submit(task_id, priority)
    await asyncio.sleep(0.05)
    node.gate(first).set()
    await _until(lambda: len(node.started) == 6)
    ids = {tid: i for i, (tid, _) in enumerate(later)}
    order = [ids[t] for t in node.started[1:]]
    assert order == [2, 4, 1, 3, 0]  # u1, u2, n1, n2, bg1


async def test_concurrency_is_bounded(db: Database) -> None:
    node = graphs.Gated()
    runner = TaskRunner(db=db, graph=graphs.gated_graph(node), hub=EventHub(), concurrency=2)
    await runner.start()
    ids = [_create(db, f"block {i}") for i in range(5)]
    for task_id in ids:
        runner.submit(task_id, Priority.normal)
    await _until(lambda: len(node.started) == 2)
    await asyncio.sleep(0.1)
    assert len(node.started) == 2
    assert node.running == 2
    for task_id in ids:
        node.gate(task_id).set()
    await _until(lambda: all(_status(db, t) == TaskStatus.done for t in ids))
    assert node.max_running == 2
    await runner.stop()


async def test_cancel_running_task(db: Database, gated: tuple[graphs.Gated, TaskRunner]) -> None:
    node, runner = gated
    task_id = _create(db, "block me")
    runner.submit(task_id, Priority.normal)
    await _until(lambda: node.started == [task_id])
    task = await runner.cancel(task_id, actor="dana")
    assert task.status == TaskStatus.cancelled
    with db.session() as s:
        records = audit.read(s, subject=f"task:{task_id}", action="task.transition")
        assert (records[-1].actor, records[-1].details["to"]) == ("dana", "cancelled")
        assert audit.verify(s).ok
    assert task_id not in runner.running_ids


async def test_cancel_queued_task_never_starts(
    db: Database, gated: tuple[graphs.Gated, TaskRunner]
) -> None:
    node, runner = gated
    blocker = _create(db, "block")
    waiting = _create(db, "queued one")
    runner.submit(blocker, Priority.normal)
    runner.submit(waiting, Priority.normal)
    await _until(lambda: node.started == [blocker])
    assert (await runner.cancel(waiting, actor="dana")).status == TaskStatus.cancelled
    node.gate(blocker).set()
    await _until(lambda: _status(db, blocker) == TaskStatus.done)
    await runner.wait_idle()
    assert waiting not in node.started
    with db.session() as s:
        statuses = [e.payload["status"] for e in task_store.events_after(s, waiting, 0)]
    assert statuses == ["queued", "cancelled"]


async def test_cancel_finished_task_is_a_conflict(db: Database) -> None:
    from appliance.errors import Conflict

    runner = TaskRunner(db=db, graph=graphs.scripted_graph(), hub=EventHub(), concurrency=1)
    await runner.start()
    task_id = _create(db, "quick")
    runner.submit(task_id, Priority.normal)
    await _until(lambda: _status(db, task_id) == TaskStatus.done)
    with pytest.raises(Conflict, match="already done"):
        await runner.cancel(task_id, actor="dana")
    await runner.stop()


async def test_node_exception_fails_task_with_message(db: Database) -> None:
    class Boom:
        name = "preparing"
        status = TaskStatus.preparing

        async def run(self, ctx: object, state: object) -> Outcome:
            raise RuntimeError("disk on fire")

    runner = TaskRunner(
        db=db,
        graph=Graph(start="preparing", nodes={"preparing": Boom()}),
        hub=EventHub(),
        concurrency=1,
    )
    await runner.start()
    task_id = _create(db, "x")
    runner.submit(task_id, Priority.normal)
    await _until(lambda: _status(db, task_id) == TaskStatus.failed)
    await runner.stop()
    with db.session() as s:
        task = task_store.get_task(s, task_id)
    assert task.failure_category == "internal"
    assert "disk on fire" in (task.failure_message or "")


async def test_stop_leaves_running_task_to_resume_from_checkpoint(db: Database) -> None:
    node = graphs.Gated()
    runner = TaskRunner(db=db, graph=graphs.gated_graph(node), hub=EventHub(), concurrency=1)
    await runner.start()
    task_id = _create(db, "block")
    runner.submit(task_id, Priority.normal)
    await _until(lambda: node.started == [task_id])
    await runner.stop()
    assert _status(db, task_id) == TaskStatus.preparing  # not cancelled: owned by the next start

    runner2 = TaskRunner(db=db, graph=graphs.gated_graph(node), hub=EventHub(), concurrency=1)
    node.gate(task_id).set()
    await runner2.start()
    await _until(lambda: _status(db, task_id) == TaskStatus.done)
    await runner2.stop()
    with db.session() as s:
        kinds = [e.kind for e in task_store.events_after(s, task_id, 0)]
    assert kinds.count("resumed") == 1
    assert node.started == [task_id, task_id]


async def test_graph_breaking_the_state_machine_fails_the_task_instead_of_hanging(
    db: Database,
) -> None:
    runner = TaskRunner(db=db, graph=graphs.broken_graph(), hub=EventHub(), concurrency=1)
    await runner.start()
    task_id = _create(db, "x")
    runner.submit(task_id, Priority.normal)
    await _until(lambda: _status(db, task_id) == TaskStatus.failed)
    await runner.stop()
    with db.session() as s:
        task = task_store.get_task(s, task_id)
    assert "cannot become publishing" in (task.failure_message or "")


async def test_every_checkpoint_has_its_checkpoint_reached_event(db: Database) -> None:
    runner = TaskRunner(db=db, graph=graphs.scripted_graph(), hub=EventHub(), concurrency=1)
    await runner.start()
    task_id = _create(db, "do it")
    runner.submit(task_id, Priority.normal)
    await _until(lambda: _status(db, task_id) == TaskStatus.done)
    await runner.stop()
    with db.session() as s:
        events = task_store.events_after(s, task_id, 0)
    reached = [e.payload["node"] for e in events if e.kind == "checkpoint_reached"]
    assert reached == ["preparing", "planning", "implementing"]
    # each right after the status change that wrote its checkpoint
    kinds = [e.kind for e in events]
    for at in (i for i, k in enumerate(kinds) if k == "checkpoint_reached"):
        assert kinds[at - 1] == "status"


def test_added_constraints_join_the_task_rules_and_bad_ones_are_refused() -> None:
    from appliance.errors import InvalidInput
    from appliance.runner.runner import merge_constraints

    current = {"avoid_files": ["docs/*"], "max_files_changed": 5, "notes": ["be brief"]}
    merged = merge_constraints(current, {"avoid_files": "calc/stats.py", "max_files_changed": 9})
    assert merged == {"avoid_files": ["calc/stats.py", "docs/*"], "max_files_changed": 5,
                      "notes": ["be brief"]}  # fmt: skip
    assert merge_constraints(current, {"max_files_changed": 2})["max_files_changed"] == 2
    with pytest.raises(InvalidInput, match="relative to the repository root"):
        merge_constraints(current, {"avoid_files": ["../etc/passwd"]})
    with pytest.raises(InvalidInput, match="Unknown constraint"):
        merge_constraints(current, {"protected": ["x"]})
