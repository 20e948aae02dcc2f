"""The whole pipeline on a real repository, real sandbox and a scripted model: the task
waits for approval with a diff that makes the tests pass; approval pushes the branch."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from appliance.api import create_app
from appliance.config import load_settings
from appliance.pipeline import pipeline_graph
from tests.conftest import Tokens, auth, make_tokens
from tests.gitrepos import plain_git
from tests.models.scripted_server import ScriptedServer
from tests.pipeline.scenario import REQUEST, happy_path, make_calc

pytestmark = pytest.mark.slow


def app_client(model: ScriptedServer, **pipeline: Any) -> TestClient:
    settings = load_settings(
        models={"endpoints": [{"base_url": model.url, "model": "coder", "context_length": 8192}]},
        index={"embedder": "none"},
        pipeline=pipeline,
    )
    return TestClient(create_app(settings, graph=pipeline_graph()))


def wait_status(client: TestClient, task_id: str, token: str, *statuses: str) -> dict[str, Any]:
    deadline = time.monotonic() + 180
    task: dict[str, Any] = {}
    while time.monotonic() < deadline:
        task = client.get(f"/api/v1/tasks/{task_id}", headers=auth(token)).json()
        if task["status"] in statuses:
            return task
        time.sleep(0.1)
    raise AssertionError(f"task stuck in {task.get('status')} ({task.get('step')})")


def events(client: TestClient, task_id: str, token: str) -> list[dict[str, Any]]:
    page = client.get(
        f"/api/v1/tasks/{task_id}/events/page", params={"limit": 1000}, headers=auth(token)
    )
    return list(page.json()["events"])


def submit(client: TestClient, tokens: Tokens, url: str) -> str:
    repo = client.post(
        "/api/v1/repositories",
        json={"name": "calc", "clone_url": url},
        headers=auth(tokens.admin),
    ).json()
    created = client.post(
        "/api/v1/tasks",
        json={"repository_id": repo["id"], "prompt": REQUEST},
        headers=auth(tokens.dev),
    )
    assert created.status_code == 201, created.text
    return str(created.json()["task_id"])


def _containers_of(task_id: str) -> list[str]:
    from sandbox.podman import TASK_LABEL, PodmanSandbox

    sandbox = PodmanSandbox()
    try:
        filters = {"label": f"{TASK_LABEL}={task_id}"}
        return [c.id for c in sandbox.client.containers.list(all=True, filters=filters)]
    finally:
        sandbox.close()


def test_a_bug_is_fixed_reviewed_approved_and_pushed(tmp_path: Path, model: ScriptedServer) -> None:
    calc = make_calc(tmp_path)
    model.add(*happy_path())
    with app_client(model) as client:
        tokens = make_tokens(client.app.state.appliance.db)  # type: ignore[attr-defined]
        task_id = submit(client, tokens, calc.url)
        task = wait_status(client, task_id, tokens.viewer, "awaiting_approval", "failed")
        assert task["status"] == "awaiting_approval", task.get("failure")
        kinds = [e["kind"] for e in events(client, task_id, tokens.viewer)]
        for kind in ("plan", "tool_call", "file_modified", "command_executed", "iteration",
                     "review_ready", "waiting"):  # fmt: skip
            assert kind in kinds, kind
        review = next(
            e for e in events(client, task_id, tokens.viewer) if e["kind"] == "review_ready"
        )
        diff = review["payload"]["diff"]
        assert "-    return sum(values) / (len(values) - 1)" in diff
        assert "+    return sum(values) / len(values)" in diff
        assert "## Test evidence" in review["payload"]["pr_body"]
        iteration = next(
            e for e in events(client, task_id, tokens.viewer) if e["kind"] == "iteration"
        )
        assert iteration["payload"]["tests"]["new_failures"] == []
        assert iteration["payload"]["tests"]["passed"] == 2
        # the test runs' output streamed live, and the task's container is gone while it
        # waits for a person
        live = "".join(
            e["payload"]["text"]
            for e in events(client, task_id, tokens.viewer)
            if e["kind"] == "output"
        )
        assert "2 passed" in live, live[-2000:]
        deadline = time.monotonic() + 30  # removed just after the status changes
        while _containers_of(task_id) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _containers_of(task_id) == []
        # every model call's tokens are reported once (7 calls x 450 tokens)
        stream = events(client, task_id, tokens.viewer)
        spent = sum(e["payload"]["total_tokens"] for e in stream if e["kind"] == "usage")
        assert spent == 7 * 450
        # nothing is pushed before approval
        assert "appliance/" not in plain_git(calc.bare, "branch", "--list")

        approved = client.post(f"/api/v1/tasks/{task_id}/approve", headers=auth(tokens.dev2))
        assert approved.status_code == 200
        done = wait_status(client, task_id, tokens.viewer, "done", "failed")
        assert done["status"] == "done", done.get("failure")
    branches = plain_git(calc.bare, "branch", "--list", "appliance/*")
    branch = branches.strip().lstrip("* ").strip()
    assert branch.startswith("appliance/")
    pushed = plain_git(calc.bare, "show", f"{branch}:calc/stats.py")
    assert "return sum(values) / len(values)" in pushed
    message = plain_git(calc.bare, "log", "-1", "--format=%an|%B", branch)
    assert message.startswith("Coding Agent Appliance|Fix average() divisor")
    assert "Co-authored-by: dana <dana@localhost>" in message
