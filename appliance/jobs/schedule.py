"""Which jobs should exist, and when they run: ids, cron expressions, the nightly spread.

Every registered repository gets one job per kind in ``jobs.repository_kinds``
(``reindex:team/api``, ``deps:team/api``, ...) on its nightly schedule: the repository's
``settings["nightly_cron"]`` when set, else ``jobs.default_cron`` with its minute moved
by a hash of the repository name (0-59), so repositories don't all start at once. Global
jobs: ``retention`` on ``jobs.retention_cron`` and, inside the appliance (where the kind
is registered), ``review_poll`` on ``jobs.review_poll_cron``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger  # type: ignore[import-untyped]

from appliance.config import JobsSettings
from appliance.errors import ConfigError, InvalidInput
from appliance.store.models import Repository

GLOBAL_KINDS = ("retention", "review_poll")


@dataclass(frozen=True)
class JobSpec:
    """What a scheduled job is; stored with the job (APScheduler kwargs)."""

    job_id: str
    kind: str
    cron: str
    repository_id: int | None = None
    repository: str | None = None

    def as_kwargs(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_kwargs(cls, kwargs: dict[str, Any]) -> JobSpec:
        return cls(
            job_id=str(kwargs["job_id"]),
            kind=str(kwargs["kind"]),
            cron=str(kwargs["cron"]),
            repository_id=kwargs.get("repository_id"),
            repository=kwargs.get("repository"),
        )


def job_id(kind: str, repository: str | None = None) -> str:
    return kind if repository is None else f"{kind}:{repository}"


def spread_minute(name: str) -> int:
    """A stable minute (0-59) for ``name``: the same in every process and release."""
    return int(hashlib.sha256(name.encode("utf-8")).hexdigest()[:8], 16) % 60


def repository_cron(repo: Repository, default_cron: str) -> str:
    configured = repo.settings.get("nightly_cron")
    if configured:
        cron = str(configured)
        check_cron(cron, f"settings.nightly_cron of repository {repo.name!r}")
        return cron
    fields = default_cron.split()
    if fields and fields[0].isdigit():
        fields[0] = str((int(fields[0]) + spread_minute(repo.name)) % 60)
    return " ".join(fields)


def check_cron(cron: str, where: str) -> None:
    try:
        _from_crontab(cron, None)
    except ValueError as exc:
        raise InvalidInput(
            f"{where} is {cron!r}, not a cron expression: write five fields "
            f"'minute hour day month weekday', e.g. '15 2 * * *' ({exc})"
        ) from exc


def desired_jobs(repos: Iterable[Repository], cfg: JobsSettings) -> list[JobSpec]:
    crons = {"retention": cfg.retention_cron, "review_poll": cfg.review_poll_cron}
    specs = [JobSpec(job_id(kind), kind, crons[kind]) for kind in GLOBAL_KINDS]
    for repo in repos:
        cron = repository_cron(repo, cfg.default_cron)
        for kind in cfg.repository_kinds:
            specs.append(JobSpec(job_id(kind, repo.name), kind, cron, repo.id, repo.name))
    return specs


def timezone_of(cfg: JobsSettings) -> tzinfo:
    if not cfg.timezone:
        from tzlocal import get_localzone

        return get_localzone()
    try:
        return ZoneInfo(cfg.timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(
            f"jobs.timezone is {cfg.timezone!r}, which is not a known time zone: use a name "
            "such as Europe/Berlin or UTC, or leave it empty for the server's"
        ) from exc


def cron_trigger(cron: str, tz: tzinfo) -> Any:
    return _from_crontab(cron, tz)


_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _from_crontab(cron: str, tz: tzinfo | None) -> Any:
    """Standard cron: weekday 0 or 7 is Sunday (APScheduler 3 numbers from Monday, so
    numbers become names first)."""
    fields = cron.split()
    if len(fields) != 5:
        raise ValueError(f"expected 5 fields, found {len(fields)}")
    fields[4] = re.sub(r"(?<![/\d])([0-7])(?!\d)", lambda m: _DAYS[int(m.group(1))], fields[4])
    minute, hour, day, month, weekday = fields
    return CronTrigger(
        minute=minute, hour=hour, day=day, month=month, day_of_week=weekday, timezone=tz
    )
