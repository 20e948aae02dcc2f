"""Indexing and searching a repository through the API, in the background."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import Tokens, auth
from tests.index.shop_repo import TRACEBACK, make_shop


@pytest.fixture(autouse=True)
def _lexical_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APPLIANCE_INDEX__EMBEDDER", "none")


def wait_indexed(client: TestClient, repo_id: int, token: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        body = client.get(f"/api/v1/repositories/{repo_id}/index", headers=auth(token)).json()
        if not body["refresh"]["running"]:
            return dict(body)
        time.sleep(0.1)
    raise AssertionError("indexing did not finish")


def test_index_in_the_background_then_search(
    client: TestClient, tokens: Tokens, tmp_path: Path
) -> None:
    shop = make_shop(tmp_path)
    repo = client.post(
        "/api/v1/repositories",
        json={"name": "shop", "clone_url": shop.url},
        headers=auth(tokens.admin),
    ).json()
    early = client.get(f"/api/v1/repositories/{repo['id']}/search", params={"q": "x"},
                       headers=auth(tokens.viewer))  # fmt: skip
    assert early.status_code == 409
    assert "no index yet" in early.json()["message"]

    refused = client.post(f"/api/v1/repositories/{repo['id']}/index", headers=auth(tokens.dev))
    assert refused.status_code == 403  # admins index
    started = client.post(f"/api/v1/repositories/{repo['id']}/index", headers=auth(tokens.admin))
    assert started.status_code == 202
    body = wait_indexed(client, repo["id"], tokens.viewer)
    assert body["refresh"]["error"] is None
    assert body["index"]["files"] == 10  # the catalogue minus binary, vendored and the link

    hits = client.get(
        f"/api/v1/repositories/{repo['id']}/search",
        params={"q": TRACEBACK, "k": 3},
        headers=auth(tokens.viewer),
    ).json()
    assert hits[0]["path"] == "shop/orders.py"
    assert "named in the request" in hits[0]["reasons"]


def test_a_bad_remote_is_reported_on_the_status(client: TestClient, tokens: Tokens) -> None:
    repo = client.post(
        "/api/v1/repositories",
        json={"name": "gone", "clone_url": "file:///nonexistent/repo.git"},
        headers=auth(tokens.admin),
    ).json()
    client.post(f"/api/v1/repositories/{repo['id']}/index", headers=auth(tokens.admin))
    body = wait_indexed(client, repo["id"], tokens.viewer)
    assert "nonexistent" in str(body["refresh"]["error"])
    assert body["index"] is None
