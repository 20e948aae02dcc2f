"""Scheduling with a controllable clock: due runs, restarts, misfires, schedules."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlmodel import select

from appliance.jobs.context import JobContext
from appliance.jobs.errors import JobNotFound
from appliance.jobs.schedule import spread_minute
from appliance.store import audit
from appliance.store.db import Database
from appliance.store.models import AuditRecord, JobOutcome, JobRun
from tests.jobs.conftest import Clock, Factory, add_repo

RETENTION_AT = datetime(2024, 7, 1, 3, 30, tzinfo=UTC)  # jobs.retention_cron "30 3 * * *"


class Recorder:
    """A job kind that notes each run (the scheduler's real path calls it)."""

    def __init__(self) -> None:
        self.runs: list[datetime] = []

    def __call__(self, ctx: JobContext) -> str:
        self.runs.append(ctx.scheduled_for)
        return f"ran for {ctx.scheduled_for:%H:%M}"


def job_runs(db: Database, job_id: str = "retention") -> list[JobRun]:
    with db.session() as session:
        query = select(JobRun).where(JobRun.job_id == job_id).order_by(JobRun.id)  # type: ignore[arg-type]
        return list(session.exec(query))


async def test_a_due_job_runs_once_and_is_recorded_and_audited(
    make_scheduler: Factory, clock: Clock, db: Database
) -> None:
    recorder = Recorder()
    scheduler = make_scheduler(kinds={"retention": recorder})
    await scheduler.start(process=False)
    assert scheduler.job("retention").next_run_time == RETENTION_AT

    clock.set(RETENTION_AT.replace(minute=29))
    assert await scheduler.run_due() == []
    clock.set(RETENTION_AT.replace(second=5))
    await scheduler.run_due()
    await scheduler.run_due()

    assert recorder.runs == [RETENTION_AT]
    [run] = job_runs(db)
    assert (run.outcome, run.message) == (JobOutcome.ok, "ran for 03:30")
    assert run.scheduled_for == RETENTION_AT
    assert scheduler.job("retention").next_run_time == RETENTION_AT.replace(day=2)
    with db.session() as session:
        [record] = audit.read(session, action="job.run")
        assert record.subject == "job:retention"
        assert record.details["outcome"] == "ok"
        assert audit.verify(session).ok


async def test_after_a_restart_the_same_run_is_not_repeated(
    make_scheduler: Factory, clock: Clock, db: Database
) -> None:
    recorder = Recorder()
    first = make_scheduler(kinds={"retention": recorder})
    await first.start(process=False)
    clock.set(RETENTION_AT.replace(second=1))
    await first.run_due()
    await first.stop()

    second = make_scheduler(kinds={"retention": recorder})
    await second.start(process=False)
    assert await second.run_due() == []
    # Even asked for that very run again (a crash before the job store was updated),
    # the recorded run stops it.
    spec = second.job("retention").spec
    await second.run_scheduled(spec, [RETENTION_AT])

    assert recorder.runs == [RETENTION_AT]
    assert len(job_runs(db)) == 1


async def test_a_run_missed_within_the_grace_time_runs_once_at_start(
    make_scheduler: Factory, clock: Clock, db: Database
) -> None:
    recorder = Recorder()
    scheduler = make_scheduler(kinds={"retention": recorder})
    await scheduler.start(process=False)
    await scheduler.stop()

    clock.set(RETENTION_AT.replace(minute=59))  # down at 03:30, back 29 minutes later
    restarted = make_scheduler(kinds={"retention": recorder})
    await restarted.start(process=False)
    await restarted.run_due()
    await restarted.run_due()

    assert recorder.runs == [RETENTION_AT]
    assert [r.outcome for r in job_runs(db)] == [JobOutcome.ok]


async def test_a_run_missed_beyond_the_grace_time_is_skipped_and_recorded(
    make_scheduler: Factory, clock: Clock, db: Database
) -> None:
    recorder = Recorder()
    scheduler = make_scheduler(kinds={"retention": recorder})
    await scheduler.start(process=False)
    await scheduler.stop()

    clock.set(RETENTION_AT.replace(day=4, hour=6))  # three nights missed, coalesced
    restarted = make_scheduler(kinds={"retention": recorder})
    await restarted.start(process=False)
    await restarted.run_due()

    assert recorder.runs == []
    [run] = job_runs(db)
    assert run.outcome == JobOutcome.skipped_misfire
    assert run.scheduled_for == RETENTION_AT.replace(day=4)
    assert "missed by 3.0 h" in run.message
    assert restarted.job("retention").next_run_time == RETENTION_AT.replace(day=5)
    with db.session() as session:
        [record] = audit.read(session, action="job.run")
        assert record.details["outcome"] == "skipped_misfire"


async def test_a_failing_job_is_recorded_failed_with_its_message(
    make_scheduler: Factory, clock: Clock, db: Database
) -> None:
    def broken(ctx: JobContext) -> str:
        raise ValueError("disk full")

    scheduler = make_scheduler(kinds={"retention": broken})
    await scheduler.start(process=False)
    clock.set(RETENTION_AT)
    await scheduler.run_due()
    [run] = job_runs(db)
    assert (run.outcome, run.message) == (JobOutcome.failed, "ValueError: disk full")


async def test_schedules_follow_the_repositories_with_a_spread(
    make_scheduler: Factory, db: Database, clock: Clock
) -> None:
    alpha = add_repo(db, "alpha")
    add_repo(db, "team/api")
    add_repo(db, "weekly", nightly_cron="15 4 * * 1")
    scheduler = make_scheduler(kinds={})
    await scheduler.start(process=False)

    jobs = {info.spec.job_id: info for info in scheduler.jobs()}
    assert set(jobs) == {"retention"} | {
        f"{kind}:{name}"
        for kind in ("reindex", "branch_cleanup", "deps")
        for name in ("alpha", "team/api", "weekly")
    }
    for name in ("alpha", "team/api"):
        minute = spread_minute(name)
        assert jobs[f"deps:{name}"].spec.cron == f"{minute} 2 * * *"
        assert jobs[f"deps:{name}"].next_run_time == datetime(2024, 7, 1, 2, minute, tzinfo=UTC)
    assert spread_minute("alpha") != spread_minute("team/api")
    assert jobs["reindex:weekly"].next_run_time == datetime(2024, 7, 1, 4, 15, tzinfo=UTC)

    with db.write() as session:
        session.delete(session.get(type(alpha), alpha.id))
    changes = await scheduler.sync_schedules()
    assert sorted(changes["removed"]) == [
        "branch_cleanup:alpha",
        "deps:alpha",
        "reindex:alpha",
    ]
    assert changes["added"] == changes["updated"] == []


async def test_paused_jobs_do_not_run_until_resumed(
    make_scheduler: Factory, clock: Clock, db: Database
) -> None:
    recorder = Recorder()
    scheduler = make_scheduler(kinds={"retention": recorder})
    await scheduler.start(process=False)
    assert scheduler.pause("retention", actor="cli:ops").paused

    clock.set(RETENTION_AT)
    await scheduler.run_due()
    assert recorder.runs == []

    clock.set(RETENTION_AT.replace(hour=12))
    resumed = scheduler.resume("retention", actor="cli:ops")
    assert resumed.next_run_time == RETENTION_AT.replace(day=2)
    with db.session() as session:
        actions = [r.action for r in session.exec(select(AuditRecord))]
    assert actions == ["job.pause", "job.resume"]
    with pytest.raises(JobNotFound, match="no-such-job"):
        scheduler.pause("no-such-job", actor="cli:ops")


async def test_run_now_runs_a_paused_job_once_outside_its_schedule(
    make_scheduler: Factory, clock: Clock, db: Database
) -> None:
    recorder = Recorder()
    scheduler = make_scheduler(kinds={"retention": recorder})
    await scheduler.start(process=False)
    scheduler.pause("retention", actor="t")
    clock.set(datetime(2024, 7, 1, 9, 0, 0, 1, tzinfo=UTC))
    await scheduler.run_now("retention", actor="api:root", wait=True)
    [run] = job_runs(db)
    assert (run.trigger, run.outcome) == ("manual", JobOutcome.ok)
    assert scheduler.job("retention").paused
    assert recorder.runs == [clock.now]


async def test_the_real_apscheduler_loop_runs_a_job_made_due(
    make_scheduler: Factory, db: Database
) -> None:
    """Real time: the APScheduler loop hands a due run to the executor."""
    import asyncio

    recorder = Recorder()
    real = make_scheduler(kinds={"retention": recorder})
    real.clock = lambda: datetime.now(UTC)
    await real.start(process=True)
    due = datetime.now(UTC)
    real._scheduler().modify_job("retention", next_run_time=due)
    for _ in range(200):
        if job_runs(db) and job_runs(db)[0].outcome != JobOutcome.running:
            break
        await asyncio.sleep(0.01)
    [run] = job_runs(db)
    assert run.outcome == JobOutcome.ok
    assert recorder.runs == [run.scheduled_for]
