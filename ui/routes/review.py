"""The review page: the diff (side by side or unified, highlighted), per-line comments,
Approve / Request changes / Reject, and "Explain this change"."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from appliance.errors import InvalidInput, NotFound
from appliance.store import audit
from appliance.store import tasks as task_store
from ui import taskview
from ui.auth import CsrfChecked, DeveloperUser, ViewerUser
from ui.deps import ApplianceDep, redirect
from ui.diffview import parse, parse_cached, window
from ui.forms import read_form
from ui.render import Htmx, render

router = APIRouter()


@router.get("/tasks/{task_id}/review")
def review_page(
    task_id: str,
    request: Request,
    appliance: ApplianceDep,
    _user: ViewerUser,
    htmx: Htmx,
    view: Annotated[str, Query(pattern="^(split|unified)$")] = "split",
    comment: Annotated[str, Query(max_length=1100)] = "",
    open_: Annotated[list[str], Query(alias="open")] = [],  # noqa: B006 - FastAPI copies it
) -> Response:
    """``comment=path:line`` opens the comment form at that line (works without JS).

    A big diff is windowed: the first files (:data:`ui.diffview.INLINE_LINES` lines) render
    in full, the rest as a header and a link. ``open=path`` (repeatable) renders those
    files too; an HTMX request with ``open=path`` gets just that file's section, which
    the link swaps in, so without JS the same link reloads the page with the file open."""
    with appliance.db.session() as session:
        tv = taskview.load(session, task_id, page=1)
        found = taskview.review_payload(session, task_id)
    files = parse_cached(str(found[1].get("diff") or "")) if found else ()
    path, _, line = comment.rpartition(":")
    comment_at = (path, int(line)) if line.isdigit() else None
    opened = {p for p in open_[:MAX_OPEN] if p}
    comments_by_line = _by_line(tv.comments)
    if htmx and opened:
        wanted = next((f for f in files if f.path in opened), None)
        if wanted is None:
            raise NotFound("The diff has no such file; reload the review page.")
        return render(
            request,
            "_partials/_diff_file.html",
            f=wanted,
            view=tv,
            mode=view,
            comment_at=comment_at,
            comments_by_line=comments_by_line,
        )
    if comment_at:
        opened.add(comment_at[0])
    shown = window(files, opened)
    return render(
        request,
        "review.html",
        view=tv,
        files=files,
        shown=shown,
        load_links={
            f.path: _load_links(task_id, view, opened, f.path) for f in files if f.path not in shown
        },
        mode=view,
        active="tasks",
        review=found[1] if found else None,
        comment_at=comment_at,
        comments_by_line=comments_by_line,
    )


MAX_OPEN = 100  # files one review URL can ask to open


def _load_links(task_id: str, mode: str, opened: set[str], path: str) -> tuple[str, str]:
    """(href, hx-get) for a collapsed file: without JS, this page again with the file
    (and those already open) rendered; with HTMX, just the file's section."""
    keep = sorted(opened)[: MAX_OPEN - 1]
    href = "?" + urlencode([("view", mode), *(("open", p) for p in keep), ("open", path)])
    fragment = f"/tasks/{task_id}/review?" + urlencode([("view", mode), ("open", path)])
    return href, fragment


def _by_line(comments: list[dict[str, Any]]) -> dict[tuple[str, int], list[dict[str, Any]]]:
    out: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for c in comments:
        if c.get("path") and c.get("line"):
            out.setdefault((str(c["path"]), int(c["line"])), []).append(c)
    return out


@router.get("/tasks/{task_id}/comment-form")
def comment_form(
    task_id: str,
    request: Request,
    appliance: ApplianceDep,
    _user: DeveloperUser,
    path: Annotated[str, Query(max_length=1000)],
    line: Annotated[int, Query(ge=1)],
) -> Response:
    with appliance.db.session() as session:
        task_store.get_task(session, task_id)
    return render(request, "_partials/_comment_form.html", task_id=task_id, path=path, line=line)


@router.post("/tasks/{task_id}/comments")
async def add_comment(
    task_id: str,
    request: Request,
    appliance: ApplianceDep,
    user: DeveloperUser,
    htmx: Htmx,
    _csrf: CsrfChecked,
) -> Response:
    """A review comment on a line (or the whole change); it goes to the agent with the
    decision (request changes) and stays on the task's record."""
    form = await read_form(request)
    body = form.get("body").strip()
    path = form.get("path").strip() or None
    line = int(form.get("line")) if form.get("line").isdigit() else None
    if not body or len(body) > 20_000:
        raise InvalidInput("A comment is 1 to 20,000 characters; write what should change.")
    payload = {"path": path, "line": line, "body": body, "by": user.username}

    def write() -> None:
        with appliance.db.write() as session:
            task_store.get_task(session, task_id)
            task_store.add_event(session, task_id=task_id, kind="review_comment", payload=payload)
            audit.append(
                session,
                actor=user.username,
                action="task.comment",
                subject=f"task:{task_id}",
                details={"path": path, "line": line},
            )

    await asyncio.to_thread(write)
    appliance.hub.notify(task_id)
    if htmx:
        return render(request, "_partials/_comment.html", c=payload)
    return redirect(request, f"/tasks/{task_id}/review")


async def _decide(
    request: Request, appliance: ApplianceDep, task_id: str, action: str, user: DeveloperUser
) -> Response:
    message = (await read_form(request)).get("message").strip()

    def comments() -> list[dict[str, Any]]:
        with appliance.db.session() as session:
            tv = taskview.load(session, task_id, page=1)
        return [
            {"path": c.get("path"), "line": c.get("line"), "body": c.get("body", "")}
            for c in tv.comments
        ]

    pending = await asyncio.to_thread(comments)
    if action == "request_changes" and not message and not pending:
        raise InvalidInput("Say what to change: write a message or comment on a line first.")
    payload = {"message": message, "comments": pending}
    await appliance.runner.act(task_id, action, payload, actor=user.username)
    return redirect(request, f"/tasks/{task_id}")


@router.post("/tasks/{task_id}/approve")
async def approve(
    task_id: str,
    request: Request,
    appliance: ApplianceDep,
    user: DeveloperUser,
    _csrf: CsrfChecked,
) -> Response:
    return await _decide(request, appliance, task_id, "approve", user)


@router.post("/tasks/{task_id}/request-changes")
async def request_changes(
    task_id: str,
    request: Request,
    appliance: ApplianceDep,
    user: DeveloperUser,
    _csrf: CsrfChecked,
) -> Response:
    return await _decide(request, appliance, task_id, "request_changes", user)


@router.post("/tasks/{task_id}/reject")
async def reject(
    task_id: str,
    request: Request,
    appliance: ApplianceDep,
    user: DeveloperUser,
    _csrf: CsrfChecked,
) -> Response:
    return await _decide(request, appliance, task_id, "reject", user)


@router.post("/tasks/{task_id}/explain")
async def explain(
    task_id: str,
    request: Request,
    appliance: ApplianceDep,
    user: DeveloperUser,
    htmx: Htmx,
    _csrf: CsrfChecked,
) -> Response:
    """Ask the model what a hunk does; without a model, say so."""
    name = "_partials/_explain.html" if htmx else "explain.html"
    form = await read_form(request)
    path = form.get("path")
    index = int(form.get("hunk")) if form.get("hunk").isdigit() else -1

    def hunk_text() -> tuple[str, str]:
        with appliance.db.session() as session:
            task = task_store.get_task(session, task_id)
            found = taskview.review_payload(session, task_id)
        files = parse(str(found[1].get("diff") or ""), highlight=False) if found else []
        for f in files:
            if f.path == path and 0 <= index < len(f.hunks):
                return task.prompt, f.hunks[index].text()
        raise InvalidInput(f"The diff has no hunk {index} in {path!r}; reload the review page.")

    prompt, hunk = await asyncio.to_thread(hunk_text)
    client = appliance.model_client
    if client is None:
        return render(
            request,
            name,
            ok=False,
            text="No model is configured, so nothing can explain this change. An admin can "
            "set models.endpoints (a vLLM server) or allow the CPU demo model.",
        )
    messages = [
        {
            "role": "system",
            "content": "You explain code changes to a reviewer, briefly and "
            "concretely: what the hunk changes and why it matters. No more than 120 words.",
        },
        {
            "role": "user",
            "content": f"The request was:\n{prompt[:4000]}\n\nExplain this hunk "
            f"of {path}:\n```diff\n{hunk[:12000]}\n```",
        },
    ]
    try:
        result = await client.chat(messages, task_id=task_id, max_tokens=400, timeout=60)
    except Exception as exc:  # the model's failure is shown, not raised: the page stays usable
        return render(
            request,
            name,
            ok=False,
            text=f"The model could not answer ({type(exc).__name__}: {exc}). Try again later.",
        )
    return render(request, name, ok=True, text=result.text.strip())
