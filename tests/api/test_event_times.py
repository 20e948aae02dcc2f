"""Event times are UTC whatever the host's time zone is."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from tests.conftest import Tokens, auth


@pytest.fixture
def new_york_host() -> Iterator[None]:
    """The process's local time zone is America/New_York (UTC-5 or UTC-4)."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = "America/New_York"
    time.tzset()
    try:
        assert datetime.now().astimezone().utcoffset() in (timedelta(hours=-5), timedelta(hours=-4))
        yield
    finally:
        if before is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = before
        time.tzset()


def test_event_ts_is_the_utc_time_it_was_appended_on_a_non_utc_host(
    new_york_host: None, client: TestClient, tokens: Tokens
) -> None:
    repo_id = client.post(
        "/api/v1/repositories",
        json={"name": "demo", "clone_url": "/srv/git/demo.git"},
        headers=auth(tokens.admin),
    ).json()["id"]
    before = datetime.now(UTC)
    task_id = client.post(
        "/api/v1/tasks", json={"repository_id": repo_id, "prompt": "go"}, headers=auth(tokens.dev)
    ).json()["task_id"]
    after = datetime.now(UTC)
    page = client.get(f"/api/v1/tasks/{task_id}/events/page", headers=auth(tokens.viewer)).json()
    first = page["events"][0]
    assert first["payload"] == {"status": "queued"}
    assert first["ts"].endswith("Z")
    ts = datetime.fromisoformat(first["ts"])
    assert before - timedelta(seconds=5) <= ts <= after + timedelta(seconds=5), (before, ts)
