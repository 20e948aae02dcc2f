"""Driving the real appliance (FastAPI app, runner, pipeline, Podman sandbox) from a test:
an app wired to a model endpoint, a repository and a task submitted through the API, and
waits that fail with the task's state instead of hanging."""

from __future__ import annotations

import time
from typing import Any

from fastapi.testclient import TestClient

from appliance.api import create_app
from appliance.config import load_settings
from appliance.pipeline import pipeline_graph
from tests.conftest import Tokens, auth, make_tokens

#: every status a task can rest in without anyone working on it
SETTLED = ("awaiting_approval", "paused", "failed", "done", "cancelled", "rejected")


def app_client(
    model_url: str,
    *,
    model: str = "coder",
    kind: str = "openai",
    context_length: int = 8192,
    fallback_urls: tuple[str, ...] = (),
    sandbox: bool = True,
    **pipeline: Any,
) -> TestClient:
    """The whole appliance against one model endpoint (and fallbacks); ``pipeline``
    overrides its limits. ``sandbox=False`` switches the sandbox off (as bench/pipeline.py
    does): no container is started, and a repository without tests runs to the human gate
    on the model and the tools alone."""
    endpoints = [
        {"base_url": url, "model": model, "kind": kind, "context_length": context_length}
        for url in (model_url, *fallback_urls)
    ]
    settings = load_settings(
        models={"endpoints": endpoints},
        index={"embedder": "none"},
        jobs={"enabled": False},
        pipeline=pipeline,
    )
    services = {} if sandbox else {"sandbox": None}
    return TestClient(create_app(settings, graph=pipeline_graph(), services=services))


def backdate(client: TestClient, task_id: str, **minutes: float) -> None:
    """Move the ISO times named in the task's last checkpoint state that many minutes into
    the past: what a task that started, or began to wait, that long ago looks like."""
    from datetime import datetime, timedelta

    from appliance.store import tasks as task_store

    db = client.app.state.appliance.db  # type: ignore[attr-defined]
    with db.write() as s:
        checkpoint = task_store.latest_checkpoint(s, task_id)
        assert checkpoint is not None
        state = dict(checkpoint.state)
        for key, back in minutes.items():
            moment = datetime.fromisoformat(state[key]) - timedelta(minutes=back)
            state[key] = moment.isoformat()
        checkpoint.state = state
        s.add(checkpoint)


def tokens_of(client: TestClient) -> Tokens:
    return make_tokens(client.app.state.appliance.db)  # type: ignore[attr-defined]


def submit(
    client: TestClient,
    tokens: Tokens,
    url: str,
    prompt: str,
    *,
    name: str = "calc",
    settings: dict[str, Any] | None = None,
    constraints: dict[str, Any] | None = None,
) -> str:
    """Register the repository (as admin) and submit a task on it (as a developer)."""
    repo = client.post(
        "/api/v1/repositories",
        json={"name": name, "clone_url": url, "settings": settings or {}},
        headers=auth(tokens.admin),
    )
    assert repo.status_code == 201, repo.text
    body: dict[str, Any] = {"repository_id": repo.json()["id"], "prompt": prompt}
    if constraints:
        body["constraints"] = constraints
    created = client.post("/api/v1/tasks", json=body, headers=auth(tokens.dev))
    assert created.status_code == 201, created.text
    return str(created.json()["task_id"])


def wait_status(
    client: TestClient, task_id: str, token: str, *statuses: str, timeout: float = 120
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    task: dict[str, Any] = {}
    while time.monotonic() < deadline:
        task = client.get(f"/api/v1/tasks/{task_id}", headers=auth(token)).json()
        if task["status"] in statuses:
            return task
        time.sleep(0.1)
    raise AssertionError(f"task stuck in {task.get('status')} ({task.get('step')}): {task}")


def events(client: TestClient, task_id: str, token: str) -> list[dict[str, Any]]:
    page = client.get(
        f"/api/v1/tasks/{task_id}/events/page", params={"limit": 1000}, headers=auth(token)
    )
    assert page.status_code == 200, page.text
    return list(page.json()["events"])


def of_kind(evs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [e["payload"] for e in evs if e["kind"] == kind]


def failure_text(task: dict[str, Any]) -> str:
    return f"{task.get('failure_category')}: {task.get('failure_message')}"
