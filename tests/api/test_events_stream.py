"""The SSE stream against a real uvicorn (`appliance serve` in a subprocess)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from appliance.client import ApiClient
from tests.conftest import Tokens
from tests.servers import ServerProcess

pytestmark = pytest.mark.slow


def _setup_task(server: ServerProcess, tokens: Tokens) -> tuple[ApiClient, str]:
    admin = ApiClient(server.url, tokens.admin)
    repo = admin.request("POST", "/repositories", json={"name": "demo", "clone_url": "/x.git"})
    admin.close()
    api = ApiClient(server.url, tokens.dev)
    created = api.request("POST", "/tasks", json={"repository_id": repo["id"], "prompt": "go"})
    return api, created["task_id"]


def test_stream_replays_then_follows_live_until_done(
    blocking_server: ServerProcess, server_tokens: Tokens, gate_dir: Path
) -> None:
    api, task_id = _setup_task(blocking_server, server_tokens)
    seen: list[tuple[int, str, dict[str, object]]] = []
    for ev in api.events(task_id):
        seen.append((int(ev.id or 0), ev.event, ev.data["payload"]))
        if ev.data["payload"] == {"message": "waiting at the gate"}:
            (gate_dir / task_id).touch()  # the rest arrives live
    api.close()
    seqs = [s for s, _, _ in seen]
    assert seqs == list(range(1, len(seqs) + 1))
    statuses = [p["status"] for _, kind, p in seen if kind == "status"]
    assert statuses == ["queued", "preparing", "planning", "implementing", "validating", "done"]
    assert any(kind == "progress" for _, kind, _ in seen)


def test_stream_resumes_after_last_event_id(
    blocking_server: ServerProcess, server_tokens: Tokens, gate_dir: Path
) -> None:
    api, task_id = _setup_task(blocking_server, server_tokens)
    (gate_dir / task_id).touch()
    everything = [int(ev.id or 0) for ev in api.events(task_id)]
    resumed = [int(ev.id or 0) for ev in api.events(task_id, last_event_id=3)]
    api.close()
    assert resumed == [s for s in everything if s > 3]
    assert resumed[0] == 4


def test_stream_needs_a_token_and_a_real_task(
    blocking_server: ServerProcess, server_tokens: Tokens
) -> None:
    r = httpx.get(f"{blocking_server.url}/api/v1/tasks/x/events")
    assert r.status_code == 401
    r = httpx.get(
        f"{blocking_server.url}/api/v1/tasks/x/events",
        headers={"Authorization": f"Bearer {server_tokens.viewer}"},
    )
    assert r.status_code == 404


def test_many_open_streams_do_not_starve_other_requests(
    blocking_server: ServerProcess, server_tokens: Tokens, gate_dir: Path
) -> None:
    """40 streams held open on waiting tasks, then 30 submissions at once: all answered."""
    import concurrent.futures
    import threading
    import time

    api, _ = _setup_task(blocking_server, server_tokens)
    task_ids = [
        api.request("POST", "/tasks", json={"repository_id": 1, "prompt": f"t{i}"})["task_id"]
        for i in range(40)
    ]
    api.close()
    headers = {"Authorization": f"Bearer {server_tokens.viewer}"}
    opened = threading.Barrier(len(task_ids) + 1, timeout=30)
    stop = threading.Event()

    def hold(task_id: str) -> int:
        with httpx.stream(
            "GET",
            f"{blocking_server.url}/api/v1/tasks/{task_id}/events",
            headers=headers,
            timeout=30,
        ) as r:
            opened.wait()
            stop.wait(30)
            return r.status_code

    def submit(i: int) -> tuple[int, float]:
        start = time.monotonic()
        r = httpx.post(
            f"{blocking_server.url}/api/v1/tasks",
            json={"repository_id": 1, "prompt": f"burst {i}"},
            headers={"Authorization": f"Bearer {server_tokens.dev}"},
            timeout=30,
        )
        return r.status_code, time.monotonic() - start

    with concurrent.futures.ThreadPoolExecutor(max_workers=80) as pool:
        streams = [pool.submit(hold, t) for t in task_ids]
        opened.wait()
        burst = list(pool.map(submit, range(30)))
        stop.set()
        statuses = [f.result() for f in streams]
    assert statuses == [200] * 40
    assert [code for code, _ in burst] == [201] * 30
    assert max(elapsed for _, elapsed in burst) < 10
