from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient
from sqlmodel import col, select

from appliance.config import Settings
from appliance.runner import Graph
from appliance.store import audit
from appliance.store.models import Checkpoint, TaskEvent
from tests import graphs
from tests.conftest import Tokens, auth


@pytest.fixture
def graph() -> Graph:
    """Tasks whose prompt starts with "block" stay running until the test ends."""
    return graphs.gated_graph(graphs.Gated())


def test_repository_crud_round_trip(client: TestClient, tokens: Tokens) -> None:
    body = {
        "name": "team/service",
        "clone_url": "https://gitlab.internal/team/service.git",
        "forge_kind": "gitlab",
        "default_branch": "develop",
        "settings": {"test_command": "pytest -q"},
    }
    created = client.post("/api/v1/repositories", json=body, headers=auth(tokens.admin))
    assert created.status_code == 201
    repo = created.json()
    assert {k: repo[k] for k in body} == body
    got = client.get(f"/api/v1/repositories/{repo['id']}", headers=auth(tokens.viewer)).json()
    assert got == repo
    patched = client.patch(
        f"/api/v1/repositories/{repo['id']}",
        json={"settings": {"test_command": "make test"}},
        headers=auth(tokens.admin),
    ).json()
    assert patched["settings"] == {"test_command": "make test"}
    assert patched["default_branch"] == "develop"
    listed = client.get("/api/v1/repositories", headers=auth(tokens.viewer)).json()
    assert [r["name"] for r in listed] == ["team/service"]
    assert (
        client.delete(f"/api/v1/repositories/{repo['id']}", headers=auth(tokens.admin)).status_code
        == 204
    )
    assert (
        client.get(f"/api/v1/repositories/{repo['id']}", headers=auth(tokens.admin)).status_code
        == 404
    )


def test_duplicate_name_is_409(client: TestClient, tokens: Tokens) -> None:
    body = {"name": "dup", "clone_url": "/srv/dup.git"}
    assert (
        client.post("/api/v1/repositories", json=body, headers=auth(tokens.admin)).status_code
        == 201
    )
    r = client.post("/api/v1/repositories", json=body, headers=auth(tokens.admin))
    assert r.status_code == 409
    assert "exists already" in r.json()["message"]


def test_invalid_repository_payload_is_422(client: TestClient, tokens: Tokens) -> None:
    r = client.post(
        "/api/v1/repositories",
        json={"name": "bad name!", "clone_url": "", "forge_kind": "svn"},
        headers=auth(tokens.admin),
    )
    assert r.status_code == 422
    fields = {f["field"] for f in r.json()["fields"]}
    assert {"name", "clone_url", "forge_kind"} <= fields


def test_delete_refused_while_tasks_are_active(client: TestClient, tokens: Tokens) -> None:
    repo = client.post(
        "/api/v1/repositories",
        json={"name": "busy", "clone_url": "/x.git"},
        headers=auth(tokens.admin),
    ).json()
    task_id = client.post(
        "/api/v1/tasks",
        json={"repository_id": repo["id"], "prompt": "block"},
        headers=auth(tokens.dev),
    ).json()["task_id"]
    r = client.delete(f"/api/v1/repositories/{repo['id']}", headers=auth(tokens.admin))
    assert r.status_code == 409
    assert "1 active task" in r.json()["message"]
    assert (
        client.get(f"/api/v1/repositories/{repo['id']}", headers=auth(tokens.admin)).status_code
        == 200
    )
    assert client.get(f"/api/v1/tasks/{task_id}", headers=auth(tokens.admin)).json()["status"] in {
        "queued",
        "preparing",
    }


def test_delete_removes_a_repository_whose_tasks_are_all_finished(
    client: TestClient, tokens: Tokens, settings: Settings
) -> None:
    repo = client.post(
        "/api/v1/repositories",
        json={"name": "old", "clone_url": "/old.git"},
        headers=auth(tokens.admin),
    ).json()
    task_ids = [
        client.post(
            "/api/v1/tasks",
            json={"repository_id": repo["id"], "prompt": f"change {n}"},
            headers=auth(tokens.dev),
        ).json()["task_id"]
        for n in range(2)
    ]
    for task_id in task_ids:
        _wait_status(client, tokens.viewer, task_id, "done")
    r = client.delete(f"/api/v1/repositories/{repo['id']}", headers=auth(tokens.admin))
    assert r.status_code == 204, r.text
    assert (
        client.get(f"/api/v1/repositories/{repo['id']}", headers=auth(tokens.admin)).status_code
        == 404
    )
    for task_id in task_ids:
        assert client.get(f"/api/v1/tasks/{task_id}", headers=auth(tokens.admin)).status_code == 404
    listed = client.get(
        "/api/v1/tasks", params={"repository_id": repo["id"]}, headers=auth(tokens.admin)
    ).json()
    assert listed["total"] == 0
    db = client.app.state.appliance.db  # type: ignore[attr-defined]
    with db.session() as s:
        assert s.exec(select(TaskEvent).where(col(TaskEvent.task_id).in_(task_ids))).all() == []
        assert s.exec(select(Checkpoint).where(col(Checkpoint.task_id).in_(task_ids))).all() == []
        (deleted,) = audit.read(s, action="repository.delete")
        kept = audit.read(s, subject=f"task:{task_ids[0]}")
        result = audit.verify(s, anchor=settings.data_dir / "audit-head")
    assert deleted.actor == "root"
    assert deleted.details == {"name": "old", "finished_tasks_removed": 2}
    assert [r.action for r in kept[:2]] == ["task.create", "task.transition"]  # history stays
    assert result.ok


def _wait_status(client: TestClient, token: str, task_id: str, status: str) -> None:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        task = client.get(f"/api/v1/tasks/{task_id}", headers=auth(token)).json()
        if task["status"] == status:
            return
        time.sleep(0.02)
    raise AssertionError(f"task never reached {status}: {task}")
