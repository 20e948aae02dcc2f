"""Tasks, their events and checkpoints.

Every function works inside the caller's transaction (a ``Database.write()``
session for the ones that write), so a transition, its checkpoint, its event and
its audit record commit together or not at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from appliance.errors import Forbidden, InvalidInput, InvalidTransition, NotFound
from appliance.states import (
    RUNNING,
    TERMINAL,
    FailureCategory,
    Priority,
    TaskStatus,
    can_transition,
)
from appliance.store import audit
from appliance.store.models import (
    Checkpoint,
    Repository,
    Task,
    TaskCreate,
    TaskEvent,
    as_utc,
    utcnow,
)


def create_task(
    session: Session, *, task_in: TaskCreate, created_by: str, max_prompt_chars: int
) -> Task:
    if len(task_in.prompt) > max_prompt_chars:
        raise InvalidInput(
            f"The request is {len(task_in.prompt):,} characters long; the limit is "
            f"{max_prompt_chars:,}. Shorten it, or attach the long part (a log, a trace) "
            "as a file in the repository and refer to it.",
            field="prompt",
        )
    if session.get(Repository, task_in.repository_id) is None:
        raise InvalidInput(
            f"No repository has id {task_in.repository_id}; list them with "
            "GET /api/v1/repositories.",
            field="repository_id",
        )
    task = Task(
        repository_id=task_in.repository_id,
        prompt=task_in.prompt,
        constraints=task_in.constraints.model_dump(),
        priority=task_in.priority,
        created_by=created_by,
    )
    session.add(task)
    session.flush()
    add_event(session, task_id=task.id, kind="status", payload={"status": "queued"})
    audit.append(
        session,
        actor=created_by,
        action="task.create",
        subject=f"task:{task.id}",
        details={
            "repository_id": task.repository_id,
            "priority": task.priority.value,
            "prompt_chars": len(task.prompt),
        },
    )
    return task


def get_task(session: Session, task_id: str) -> Task:
    task = session.get(Task, task_id)
    if task is None:
        raise NotFound(f"No task has id {task_id}.")
    return task


def list_tasks(
    session: Session,
    *,
    status: Sequence[TaskStatus] | None = None,
    repository_id: int | None = None,
    created_by: str | None = None,
    offset: int = 0,
    limit: int = 50,
) -> tuple[list[Task], int]:
    query = select(Task)
    if status:
        query = query.where(col(Task.status).in_(list(status)))
    if repository_id is not None:
        query = query.where(Task.repository_id == repository_id)
    if created_by is not None:
        query = query.where(Task.created_by == created_by)
    total = session.exec(select(func.count()).select_from(query.subquery())).one()
    rows = session.exec(
        query.order_by(col(Task.created_at).desc(), col(Task.id)).offset(offset).limit(limit)
    )
    return list(rows), int(total)


def count_by_status(session: Session) -> dict[TaskStatus, int]:
    rows = session.exec(select(Task.status, func.count()).group_by(Task.status))
    return {TaskStatus(s): int(n) for s, n in rows}


def runnable_tasks(session: Session) -> list[Task]:
    """Tasks the runner must own after a start: queued ones and those cut off mid-run."""
    query = select(Task).where(col(Task.status).in_([TaskStatus.queued, *RUNNING]))
    return list(session.exec(query.order_by(col(Task.created_at))))


def add_event(
    session: Session,
    *,
    task_id: str,
    kind: str,
    payload: dict[str, Any] | None = None,
    key: str | None = None,
) -> TaskEvent | None:
    """Append an event with the task's next seq; with ``key``, at most once per task."""
    if key is not None:
        seen = session.exec(
            select(TaskEvent.id).where(TaskEvent.task_id == task_id, TaskEvent.key == key)
        ).first()
        if seen is not None:
            return None
    last = session.exec(select(func.max(TaskEvent.seq)).where(TaskEvent.task_id == task_id)).one()
    event = TaskEvent(
        task_id=task_id, seq=(last or 0) + 1, kind=kind, payload=payload or {}, key=key
    )
    session.add(event)
    session.flush()
    return event


def events_after(
    session: Session, task_id: str, after_seq: int, limit: int = 500
) -> list[TaskEvent]:
    query = (
        select(TaskEvent)
        .where(TaskEvent.task_id == task_id, TaskEvent.seq > after_seq)
        .order_by(col(TaskEvent.seq))
        .limit(limit)
    )
    return list(session.exec(query))


def event_dicts_after(
    session: Session,
    task_id: str,
    after_seq: int,
    limit: int = 500,
    *,
    kinds: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """Like :func:`events_after`, as plain dicts for streaming (no ORM objects: this is
    the hot path of every live event stream); ``kinds`` keeps only those kinds."""
    query = (
        select(TaskEvent.seq, TaskEvent.kind, TaskEvent.payload, TaskEvent.ts)
        .where(TaskEvent.task_id == task_id, TaskEvent.seq > after_seq)
        .order_by(col(TaskEvent.seq))
        .limit(limit)
    )
    if kinds:
        query = query.where(col(TaskEvent.kind).in_(list(kinds)))
    return [
        {"seq": seq, "kind": kind, "payload": payload, "ts": _iso(ts)}
        for seq, kind, payload, ts in session.exec(query)
    ]


def _iso(ts: datetime) -> str:
    return as_utc(ts).isoformat().replace("+00:00", "Z")


def save_checkpoint(session: Session, *, task_id: str, node: str, state: dict[str, Any]) -> None:
    session.add(Checkpoint(task_id=task_id, node=node, state=state))
    session.flush()


def latest_checkpoint(session: Session, task_id: str) -> Checkpoint | None:
    query = (
        select(Checkpoint).where(Checkpoint.task_id == task_id).order_by(col(Checkpoint.id).desc())
    )
    return session.exec(query.limit(1)).first()


def transition(
    session: Session,
    task: Task,
    to: TaskStatus,
    *,
    actor: str,
    node: str | None = None,
    state: dict[str, Any] | None = None,
    failure: tuple[FailureCategory, str] | None = None,
    summary: str | None = None,
    details: dict[str, Any] | None = None,
) -> Task:
    """Move a task to ``to``: status, checkpoint (when a node is named), event, audit."""
    src = task.status
    if not can_transition(src, to):
        raise InvalidTransition(f"Task {task.id} is {src.value}; it cannot become {to.value}.")
    now = utcnow()
    task.status = to
    task.updated_at = now
    if node is not None:
        task.step = node
    if src == TaskStatus.queued and task.started_at is None:
        task.started_at = now
    if to in TERMINAL:
        task.finished_at = now
    if failure is not None:
        task.failure_category, task.failure_message = failure
    if summary is not None:
        task.summary = summary
    session.add(task)
    if node is not None:
        save_checkpoint(session, task_id=task.id, node=node, state=state or {})
    payload: dict[str, Any] = {"status": to.value, "from": src.value}
    if node is not None:
        payload["step"] = node
    if failure is not None:
        payload["failure_category"] = failure[0].value
        payload["message"] = failure[1]
    add_event(session, task_id=task.id, kind="status", payload=payload)
    audit.append(
        session,
        actor=actor,
        action="task.transition",
        subject=f"task:{task.id}",
        details={"from": src.value, "to": to.value, "node": node, **(details or {})},
    )
    session.flush()
    return task


def set_progress(session: Session, task: Task, *, progress: float | None, step: str | None) -> None:
    task.progress = progress
    if step is not None:
        task.step = step
    task.updated_at = utcnow()
    session.add(task)
    session.flush()


def priority_rank(task: Task) -> int:
    return Priority(task.priority).rank


def check_may_cancel(session: Session, task_id: str, *, username: str, admin: bool) -> None:
    """Developers cancel their own tasks, admins any task (the API and the UI both ask)."""
    created_by = get_task(session, task_id).created_by
    if created_by != username and not admin:
        raise Forbidden(
            f"Task {task_id} belongs to {created_by}; only they or an admin can cancel it."
        )
