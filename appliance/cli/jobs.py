"""``appliance jobs list|run|pause|resume`` and ``appliance deps check REPO``.

They work on this host's database (like ``appliance repo``): the job store is shared
with the running appliance, whose scheduler re-reads it every ``jobs.poll_seconds``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import typer
from sqlmodel import select

from appliance.cli.common import fail, friendly, local_actor, open_db, settings
from appliance.config import Settings
from appliance.deps import check
from appliance.forges.connect import fetch_access
from appliance.index.service import IndexService
from appliance.jobs import JobInfo, JobScheduler
from appliance.jobs.checkout import exported_tree, open_indexes, policy_of
from appliance.jobs.publish import GitBranchPublisher
from appliance.store.db import Database
from appliance.store.models import ForgeKind, Repository

jobs_app = typer.Typer(help="List, run, pause and resume the scheduled jobs.", no_args_is_help=True)
deps_app = typer.Typer(help="Dependency bumps: what tonight's job would do.", no_args_is_help=True)

T = TypeVar("T")
JobArg = Annotated[str, typer.Argument(help="Job id, e.g. retention or deps:team/api.")]


def _with_scheduler(work: Callable[[JobScheduler], Awaitable[T]]) -> T:
    cfg = settings()
    db = open_db(cfg)
    index = IndexService(cfg)

    async def main() -> T:
        scheduler = JobScheduler(settings=cfg, db=db, index=index)
        await scheduler.start(process=False)
        try:
            return await work(scheduler)
        finally:
            await scheduler.stop()

    try:
        return asyncio.run(main())
    finally:
        index.close()
        db.dispose()


def _row(info: JobInfo) -> dict[str, Any]:
    last = info.last_run
    return {
        "id": info.spec.job_id,
        "cron": info.spec.cron,
        "paused": info.paused,
        "next_run_time": info.next_run_time.isoformat() if info.next_run_time else None,
        "last_outcome": last.outcome.value if last else None,
        "last_run": last.scheduled_for.isoformat() if last else None,
        "last_message": last.message if last else None,
    }


@jobs_app.command("list")
@friendly
def jobs_list(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Every job: its schedule, next run and last outcome."""

    async def work(scheduler: JobScheduler) -> list[JobInfo]:
        return scheduler.jobs()

    rows = [_row(info) for info in _with_scheduler(work)]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        when = "paused" if row["paused"] else f"next {row['next_run_time']}"
        last = (
            f"last {row['last_outcome']} ({row['last_run']})"
            if row["last_outcome"]
            else "never ran"
        )
        typer.echo(f"{row['id']:<40} {row['cron']:<14} {when:<38} {last}")


@jobs_app.command("run")
@friendly
def jobs_run(
    job: JobArg,
    here: Annotated[
        bool,
        typer.Option(
            "--here",
            help="Run it in this process now and wait (paused jobs too), instead "
            "of asking the running appliance to run it at its next poll.",
        ),
    ] = False,
) -> None:
    """Run a job now (by default: the running appliance picks it up within a poll)."""
    actor = local_actor()

    async def work(scheduler: JobScheduler) -> JobInfo:
        if here:
            await scheduler.run_now(job, actor=actor, wait=True)
        else:
            scheduler.request_run(job, actor=actor)
        return scheduler.job(job)

    info = _with_scheduler(work)
    if not here:
        typer.echo(f"{job}: due now; the running appliance starts it at its next poll")
        return
    last = info.last_run
    if last is None:
        raise fail(f"{job}: no run was recorded")
    typer.echo(f"{job}: {last.outcome.value}: {last.message}")
    if last.outcome.value != "ok":
        raise typer.Exit(1)


@jobs_app.command("pause")
@friendly
def jobs_pause(job: JobArg) -> None:
    """Stop a job's schedule until it is resumed."""

    async def work(scheduler: JobScheduler) -> JobInfo:
        return scheduler.pause(job, actor=local_actor())

    _with_scheduler(work)
    typer.echo(f"{job}: paused")


@jobs_app.command("resume")
@friendly
def jobs_resume(job: JobArg) -> None:
    """Put a paused job back on its schedule."""

    async def work(scheduler: JobScheduler) -> JobInfo:
        return scheduler.resume(job, actor=local_actor())

    info = _with_scheduler(work)
    typer.echo(f"{job}: resumed, next run {info.next_run_time}")


@deps_app.command("check")
@friendly
def deps_check(repo: Annotated[str, typer.Argument(help="Repository name.")]) -> None:
    """Dry run of tonight's bumps: which PRs, which packages skipped and why. Fetches the
    repository and asks the configured package indexes; changes nothing."""
    cfg = settings()
    db = open_db(cfg)
    try:
        typer.echo(_check(cfg, db, repo), nl=False)
    finally:
        db.dispose()


def _check(cfg: Settings, db: Database, name: str) -> str:
    with db.session() as session:
        found = session.exec(select(Repository).where(Repository.name == name)).first()
    if found is None:
        raise fail(f"no repository named {name!r}; see `appliance repo list`")
    policy = policy_of(found)
    index = IndexService(cfg)
    try:
        mirror = index.mirrors.ensure(found.name, found.clone_url, access=fetch_access(cfg, found))
        open_prs = (
            GitBranchPublisher().open_bump_prs(found, mirror)
            if found.forge_kind == ForgeKind.git
            else None
        )
        with (
            exported_tree(mirror, f"refs/heads/{found.default_branch}") as tree,
            open_indexes(cfg) as indexes,
        ):
            report = check(tree, policy, indexes, open_prs=open_prs)
    finally:
        index.close()
    return report.replace(f"Dependency check of {tree}", f"Dependency check of {found.name}")
