"""Tasks: submit, list, read, cancel, and follow their events (Server-Sent Events)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from sse_starlette import EventSourceResponse, ServerSentEvent

from appliance.api.deps import ApplianceDep, Developer, SessionDep, Viewer
from appliance.errors import InvalidInput
from appliance.states import TERMINAL, TaskStatus
from appliance.store import tasks as task_store
from appliance.store.models import Role, Task, TaskCreate, TaskPublic

router = APIRouter(prefix="/tasks", tags=["tasks"])

# How long a stream waits for news before it re-reads the store anyway.
_POLL_S = 1.0


class TaskCreated(BaseModel):
    task_id: str
    status: TaskStatus


class TaskLinks(BaseModel):
    self: str
    events: str
    cancel: str
    repository: str


class TaskDetail(TaskPublic):
    links: TaskLinks


class TaskPage(BaseModel):
    items: list[TaskPublic]
    total: int
    offset: int
    limit: int


def _detail(task: Task) -> TaskDetail:
    base = f"/api/v1/tasks/{task.id}"
    return TaskDetail.model_validate(
        {
            **task.model_dump(),
            "links": {
                "self": base,
                "events": f"{base}/events",
                "cancel": f"{base}/cancel",
                "repository": f"/api/v1/repositories/{task.repository_id}",
            },
        }
    )


@router.post("", status_code=201, response_model=TaskCreated)
def submit_task(task_in: TaskCreate, appliance: ApplianceDep, principal: Developer) -> TaskCreated:
    """Queue a change request against a registered repository."""
    with appliance.db.write() as session:
        task = task_store.create_task(
            session,
            task_in=task_in,
            created_by=principal.username,
            max_prompt_chars=appliance.settings.limits.max_prompt_chars,
        )
    appliance.runner.submit(task.id, task.priority)
    return TaskCreated(task_id=task.id, status=task.status)


@router.get("", response_model=TaskPage)
def list_tasks(
    session: SessionDep,
    _principal: Viewer,
    status: Annotated[list[TaskStatus] | None, Query()] = None,
    repository_id: int | None = None,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> TaskPage:
    """Newest first; filter by one or more statuses and by repository."""
    rows, total = task_store.list_tasks(
        session, status=status, repository_id=repository_id, offset=offset, limit=limit
    )
    return TaskPage(
        items=[TaskPublic.model_validate(t.model_dump()) for t in rows],
        total=total,
        offset=offset,
        limit=limit,
    )


@router.get("/{task_id}", response_model=TaskDetail)
def get_task(task_id: str, session: SessionDep, _principal: Viewer) -> TaskDetail:
    return _detail(task_store.get_task(session, task_id))


@router.post("/{task_id}/cancel", response_model=TaskDetail)
async def cancel_task(task_id: str, appliance: ApplianceDep, principal: Developer) -> TaskDetail:
    """Developers cancel their own tasks; admins any task."""

    def check() -> None:
        with appliance.db.session() as session:
            task_store.check_may_cancel(
                session, task_id, username=principal.username, admin=principal.can(Role.admin)
            )

    await asyncio.to_thread(check)
    task = await appliance.runner.cancel(task_id, actor=principal.username)
    return _detail(task)


class Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    answer: str = Field(min_length=1, max_length=20_000, description="The reply to its question.")


class ReviewComment(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str | None = Field(None, max_length=1000, description="File the comment is on.")
    line: int | None = Field(None, ge=1, description="Line in the new file.")
    body: str = Field(min_length=1, max_length=20_000)


class Decision(BaseModel):
    model_config = ConfigDict(extra="forbid")
    message: str = Field("", max_length=20_000, description="Why, in words (optional).")
    comments: list[ReviewComment] = Field(default_factory=list, max_length=500)


class Note(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=2_000, description="A constraint in words.")
    avoid_files: list[str] = Field(
        default_factory=list,
        max_length=500,
        description="Paths or globs the agent must not change from now on (the tools refuse them).",
    )
    max_files_changed: int | None = Field(
        None, ge=1, description="A new, lower bound on the number of files the task changes."
    )


async def _act(
    appliance: Any, task_id: str, action: str, payload: dict[str, Any], principal: Any
) -> TaskDetail:
    task = await appliance.runner.act(task_id, action, payload, actor=principal.username)
    return _detail(task)


@router.post("/{task_id}/answer", response_model=TaskDetail)
async def answer_question(
    task_id: str, body: Answer, appliance: ApplianceDep, principal: Developer
) -> TaskDetail:
    """Answer the clarifying question a paused task asks; it goes on with the answer."""
    return await _act(appliance, task_id, "answer", body.model_dump(), principal)


@router.post("/{task_id}/resume", response_model=TaskDetail)
async def resume_task(task_id: str, appliance: ApplianceDep, principal: Developer) -> TaskDetail:
    """Let a paused task go on (after a guard stopped it, say)."""
    return await _act(appliance, task_id, "resume", {}, principal)


@router.post("/{task_id}/approve", response_model=TaskDetail)
async def approve_task(
    task_id: str, appliance: ApplianceDep, principal: Developer, body: Decision | None = None
) -> TaskDetail:
    """Approve the plan or the diff a task waits on; an approved diff is published."""
    return await _act(appliance, task_id, "approve", (body or Decision()).model_dump(), principal)


@router.post("/{task_id}/request-changes", response_model=TaskDetail)
async def request_changes(
    task_id: str, body: Decision, appliance: ApplianceDep, principal: Developer
) -> TaskDetail:
    """Send the task back to work on the same branch with these comments."""
    if not body.message and not body.comments:
        raise InvalidInput("Say what to change: a message or at least one comment.")
    return await _act(appliance, task_id, "request_changes", body.model_dump(), principal)


@router.post("/{task_id}/reject", response_model=TaskDetail)
async def reject_task(
    task_id: str, appliance: ApplianceDep, principal: Developer, body: Decision | None = None
) -> TaskDetail:
    """Close the task without publishing anything."""
    return await _act(appliance, task_id, "reject", (body or Decision()).model_dump(), principal)


@router.post("/{task_id}/constraints", response_model=TaskDetail)
async def add_constraint(
    task_id: str, body: Note, appliance: ApplianceDep, principal: Developer
) -> TaskDetail:
    """Add a constraint while the task runs: a running task pauses at its next step, takes
    it, and resumes; ``avoid_files`` and ``max_files_changed`` are enforced by the tools."""
    task = await appliance.runner.add_note(
        task_id,
        body.text,
        actor=principal.username,
        constraints={"avoid_files": body.avoid_files, "max_files_changed": body.max_files_changed},
    )
    return _detail(task)


@router.get("/{task_id}/events/page")
def event_page(
    task_id: str,
    session: SessionDep,
    _principal: Viewer,
    after: Annotated[int, Query(ge=0, description="Events after this seq.")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    kind: Annotated[list[str] | None, Query(description="Only these kinds.")] = None,
) -> dict[str, Any]:
    """The task's events as JSON, a page at a time (``next_after`` continues); the event
    stream (``GET …/events``) is for following a task live."""
    task_store.get_task(session, task_id)
    rows = task_store.event_dicts_after(session, task_id, after, limit + 1, kinds=kind)
    page = rows[:limit]
    return {
        "events": page,
        "next_after": page[-1]["seq"] if page else after,
        "more": len(rows) > limit,
    }


def _sse(event: dict[str, Any]) -> ServerSentEvent:
    return ServerSentEvent(id=str(event["seq"]), event=event["kind"], data=json.dumps(event))


@router.get(
    "/{task_id}/events",
    response_class=EventSourceResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def follow_events(
    task_id: str,
    request: Request,
    appliance: ApplianceDep,
    _principal: Viewer,
    last_event_id: Annotated[int | None, Header(ge=0)] = None,
) -> EventSourceResponse:
    """Replays the task's events after ``Last-Event-ID``, then follows live; ends when the
    task is finished (done, failed, cancelled, rejected). Each event's data is
    ``{"seq", "kind", "payload", "ts"}``; the SSE id is ``seq``."""

    def current_status() -> TaskStatus:
        with appliance.db.session() as session:
            return task_store.get_task(session, task_id).status

    def read_after(after: int) -> list[dict[str, Any]]:
        with appliance.db.session() as session:
            return task_store.event_dicts_after(session, task_id, after)

    status = await asyncio.to_thread(current_status)  # 404 before the stream starts

    async def stream() -> AsyncIterator[ServerSentEvent]:
        nonlocal status
        last = last_event_id or 0
        wake = appliance.hub.subscribe(task_id)
        try:
            while True:
                wake.clear()
                rows = await asyncio.to_thread(read_after, last)
                for row in rows:
                    if row["kind"] == "status":
                        status = TaskStatus(row["payload"]["status"])
                    yield _sse(row)
                    last = row["seq"]
                if rows:
                    continue
                if status in TERMINAL:
                    return
                if await request.is_disconnected():
                    return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), timeout=_POLL_S)
        finally:
            appliance.hub.unsubscribe(task_id, wake)

    return EventSourceResponse(stream(), ping=15, headers={"Cache-Control": "no-store"})
