"""New task, the task page, its live log (SSE) and the actions on a running task."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import ValidationError
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.responses import Response

from appliance.errors import Conflict, InvalidInput
from appliance.states import TERMINAL, Priority, TaskStatus
from appliance.store import repositories as repo_store
from appliance.store import tasks as task_store
from appliance.store.models import Role, TaskConstraints, TaskCreate
from ui import taskview
from ui.auth import CsrfChecked, DeveloperUser, ViewerUser
from ui.deps import ApplianceDep, redirect
from ui.events import PANEL_KINDS, describe
from ui.forms import read_form
from ui.render import Htmx, environment, render

router = APIRouter()
_POLL_S = 1.0


def _page_size(appliance: ApplianceDep) -> int:
    return appliance.settings.ui.events_page


def _new_task_page(
    request: Request,
    appliance: ApplianceDep,
    *,
    values: dict[str, str],
    error: str = "",
    status_code: int = 200,
) -> Response:
    with appliance.db.session() as session:
        repos = repo_store.list_repositories(session)
    return render(
        request,
        "task_new.html",
        status_code=status_code,
        active="new",
        repositories=repos,
        values=values,
        error=error,
        priorities=[p.value for p in Priority],
    )


@router.get("/tasks/new")
def new_task(
    request: Request,
    appliance: ApplianceDep,
    _user: DeveloperUser,
    repository_id: str = "",
    prompt: str = "",
) -> Response:
    values = {
        "repository_id": repository_id,
        "prompt": prompt,
        "avoid_files": "",
        "max_files": "",
        "priority": "normal",
    }
    return _new_task_page(request, appliance, values=values)


@router.post("/tasks/new")
async def submit_task(
    request: Request, appliance: ApplianceDep, user: DeveloperUser, _csrf: CsrfChecked
) -> Response:
    form = await read_form(request)
    values = {
        k: form.get(k) for k in ("repository_id", "prompt", "avoid_files", "max_files", "priority")
    }
    try:
        if not values["repository_id"].isdigit():
            raise InvalidInput("Pick a repository for the change.")
        avoid = [ln.strip() for ln in values["avoid_files"].splitlines() if ln.strip()]
        max_files = int(values["max_files"]) if values["max_files"].strip() else None
        task_in = TaskCreate(
            repository_id=int(values["repository_id"]),
            prompt=values["prompt"],
            constraints=TaskConstraints(avoid_files=avoid, max_files_changed=max_files),
            priority=Priority(values["priority"] or "normal"),
        )
    except (ValidationError, ValueError) as exc:
        message = exc.message if isinstance(exc, InvalidInput) else _validation_text(exc)
        return _new_task_page(request, appliance, values=values, error=message, status_code=422)

    def create() -> tuple[str, Priority]:
        with appliance.db.write() as session:
            task = task_store.create_task(
                session,
                task_in=task_in,
                created_by=user.username,
                max_prompt_chars=appliance.settings.limits.max_prompt_chars,
            )
            return task.id, task.priority

    try:
        task_id, priority = await asyncio.to_thread(create)
    except InvalidInput as exc:
        return _new_task_page(request, appliance, values=values, error=exc.message, status_code=422)
    appliance.runner.submit(task_id, priority)
    return redirect(request, f"/tasks/{task_id}")


def _validation_text(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        parts = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or "form"
            parts.append(f"{where}: {err['msg'].removeprefix('Value error, ')}")
        return "Please fix: " + "; ".join(parts)
    if "Priority" in str(exc):
        return "Pick a priority: background, normal or urgent."
    return "Max files must be a whole number (or left empty)."


@router.get("/tasks/{task_id}")
def task_page(
    task_id: str, request: Request, appliance: ApplianceDep, _user: ViewerUser
) -> Response:
    with appliance.db.session() as session:
        view = taskview.load(session, task_id, page=_page_size(appliance))
    return render(request, "task.html", view=view, active="tasks")


@router.get("/tasks/{task_id}/panels")
def task_panels(
    task_id: str, request: Request, appliance: ApplianceDep, _user: ViewerUser
) -> Response:
    """The task page's panels alone, re-fetched when the live log says they changed."""
    with appliance.db.session() as session:
        view = taskview.load(session, task_id, page=1)
    return render(request, "_partials/_task_panels.html", view=view)


@router.get("/tasks/{task_id}/log")
def earlier_log(
    task_id: str,
    request: Request,
    appliance: ApplianceDep,
    _user: ViewerUser,
    htmx: Htmx,
    before: Annotated[int, Query(ge=1)],
) -> Response:
    """Older log lines: a fragment for HTMX, a plain page of them without JavaScript."""
    with appliance.db.session() as session:
        task = task_store.get_task(session, task_id)
        lines, more = taskview.log_window(
            session, task_id, page=_page_size(appliance), before=before
        )
    name = "_partials/_log_earlier.html" if htmx else "task_log.html"
    return render(request, name, task=task, lines=lines, more=more)


@router.get("/tasks/{task_id}/stream")
async def stream(
    task_id: str,
    request: Request,
    appliance: ApplianceDep,
    _user: ViewerUser,
    after: Annotated[int, Query(ge=0)] = 0,
) -> EventSourceResponse:
    """The live log as SSE: ``log`` events carry rendered lines; ``panels`` says the page's
    panels changed; ``end`` closes the stream when the task is finished."""

    def read(last: int) -> tuple[list[dict[str, object]], TaskStatus]:
        with appliance.db.session() as session:
            status = task_store.get_task(session, task_id).status
            return task_store.event_dicts_after(session, task_id, last, limit=200), status

    await asyncio.to_thread(read, after)  # 404 before the stream starts
    last_event = request.headers.get("last-event-id", "")
    start = int(last_event) if last_event.isdigit() else after
    line_template = environment().get_template("_partials/_log_line.html")

    async def events() -> AsyncIterator[ServerSentEvent]:
        last = start
        wake = appliance.hub.subscribe(task_id)
        try:
            while True:
                wake.clear()
                rows, status = await asyncio.to_thread(read, last)
                if rows:
                    html = "".join(line_template.render(line=describe(r)) for r in rows)
                    last = int(str(rows[-1]["seq"]))
                    yield ServerSentEvent(data=html, event="log", id=str(last))
                    if any(r["kind"] in PANEL_KINDS for r in rows):
                        yield ServerSentEvent(data="", event="panels")
                    continue
                if status in TERMINAL:
                    yield ServerSentEvent(data="", event="end")
                    return
                if await request.is_disconnected():
                    return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), timeout=_POLL_S)
        finally:
            appliance.hub.unsubscribe(task_id, wake)

    return EventSourceResponse(events(), ping=15, headers={"Cache-Control": "no-store"})


@router.get("/tasks/{task_id}/rounds/{round_no}")
def round_diff(
    task_id: str, round_no: int, request: Request, appliance: ApplianceDep, _user: ViewerUser
) -> Response:
    from ui.diffview import parse

    with appliance.db.session() as session:
        task = task_store.get_task(session, task_id)
        found = taskview.iteration_diff(session, task_id, round_no)
    if found is None:
        raise InvalidInput(f"Task {task_id} has no round {round_no}; pick one from its history.")
    files = parse(str(found.get("diff") or ""))
    return render(request, "round.html", task=task, round=found, files=files, active="tasks")


# --- actions on a task (the runner's functions, as the API uses them) -----------------


async def _owner_or_admin(appliance: ApplianceDep, task_id: str, user: DeveloperUser) -> None:
    def check() -> None:
        with appliance.db.session() as session:
            task_store.check_may_cancel(
                session, task_id, username=user.username, admin=user.can(Role.admin)
            )

    await asyncio.to_thread(check)


@router.post("/tasks/{task_id}/cancel")
async def cancel(
    task_id: str,
    request: Request,
    appliance: ApplianceDep,
    user: DeveloperUser,
    _csrf: CsrfChecked,
) -> Response:
    await _owner_or_admin(appliance, task_id, user)
    await appliance.runner.cancel(task_id, actor=user.username)
    return redirect(request, f"/tasks/{task_id}")


@router.post("/tasks/{task_id}/abort")
async def abort(
    task_id: str,
    request: Request,
    appliance: ApplianceDep,
    user: DeveloperUser,
    _csrf: CsrfChecked,
) -> Response:
    """'Abort' on the failure banner: a task not yet finished is cancelled (as Cancel does);
    a finished one stays as it is. Either way, back to the dashboard."""
    await _owner_or_admin(appliance, task_id, user)

    def status() -> TaskStatus:
        with appliance.db.session() as session:
            return task_store.get_task(session, task_id).status

    if await asyncio.to_thread(status) not in TERMINAL:
        with contextlib.suppress(Conflict):  # it finished meanwhile: nothing to cancel
            await appliance.runner.cancel(task_id, actor=user.username)
    return redirect(request, "/")


@router.post("/tasks/{task_id}/answer")
async def answer(
    task_id: str,
    request: Request,
    appliance: ApplianceDep,
    user: DeveloperUser,
    _csrf: CsrfChecked,
) -> Response:
    text = (await read_form(request)).get("answer").strip()
    if not text:
        raise InvalidInput("Write an answer to the question before sending it.")
    await appliance.runner.act(task_id, "answer", {"answer": text}, actor=user.username)
    return redirect(request, f"/tasks/{task_id}")


@router.post("/tasks/{task_id}/resume")
async def resume(
    task_id: str,
    request: Request,
    appliance: ApplianceDep,
    user: DeveloperUser,
    _csrf: CsrfChecked,
) -> Response:
    await appliance.runner.act(task_id, "resume", {}, actor=user.username)
    return redirect(request, f"/tasks/{task_id}")


@router.post("/tasks/{task_id}/constraints")
async def add_constraint(
    task_id: str,
    request: Request,
    appliance: ApplianceDep,
    user: DeveloperUser,
    _csrf: CsrfChecked,
) -> Response:
    form = await read_form(request)
    text = form.get("text").strip()
    if not text or len(text) > 2000:
        raise InvalidInput("A constraint is 1 to 2,000 characters, e.g. 'keep the public API'.")
    # files to avoid from now on: comma- or line-separated paths/globs (the tools refuse them)
    avoid = [p.strip() for p in re.split(r"[,\n]", form.get("avoid_files") or "") if p.strip()]
    task = await appliance.runner.add_note(
        task_id, text, actor=user.username, constraints={"avoid_files": avoid}
    )
    if form.get("resume") and task.status == TaskStatus.paused:
        with contextlib.suppress(Conflict):
            await appliance.runner.act(task_id, "resume", {}, actor=user.username)
    return redirect(request, f"/tasks/{task_id}")


@router.post("/tasks/{task_id}/retry")
async def retry(
    task_id: str,
    request: Request,
    appliance: ApplianceDep,
    user: DeveloperUser,
    _csrf: CsrfChecked,
) -> Response:
    """'Fix it' on a failed task: a new task with the same request and the failure."""

    def create() -> tuple[str, Priority]:
        with appliance.db.write() as session:
            old = task_store.get_task(session, task_id)
            if old.status != TaskStatus.failed:
                raise Conflict(
                    f"Task {task_id} is {old.status.value}; only a failed task is retried."
                )
            prompt = (
                f"{old.prompt}\n\nA previous attempt (task {old.id}) failed: "
                f"{old.failure_message or 'no message'}. Avoid that failure."
            )
            task = task_store.create_task(
                session,
                task_in=TaskCreate(
                    repository_id=old.repository_id,
                    prompt=prompt,
                    constraints=TaskConstraints.model_validate(old.constraints),
                    priority=old.priority,
                ),
                created_by=user.username,
                max_prompt_chars=appliance.settings.limits.max_prompt_chars,
            )
            return task.id, task.priority

    new_id, priority = await asyncio.to_thread(create)
    appliance.runner.submit(new_id, priority)
    return redirect(request, f"/tasks/{new_id}")
