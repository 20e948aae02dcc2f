"""The in-process task runner.

Bounded concurrency (N worker coroutines), urgent > normal > background and FIFO
within a priority, cancellation, a checkpoint at every node edge, and recovery:
at start-up, tasks left queued or mid-run are taken up again, the latter from
their last checkpoint. A shutdown leaves running tasks as they are in the store,
so the next start resumes them.

Time a task spends waiting for a person is added up in its checkpoint state
(``WAITED_KEY``, seconds), so that wall-clock guards count only the time it was worked
on. A constraint added while a task runs pauses it at its next step boundary, merges the
constraint into the task's constraints (so the tools enforce it from then on) and resumes
it at the same node. A node that fails because no model endpoint answered ends the task
as failed(transient), with the endpoints' failures in its message.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic import ValidationError
from sqlmodel import Session

from appliance.errors import ConfigError, Conflict, InvalidInput
from appliance.logs import task_id_var
from appliance.runner.graph import (
    REJECT,
    Done,
    Fail,
    Graph,
    Next,
    Node,
    Outcome,
    Pause,
    State,
    TaskInfo,
)
from appliance.runner.hub import EventHub
from appliance.states import (
    ALLOWED,
    RUNNING,
    TERMINAL,
    WAITING,
    FailureCategory,
    Priority,
    TaskStatus,
)
from appliance.store import audit
from appliance.store import tasks as task_store
from appliance.store.db import Database
from appliance.store.models import Task, TaskConstraints
from models.errors import ModelRequestError, ModelUnavailable

log = logging.getLogger(__name__)
T = TypeVar("T")
RUNNER_ACTOR = "system:runner"
#: where a waiting task's checkpoint keeps the actions it offers (action -> node)
RESUME_KEY = "_resume"
#: when a waiting task's wait began (ISO time), in its checkpoint
PAUSED_AT_KEY = "_paused_at"
#: seconds the task has waited for people so far, in its checkpoint state
WAITED_KEY = "_waited_s"
#: constraints that are rules the tools enforce (the rest are notes in words)
STRUCTURED_CONSTRAINTS = ("avoid_files", "max_files_changed")


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _add_wait(state: State, since: datetime | str | None, now: datetime) -> None:
    """Add the wait from ``since`` to ``now`` to the state's ``WAITED_KEY``."""
    if since is None:
        return
    start = datetime.fromisoformat(since) if isinstance(since, str) else since
    waited = max(0.0, (now - _aware(start)).total_seconds())
    state[WAITED_KEY] = float(state.get(WAITED_KEY, 0.0)) + waited


def _checkpointed(s: Session, task_id: str, node: str) -> None:
    """The event that goes with every checkpoint, in its transaction."""
    task_store.add_event(s, task_id=task_id, kind="checkpoint_reached", payload={"node": node})


def merge_constraints(current: Mapping[str, Any], added: Mapping[str, Any]) -> dict[str, Any]:
    """``current`` with the structured constraints of ``added``: paths to avoid are joined,
    the smaller ``max_files_changed`` wins. Raises InvalidInput for an unknown key or a
    value the task's constraints would refuse."""
    unknown = sorted(set(added) - set(STRUCTURED_CONSTRAINTS))
    if unknown:
        raise InvalidInput(
            f"Unknown constraint(s) {', '.join(unknown)}; a constraint added to a task is "
            f"text, optionally with {' or '.join(STRUCTURED_CONSTRAINTS)}."
        )
    merged = dict(current)
    avoid = added.get("avoid_files") or []
    if isinstance(avoid, str):
        avoid = [avoid]
    if avoid:
        merged["avoid_files"] = sorted({*merged.get("avoid_files", []), *avoid})
    if added.get("max_files_changed") is not None:
        limits = [added["max_files_changed"], merged.get("max_files_changed")]
        merged["max_files_changed"] = min(int(x) for x in limits if x is not None)
    try:
        TaskConstraints.model_validate(merged)
    except ValidationError as exc:
        problems = "; ".join(str(e["msg"]) for e in exc.errors())
        raise InvalidInput(f"The constraint is not valid: {problems}.") from None
    return merged


@dataclass
class _Context:
    """The NodeContext the runner hands to nodes."""

    runner: TaskRunner
    task: TaskInfo
    services: Mapping[str, Any]

    async def emit(self, kind: str, payload: dict[str, Any], *, key: str | None = None) -> None:
        def write() -> None:
            with self.runner.db.write() as s:
                task_store.add_event(s, task_id=self.task.id, kind=kind, payload=payload, key=key)

        await self.runner._db(write)
        self.runner.hub.notify(self.task.id)

    async def progress(self, fraction: float | None, step: str | None = None) -> None:
        def write() -> None:
            with self.runner.db.write() as s:
                task = task_store.get_task(s, self.task.id)
                task_store.set_progress(s, task, progress=fraction, step=step)
                task_store.add_event(
                    s,
                    task_id=self.task.id,
                    kind="progress",
                    payload={"progress": fraction, "step": step},
                )

        await self.runner._db(write)
        self.runner.hub.notify(self.task.id)


class TaskRunner:
    def __init__(
        self,
        *,
        db: Database,
        graph: Graph,
        hub: EventHub,
        concurrency: int,
        services: Mapping[str, Any] | None = None,
    ) -> None:
        self.db = db
        self.graph = graph
        self.hub = hub
        self.concurrency = concurrency
        self.services: Mapping[str, Any] = services or {}
        self._queue: asyncio.PriorityQueue[tuple[int, int, str]] | None = None
        self._order = itertools.count()
        self._workers: list[asyncio.Task[None]] = []
        self._running: dict[str, asyncio.Task[None]] = {}
        self._cancel_actor: dict[str, str] = {}
        #: running tasks that got a constraint: paused and resumed at their next step
        self._interrupts: set[str] = set()
        self._stopping = False
        self._loop: asyncio.AbstractEventLoop | None = None

    # --- lifecycle ------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.hub.bind(self._loop)
        self._queue = asyncio.PriorityQueue()
        self._stopping = False

        def pending() -> list[Task]:
            with self.db.session() as s:
                return task_store.runnable_tasks(s)

        found = await self._db(pending)
        # Tasks cut off mid-run go first (they were started before anything queued).
        for task in sorted(found, key=lambda t: (t.status == TaskStatus.queued, t.created_at)):
            self._enqueue(task.id, Priority(task.priority))
        if found:
            log.info("runner recovered %d task(s) from the store", len(found))
        self._workers = [
            asyncio.create_task(self._worker(), name=f"runner-worker-{i}")
            for i in range(self.concurrency)
        ]

    async def stop(self) -> None:
        """Stop workers; tasks mid-run stay in their status and resume at the next start."""
        self._stopping = True
        for task in list(self._running.values()):
            task.cancel()
        for worker in self._workers:
            worker.cancel()
        await asyncio.gather(*self._running.values(), *self._workers, return_exceptions=True)
        self._workers.clear()
        self._running.clear()

    # --- submission and cancellation --------------------------------------------------

    def submit(self, task_id: str, priority: Priority) -> None:
        """Queue a task that is in the store as ``queued``. Safe from any thread."""
        if self._loop is None:
            raise ConfigError("the runner is not started")
        self._loop.call_soon_threadsafe(self._enqueue, task_id, priority)

    def _enqueue(self, task_id: str, priority: Priority) -> None:
        assert self._queue is not None
        self._queue.put_nowait((priority.rank, next(self._order), task_id))

    async def cancel(self, task_id: str, *, actor: str) -> Task:
        """Cancel a task wherever it is: queued, waiting, or running."""

        task = await self._db(lambda: self._load(task_id))
        if task.status in TERMINAL:
            raise Conflict(f"Task {task_id} is already {task.status.value}.")
        running = self._running.get(task_id)
        if running is not None and not running.done():
            self._cancel_actor[task_id] = actor
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
            return await self._db(lambda: self._load(task_id))

        def cancel_in_store() -> Task:
            with self.db.write() as s:
                task = task_store.get_task(s, task_id)
                if task.status in TERMINAL:
                    raise Conflict(f"Task {task_id} is already {task.status.value}.")
                return task_store.transition(
                    s, task, TaskStatus.cancelled, actor=actor, details={"reason": "cancelled"}
                )

        task = await self._db(cancel_in_store)
        self.hub.notify(task_id)
        return task

    async def act(
        self, task_id: str, action: str, payload: Mapping[str, Any], *, actor: str
    ) -> Task:
        """A person's decision on a waiting task: answer a question, approve, request
        changes, reject, resume — whatever the node that paused it offered (see
        :class:`~appliance.runner.graph.Pause`). The task goes on at the node the action
        names, with ``state["human"]`` = the payload, the action and who took it."""

        def decide() -> tuple[Task, bool]:
            with self.db.write() as s:
                task = task_store.get_task(s, task_id)
                if task.status not in WAITING:
                    raise Conflict(
                        f"Task {task_id} is {task.status.value}, not waiting for a decision."
                    )
                checkpoint = task_store.latest_checkpoint(s, task_id)
                state = dict(checkpoint.state) if checkpoint else {}
                actions: dict[str, str] = dict(state.pop(RESUME_KEY, None) or {})
                if action not in actions:
                    offered = ", ".join(sorted(actions)) or "none"
                    raise Conflict(
                        f"Task {task_id} cannot take '{action}' now; it offers: {offered}."
                    )
                target = actions[action]
                details = {"action": action, **{k: v for k, v in payload.items() if k != "by"}}
                if target == REJECT:
                    task = task_store.transition(
                        s, task, TaskStatus.rejected, actor=actor, details=details
                    )
                    return task, False
                node = self.graph.node(target)
                state["human"] = {**payload, "action": action, "by": actor}
                _add_wait(state, state.pop(PAUSED_AT_KEY, None), datetime.now(UTC))
                task = task_store.transition(
                    s, task, node.status, actor=actor, node=node.name, state=state,
                    details=details,
                )  # fmt: skip
                _checkpointed(s, task_id, node.name)
                return task, True

        task, run = await self._db(decide)
        self.hub.notify(task_id)
        if run:
            self.submit(task_id, task.priority)
        return task

    async def follow_up(
        self,
        task_id: str,
        feedback: Mapping[str, Any],
        *,
        actor: str,
        node: str = "implementing",
        state_update: Mapping[str, Any] | None = None,
    ) -> Task:
        """Send a finished (``done``) task back to work: review comments on its published
        pull request. The task goes on at ``node`` from its last checkpoint, with
        ``state["human"]`` = the feedback as a ``request_changes`` decision by ``actor``,
        and ``state_update`` merged into the state."""

        def reopen() -> Task:
            with self.db.write() as s:
                task = task_store.get_task(s, task_id)
                if task.status != TaskStatus.done:
                    raise Conflict(
                        f"Task {task_id} is {task.status.value}; only a done task takes a "
                        "follow-up."
                    )
                checkpoint = task_store.latest_checkpoint(s, task_id)
                state = dict(checkpoint.state) if checkpoint else {}
                state.pop(RESUME_KEY, None)
                state.pop(PAUSED_AT_KEY, None)
                state.update(state_update or {})
                state["human"] = {**feedback, "action": "request_changes", "by": actor}
                _add_wait(state, task.finished_at, datetime.now(UTC))
                target = self.graph.node(node)
                task.finished_at = None
                task = task_store.transition(
                    s, task, target.status, actor=actor, node=target.name, state=state,
                    details={"action": "follow_up"},
                )  # fmt: skip
                _checkpointed(s, task_id, target.name)
                return task

        task = await self._db(reopen)
        self.hub.notify(task_id)
        self.submit(task_id, task.priority)
        return task

    async def add_note(
        self,
        task_id: str,
        text: str,
        *,
        actor: str,
        constraints: Mapping[str, Any] | None = None,
    ) -> Task:
        """A constraint added while the task lives: the text is kept in its constraints
        (``notes``, which the agent reads at every step); ``constraints`` (``avoid_files``,
        ``max_files_changed``) are merged into the task's rules, which the tools enforce.
        A running task is paused at its next step boundary, takes the constraint, and
        resumes at the same node; a waiting task takes it when it goes on."""
        added = {k: v for k, v in (constraints or {}).items() if v not in (None, [], "")}

        def write() -> Task:
            with self.db.write() as s:
                task = task_store.get_task(s, task_id)
                if task.status in TERMINAL:
                    raise Conflict(f"Task {task_id} is already {task.status.value}.")
                merged = merge_constraints(task.constraints, added)
                merged["notes"] = [*merged.get("notes", []), text]
                task.constraints = merged
                s.add(task)
                task_store.add_event(
                    s,
                    task_id=task_id,
                    kind="constraint_added",
                    payload={"text": text, **added},
                )
                audit.append(
                    s,
                    actor=actor,
                    action="task.constraint",
                    subject=f"task:{task_id}",
                    details={"text": text, **added},
                )
                return task

        task = await self._db(write)
        if task.status in RUNNING:
            self._interrupts.add(task_id)
        self.hub.notify(task_id)
        return task

    @property
    def running_ids(self) -> set[str]:
        return set(self._running)

    async def wait_idle(self) -> None:
        """Until the queue is empty and no task runs (for tests and shutdown)."""
        assert self._queue is not None
        await self._queue.join()

    # --- execution ------------------------------------------------------------------

    async def _db(self, fn: Callable[[], T]) -> T:
        return await asyncio.to_thread(fn)

    def _load(self, task_id: str) -> Task:
        with self.db.session() as s:
            return task_store.get_task(s, task_id)

    async def _worker(self) -> None:
        assert self._queue is not None
        while True:
            _rank, _n, task_id = await self._queue.get()
            try:
                job = asyncio.create_task(self._run(task_id), name=f"task-{task_id}")
                self._running[task_id] = job
                await asyncio.shield(job)
            except asyncio.CancelledError:
                if self._stopping:
                    raise
            finally:
                self._running.pop(task_id, None)
                self._cancel_actor.pop(task_id, None)
                self._queue.task_done()

    async def _run(self, task_id: str) -> None:
        token = task_id_var.set(task_id)
        try:
            await self._drive(task_id)
        except asyncio.CancelledError:
            if self._stopping:
                raise
            actor = self._cancel_actor.get(task_id, RUNNER_ACTOR)
            await self._db(lambda: self._finish(task_id, TaskStatus.cancelled, actor=actor))
            self.hub.notify(task_id)
        except Exception as exc:
            # The machinery itself broke (a bad graph, the store): never leave the task
            # hanging in a running status with nobody working on it.
            log.exception("runner failed on task %s", task_id)
            message = f"internal error in the runner: {type(exc).__name__}: {exc}"
            failure = (FailureCategory.internal, message)
            await self._db(
                lambda: self._finish(
                    task_id, TaskStatus.failed, actor=RUNNER_ACTOR, failure=failure
                )
            )
            self.hub.notify(task_id)
        finally:
            stopped = self.services.get("task_stopped")
            if stopped is not None:  # e.g. the task's sandbox container goes
                try:
                    await stopped(task_id)
                except Exception:
                    log.exception("clean-up after task %s failed", task_id)
            task_id_var.reset(token)

    async def _drive(self, task_id: str) -> None:
        entered = await self._db(lambda: self._enter(task_id))
        if entered is None:
            return
        info, node, state = entered
        self.hub.notify(task_id)
        ctx = _Context(self, info, self.services)
        try:
            while True:
                try:
                    outcome: Outcome = await node.run(ctx, state)
                except (ModelUnavailable, ModelRequestError) as exc:
                    # the client retried and fell back already: the models are down
                    log.warning("node %s on task %s: %s", node.name, task_id, exc.message)
                    outcome = Fail(
                        FailureCategory.transient,
                        f"{node.name}: the model could not be reached ({exc.message}); "
                        "check the model endpoints (`appliance doctor`) and retry the task",
                    )
                except Exception as exc:
                    log.exception("node %s failed on task %s", node.name, task_id)
                    outcome = Fail(
                        FailureCategory.internal, f"{node.name}: {type(exc).__name__}: {exc}"
                    )
                step = functools.partial(self._advance, task_id, node, outcome)
                next_node = await self._db(step)
                self.hub.notify(task_id)
                if next_node is None:
                    return
                node, state = next_node
                if task_id in self._interrupts:
                    self._interrupts.discard(task_id)
                    if not await self._take_constraint(ctx, node, state):
                        return
        finally:
            self._interrupts.discard(task_id)

    async def _take_constraint(self, ctx: _Context, node: Node, state: State) -> bool:
        """Pause the task at ``node`` (status ``paused``), take the constraints added to it,
        and resume it there. False when the task is no longer the runner's to go on with."""
        task_id = ctx.task.id
        if (
            TaskStatus.paused not in ALLOWED[node.status]
            or node.status not in ALLOWED[TaskStatus.paused]
        ):
            return True  # e.g. publishing: the note is kept, there is nothing to steer

        def pause() -> None:
            with self.db.write() as s:
                task = task_store.get_task(s, task_id)
                task_store.transition(
                    s, task, TaskStatus.paused, actor=RUNNER_ACTOR, node=node.name,
                    state={**state, RESUME_KEY: {"resume": node.name}},
                    details={"reason": "a constraint was added"},
                )  # fmt: skip
                _checkpointed(s, task_id, node.name)

        def resume() -> TaskInfo | None:
            with self.db.write() as s:
                task = task_store.get_task(s, task_id)
                if task.status != TaskStatus.paused:
                    return None  # cancelled or resumed by a person meanwhile
                task_store.transition(
                    s, task, node.status, actor=RUNNER_ACTOR, node=node.name, state=state,
                    details={"reason": "constraint taken"},
                )  # fmt: skip
                _checkpointed(s, task_id, node.name)
                task_store.add_event(
                    s,
                    task_id=task_id,
                    kind="resumed",
                    payload={"step": node.name, "reason": "constraint taken"},
                )
                return _info(task)

        await self._db(pause)
        self.hub.notify(task_id)
        info = await self._db(resume)
        self.hub.notify(task_id)
        if info is None:
            return False
        ctx.task = info
        return True

    def _enter(self, task_id: str) -> tuple[TaskInfo, Node, State] | None:
        """Start a queued task at the graph's start, or resume one from its checkpoint."""
        with self.db.write() as s:
            task = s.get(Task, task_id)
            if task is None or task.status not in ({TaskStatus.queued} | RUNNING):
                return None  # cancelled or finished while it waited
            info = _info(task)
            if task.status == TaskStatus.queued:
                node = self.graph.node(self.graph.start)
                task_store.transition(
                    s, task, node.status, actor=RUNNER_ACTOR, node=node.name, state={}
                )
                _checkpointed(s, task_id, node.name)
                return info, node, {}
            checkpoint = task_store.latest_checkpoint(s, task_id)
            node = self.graph.node(checkpoint.node if checkpoint else self.graph.start)
            state = dict(checkpoint.state) if checkpoint else {}
            task_store.add_event(s, task_id=task_id, kind="resumed", payload={"step": node.name})
            audit.append(
                s,
                actor=RUNNER_ACTOR,
                action="task.resume",
                subject=f"task:{task_id}",
                details={"node": node.name},
            )
            log.info("resuming task %s at node %s", task_id, node.name)
            return info, node, state

    def _advance(self, task_id: str, node: Node, outcome: Outcome) -> tuple[Node, State] | None:
        """Record a node's outcome; return the node to run next, if any."""
        with self.db.write() as s:
            task = task_store.get_task(s, task_id)
            match outcome:
                case Next(node=name, state=state):
                    nxt = self.graph.node(name)
                    if nxt.status == task.status:
                        task.step = nxt.name
                        task_store.save_checkpoint(s, task_id=task_id, node=nxt.name, state=state)
                        _checkpointed(s, task_id, nxt.name)
                        task_store.add_event(
                            s, task_id=task_id, kind="step", payload={"step": nxt.name}
                        )
                        audit.append(
                            s,
                            actor=RUNNER_ACTOR,
                            action="task.step",
                            subject=f"task:{task_id}",
                            details={"from": node.name, "to": nxt.name},
                        )
                        s.add(task)
                    else:
                        task_store.transition(
                            s, task, nxt.status, actor=RUNNER_ACTOR, node=nxt.name, state=state
                        )
                        _checkpointed(s, task_id, nxt.name)
                    return nxt, state
                case Done(summary=summary):
                    task_store.transition(
                        s, task, TaskStatus.done, actor=RUNNER_ACTOR, summary=summary
                    )
                case Fail(category=category, message=message):
                    task_store.transition(
                        s, task, TaskStatus.failed, actor=RUNNER_ACTOR, failure=(category, message)
                    )
                case Pause(reason=reason, state=state, wait=wait, resume=resume):
                    actions = dict(resume) or {"resume": node.name}
                    task_store.transition(
                        s,
                        task,
                        wait,
                        actor=RUNNER_ACTOR,
                        node=node.name,
                        state={
                            **state,
                            RESUME_KEY: actions,
                            PAUSED_AT_KEY: datetime.now(UTC).isoformat(),
                        },
                        details={"reason": reason},
                    )
                    _checkpointed(s, task_id, node.name)
                    task_store.add_event(
                        s,
                        task_id=task_id,
                        kind="waiting",
                        payload={
                            "status": wait.value,
                            "reason": reason,
                            "question": outcome.question,
                            "actions": sorted(actions),
                        },
                    )
            return None

    def _finish(
        self,
        task_id: str,
        status: TaskStatus,
        *,
        actor: str,
        failure: tuple[FailureCategory, str] | None = None,
    ) -> None:
        with self.db.write() as s:
            task = task_store.get_task(s, task_id)
            if task.status not in TERMINAL:
                task_store.transition(s, task, status, actor=actor, failure=failure)


def _info(task: Task) -> TaskInfo:
    return TaskInfo(
        id=task.id,
        repository_id=task.repository_id,
        prompt=task.prompt,
        constraints=dict(task.constraints),
        priority=task.priority.value,
        created_by=task.created_by,
    )
