"""Fixtures of the scheduler tests: a clock the test moves, settings in UTC, and a
scheduler on a real migrated SQLite database."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from appliance.config import Settings, load_settings
from appliance.index.service import IndexService
from appliance.jobs import JobScheduler, JobServices
from appliance.store import repositories as repo_store
from appliance.store.db import Database
from appliance.store.models import Repository, RepositoryCreate
from tests.deps.conftest import IndexServer, write_index

START = datetime(2024, 7, 1, 0, 0, tzinfo=UTC)


class Clock:
    """The scheduler's time, moved by the test."""

    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def set(self, when: datetime) -> None:
        self.now = when

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("APPLIANCE_JOBS__TIMEZONE", "UTC")
    monkeypatch.setenv("APPLIANCE_INDEX__EMBEDDER", "none")
    return load_settings()


@pytest.fixture
def clock() -> Clock:
    return Clock()


Factory = Callable[..., JobScheduler]


@pytest.fixture
async def make_scheduler(settings: Settings, db: Database, clock: Clock) -> AsyncIterator[Factory]:
    """Builds schedulers on the test database (several: a restart is a new one)."""
    made: list[JobScheduler] = []
    index = IndexService(settings)

    def make(
        kinds: Mapping[str, Any] | None = None, services: JobServices | None = None
    ) -> JobScheduler:
        scheduler = JobScheduler(
            settings=settings, db=db, index=index, kinds=kinds, services=services, clock=clock
        )
        made.append(scheduler)
        return scheduler

    yield make
    for scheduler in made:
        await scheduler.stop()
    index.close()


def add_repo(db: Database, name: str, url: str = "file:///nowhere", **settings: Any) -> Repository:
    with db.write() as session:
        return repo_store.create_repository(
            session,
            repo_in=RepositoryCreate(name=name, clone_url=url, settings=settings),
            actor="test",
        )


@pytest.fixture
def index_server(tmp_path: Path) -> Iterator[IndexServer]:
    """The deps tests' package index (PEP 691 + npm) over real HTTP."""
    with IndexServer(write_index(tmp_path / "index")) as server:
        yield server
