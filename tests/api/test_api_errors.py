"""The 4xx paths of the API: expired tokens, unknown ids, bad bodies and queries, roles."""

from __future__ import annotations

import time
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlmodel import select

from appliance.store import users as user_store
from appliance.store.db import Database
from appliance.store.models import ApiToken, utcnow
from tests.conftest import Tokens, auth


def _db(client: TestClient) -> Database:
    db: Database = client.app.state.appliance.db  # type: ignore[attr-defined]
    return db


def _repo(client: TestClient, tokens: Tokens, name: str = "demo") -> int:
    r = client.post(
        "/api/v1/repositories",
        json={"name": name, "clone_url": f"/srv/git/{name}.git"},
        headers=auth(tokens.admin),
    )
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def _expiring_token(client: TestClient, username: str, days: int) -> str:
    """What `appliance token create USERNAME --expires-days N` makes."""
    with _db(client).write() as s:
        clear, _ = user_store.create_token(
            s,
            username=username,
            name="expiring",
            role=None,
            expires_in=timedelta(days=days),
            actor="test",
        )
    return clear


def test_token_with_an_expiry_works_until_it_expires(client: TestClient, tokens: Tokens) -> None:
    token = _expiring_token(client, "vera", days=30)
    r = client.get("/api/v1/tasks", headers=auth(token))
    assert r.status_code == 200, r.text
    assert r.json()["total"] == 0


def test_expired_token_is_401_saying_it_expired(client: TestClient, tokens: Tokens) -> None:
    token = _expiring_token(client, "dana", days=1)
    with _db(client).write() as s:  # a day and a minute go by
        row = s.exec(select(ApiToken).where(ApiToken.name == "expiring")).one()
        row.expires_at = utcnow() - timedelta(minutes=1)
        s.add(row)
    r = client.get("/api/v1/tasks", headers=auth(token))
    assert r.status_code == 401
    assert r.json()["error"] == "unauthenticated"
    assert "expired" in r.json()["message"]
    assert r.headers["www-authenticate"] == "Bearer"
    # the other tokens still work
    assert client.get("/api/v1/tasks", headers=auth(tokens.dev)).status_code == 200


def test_patch_and_delete_of_an_unknown_repository_are_404(
    client: TestClient, tokens: Tokens
) -> None:
    r = client.patch(
        "/api/v1/repositories/4242", json={"default_branch": "dev"}, headers=auth(tokens.admin)
    )
    assert r.status_code == 404
    assert r.json() == {"error": "not_found", "message": "No repository has id 4242."}
    r = client.patch(
        "/api/v1/repositories/4242",
        json={"settings": {"test_command": "make test"}},
        headers=auth(tokens.admin),
    )
    assert r.status_code == 404
    r = client.delete("/api/v1/repositories/4242", headers=auth(tokens.admin))
    assert r.status_code == 404
    assert r.json()["message"] == "No repository has id 4242."


def test_invalid_repository_patch_is_422_per_field_and_changes_nothing(
    client: TestClient, tokens: Tokens
) -> None:
    repo_id = _repo(client, tokens)
    r = client.patch(
        f"/api/v1/repositories/{repo_id}",
        json={"default_branch": "", "forge_kind": "svn", "settings": "not an object"},
        headers=auth(tokens.admin),
    )
    assert r.status_code == 422
    body = r.json()
    assert body["error"] == "validation_error"
    fields = {f["field"]: f["message"] for f in body["fields"]}
    assert set(fields) == {"default_branch", "forge_kind", "settings"}
    assert "at least 1 character" in fields["default_branch"]
    assert "'git', 'github' or 'gitlab'" in fields["forge_kind"]
    assert "default_branch" in body["message"]
    got = client.get(f"/api/v1/repositories/{repo_id}", headers=auth(tokens.viewer)).json()
    assert got["default_branch"] == "main"
    assert got["forge_kind"] == "git"


def test_bad_list_queries_are_422_naming_the_parameter(client: TestClient, tokens: Tokens) -> None:
    for params, field, words in (
        ({"status": "bogus"}, "status.0", "'queued'"),
        ({"limit": "0"}, "limit", "greater than or equal to 1"),
        ({"limit": "201"}, "limit", "less than or equal to 200"),
        ({"offset": "-1"}, "offset", "greater than or equal to 0"),
        ({"repository_id": "one"}, "repository_id", "valid integer"),
    ):
        r = client.get("/api/v1/tasks", params=params, headers=auth(tokens.viewer))
        assert r.status_code == 422, (params, r.text)
        fields = {f["field"]: f["message"] for f in r.json()["fields"]}
        assert field in fields, (params, fields)
        assert words in fields[field], (params, fields)


def test_non_integer_last_event_id_is_422(client: TestClient, tokens: Tokens) -> None:
    repo_id = _repo(client, tokens)
    task_id = client.post(
        "/api/v1/tasks", json={"repository_id": repo_id, "prompt": "go"}, headers=auth(tokens.dev)
    ).json()["task_id"]
    for value in ("abc", "-1", "1.5"):
        r = client.get(
            f"/api/v1/tasks/{task_id}/events",
            headers={**auth(tokens.viewer), "Last-Event-ID": value},
        )
        assert r.status_code == 422, (value, r.text)
        assert r.headers["content-type"] == "application/json"
        assert [f["field"] for f in r.json()["fields"]] == ["last-event-id"]


def test_viewer_cannot_cancel_and_developer_cannot_patch_repositories(
    client: TestClient, tokens: Tokens
) -> None:
    repo_id = _repo(client, tokens)
    task_id = client.post(
        "/api/v1/tasks", json={"repository_id": repo_id, "prompt": "go"}, headers=auth(tokens.dev)
    ).json()["task_id"]
    r = client.post(f"/api/v1/tasks/{task_id}/cancel", headers=auth(tokens.viewer))
    assert r.status_code == 403
    assert r.json() == {
        "error": "forbidden",
        "message": "This needs the developer role; your token has viewer.",
    }
    r = client.patch(
        f"/api/v1/repositories/{repo_id}",
        json={"default_branch": "dev"},
        headers=auth(tokens.dev),
    )
    assert r.status_code == 403
    assert "admin role" in r.json()["message"]
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:  # the task was not cancelled: it runs to its end
        task = client.get(f"/api/v1/tasks/{task_id}", headers=auth(tokens.viewer)).json()
        if task["status"] == "done":
            break
        time.sleep(0.02)
    assert task["status"] == "done"
    repo = client.get(f"/api/v1/repositories/{repo_id}", headers=auth(tokens.viewer)).json()
    assert repo["default_branch"] == "main"
