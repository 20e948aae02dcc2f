"""Crash recovery: kill -9 the server mid-task, restart it, the task resumes and ends."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from appliance.client import ApiClient
from appliance.config import Settings
from appliance.store import audit
from appliance.store import tasks as task_store
from appliance.store.db import Database
from tests.conftest import Tokens
from tests.servers import REPO_ROOT, ServerProcess

pytestmark = pytest.mark.slow


def _wait(
    api: ApiClient, task_id: str, predicate: object, timeout: float = 20
) -> dict[str, object]:
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        task = api.request("GET", f"/tasks/{task_id}")
        if predicate(task):
            return dict(task)
        time.sleep(0.05)
    raise AssertionError(f"condition not met; task is {task}")


def test_task_resumes_from_checkpoint_after_kill_9(
    server_tokens: Tokens, gate_dir: Path, tmp_path: Path, settings: Settings, db: Database
) -> None:
    env = {"APPLIANCE_RUNNER__GRAPH": "tests.graphs:blocking_graph"}
    first = ServerProcess(env, tmp_path / "server1.log").start()
    try:
        api = ApiClient(first.url, server_tokens.admin)
        repo = api.request("POST", "/repositories", json={"name": "demo", "clone_url": "/x.git"})
        task_id = api.request("POST", "/tasks", json={"repository_id": repo["id"], "prompt": "go"})[
            "task_id"
        ]
        _wait(api, task_id, lambda t: t["status"] == "implementing")
        # Wait for the node's own event, so the kill lands while it blocks.
        for ev in api.events(task_id):
            if ev.event == "log" and ev.data["payload"] == {"message": "waiting at the gate"}:
                break
        api.close()
    finally:
        first.kill9()

    second = ServerProcess(env, tmp_path / "server2.log", port=first.port).start()
    try:
        api = ApiClient(second.url, server_tokens.admin)
        assert api.request("GET", f"/tasks/{task_id}")["status"] == "implementing"
        (gate_dir / task_id).touch()
        task = _wait(api, task_id, lambda t: t["status"] in {"done", "failed", "cancelled"})
        api.close()
    finally:
        second.stop()
    assert task["status"] == "done", second.log()

    with db.session() as s:
        events = task_store.events_after(s, task_id, 0)
        records = audit.read(s, subject=f"task:{task_id}")
    seqs = [e.seq for e in events]
    assert seqs == list(range(1, len(seqs) + 1))
    logs = [e.payload["message"] for e in events if e.kind == "log"]
    # preparing ran once; the gate node re-ran but its keyed event was not repeated.
    assert logs == ["preparing ran", "planning ran", "waiting at the gate", "validating ran"]
    statuses = [e.payload["status"] for e in events if e.kind == "status"]
    assert statuses == ["queued", "preparing", "planning", "implementing", "validating", "done"]
    assert [e.payload["step"] for e in events if e.kind == "resumed"] == ["implementing"]
    assert [r.action for r in records].count("task.resume") == 1

    verify = subprocess.run(
        [sys.executable, "-m", "appliance", "audit", "verify"],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        check=False,
    )
    assert verify.returncode == 0, verify.stderr
    assert "audit chain intact" in verify.stdout
