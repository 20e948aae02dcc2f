"""A person's decisions on a waiting task: answer, approve, request changes, reject, notes."""

from __future__ import annotations

import json
import time

import pytest
from fastapi.testclient import TestClient

from appliance.runner import Graph
from tests import graphs
from tests.conftest import Tokens, auth


@pytest.fixture
def graph() -> Graph:
    return graphs.decision_graph()


def submit(client: TestClient, tokens: Tokens) -> str:
    repo = client.post(
        "/api/v1/repositories",
        json={"name": "svc", "clone_url": "file:///srv/svc.git"},
        headers=auth(tokens.admin),
    ).json()
    created = client.post(
        "/api/v1/tasks",
        json={"repository_id": repo["id"], "prompt": "Fix the bug"},
        headers=auth(tokens.dev),
    ).json()
    return str(created["task_id"])


def wait_for(client: TestClient, task_id: str, token: str, status: str) -> dict[str, object]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        task = client.get(f"/api/v1/tasks/{task_id}", headers=auth(token)).json()
        if task["status"] == status:
            return dict(task)
        time.sleep(0.02)
    raise AssertionError(f"task never reached {status}: {task['status']}")


def events(client: TestClient, task_id: str, token: str) -> list[dict[str, object]]:
    with client.stream(
        "GET",
        f"/api/v1/tasks/{task_id}/events",
        headers={**auth(token), "Accept": "text/event-stream"},
    ) as response:
        lines = [line for line in response.iter_lines() if line.startswith("data:")]

    return [json.loads(line[5:]) for line in lines]


def test_question_answer_changes_then_approval(client: TestClient, tokens: Tokens) -> None:
    task_id = submit(client, tokens)
    wait_for(client, task_id, tokens.viewer, "paused")
    early = client.post(f"/api/v1/tasks/{task_id}/approve", headers=auth(tokens.dev))
    assert early.status_code == 409
    assert "offers: answer" in early.json()["message"]

    answered = client.post(
        f"/api/v1/tasks/{task_id}/answer", json={"answer": "billing"}, headers=auth(tokens.dev)
    )
    assert answered.status_code == 200
    wait_for(client, task_id, tokens.viewer, "awaiting_approval")

    viewer = client.post(f"/api/v1/tasks/{task_id}/approve", headers=auth(tokens.viewer))
    assert viewer.status_code == 403  # viewers never approve
    empty = client.post(
        f"/api/v1/tasks/{task_id}/request-changes", json={}, headers=auth(tokens.dev2)
    )
    assert empty.status_code == 422
    changes = client.post(
        f"/api/v1/tasks/{task_id}/request-changes",
        json={"message": "use Decimal", "comments": [{"path": "a.py", "line": 3, "body": "x"}]},
        headers=auth(tokens.dev2),
    )
    assert changes.status_code == 200
    wait_for(client, task_id, tokens.viewer, "awaiting_approval")
    note = client.post(
        f"/api/v1/tasks/{task_id}/constraints",
        json={"text": "keep the public API"},
        headers=auth(tokens.dev),
    )
    assert note.json()["constraints"]["notes"] == ["keep the public API"]
    ruled = client.post(
        f"/api/v1/tasks/{task_id}/constraints",
        json={"text": "no docs", "avoid_files": ["docs/**"], "max_files_changed": 2},
        headers=auth(tokens.dev),
    )
    assert ruled.status_code == 200, ruled.text
    assert ruled.json()["constraints"]["avoid_files"] == ["docs/**"]
    assert ruled.json()["constraints"]["max_files_changed"] == 2
    bad = client.post(
        f"/api/v1/tasks/{task_id}/constraints",
        json={"text": "x", "max_files_changed": 0},
        headers=auth(tokens.dev),
    )
    assert bad.status_code == 422

    approved = client.post(f"/api/v1/tasks/{task_id}/approve", headers=auth(tokens.dev2))
    assert approved.status_code == 200
    done = wait_for(client, task_id, tokens.viewer, "done")
    assert done["summary"] == "published after 1 round(s), approved by dave"
    kinds = [e["kind"] for e in events(client, task_id, tokens.viewer)]
    assert kinds.count("waiting") == 3
    assert kinds.count("constraint_added") == 2


def test_reject_closes_the_task(client: TestClient, tokens: Tokens) -> None:
    task_id = submit(client, tokens)
    wait_for(client, task_id, tokens.viewer, "paused")
    client.post(f"/api/v1/tasks/{task_id}/answer", json={"answer": "x"}, headers=auth(tokens.dev))
    wait_for(client, task_id, tokens.viewer, "awaiting_approval")
    rejected = client.post(
        f"/api/v1/tasks/{task_id}/reject", json={"message": "not needed"}, headers=auth(tokens.dev)
    )
    assert rejected.json()["status"] == "rejected"
    again = client.post(f"/api/v1/tasks/{task_id}/approve", headers=auth(tokens.dev))
    assert again.status_code == 409
