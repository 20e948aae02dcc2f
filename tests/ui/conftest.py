"""Fixtures of the web UI tests: users with passwords, signed-in clients, a repository."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from appliance.runner import Graph
from appliance.store import repositories as repo_store
from appliance.store import tasks as task_store
from appliance.store import users as user_store
from appliance.store.db import Database
from appliance.store.models import RepositoryCreate, Role
from tests.ui.graph import ui_graph

PASSWORD = "correct horse battery"
USERS = {"root": Role.admin, "dana": Role.developer, "dave": Role.developer, "vera": Role.viewer}


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "the page has no CSRF token"
    return found.group(1)


def make_users(db: Database) -> None:
    with db.write() as s:
        for name, role in USERS.items():
            user_store.create_user(s, username=name, role=role, password=PASSWORD, actor="test")


def sign_in(client: TestClient, username: str, password: str = PASSWORD) -> str:
    """Sign in (dropping any earlier session); returns the session's CSRF token."""
    client.cookies.clear()
    page = client.get("/login")
    resp = client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert resp.status_code == 303, resp.text
    return csrf_of(client.get("/").text)


@dataclass
class Ui:
    client: TestClient
    db: Database
    repo_id: int

    def as_user(self, username: str) -> str:
        return sign_in(self.client, username)


@pytest.fixture
def ui(client: TestClient) -> Ui:
    db: Database = client.app.state.appliance.db  # type: ignore[attr-defined]
    make_users(db)
    with db.write() as s:
        repo = repo_store.create_repository(
            s,
            repo_in=RepositoryCreate(name="team/svc", clone_url="/nowhere/svc.git"),
            actor="test",
        )
    assert repo.id is not None
    return Ui(client=client, db=db, repo_id=repo.id)


@pytest.fixture
def graph() -> Graph:
    return ui_graph()


def wait_status(db: Database, task_id: str, *statuses: str, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        with db.session() as s:
            status = task_store.get_task(s, task_id).status.value
        if status in statuses:
            return status
        if time.monotonic() > deadline:
            raise AssertionError(f"task {task_id} is {status}, not {statuses}")
        time.sleep(0.02)


def submit(ui: Ui, prompt: str, csrf: str) -> str:
    resp = ui.client.post(
        "/tasks/new",
        data={
            "csrf_token": csrf,
            "repository_id": str(ui.repo_id),
            "prompt": prompt,
            "priority": "normal",
        },
        follow_redirects=False,
    )
    assert resp.status_code == 303, resp.text
    return str(resp.headers["location"]).rsplit("/", 1)[-1]


def big_diff(files: int, per_file: int) -> str:
    """``files`` files of ``per_file`` changed lines each (2 diff lines a change)."""
    out = []
    for f in range(files):
        out += [
            f"diff --git a/pkg/mod{f}.py b/pkg/mod{f}.py",
            f"--- a/pkg/mod{f}.py",
            f"+++ b/pkg/mod{f}.py",
            f"@@ -1,{per_file} +1,{per_file} @@",
        ]
        for i in range(per_file):
            out += [f"-def f{i}(x): return {i}", f"+def f{i}(x): return {i + 1}"]
    return "\n".join(out) + "\n"


def ui_routes(method: str) -> list[str]:
    """Every path of the UI's routers that answers ``method`` (for RBAC/CSRF sweeps)."""
    from fastapi.routing import APIRoute

    from ui.routes import (
        admin,
        analytics,
        audit,
        auth,
        dashboard,
        jobs,
        models,
        repositories,
        review,
        tasks,
    )

    modules = (auth, dashboard, tasks, review, repositories, models, audit, admin, jobs, analytics)
    return sorted(
        route.path
        for module in modules
        for route in module.router.routes
        if isinstance(route, APIRoute) and method in (route.methods or set())
    )
