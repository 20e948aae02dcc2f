"""The dashboard: active tasks (live), recent tasks, repository health."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy import func
from sqlmodel import Session, col, select
from starlette.responses import Response

from appliance.states import TERMINAL, TaskStatus
from appliance.store import repositories as repo_store
from appliance.store import tasks as task_store
from appliance.store.models import JobRun, Repository, Task
from ui.auth import ViewerUser
from ui.deps import ApplianceDep
from ui.render import render

router = APIRouter()
ACTIVE = [s for s in TaskStatus if s not in TERMINAL]


def _active(session: Session) -> list[Task]:
    rows, _ = task_store.list_tasks(session, status=ACTIVE, limit=50)
    return rows


def repo_health(session: Session, appliance: ApplianceDep) -> list[dict[str, Any]]:
    repos = repo_store.list_repositories(session)
    open_prs = dict(
        session.exec(
            select(Task.repository_id, func.count())
            .where(col(Task.pr_url).is_not(None), Task.status == TaskStatus.done)
            .group_by(col(Task.repository_id))
        ).all()
    )
    last_jobs: dict[int, JobRun] = {}
    for run in session.exec(select(JobRun).order_by(col(JobRun.scheduled_for))):
        if run.repository_id is not None:
            last_jobs[run.repository_id] = run
    out = []
    for repo in repos:
        assert repo.id is not None
        out.append(
            {
                "repo": repo,
                "index": _index_state(appliance, repo),
                "last_job": last_jobs.get(repo.id),
                "prs": int(open_prs.get(repo.id, 0)),
            }
        )
    return out


def _index_state(appliance: ApplianceDep, repo: Repository) -> str:
    try:
        status = appliance.index.status(repo.name)
        progress = appliance.index.refresh_progress(repo.name)
    except Exception as exc:  # an unreadable index must not take the dashboard down
        return f"unreadable ({type(exc).__name__})"
    if progress.running:
        return f"indexing ({progress.stage or 'starting'}, {progress.done}/{progress.total})"
    if progress.error:
        return f"last indexing failed: {progress.error}"
    if status is None or status.commit is None:
        return "not indexed"
    return f"indexed at {status.commit[:10]}"


@router.get("/")
def dashboard(request: Request, appliance: ApplianceDep, _user: ViewerUser) -> Response:
    with appliance.db.session() as session:
        active = _active(session)
        recent, total = task_store.list_tasks(session, limit=15)
        health = repo_health(session, appliance)
        counts = task_store.count_by_status(session)
        jobs_seen = session.exec(select(func.count()).select_from(JobRun)).one()
        repos = {r.id: r.name for r in repo_store.list_repositories(session)}
    return render(
        request,
        "dashboard.html",
        active="dashboard",
        active_tasks=active,
        recent=recent,
        total=total,
        health=health,
        counts=counts,
        repos=repos,
        jobs_seen=int(jobs_seen),
    )


@router.get("/fragments/active-tasks")
def active_tasks(request: Request, appliance: ApplianceDep, _user: ViewerUser) -> Response:
    """Polled by the dashboard every few seconds: the active tasks table."""
    with appliance.db.session() as session:
        active = _active(session)
        repos = {r.id: r.name for r in repo_store.list_repositories(session)}
    return render(request, "_partials/_active_tasks.html", active_tasks=active, repos=repos)
