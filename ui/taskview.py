"""What the task and review pages show, read from the task's events.

The log is read as a window (the last ``page`` events, older ones on request), and the
panels (plan, question, files, tests, rounds, review, comments) from the events of the
kinds that feed them, with the large fields (diffs, PR bodies) cut out in SQL: a task
with thousands of events still renders in milliseconds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, text
from sqlmodel import Session, col, select

from appliance.states import TERMINAL, WAITING, FailureCategory, TaskStatus
from appliance.store import tasks as task_store
from appliance.store.models import Repository, Task, TaskEvent
from ui.events import LogLine, describe

_PANEL_KINDS = (
    "plan",
    "waiting",
    "iteration",
    "review_ready",
    "file_modified",
    "published",
    "constraint_added",
    "review_comment",
)


@dataclass
class FileChange:
    path: str
    added: int = 0
    removed: int = 0
    status: str = "modified"


@dataclass
class Failure:
    kind: str  # syntax | test | timeout | security | other
    title: str
    message: str


@dataclass
class TaskView:
    task: Task
    repository: Repository | None
    plan: dict[str, Any] | None = None
    waiting: dict[str, Any] | None = None
    files: list[FileChange] = field(default_factory=list)
    iterations: list[dict[str, Any]] = field(default_factory=list)
    review: dict[str, Any] | None = None
    review_seq: int = 0
    published: dict[str, Any] | None = None
    constraints: list[str] = field(default_factory=list)
    comments: list[dict[str, Any]] = field(default_factory=list)
    failure: Failure | None = None
    log: list[LogLine] = field(default_factory=list)
    earliest_seq: int = 0
    has_earlier: bool = False
    last_seq: int = 0

    @property
    def tests(self) -> dict[str, Any] | None:
        return self.iterations[-1].get("tests") if self.iterations else None

    @property
    def finished(self) -> bool:
        return self.task.status in TERMINAL

    @property
    def actions(self) -> list[str]:
        if self.task.status in WAITING and self.waiting:
            return list(self.waiting.get("actions") or [])
        return []


def log_window(
    session: Session, task_id: str, *, page: int, before: int | None = None
) -> tuple[list[LogLine], bool]:
    """The ``page`` events before ``before`` (default: the newest), oldest first."""
    query = select(TaskEvent.seq, TaskEvent.kind, TaskEvent.payload, TaskEvent.ts).where(
        TaskEvent.task_id == task_id
    )
    if before is not None:
        query = query.where(TaskEvent.seq < before)
    rows = list(session.exec(query.order_by(col(TaskEvent.seq).desc()).limit(page + 1)))
    more = len(rows) > page
    lines = [
        describe({"seq": seq, "kind": kind, "payload": payload, "ts": _iso(ts)})
        for seq, kind, payload, ts in reversed(rows[:page])
    ]
    return lines, more


def _iso(ts: Any) -> str:
    return ts.isoformat() if hasattr(ts, "isoformat") else str(ts)


def _panel_events(session: Session, task_id: str) -> list[tuple[int, str, dict[str, Any]]]:
    slim = func.json_remove(TaskEvent.payload, text("'$.diff'"), text("'$.pr_body'"))
    query = (
        select(TaskEvent.seq, TaskEvent.kind, slim)
        .where(TaskEvent.task_id == task_id, col(TaskEvent.kind).in_(_PANEL_KINDS))
        .order_by(col(TaskEvent.seq))
    )
    out = []
    for seq, kind, payload in session.exec(query):
        data = json.loads(payload) if isinstance(payload, str) else (payload or {})
        out.append((int(seq), str(kind), data if isinstance(data, dict) else {}))
    return out


#: the task's failure category → the banner's (kind, title); the banner knows syntax, test,
#: timeout and security, and shows every other category as "other"
_BANNERS: dict[FailureCategory, tuple[str, str]] = {
    FailureCategory.security: ("security", "Security check failed"),
    FailureCategory.code_logic: ("test", "The change does not pass its checks"),
    FailureCategory.transient: ("other", "A temporary problem stopped the task"),
    FailureCategory.user_correctable: ("other", "The task needs a fix on your side"),
    FailureCategory.internal: ("other", "The appliance failed on this task"),
}


def classify_failure(task: Task) -> Failure | None:
    """The failure banner of a failed task, from its failure category (not its message)."""
    if task.status != TaskStatus.failed:
        return None
    message = task.failure_message or "The task failed without a message."
    found = _BANNERS.get(task.failure_category) if task.failure_category else None
    kind, title = found or ("other", "The task failed")
    return Failure(kind, title, message)


def load(session: Session, task_id: str, *, page: int) -> TaskView:
    task = task_store.get_task(session, task_id)
    view = TaskView(task=task, repository=session.get(Repository, task.repository_id))
    files: dict[str, FileChange] = {}
    for seq, kind, p in _panel_events(session, task_id):
        if kind == "plan":
            view.plan = p
        elif kind == "waiting":
            view.waiting = {**p, "seq": seq}
        elif kind == "file_modified":
            path = str(p.get("path", "?"))
            # each event's stat is the file's whole diff against the base so far: the
            # latest one is the figure, not the sum
            stat = p.get("diff_stat") or {}
            change = files.setdefault(path, FileChange(path))
            change.added = int(stat.get("added", 0) or 0)
            change.removed = int(stat.get("removed", 0) or 0)
        elif kind == "iteration":
            view.iterations.append({**p, "seq": seq})
        elif kind == "review_ready":
            view.review, view.review_seq, view.comments = p, seq, []
        elif kind == "published":
            view.published = p
        elif kind == "constraint_added":
            view.constraints.append(str(p.get("text", "")))
        elif kind == "review_comment":
            view.comments.append({**p, "seq": seq})
    if task.status not in WAITING:
        view.waiting = None
    if view.review and view.review.get("stats"):
        view.files = [
            FileChange(
                str(s.get("path")),
                int(s.get("added", 0) or 0),
                int(s.get("removed", 0) or 0),
                str(s.get("status", "modified")),
            )
            for s in view.review["stats"]
        ]
    else:
        view.files = sorted(files.values(), key=lambda f: f.path)
    view.failure = classify_failure(task)
    view.log, view.has_earlier = log_window(session, task_id, page=page)
    view.earliest_seq = view.log[0].seq if view.log else 0
    view.last_seq = view.log[-1].seq if view.log else 0
    return view


def review_payload(session: Session, task_id: str) -> tuple[int, dict[str, Any]] | None:
    query = (
        select(TaskEvent.seq, TaskEvent.payload)
        .where(TaskEvent.task_id == task_id, TaskEvent.kind == "review_ready")
        .order_by(col(TaskEvent.seq).desc())
        .limit(1)
    )
    row = session.exec(query).first()
    return (int(row[0]), dict(row[1])) if row else None


def iteration_diff(session: Session, task_id: str, round_no: int) -> dict[str, Any] | None:
    query = (
        select(TaskEvent.payload)
        .where(TaskEvent.task_id == task_id, TaskEvent.kind == "iteration")
        .order_by(col(TaskEvent.seq))
    )
    found = None
    for payload in session.exec(query):
        if int(payload.get("round", -1)) == round_no:
            found = dict(payload)
    return found
