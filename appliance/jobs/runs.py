"""The run log of scheduled jobs (table ``job_run``): claim, finish, read.

A run is *claimed* before its job starts: one row per (job id, scheduled time), inserted
in a ``Database.write()`` transaction (``BEGIN IMMEDIATE``: writers of every process
queue for it), after checking no row exists; a UNIQUE constraint backs the check up. A
second attempt at the same scheduled run (a restart, a second process) finds the row and
does nothing. Finishing a run and recording a skipped misfire each append a ``job.run``
audit record in the same transaction.
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from appliance.store import audit
from appliance.store.models import JobOutcome, JobRun

SYSTEM_ACTOR = "system:scheduler"


def claim_run(
    session: Session,
    *,
    job_id: str,
    kind: str,
    repository_id: int | None,
    repository: str | None,
    scheduled_for: datetime,
    started_at: datetime,
    trigger: str = "schedule",
) -> JobRun | None:
    """Insert the run's row (outcome ``running``); None when this run was claimed before."""
    if find_run(session, job_id=job_id, scheduled_for=scheduled_for) is not None:
        return None
    run = JobRun(
        job_id=job_id,
        kind=kind,
        repository_id=repository_id,
        repository=repository,
        trigger=trigger,
        scheduled_for=scheduled_for,
        started_at=started_at,
        details={"pid": os.getpid()},
    )
    session.add(run)
    session.flush()
    return run


def find_run(session: Session, *, job_id: str, scheduled_for: datetime) -> JobRun | None:
    query = select(JobRun).where(JobRun.job_id == job_id, JobRun.scheduled_for == scheduled_for)
    return session.exec(query).first()


def finish_run(
    session: Session,
    run: JobRun,
    *,
    outcome: JobOutcome,
    message: str,
    finished_at: datetime,
    task_ids: list[str] | None = None,
    details: dict[str, Any] | None = None,
    actor: str = SYSTEM_ACTOR,
) -> JobRun:
    run = session.merge(run)
    run.outcome = outcome
    run.message = message
    run.finished_at = finished_at
    run.task_ids = list(task_ids or [])
    run.details = {**run.details, **(details or {})}
    session.add(run)
    session.flush()
    _audit(session, run, actor)
    return run


def record_misfire(
    session: Session,
    *,
    job_id: str,
    kind: str,
    repository_id: int | None,
    repository: str | None,
    scheduled_for: datetime,
    now: datetime,
    grace_seconds: float,
) -> JobRun | None:
    """Record a run skipped because it was missed by more than the grace time."""
    if find_run(session, job_id=job_id, scheduled_for=scheduled_for) is not None:
        return None
    late = (now - scheduled_for).total_seconds()
    run = JobRun(
        job_id=job_id,
        kind=kind,
        repository_id=repository_id,
        repository=repository,
        scheduled_for=scheduled_for,
        finished_at=now,
        outcome=JobOutcome.skipped_misfire,
        message=f"missed by {_duration(late)}, more than the grace time of "
        f"{_duration(grace_seconds)} (jobs.misfire_grace_seconds): skipped",
    )
    session.add(run)
    session.flush()
    _audit(session, run, SYSTEM_ACTOR)
    return run


def mark_interrupted(session: Session, *, now: datetime) -> list[JobRun]:
    """Runs left ``running`` by a process that is gone: a restart cut them off."""
    stale = []
    for run in session.exec(select(JobRun).where(JobRun.outcome == JobOutcome.running)):
        pid = run.details.get("pid")
        if isinstance(pid, int) and pid != os.getpid() and _alive(pid):
            continue
        if pid == os.getpid():
            continue  # running in this process right now
        stale.append(
            finish_run(
                session,
                run,
                outcome=JobOutcome.interrupted,
                message="the appliance stopped while this run was in progress; "
                "it is not repeated (run it by hand if needed)",
                finished_at=now,
                task_ids=run.task_ids,
            )
        )
    return stale


def list_runs(session: Session, *, job_id: str | None = None, limit: int = 50) -> list[JobRun]:
    query = select(JobRun)
    if job_id is not None:
        query = query.where(JobRun.job_id == job_id)
    query = query.order_by(col(JobRun.scheduled_for).desc(), col(JobRun.id).desc()).limit(limit)
    return list(session.exec(query))


def last_runs(session: Session) -> dict[str, JobRun]:
    """The latest run of every job that ever ran."""
    latest = (
        select(JobRun.job_id, func.max(JobRun.id).label("last_id"))
        .group_by(col(JobRun.job_id))
        .subquery()
    )
    query = select(JobRun).join(latest, col(JobRun.id) == latest.c.last_id)
    return {run.job_id: run for run in session.exec(query)}


def _audit(session: Session, run: JobRun, actor: str) -> None:
    audit.append(
        session,
        actor=actor,
        action="job.run",
        subject=f"job:{run.job_id}",
        details={
            "run_id": run.id,
            "kind": run.kind,
            "repository": run.repository,
            "trigger": run.trigger,
            "scheduled_for": run.scheduled_for.isoformat(),
            "outcome": run.outcome.value,
            "message": run.message[:500],
            "task_ids": run.task_ids,
        },
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds / 3600:.1f} h"
