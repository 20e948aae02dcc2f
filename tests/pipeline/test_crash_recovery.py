"""kill -9 of the appliance while a real task is implementing, and while it is validating:
the restarted appliance resumes the task from its checkpoint and brings it to the human
gate and, once approved, to done, without repeating what was recorded before the crash;
the audit chain still verifies."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from appliance.client import ApiClient
from appliance.store import tasks as task_store
from appliance.store.db import Database
from tests.conftest import Tokens
from tests.gitrepos import plain_git
from tests.models.scripted_server import Reply, ScriptedServer
from tests.pipeline.scenario import (
    EDIT,
    FINISH,
    PLAN,
    PR,
    READ,
    REQUEST,
    TEST,
    UNDERSTANDING,
    make_calc,
    reply,
)
from tests.servers import REPO_ROOT, ServerProcess

pytestmark = pytest.mark.slow

# The tests sleep once the fix is in, so that validation can be caught in the act (the
# baseline run, before the fix, is quick).
SLOW_TESTS = (
    "grep -q 'values) / len(values)$' calc/stats.py && sleep 6; "
    "python3 -m pytest -q -p no:cacheprovider --junitxml=$APPLIANCE_REPORT_DIR/junit.xml"
)


def _env(model: ScriptedServer) -> dict[str, str]:
    endpoint = {"base_url": model.url, "model": "coder", "context_length": 8192}
    return {
        "APPLIANCE_MODELS__ENDPOINTS": json.dumps([endpoint]),
        "APPLIANCE_INDEX__EMBEDDER": "none",
        "APPLIANCE_JOBS__ENABLED": "0",
    }


def _wait(
    api: ApiClient, task_id: str, predicate: Callable[[dict[str, Any]], bool], timeout: float = 60
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    task: dict[str, Any] = {}
    while time.monotonic() < deadline:
        task = dict(api.request("GET", f"/tasks/{task_id}"))
        if predicate(task):
            return task
        time.sleep(0.05)
    raise AssertionError(f"condition not met; task is {task}")


def _settled(task: dict[str, Any]) -> bool:
    return task["status"] in {"awaiting_approval", "failed", "done", "cancelled", "paused"}


def _remove_containers_of(task_id: str) -> None:
    """The killed appliance could not close the sandbox it had open: remove that one
    (only this task's; the next appliance start would sweep it)."""
    from podman.errors import APIError

    from sandbox.podman import LABEL, TASK_LABEL, PodmanSandbox

    sandbox = PodmanSandbox()
    deadline = time.monotonic() + 30
    try:
        filters = {"label": f"{TASK_LABEL}={task_id}"}
        while True:
            left = [
                c
                for c in sandbox.client.containers.list(all=True, filters=filters)
                if c.labels.get(LABEL) == "1"
            ]
            if not left:
                return
            try:
                for container in left:
                    container.remove(force=True)
            except APIError:  # it is removing itself (auto-remove, the start-up sweep)
                assert time.monotonic() < deadline, f"the sandbox of {task_id} stays"
                time.sleep(0.5)
    finally:
        sandbox.close()


def _crash_and_resume(
    tmp_path: Path,
    model: ScriptedServer,
    tokens: Tokens,
    *,
    settings: dict[str, Any],
    at: Callable[[ApiClient, str], None],
) -> tuple[str, ServerProcess]:
    """Run a task until ``at`` returns, kill -9 the appliance, start it again, and let the
    task reach the human gate and be approved. Returns the task id and the last server."""
    calc = make_calc(tmp_path)
    env = _env(model)
    first = ServerProcess(env, tmp_path / "server1.log").start()
    task_id = ""
    try:
        admin = ApiClient(first.url, tokens.admin)
        repo = admin.request(
            "POST",
            "/repositories",
            json={"name": "calc", "clone_url": calc.url, "settings": settings},
        )
        admin.close()
        with ApiClient(first.url, tokens.dev) as dev:
            created = dev.request(
                "POST", "/tasks", json={"repository_id": repo["id"], "prompt": REQUEST}
            )
            task_id = created["task_id"]
            at(dev, task_id)
    finally:
        first.kill9()

    second = ServerProcess(env, tmp_path / "server2.log", port=first.port).start()
    try:
        with ApiClient(second.url, tokens.viewer) as viewer:
            task = _wait(viewer, task_id, _settled)
            assert task["status"] == "awaiting_approval", second.log()
        with ApiClient(second.url, tokens.dev2) as reviewer:
            reviewer.request("POST", f"/tasks/{task_id}/approve")
            task = _wait(reviewer, task_id, lambda t: t["status"] in {"done", "failed"})
        assert task["status"] == "done", second.log()
    finally:
        second.stop()
        _remove_containers_of(task_id)
    branch = plain_git(calc.bare, "branch", "--list", "appliance/*").strip().lstrip("* ")
    assert "return sum(values) / len(values)" in plain_git(
        calc.bare, "show", f"{branch}:calc/stats.py"
    )
    return task_id, second


def _check_history(db: Database, task_id: str, *, resumed_at: str) -> list[Any]:
    with db.session() as s:
        evs = task_store.events_after(s, task_id, 0, limit=10_000)
    assert [e.seq for e in evs] == list(range(1, len(evs) + 1))
    keys = [e.key for e in evs if e.key is not None]
    assert len(keys) == len(set(keys))
    kinds = Counter(e.kind for e in evs)
    for kind in ("plan", "review_ready", "iteration", "waiting", "published"):
        assert kinds[kind] == 1, (kind, kinds)
    # resumed once after the crash; the runner also writes one when an approved task
    # goes on at publishing
    assert [e.payload["step"] for e in evs if e.kind == "resumed"] == [resumed_at, "publishing"]
    statuses = [e.payload["status"] for e in evs if e.kind == "status"]
    assert statuses == [
        "queued", "preparing", "planning", "implementing", "validating", "reviewing",
        "awaiting_approval", "publishing", "done",
    ]  # fmt: skip
    # every tool call happened once: none was recorded twice by the re-run node
    calls = [json.dumps(e.payload, sort_keys=True) for e in evs if e.kind == "tool_call"]
    assert len(calls) == len(set(calls))
    assert [e.payload["tool"] for e in evs if e.kind == "tool_call"][-1] == "finish"
    assert [e.payload["round"] for e in evs if e.kind == "iteration"] == [0]

    verify = subprocess.run(
        [sys.executable, "-m", "appliance", "audit", "verify"],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        check=False,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "audit chain intact" in verify.stdout
    return evs


def test_a_task_killed_while_implementing_resumes_and_completes(
    tmp_path: Path, model: ScriptedServer, server_tokens: Tokens, db: Database
) -> None:
    # the model is slow on the edit: the task sits in implementing, waiting for it, when
    # the appliance is killed; the restarted appliance asks again and gets the edit
    slow_edit = reply(EDIT)
    slow_edit = Reply(json=slow_edit.json, delay=60)
    model.add(reply(UNDERSTANDING), reply(PLAN), reply(READ), slow_edit,
              reply(EDIT), reply(TEST), reply(FINISH), reply(PR))  # fmt: skip

    def while_the_model_thinks(api: ApiClient, task_id: str) -> None:
        deadline = time.monotonic() + 60
        while len(model.requests) < 4:
            assert time.monotonic() < deadline, api.request("GET", f"/tasks/{task_id}")
            time.sleep(0.05)
        assert api.request("GET", f"/tasks/{task_id}")["status"] == "implementing"

    task_id, _ = _crash_and_resume(
        tmp_path, model, server_tokens, settings={}, at=while_the_model_thinks
    )
    assert model.requests[3].disconnected.is_set()  # the killed appliance's call
    evs = _check_history(db, task_id, resumed_at="implementing")
    tools = [e.payload["tool"] for e in evs if e.kind == "tool_call"]
    assert tools == ["read_file", "edit_file", "run_tests", "finish"]


def test_a_task_killed_while_validating_resumes_and_completes(
    tmp_path: Path, model: ScriptedServer, server_tokens: Tokens, db: Database
) -> None:
    model.add(reply(UNDERSTANDING), reply(PLAN), reply(READ), reply(EDIT), reply(FINISH),
              reply(PR))  # fmt: skip

    def while_the_tests_run(api: ApiClient, task_id: str) -> None:
        _wait(api, task_id, lambda t: t["step"] == "round 0: running the tests", timeout=60)
        time.sleep(1.5)  # inside the sleeping test command
        assert api.request("GET", f"/tasks/{task_id}")["status"] == "validating"

    task_id, _ = _crash_and_resume(
        tmp_path,
        model,
        server_tokens,
        settings={"test_command": SLOW_TESTS},
        at=while_the_tests_run,
    )
    evs = _check_history(db, task_id, resumed_at="validating")
    iteration = next(e.payload for e in evs if e.kind == "iteration")
    assert iteration["ok"] is True
    assert iteration["tests"]["passed"] == 2
    assert iteration["tests"]["new_failures"] == []
