from __future__ import annotations

import time
from typing import Any

from fastapi.testclient import TestClient

from appliance.store import audit
from tests.conftest import Tokens, auth


def _repo(client: TestClient, tokens: Tokens, name: str = "demo") -> int:
    r = client.post(
        "/api/v1/repositories",
        json={"name": name, "clone_url": f"/srv/git/{name}.git"},
        headers=auth(tokens.admin),
    )
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def _submit(client: TestClient, token: str, repo_id: int, **extra: Any) -> dict[str, Any]:
    body = {"repository_id": repo_id, "prompt": "add a --verbose flag", **extra}
    r = client.post("/api/v1/tasks", json=body, headers=auth(token))
    assert r.status_code == 201, r.text
    return dict(r.json())


def _wait_status(client: TestClient, token: str, task_id: str, status: str) -> dict[str, Any]:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        task = client.get(f"/api/v1/tasks/{task_id}", headers=auth(token)).json()
        if task["status"] == status:
            return dict(task)
        time.sleep(0.02)
    raise AssertionError(f"task never reached {status}: {task}")


def test_submit_returns_201_queued_and_task_runs_to_done(
    client: TestClient, tokens: Tokens
) -> None:
    repo_id = _repo(client, tokens)
    created = _submit(
        client,
        tokens.dev,
        repo_id,
        constraints={"avoid_files": ["migrations/"], "max_files_changed": 3},
        priority="urgent",
    )
    assert created["status"] == "queued"
    task = _wait_status(client, tokens.viewer, created["task_id"], "done")
    assert task["constraints"] == {
        "avoid_files": ["migrations/"],
        "max_files_changed": 3,
        "notes": [],
    }
    assert task["priority"] == "urgent"
    assert task["created_by"] == "dana"
    assert task["step"] == "implementing"
    assert task["links"]["events"] == f"/api/v1/tasks/{created['task_id']}/events"


def test_list_filters_by_status_and_repository_and_paginates(
    client: TestClient, tokens: Tokens
) -> None:
    a = _repo(client, tokens, "alpha")
    b = _repo(client, tokens, "beta")
    ids = [_submit(client, tokens.dev, a)["task_id"] for _ in range(3)]
    other = _submit(client, tokens.dev, b)["task_id"]
    for task_id in [*ids, other]:
        _wait_status(client, tokens.dev, task_id, "done")
    page = client.get(
        "/api/v1/tasks", params={"repository_id": a, "limit": 2}, headers=auth(tokens.viewer)
    ).json()
    assert page["total"] == 3
    assert len(page["items"]) == 2
    page2 = client.get(
        "/api/v1/tasks",
        params={"repository_id": a, "limit": 2, "offset": 2},
        headers=auth(tokens.viewer),
    ).json()
    seen = {t["id"] for t in page["items"]} | {t["id"] for t in page2["items"]}
    assert seen == set(ids)
    done = client.get(
        "/api/v1/tasks", params={"status": ["done", "failed"]}, headers=auth(tokens.viewer)
    ).json()
    assert done["total"] == 4
    queued = client.get("/api/v1/tasks", params={"status": "queued"}, headers=auth(tokens.viewer))
    assert queued.json()["total"] == 0


def test_missing_token_is_401_with_a_message(client: TestClient) -> None:
    r = client.get("/api/v1/tasks")
    assert r.status_code == 401
    assert r.json()["error"] == "unauthenticated"
    assert "Bearer" in r.json()["message"]
    r = client.get("/api/v1/tasks", headers=auth("apl_not-a-real-token-at-all"))
    assert r.status_code == 401
    assert "not known" in r.json()["message"]


def test_viewer_cannot_submit_and_developer_cannot_manage_repositories(
    client: TestClient, tokens: Tokens
) -> None:
    repo_id = _repo(client, tokens)
    r = client.post(
        "/api/v1/tasks", json={"repository_id": repo_id, "prompt": "x"}, headers=auth(tokens.viewer)
    )
    assert r.status_code == 403
    assert "developer role" in r.json()["message"]
    r = client.post(
        "/api/v1/repositories", json={"name": "x", "clone_url": "/x"}, headers=auth(tokens.dev)
    )
    assert r.status_code == 403
    r = client.delete(f"/api/v1/repositories/{repo_id}", headers=auth(tokens.dev))
    assert r.status_code == 403


def test_developer_cancels_only_own_tasks_admin_any(client: TestClient, tokens: Tokens) -> None:
    repo_id = _repo(client, tokens)
    task_id = _submit(client, tokens.dev, repo_id)["task_id"]
    _wait_status(client, tokens.dev, task_id, "done")
    r = client.post(f"/api/v1/tasks/{task_id}/cancel", headers=auth(tokens.dev2))
    assert r.status_code == 403
    assert "belongs to dana" in r.json()["message"]
    r = client.post(f"/api/v1/tasks/{task_id}/cancel", headers=auth(tokens.admin))
    assert r.status_code == 409
    assert "already done" in r.json()["message"]


def test_invalid_payloads_get_field_level_422(client: TestClient, tokens: Tokens) -> None:
    repo_id = _repo(client, tokens)
    cases: list[tuple[Any, str]] = [
        ({"prompt": "x"}, "repository_id"),
        ({"repository_id": repo_id, "prompt": "   "}, "prompt"),
        ({"repository_id": repo_id, "prompt": "x", "priority": "asap"}, "priority"),
        ({"repository_id": "one", "prompt": "x"}, "repository_id"),
        (
            {"repository_id": repo_id, "prompt": "x", "constraints": {"max_files_changed": 0}},
            "constraints.max_files_changed",
        ),
        (
            {"repository_id": repo_id, "prompt": "x", "constraints": {"avoid_files": ["../etc"]}},
            "constraints.avoid_files",
        ),
        ({"repository_id": 999, "prompt": "x"}, "repository_id"),
    ]
    for body, field in cases:
        r = client.post("/api/v1/tasks", json=body, headers=auth(tokens.dev))
        assert r.status_code == 422, (body, r.text)
        fields = [f["field"] for f in r.json()["fields"]]
        assert field in fields, (body, r.json())
    r = client.post(
        "/api/v1/tasks",
        content=b"{not json",
        headers={**auth(tokens.dev), "content-type": "application/json"},
    )
    assert r.status_code == 422
    assert "not valid JSON" in r.json()["message"]
    listed = client.get("/api/v1/tasks", headers=auth(tokens.dev)).json()
    assert listed["total"] == 0  # nothing half-written


def test_over_long_prompt_says_the_limit_and_writes_nothing(
    client: TestClient, tokens: Tokens
) -> None:
    repo_id = _repo(client, tokens)
    r = client.post(
        "/api/v1/tasks",
        json={"repository_id": repo_id, "prompt": "y" * 20_001},
        headers=auth(tokens.dev),
    )
    assert r.status_code == 422
    assert "limit is 20,000" in r.json()["message"]
    assert r.json()["fields"][0]["field"] == "prompt"
    appliance = client.app.state.appliance  # type: ignore[attr-defined]
    with appliance.db.session() as s:
        assert [r.action for r in audit.read(s, action="task.create")] == []


def test_unknown_ids_are_404(client: TestClient, tokens: Tokens) -> None:
    for path in (
        "/api/v1/tasks/nope",
        "/api/v1/tasks/nope/events",
        "/api/v1/repositories/42",
        "/api/v1/nothing-here",
    ):
        r = client.get(path, headers=auth(tokens.admin))
        assert r.status_code == 404, path
        assert r.json()["error"] == "not_found"
    assert client.post("/api/v1/tasks/nope/cancel", headers=auth(tokens.admin)).status_code == 404


def test_every_state_change_is_audited_and_chain_verifies(
    client: TestClient, tokens: Tokens
) -> None:
    repo_id = _repo(client, tokens)
    task_id = _submit(client, tokens.dev, repo_id)["task_id"]
    _wait_status(client, tokens.dev, task_id, "done")
    client.patch(
        f"/api/v1/repositories/{repo_id}",
        json={"default_branch": "dev"},
        headers=auth(tokens.admin),
    )
    appliance = client.app.state.appliance  # type: ignore[attr-defined]
    with appliance.db.session() as s:
        actions = [(r.actor, r.action) for r in audit.read(s) if r.actor != "test"]
        assert audit.verify(s).ok
    assert ("root", "repository.create") in actions
    assert ("dana", "task.create") in actions
    assert ("root", "repository.update") in actions
    transitions = [a for a in actions if a[1] == "task.transition"]
    assert len(transitions) == 4  # preparing, planning, implementing, done
