"""``POST /repositories/{id}/index`` of a private repository behind a company CA, its
audit record, and the CA bundle check of the repository settings."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from fastapi.testclient import TestClient

from appliance.store import audit
from tests.conftest import Tokens, auth
from tests.gitrepos import Upstream, make_upstream
from tests.repos.gitserver import GitServer, git_server

TOKEN = "glpat-" + "Ap1IndexT0kenQwErTy7"


@pytest.fixture(autouse=True)
def _lexical_only_no_host_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APPLIANCE_INDEX__EMBEDDER", "none")
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def upstream(tmp_path: Path) -> Upstream:
    up = make_upstream(tmp_path)
    up.commit({"src/app.py": "def main():\n    return 'hello'\n", "README.md": "# x\n"}, "init")
    return up


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def server(upstream: Upstream, ca: trustme.CA) -> Iterator[GitServer]:
    with git_server(upstream.bare.parent, token=TOKEN, ca=ca) as found:
        yield found


def wait_indexed(client: TestClient, repo_id: int, token: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        body = client.get(f"/api/v1/repositories/{repo_id}/index", headers=auth(token)).json()
        if not body["refresh"]["running"]:
            return dict(body)
        time.sleep(0.1)
    raise AssertionError("indexing did not finish")


def test_indexing_a_private_repository_uses_its_token_and_ca_and_is_audited(
    client: TestClient,
    tokens: Tokens,
    upstream: Upstream,
    server: GitServer,
    ca: trustme.CA,
    tmp_path: Path,
) -> None:
    ca_file = tmp_path / "acme-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    repo = client.post(
        "/api/v1/repositories",
        json={
            "name": "private",
            "clone_url": server.url(upstream.bare),
            "settings": {"forge": {"token": TOKEN, "ca_bundle": str(ca_file)}},
        },
        headers=auth(tokens.admin),
    )
    assert repo.status_code == 201, repo.text
    repo_id = repo.json()["id"]

    started = client.post(f"/api/v1/repositories/{repo_id}/index", headers=auth(tokens.admin))
    assert started.status_code == 202, started.text
    body = wait_indexed(client, repo_id, tokens.viewer)
    assert body["refresh"]["error"] is None
    assert body["index"]["files"] == 2
    assert set(server.seen) == {server.expected}

    db = client.app.state.appliance.db  # type: ignore[attr-defined]
    with db.session() as s:
        (record,) = audit.read(s, action="repository.index")
    assert record.actor == "root"
    assert record.subject == f"repository:{repo_id}"
    assert record.details == {"name": "private", "full": False}


def test_a_refused_index_request_is_not_audited(
    client: TestClient, tokens: Tokens, upstream: Upstream
) -> None:
    repo = client.post(
        "/api/v1/repositories",
        json={"name": "plain", "clone_url": upstream.url},
        headers=auth(tokens.admin),
    ).json()
    refused = client.post(f"/api/v1/repositories/{repo['id']}/index", headers=auth(tokens.dev))
    assert refused.status_code == 403
    missing = client.post("/api/v1/repositories/999/index", headers=auth(tokens.admin))
    assert missing.status_code == 404
    db = client.app.state.appliance.db  # type: ignore[attr-defined]
    with db.session() as s:
        assert audit.read(s, action="repository.index") == []


def test_a_ca_bundle_that_does_not_exist_is_refused_with_its_path(
    client: TestClient, tokens: Tokens, tmp_path: Path
) -> None:
    missing = tmp_path / "no-such-ca.pem"
    body = {
        "name": "ghe",
        "clone_url": "https://ghe.acme.example/acme/widgets.git",
        "forge_kind": "github",
        "settings": {"forge": {"base_url": "https://ghe.acme.example/api/v3",
                               "ca_bundle": str(missing)}},
    }  # fmt: skip
    created = client.post("/api/v1/repositories", json=body, headers=auth(tokens.admin))
    assert created.status_code == 422
    message = created.json()["message"]
    assert str(missing) in message
    assert "forge.ca_bundle" in message
    assert client.get("/api/v1/repositories", headers=auth(tokens.admin)).json() == []

    body["settings"] = {"forge": {"base_url": "https://ghe.acme.example/api/v3"}}
    repo = client.post("/api/v1/repositories", json=body, headers=auth(tokens.admin)).json()
    patched = client.patch(
        f"/api/v1/repositories/{repo['id']}",
        json={"settings": {"forge": {"ca_bundle": str(missing)}}},
        headers=auth(tokens.admin),
    )
    assert patched.status_code == 422
    assert str(missing) in patched.json()["message"]
