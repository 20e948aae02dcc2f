"""The review feedback loop: comments on an appliance pull/merge request go back to its task.

Publishing records every pull request it opens as a ``published`` event with the key
``pr-opened`` (payload ``branch``, ``url``, ``pr``, ``commit``). From those events:

* :func:`count_prs_opened` counts a user's PRs of one UTC day (the PR quota);
* :func:`find_published` finds the task behind a PR number or branch of a repository;
* :func:`deliver` hands review comments to that task: a ``done`` task starts a follow-up
  round (:meth:`~appliance.runner.runner.TaskRunner.follow_up`), a task waiting for
  approval gets them as a ``request_changes`` decision, a running one as a note;
  a ``review_feedback`` event records them (with the newest comment's time, which is
  where polling goes on from);
* :func:`poll_review_comments` is the fallback where webhooks cannot reach the
  appliance: it asks the forge for comments newer than the last ones seen.

The appliance's own replies carry :data:`REPLY_MARKER` and are never taken as feedback.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlmodel import Session, col, select

from appliance.errors import Conflict
from appliance.forges.base import ReviewFeedback
from appliance.forges.errors import ForgeError
from appliance.states import TaskStatus
from appliance.store import tasks as task_store
from appliance.store.db import Database
from appliance.store.models import Repository, Task, TaskEvent

if TYPE_CHECKING:
    from appliance.core import Appliance

log = logging.getLogger(__name__)

PR_OPENED_KEY = "pr-opened"
FEEDBACK_EVENT = "review_feedback"
REPLY_MARKER = "<!-- coding-agent-appliance -->"
POLL_ACTOR = "system:review-poll"


@dataclass(frozen=True)
class PublishedPr:
    task_id: str
    branch: str
    number: int
    url: str
    opened_at: datetime


def _utc(ts: datetime) -> datetime:
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def count_prs_opened(db: Database, user: str, day: date) -> int:
    """Pull/merge requests opened on ``day`` (UTC) for tasks ``user`` created."""
    start = datetime.combine(day, datetime.min.time(), tzinfo=UTC) - timedelta(days=1)
    with db.session() as session:
        rows = session.exec(
            select(TaskEvent.ts)
            .join(Task, col(Task.id) == col(TaskEvent.task_id))
            .where(
                Task.created_by == user,
                TaskEvent.key == PR_OPENED_KEY,
                col(TaskEvent.ts) >= start,
            )
        ).all()
    return sum(1 for ts in rows if _utc(ts).date() == day)


def published_prs(
    session: Session, repo_id: int, *, since: datetime | None = None
) -> list[PublishedPr]:
    query = (
        select(TaskEvent)
        .join(Task, col(Task.id) == col(TaskEvent.task_id))
        .where(Task.repository_id == repo_id, TaskEvent.key == PR_OPENED_KEY)
        .order_by(col(TaskEvent.id))
    )
    found = []
    for event in session.exec(query):
        payload = event.payload or {}
        if since is not None and _utc(event.ts) < since:
            continue
        if isinstance(payload.get("pr"), int):
            found.append(
                PublishedPr(
                    event.task_id,
                    str(payload.get("branch", "")),
                    int(payload["pr"]),
                    str(payload.get("url", "")),
                    _utc(event.ts),
                )
            )
    return found


def find_published(
    session: Session, repo_id: int, *, number: int | None, branch: str | None
) -> PublishedPr | None:
    """The appliance PR of ``repo_id`` with that number (or, lacking one, that branch)."""
    for pr in reversed(published_prs(session, repo_id)):
        if (number is not None and pr.number == number) or (
            number is None and branch is not None and pr.branch == branch
        ):
            return pr
    return None


def is_own_reply(item: ReviewFeedback) -> bool:
    return REPLY_MARKER in item.body


def as_comments(items: Sequence[ReviewFeedback]) -> list[dict[str, Any]]:
    return [
        {
            "author": i.author,
            "body": i.body,
            "path": i.path,
            "line": i.line,
            "created_at": i.created_at.isoformat() if i.created_at else None,
        }
        for i in items
    ]


def _message(items: Sequence[ReviewFeedback], pr: PublishedPr) -> str:
    who = ", ".join(sorted({i.author for i in items if i.author})) or "a reviewer"
    return (
        f"Review comments by {who} on {pr.url or f'#{pr.number}'}; address them on the same branch."
    )


async def deliver(
    appliance: Appliance,
    pr: PublishedPr,
    items: Sequence[ReviewFeedback],
    *,
    source: str,
    actor: str,
) -> str:
    """Hand review comments to the task behind ``pr``; say what was done with them:
    ``follow_up`` (a done task works again), ``request_changes`` (it was waiting for
    approval), ``note`` (it is running) or ``ignored`` (it ended otherwise)."""
    items = [i for i in items if not is_own_reply(i) and i.body.strip()]
    if not items:
        return "ignored"
    comments = as_comments(items)
    latest = max((i.created_at for i in items if i.created_at), default=None)
    feedback = {"message": _message(items, pr), "comments": comments}
    runner = appliance.runner

    def status() -> TaskStatus:
        with appliance.db.session() as session:
            return task_store.get_task(session, pr.task_id).status

    current = await asyncio.to_thread(status)
    outcome = "ignored"
    try:
        if current == TaskStatus.done:
            previous = await asyncio.to_thread(_follow_up_count, appliance.db, pr.task_id)
            await runner.follow_up(
                pr.task_id,
                feedback,
                actor=actor,
                state_update={"follow_up": {"n": previous + 1, "comments": comments}},
            )
            outcome = "follow_up"
        elif current == TaskStatus.awaiting_approval:
            await runner.act(pr.task_id, "request_changes", feedback, actor=actor)
            outcome = "request_changes"
        elif current not in (TaskStatus.failed, TaskStatus.cancelled, TaskStatus.rejected):
            text = "\n".join(f"{c['author']}: {c['body']}" for c in comments)
            await runner.add_note(pr.task_id, f"Review comment(s) on the PR:\n{text}", actor=actor)
            outcome = "note"
    except Conflict as exc:  # the task moved on meanwhile: keep the comments as an event
        log.info("review feedback for task %s not applied: %s", pr.task_id, exc.message)

    def record() -> None:
        with appliance.db.write() as session:
            task_store.add_event(
                session,
                task_id=pr.task_id,
                kind=FEEDBACK_EVENT,
                payload={
                    "source": source,
                    "pr": pr.number,
                    "outcome": outcome,
                    "comments": comments,
                    "latest": latest.isoformat() if latest else None,
                },
            )

    await asyncio.to_thread(record)
    appliance.hub.notify(pr.task_id)
    return outcome


def _follow_up_count(db: Database, task_id: str) -> int:
    with db.session() as session:
        rows = session.exec(
            select(TaskEvent.payload).where(
                TaskEvent.task_id == task_id, TaskEvent.kind == FEEDBACK_EVENT
            )
        ).all()
    return sum(1 for p in rows if (p or {}).get("outcome") == "follow_up")


def last_seen(session: Session, pr: PublishedPr) -> datetime:
    """The newest comment time already handed to the task, else when the PR was opened."""
    rows = session.exec(
        select(TaskEvent.payload).where(
            TaskEvent.task_id == pr.task_id, TaskEvent.kind == FEEDBACK_EVENT
        )
    ).all()
    seen = pr.opened_at
    for payload in rows:
        latest = (payload or {}).get("latest")
        if latest:
            seen = max(seen, _utc(datetime.fromisoformat(str(latest))))
    return seen


async def poll_review_comments(appliance: Appliance) -> int:
    """Ask the forges for comments on recent appliance PRs newer than the last ones
    handed over; deliver them. Returns how many tasks got feedback. A forge failing
    is logged and skipped: the next poll asks again from the same point."""
    from appliance.forges.connect import forge_for

    since = datetime.now(UTC) - timedelta(days=appliance.settings.forges.poll_days)

    def candidates() -> list[tuple[Repository, list[tuple[PublishedPr, datetime]]]]:
        with appliance.db.session() as session:
            repos = session.exec(
                select(Repository).where(col(Repository.forge_kind).in_(["github", "gitlab"]))
            ).all()
            found = []
            for repo in repos:
                assert repo.id is not None
                prs = [
                    (pr, last_seen(session, pr))
                    for pr in published_prs(session, repo.id, since=since)
                ]
                session.expunge(repo)
                if prs:
                    found.append((repo, prs))
            return found

    delivered = 0
    for repo, prs in await asyncio.to_thread(candidates):
        try:
            forge = forge_for(appliance.settings, repo)
        except ForgeError as exc:
            log.warning("review poll: %s skipped: %s", repo.name, exc.message)
            continue
        try:
            for pr, seen in prs:
                try:
                    items = await asyncio.to_thread(forge.review_comments, pr.number, since=seen)
                except ForgeError as exc:
                    log.warning("review poll: %s #%d: %s", repo.name, pr.number, exc.message)
                    continue
                fresh = [i for i in items if i.created_at is None or i.created_at > seen]
                fresh = [i for i in fresh if not is_own_reply(i)]
                if fresh:
                    outcome = await deliver(appliance, pr, fresh, source="poll", actor=POLL_ACTOR)
                    delivered += outcome != "ignored"
        finally:
            forge.close()
    return delivered
