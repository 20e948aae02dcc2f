"""The nightly-maintenance scheduler: APScheduler 3 in the appliance process.

:class:`JobScheduler` wraps an ``AsyncIOScheduler`` whose jobs live in the appliance
database (``SQLAlchemyJobStore`` on the appliance's own engine, table
``apscheduler_jobs`` created by the migrations; WAL and the busy timeout apply, and its
statements are single short ones). Defaults: ``coalesce`` (missed runs collapse into
one), ``max_instances=1``, ``misfire_grace_time`` from ``jobs.misfire_grace_seconds``.

APScheduler decides *when*; this module decides *whether* and *how*. A small executor
hands every due run to :meth:`JobScheduler.run_scheduled`, which

1. skips a run missed by more than the grace time and records it ``skipped_misfire``
   (and emits APScheduler's ``EVENT_JOB_MISSED``);
2. claims the run in ``job_run`` (unique per job and scheduled time) *before* running:
   a restart, or a second process, that reaches the same scheduled run finds the row
   and does nothing, so no run ever happens twice;
3. runs the job kind (:data:`appliance.jobs.kinds.KINDS`) and records the outcome, the
   linked tasks and an audit record (``job.run``).

Time comes from ``clock`` (UTC): tests inject one and call :meth:`run_due`, which
processes due jobs at the clock's time exactly as APScheduler's loop does at the real
time. A poll (``jobs.poll_seconds``) re-syncs the schedules with the registered
repositories and wakes APScheduler, so edits made by ``appliance jobs`` in another
process take effect.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.events import (  # type: ignore[import-untyped]
    EVENT_JOB_EXECUTED,
    EVENT_JOB_MISSED,
    JobExecutionEvent,
)
from apscheduler.executors.base import BaseExecutor  # type: ignore[import-untyped]
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore  # type: ignore[import-untyped]
from apscheduler.schedulers.asyncio import AsyncIOScheduler  # type: ignore[import-untyped]
from sqlmodel import select

from appliance.config import Settings
from appliance.index.service import IndexService
from appliance.jobs import runs
from appliance.jobs.context import JobContext, JobServices
from appliance.jobs.errors import JobBusy, JobNotFound
from appliance.jobs.schedule import JobSpec, cron_trigger, desired_jobs, timezone_of
from appliance.repos import Worktrees
from appliance.store import audit
from appliance.store.db import Database
from appliance.store.models import JobOutcome, JobRun, Repository

log = logging.getLogger(__name__)

TABLE = "apscheduler_jobs"
JobKind = Callable[[JobContext], Any]  # returns str, or an awaitable of str
Clock = Callable[[], datetime]


def scheduled_job(**spec: Any) -> None:
    """The function every stored job names; never called: the executor runs the job."""
    raise RuntimeError("scheduled jobs run through JobScheduler, not by calling this")


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class JobInfo:
    spec: JobSpec
    next_run_time: datetime | None  # None: paused
    running: bool
    last_run: JobRun | None

    @property
    def paused(self) -> bool:
        return self.next_run_time is None


class _JobStore(SQLAlchemyJobStore):  # type: ignore[misc]
    """The job store on the appliance's engine, which the Database owns and disposes."""

    def shutdown(self) -> None:
        pass


class _Executor(BaseExecutor):  # type: ignore[misc]
    """Hands due runs to the JobScheduler, on its event loop."""

    def __init__(self, owner: JobScheduler) -> None:
        super().__init__()
        self._owner = owner

    def _do_submit_job(self, job: Any, run_times: list[datetime]) -> None:
        spec = JobSpec.from_kwargs(job.kwargs)
        task = self._owner.spawn(self._owner.run_scheduled(spec, run_times))

        def done(finished: asyncio.Task[list[JobExecutionEvent]]) -> None:
            events = [] if finished.cancelled() or finished.exception() else finished.result()
            self._run_job_success(job.id, events)

        task.add_done_callback(done)


class JobScheduler:
    def __init__(
        self,
        *,
        settings: Settings,
        db: Database,
        index: IndexService,
        worktrees: Worktrees | None = None,
        services: JobServices | None = None,
        kinds: Mapping[str, JobKind] | None = None,
        clock: Clock = _utcnow,
    ) -> None:
        from appliance.jobs.kinds import KINDS

        self.settings = settings
        self.db = db
        self.index = index
        self.worktrees = worktrees or Worktrees(settings.data_dir / "worktrees")
        self.services = services or JobServices()
        self.kinds: dict[str, JobKind] = dict(kinds or KINDS)
        self.clock = clock
        self.timezone = timezone_of(settings.jobs)
        self._aps: Any = None
        self._running: set[str] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._poller: asyncio.Task[None] | None = None

    # --- life cycle ------------------------------------------------------------------

    @property
    def grace(self) -> timedelta:
        return timedelta(seconds=self.settings.jobs.misfire_grace_seconds)

    async def start(self, *, process: bool = True) -> None:
        """Open the job store and sync the schedules. With ``process`` False (the CLI,
        tests driving :meth:`run_due`) nothing runs by itself."""
        with self.db.write() as session:
            for run in runs.mark_interrupted(session, now=self.clock()):
                log.warning("job run %s of %s was cut off by a restart", run.id, run.job_id)
        self._aps = AsyncIOScheduler(
            jobstores={"default": _JobStore(engine=self.db.engine, tablename=TABLE)},
            executors={"default": _Executor(self)},
            job_defaults={
                "coalesce": True,
                "max_instances": 1,
                "misfire_grace_time": self.settings.jobs.misfire_grace_seconds,
            },
            timezone=self.timezone,
        )
        self._aps.start(paused=True)
        await self.sync_schedules()
        if process:
            self._aps.resume()
            self._poller = asyncio.create_task(self._poll(), name="job-scheduler-poll")
        log.info("job scheduler started (%d jobs)", len(self._aps.get_jobs()))

    async def stop(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
            self._poller = None
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._aps is not None and self._aps.running:
            self._aps.shutdown(wait=False)
            await asyncio.sleep(0)  # AsyncIOScheduler shuts down in a loop callback
        self._aps = None

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.settings.jobs.poll_seconds)
            try:
                await self.sync_schedules()
                self._scheduler().wakeup()
            except Exception:
                log.exception("job scheduler poll failed; trying again in the next one")

    def _scheduler(self) -> Any:
        if self._aps is None:
            raise RuntimeError("the job scheduler is not started")
        return self._aps

    # --- schedules -------------------------------------------------------------------

    async def sync_schedules(self) -> dict[str, list[str]]:
        """Create, update and remove jobs to match the registered repositories; returns the
        job ids per change (``added``, ``updated``, ``removed``)."""
        with self.db.session() as session:
            repos = list(session.exec(select(Repository)))
        wanted = {
            spec.job_id: spec
            for spec in desired_jobs(repos, self.settings.jobs)
            if spec.kind in self.kinds  # e.g. review_poll exists only inside the appliance
        }
        aps = self._scheduler()
        changes: dict[str, list[str]] = {"added": [], "updated": [], "removed": []}
        now = self.clock().astimezone(self.timezone)
        for job in aps.get_jobs():
            spec = wanted.pop(job.id, None)
            if spec is None:
                aps.remove_job(job.id)
                changes["removed"].append(job.id)
            elif JobSpec.from_kwargs(job.kwargs) != spec:
                trigger = cron_trigger(spec.cron, self.timezone)
                paused = job.next_run_time is None
                aps.modify_job(
                    job.id,
                    trigger=trigger,
                    kwargs=spec.as_kwargs(),
                    next_run_time=None if paused else trigger.get_next_fire_time(None, now),
                )
                changes["updated"].append(job.id)
        for spec in wanted.values():
            trigger = cron_trigger(spec.cron, self.timezone)
            aps.add_job(
                scheduled_job,
                trigger=trigger,
                id=spec.job_id,
                name=spec.job_id,
                kwargs=spec.as_kwargs(),
                next_run_time=trigger.get_next_fire_time(None, now),
            )
            changes["added"].append(spec.job_id)
        return changes

    def jobs(self) -> list[JobInfo]:
        with self.db.session() as session:
            last = runs.last_runs(session)
        return [
            JobInfo(
                spec=JobSpec.from_kwargs(job.kwargs),
                next_run_time=job.next_run_time,
                running=job.id in self._running,
                last_run=last.get(job.id),
            )
            for job in self._scheduler().get_jobs()
        ]

    def job(self, job_id: str) -> JobInfo:
        for info in self.jobs():
            if info.spec.job_id == job_id:
                return info
        raise JobNotFound(
            f"No scheduled job has id {job_id!r}; list them with `appliance jobs list`."
        )

    def pause(self, job_id: str, *, actor: str) -> JobInfo:
        self.job(job_id)
        self._scheduler().pause_job(job_id)
        self._audit(actor, "job.pause", job_id)
        return self.job(job_id)

    def resume(self, job_id: str, *, actor: str) -> JobInfo:
        info = self.job(job_id)
        trigger = cron_trigger(info.spec.cron, self.timezone)
        now = self.clock().astimezone(self.timezone)
        self._scheduler().modify_job(job_id, next_run_time=trigger.get_next_fire_time(None, now))
        self._audit(actor, "job.resume", job_id)
        return self.job(job_id)

    def _audit(self, actor: str, action: str, job_id: str) -> None:
        with self.db.write() as session:
            audit.append(session, actor=actor, action=action, subject=f"job:{job_id}")

    # --- running ---------------------------------------------------------------------

    async def run_due(self) -> list[JobRun]:
        """Run what is due at ``clock()``, as APScheduler's loop would at that time."""
        now = self.clock()
        aps = self._scheduler()
        done: list[JobRun] = []
        for job in aps.get_jobs():
            run_times: list[datetime] = []
            when = job.next_run_time
            while when is not None and when <= now:
                run_times.append(when)
                when = job.trigger.get_next_fire_time(when, now)
            if not run_times:
                continue
            aps.modify_job(job.id, next_run_time=when)  # before running, as APScheduler does
            spec = JobSpec.from_kwargs(job.kwargs)
            await self.run_scheduled(spec, run_times[-1:])
            with self.db.session() as session:
                found = runs.find_run(session, job_id=spec.job_id, scheduled_for=run_times[-1])
            if found is not None:
                done.append(found)
        return done

    async def run_scheduled(
        self, spec: JobSpec, run_times: list[datetime]
    ) -> list[JobExecutionEvent]:
        """Run (or skip as missed) a scheduled job's due run times (one when coalesced)."""
        events = []
        for run_time in run_times:
            scheduled_for = run_time.astimezone(UTC)
            now = self.clock()
            if now - scheduled_for > self.grace:
                log.warning("job %s: run of %s missed, skipped", spec.job_id, scheduled_for)
                with self.db.write() as session:
                    runs.record_misfire(
                        session,
                        job_id=spec.job_id,
                        kind=spec.kind,
                        repository_id=spec.repository_id,
                        repository=spec.repository,
                        scheduled_for=scheduled_for,
                        now=now,
                        grace_seconds=self.grace.total_seconds(),
                    )
                events.append(JobExecutionEvent(EVENT_JOB_MISSED, spec.job_id, "default", run_time))
                continue
            try:
                await self.execute(spec, scheduled_for=scheduled_for)
            except JobBusy as exc:
                log.warning("%s", exc.message)
            events.append(JobExecutionEvent(EVENT_JOB_EXECUTED, spec.job_id, "default", run_time))
        return events

    async def run_now(self, job_id: str, *, actor: str, wait: bool = False) -> datetime:
        """Run a job now (paused or not), outside its schedule; returns the run's time."""
        spec = self.job(job_id).spec
        if job_id in self._running:
            raise JobBusy(f"job {job_id!r} is running already; wait for it to finish")
        scheduled_for = self.clock()
        run = self.execute(spec, scheduled_for=scheduled_for, trigger="manual", actor=actor)
        if wait:
            await run
        else:
            self.spawn(run)
        return scheduled_for

    def request_run(self, job_id: str, *, actor: str) -> None:
        """Make the job due now in the job store: the process that runs the scheduler
        (the appliance) runs it at its next poll. A paused job must be resumed first."""
        if self.job(job_id).paused:
            raise JobBusy(f"job {job_id!r} is paused; resume it first, or run it with --here")
        self._scheduler().modify_job(job_id, next_run_time=self.clock())
        self._audit(actor, "job.request_run", job_id)

    async def execute(
        self,
        spec: JobSpec,
        *,
        scheduled_for: datetime,
        trigger: str = "schedule",
        actor: str = runs.SYSTEM_ACTOR,
    ) -> JobRun | None:
        """Claim the run, run the kind, record the outcome; None when already claimed."""
        if spec.job_id in self._running:
            raise JobBusy(f"job {spec.job_id!r} is running already; this run is skipped")
        kind = self.kinds.get(spec.kind)
        self._running.add(spec.job_id)
        try:
            with self.db.write() as session:
                run = runs.claim_run(
                    session,
                    job_id=spec.job_id,
                    kind=spec.kind,
                    repository_id=spec.repository_id,
                    repository=spec.repository,
                    scheduled_for=scheduled_for,
                    started_at=self.clock(),
                    trigger=trigger,
                )
            if run is None:
                log.info("job %s: the run of %s happened already", spec.job_id, scheduled_for)
                return None
            ctx = self._context(spec, scheduled_for)
            outcome, message = JobOutcome.ok, ""
            try:
                if kind is None:
                    raise JobNotFound(f"no job kind {spec.kind!r}; known: {sorted(self.kinds)}")
                if inspect.iscoroutinefunction(kind):
                    message = await kind(ctx)
                else:
                    message = await asyncio.to_thread(kind, ctx)
            except asyncio.CancelledError:
                self._finish(run, ctx, JobOutcome.interrupted, "stopped with the appliance", actor)
                raise
            except Exception as exc:
                log.exception("job %s failed", spec.job_id)
                outcome = JobOutcome.failed
                message = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
            return self._finish(run, ctx, outcome, str(message or ""), actor)
        finally:
            self._running.discard(spec.job_id)

    def _finish(
        self, run: JobRun, ctx: JobContext, outcome: JobOutcome, message: str, actor: str
    ) -> JobRun:
        with self.db.write() as session:
            return runs.finish_run(
                session,
                run,
                outcome=outcome,
                message=message,
                finished_at=self.clock(),
                task_ids=ctx.task_ids,
                details=ctx.details,
                actor=actor,
            )

    def _context(self, spec: JobSpec, scheduled_for: datetime) -> JobContext:
        repo = None
        if spec.repository_id is not None:
            with self.db.session() as session:
                repo = session.get(Repository, spec.repository_id)
            if repo is not None and repo.name != spec.repository:
                repo = None  # the id was reused by another repository
        return JobContext(
            job_id=spec.job_id,
            kind=spec.kind,
            scheduled_for=scheduled_for,
            now=self.clock(),
            settings=self.settings,
            db=self.db,
            index=self.index,
            worktrees=self.worktrees,
            services=self.services,
            repository=repo,
        )
