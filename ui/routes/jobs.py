"""Scheduled jobs (appliance.jobs): schedules, last runs, run now, pause and resume."""

from __future__ import annotations

from fastapi import APIRouter, Request
from sqlmodel import col, select
from starlette.responses import Response

from appliance.errors import ApplianceError, Conflict
from appliance.store.models import JobRun
from ui.auth import AdminUser, CsrfChecked, ViewerUser
from ui.deps import ApplianceDep, redirect
from ui.render import render

router = APIRouter()


@router.get("/jobs")
def jobs_page(request: Request, appliance: ApplianceDep, _user: ViewerUser) -> Response:
    scheduler = appliance.jobs
    note = ""
    try:
        jobs = sorted(scheduler.jobs(), key=lambda j: j.spec.job_id)
    except Exception as exc:  # the scheduler is not started (jobs.enabled off) or broken
        jobs, note = (
            [],
            f"The scheduler is not running ({type(exc).__name__}); "
            + ("jobs.enabled is off." if not appliance.settings.jobs.enabled else "see the log."),
        )
    with appliance.db.session() as session:
        runs = list(session.exec(select(JobRun).order_by(col(JobRun.id).desc()).limit(50)))
    return render(request, "jobs.html", active="jobs", jobs=jobs, runs=runs, note=note)


async def _act(
    request: Request, appliance: ApplianceDep, job_id: str, what: str, actor: str
) -> Response:
    scheduler = appliance.jobs
    try:
        if what == "run":
            await scheduler.run_now(job_id, actor=actor)
        elif what == "pause":
            scheduler.pause(job_id, actor=actor)
        else:
            scheduler.resume(job_id, actor=actor)
    except ApplianceError:
        raise
    except Exception as exc:
        raise Conflict(f"The scheduler refused to {what} {job_id}: {exc}") from exc
    return redirect(request, "/jobs")


@router.post("/jobs/{job_id:path}/run")
async def run_now(
    job_id: str, request: Request, appliance: ApplianceDep, user: AdminUser, _csrf: CsrfChecked
) -> Response:
    return await _act(request, appliance, job_id, "run", user.username)


@router.post("/jobs/{job_id:path}/pause")
async def pause(
    job_id: str, request: Request, appliance: ApplianceDep, user: AdminUser, _csrf: CsrfChecked
) -> Response:
    return await _act(request, appliance, job_id, "pause", user.username)


@router.post("/jobs/{job_id:path}/resume")
async def resume(
    job_id: str, request: Request, appliance: ApplianceDep, user: AdminUser, _csrf: CsrfChecked
) -> Response:
    return await _act(request, appliance, job_id, "resume", user.username)
