"""Forge webhooks: signatures checked against the repository's secret; a rejection is a 401
with an audit record and changes no task."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from fastapi.testclient import TestClient

from appliance.store import audit
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


def test_bad_or_missing_signature_is_401_with_an_audit_record(
    client: TestClient, tokens: Tokens
) -> None:
    add_repo(client, tokens, "github", webhook_secret=SECRET)
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
    assert client.get("/api/v1/tasks", headers=auth(tokens.viewer)).json()["total"] == 0


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
