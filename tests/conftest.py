"""Shared fixtures. One autouse fixture isolates all state through the data dir."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from appliance.api import create_app
from appliance.config import Settings, load_settings
from appliance.runner import Graph
from appliance.store import migrate
from appliance.store import users as user_store
from appliance.store.db import Database
from appliance.store.models import Role
from tests import graphs
from tests.servers import ServerProcess


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in list(os.environ):
        if name.startswith("APPLIANCE_"):
            monkeypatch.delenv(name)
    data_dir = tmp_path / "var"
    monkeypatch.setenv("APPLIANCE_DATA_DIR", str(data_dir))
    monkeypatch.setenv("APPLIANCE_DEV_MODE", "1")
    # Each app start would otherwise sweep the host's sandboxes; the tests that are
    # about that sweep turn it back on.
    monkeypatch.setenv("APPLIANCE_SANDBOX__CLEANUP_ON_START", "0")
    monkeypatch.setenv("APPLIANCE_MODELS__CPU_FALLBACK", "0")
    return data_dir


@pytest.fixture
def settings() -> Settings:
    return load_settings()


@pytest.fixture
def db(settings: Settings) -> Iterator[Database]:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    database = Database(settings.database_url)
    migrate.upgrade(database.engine)
    yield database
    database.dispose()


@dataclass
class Tokens:
    admin: str
    dev: str
    dev2: str
    viewer: str


def make_tokens(db: Database) -> Tokens:
    clear: dict[str, str] = {}
    with db.write() as s:
        for name, role in (
            ("root", Role.admin),
            ("dana", Role.developer),
            ("dave", Role.developer),
            ("vera", Role.viewer),
        ):
            user_store.create_user(s, username=name, role=role, password=None, actor="test")
            clear[name], _ = user_store.create_token(
                s, username=name, name="t", role=None, expires_in=None, actor="test"
            )
    return Tokens(clear["root"], clear["dana"], clear["dave"], clear["vera"])


@pytest.fixture
def graph() -> Graph:
    return graphs.scripted_graph()


@pytest.fixture
def client(settings: Settings, graph: Graph) -> Iterator[TestClient]:
    app = create_app(settings, graph=graph)
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def tokens(client: TestClient) -> Tokens:
    return make_tokens(client.app.state.appliance.db)  # type: ignore[attr-defined]


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def gate_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "gates"
    path.mkdir()
    monkeypatch.setenv("APPLIANCE_TEST_GATE_DIR", str(path))
    return path


@pytest.fixture
def server_tokens(db: Database) -> Tokens:
    """Users and tokens in the data dir an `appliance serve` subprocess will use."""
    return make_tokens(db)


@pytest.fixture
def blocking_server(
    server_tokens: Tokens, gate_dir: Path, tmp_path: Path
) -> Iterator[ServerProcess]:
    server = ServerProcess(
        {"APPLIANCE_RUNNER__GRAPH": "tests.graphs:blocking_graph"}, tmp_path / "server.log"
    )
    with server:
        yield server
