"""Forge webhooks: signatures checked against the repository's secret; a rejection is a 401
with an audit record and changes no task."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

from fastapi.testclient import TestClient

from appliance.forges.feedback import PR_OPENED_KEY
from appliance.store import audit
from appliance.store import tasks as task_store
from tests.conftest import Tokens, auth
from tests.forges.fakeforge import FIXTURES

SECRET = "s3cret-for-the-hook"


def add_repo(client: TestClient, tokens: Tokens, kind: str, **settings: Any) -> dict[str, Any]:
    created = client.post(
        "/api/v1/repositories",
        json={
            "name": f"widgets-{kind}",
            "clone_url": "https://forge.example/acme/widgets.git",
            "forge_kind": kind,
            "settings": settings,
        },
        headers=auth(tokens.admin),
    )
    assert created.status_code == 201, created.text
    return dict(created.json())


def github_body() -> bytes:
    return (FIXTURES / "webhooks/github_review_comment.json").read_bytes()


def sign(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def rejections(client: TestClient) -> list[dict[str, Any]]:
    db = client.app.state.appliance.db  # type: ignore[attr-defined]
    with db.session() as session:
        return [audit.to_json(r) for r in audit.iter_all(session) if r.action == "webhook.rejected"]


def post_github(client: TestClient, body: bytes, signature: str | None) -> Any:
    headers = {"X-GitHub-Event": "pull_request_review_comment"}
    if signature is not None:
        headers["X-Hub-Signature-256"] = signature
    return client.post("/api/v1/webhooks/github", content=body, headers=headers)


def test_valid_github_signature_is_accepted(client: TestClient, tokens: Tokens) -> None:
    repo = add_repo(client, tokens, "github", webhook_secret=SECRET)
    assert repo["settings"]["webhook_secret"] == "set (not shown)"
    assert SECRET not in json.dumps(repo)
    answer = post_github(client, github_body(), sign(github_body()))
    assert answer.status_code == 202, answer.text
    # verified, but PR #7 was not opened by the appliance: acknowledged, nothing to do
    assert answer.json() == {
        "status": "ignored",
        "reason": "not a pull request the appliance opened",
    }
    assert rejections(client) == []


def done_task_with_pr_7(client: TestClient, tokens: Tokens, repo: dict[str, Any]) -> str:
    """A finished task that opened PR #7, the PR of the webhook fixtures."""
    created = client.post(
        "/api/v1/tasks",
        json={"repository_id": repo["id"], "prompt": "Add JWT middleware"},
        headers=auth(tokens.dev),
    )
    assert created.status_code == 201, created.text
    task_id = str(created.json()["task_id"])
    deadline = time.monotonic() + 30
    while task(client, tokens, task_id)["status"] != "done":
        assert time.monotonic() < deadline, task(client, tokens, task_id)
        time.sleep(0.05)
    db = client.app.state.appliance.db  # type: ignore[attr-defined]
    with db.write() as session:  # what publishing records when it opens a PR
        task_store.add_event(
            session,
            task_id=task_id,
            kind="published",
            payload={"pr": 7, "url": "https://forge.example/acme/widgets/pull/7",
                     "branch": "appliance/20240501-0930-add-jwt-middleware"},
            key=PR_OPENED_KEY,
        )  # fmt: skip
    return task_id


def task(client: TestClient, tokens: Tokens, task_id: str) -> dict[str, Any]:
    return dict(client.get(f"/api/v1/tasks/{task_id}", headers=auth(tokens.viewer)).json())


def task_events(client: TestClient, tokens: Tokens, task_id: str) -> list[dict[str, Any]]:
    page = client.get(
        f"/api/v1/tasks/{task_id}/events/page", params={"limit": 1000}, headers=auth(tokens.viewer)
    )
    return list(page.json()["events"])


def test_bad_or_missing_signature_is_401_with_an_audit_record(
    client: TestClient, tokens: Tokens
) -> None:
    repo = add_repo(client, tokens, "github", webhook_secret=SECRET)
    task_id = done_task_with_pr_7(client, tokens, repo)
    before, events_before = task(client, tokens, task_id), task_events(client, tokens, task_id)
    body = github_body()
    for signature in (sign(body, "wrong-secret"), None, "sha1=abc"):
        answer = post_github(client, body, signature)
        assert answer.status_code == 401, answer.text
        assert "webhook rejected: the signature does not match" in answer.json()["message"]
    tampered = body.replace(b"token expiry", b"token EXPIRY")
    assert post_github(client, tampered, sign(body)).status_code == 401
    found = rejections(client)
    assert len(found) == 4
    assert found[0]["details"]["repository"] == "acme/widgets"
    assert found[0]["details"]["reason"] == "the signature does not match"
    after = task(client, tokens, task_id)
    assert (after["status"], after["updated_at"]) == ("done", before["updated_at"])
    assert task_events(client, tokens, task_id) == events_before  # no review_feedback
    # the same comment, signed right, does reach the task: it was a task the hook could move
    accepted = post_github(client, body, sign(body))
    assert accepted.status_code == 202, accepted.text
    assert accepted.json() == {"status": "follow_up", "task_id": task_id}
    kinds = [e["kind"] for e in task_events(client, tokens, task_id)]
    assert kinds.count("review_feedback") == 1


def test_unknown_repository_or_no_secret_is_rejected(client: TestClient, tokens: Tokens) -> None:
    body = github_body()
    assert post_github(client, body, sign(body)).status_code == 401  # nobody registered it
    add_repo(client, tokens, "github")  # no webhook secret: accepts nothing
    answer = post_github(client, body, sign(body, ""))
    assert answer.status_code == 401
    reasons = [r["details"]["reason"] for r in rejections(client)]
    assert reasons == [
        "no registered repository matches the payload",
        "repository widgets-github has no webhook secret",
    ]


def test_gitlab_token_is_compared_with_the_repository_secret(
    client: TestClient, tokens: Tokens
) -> None:
    add_repo(client, tokens, "gitlab", webhook_secret=SECRET)
    body = (FIXTURES / "webhooks/gitlab_note_mr.json").read_bytes()
    good = client.post(
        "/api/v1/webhooks/gitlab",
        content=body,
        headers={"X-Gitlab-Token": SECRET, "X-Gitlab-Event": "Note Hook"},
    )
    assert good.status_code == 202, good.text
    assert good.json()["status"] == "ignored"
    bad = client.post("/api/v1/webhooks/gitlab", content=body, headers={"X-Gitlab-Token": "guess"})
    assert bad.status_code == 401
    assert [r["subject"] for r in rejections(client)] == ["webhook:gitlab"]
