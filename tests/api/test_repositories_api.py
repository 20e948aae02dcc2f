from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from appliance.runner import Graph
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
