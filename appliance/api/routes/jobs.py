"""Scheduled maintenance jobs: everyone signed in reads them, admins run/pause/resume.

Job ids hold the repository name (``deps:team/api``), so they may contain ``/``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from appliance.api.deps import Admin, ApplianceDep, SessionDep, Viewer
from appliance.jobs import JobInfo
from appliance.jobs import runs as run_store
from appliance.store.models import JobRun

router = APIRouter(prefix="/jobs", tags=["jobs"])


class JobRunPublic(BaseModel):
    id: int
    job_id: str
    kind: str
    repository: str | None
    trigger: str
    scheduled_for: datetime
    started_at: datetime | None
    finished_at: datetime | None
    outcome: str
    message: str
    task_ids: list[str]
    details: dict[str, Any]


class JobPublic(BaseModel):
    id: str
    kind: str
    repository: str | None
    cron: str
    paused: bool
    running: bool
    next_run_time: datetime | None
    last_run: JobRunPublic | None


def _run(run: JobRun) -> JobRunPublic:
    return JobRunPublic.model_validate(run, from_attributes=True)


def _public(info: JobInfo) -> JobPublic:
    return JobPublic(
        id=info.spec.job_id,
        kind=info.spec.kind,
        repository=info.spec.repository,
        cron=info.spec.cron,
        paused=info.paused,
        running=info.running,
        next_run_time=info.next_run_time,
        last_run=_run(info.last_run) if info.last_run else None,
    )


@router.get("", response_model=list[JobPublic])
async def list_jobs(appliance: ApplianceDep, _principal: Viewer) -> list[JobPublic]:
    """Every job with its schedule, next run and last run (repositories registered a
    moment ago included)."""
    await appliance.jobs.sync_schedules()
    return [_public(info) for info in appliance.jobs.jobs()]


@router.get("/{job_id:path}/runs", response_model=list[JobRunPublic])
def job_runs(
    job_id: str,
    appliance: ApplianceDep,
    session: SessionDep,
    _principal: Viewer,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[JobRunPublic]:
    """The job's runs, newest first (a deleted repository's job keeps its history)."""
    found = run_store.list_runs(session, job_id=job_id, limit=limit)
    if not found:
        appliance.jobs.job(job_id)  # 404 for an unknown job
    return [_run(r) for r in found]


class RunStarted(BaseModel):
    job_id: str
    scheduled_for: datetime
    status: str = "started"


@router.post("/{job_id:path}/run", status_code=202, response_model=RunStarted)
async def run_job(job_id: str, appliance: ApplianceDep, principal: Admin) -> RunStarted:
    """Start the job now, outside its schedule (also when paused); follow it with
    ``GET …/runs``. 409 while it is running."""
    when = await appliance.jobs.run_now(job_id, actor=principal.username)
    return RunStarted(job_id=job_id, scheduled_for=when)


@router.post("/{job_id:path}/pause", response_model=JobPublic)
def pause_job(job_id: str, appliance: ApplianceDep, principal: Admin) -> JobPublic:
    return _public(appliance.jobs.pause(job_id, actor=principal.username))


@router.post("/{job_id:path}/resume", response_model=JobPublic)
def resume_job(job_id: str, appliance: ApplianceDep, principal: Admin) -> JobPublic:
    return _public(appliance.jobs.resume(job_id, actor=principal.username))
