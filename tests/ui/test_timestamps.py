"""Times on the pages are UTC whatever the server's local time zone: the store keeps naive
UTC datetimes, which must not be read as local time."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from appliance.store import tasks as task_store
from tests.ui.conftest import Ui, sign_in, submit, wait_status
from ui.render import environment


@pytest.fixture
def new_york(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The process runs in America/New_York (UTC-5 in winter, -4 in summer)."""
    before = os.environ.get("TZ")
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    assert time.localtime(0).tm_hour == 19  # 1970-01-01 00:00 UTC is 19:00 the day before
    yield
    if before is None:
        monkeypatch.delenv("TZ")
    else:
        monkeypatch.setenv("TZ", before)
    time.tzset()


def test_a_naive_stored_time_is_shown_as_utc(new_york: None) -> None:
    when = environment().filters["when"]
    assert when(datetime(2026, 1, 15, 12, 0, 0)) == "2026-01-15 12:00:00 UTC"
    assert when("2026-07-01T08:30:00") == "2026-07-01 08:30:00 UTC"
    assert when(datetime(2026, 1, 15, 12, 0, tzinfo=UTC)) == "2026-01-15 12:00:00 UTC"


def test_the_task_page_shows_the_creation_time_in_utc(ui: Ui, new_york: None) -> None:
    csrf = sign_in(ui.client, "dana")
    task_id = submit(ui, "fix add", csrf)
    wait_status(ui.db, task_id, "awaiting_approval")
    with ui.db.session() as s:
        created = task_store.get_task(s, task_id).created_at
    page = ui.client.get(f"/tasks/{task_id}").text
    assert f"{created.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC" in page
