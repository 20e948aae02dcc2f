"""Pipeline benchmark: per-step overhead, and 50 concurrent tasks on one runner.

    .venv/bin/python bench/pipeline.py [--tasks 50] [--json]

The model answers instantly: a small OpenAI-compatible HTTP server in this process reads
each request's ``response_format`` schema and answers it (an understanding, a plan, then
for actions: ``read_file`` → ``edit_file`` → ``finish``, by counting the conversation's
assistant turns, then the pull request's text). So every task runs the real pipeline —
index, worktree, planning, tool loop, review with secret scan — minus model time and minus
the sandbox (the benchmark's repository has no test suite and the sandbox is switched off:
a container per task would measure Podman, which ``bench/sandbox.py`` does).

The appliance runs in this process (uvicorn on a free port, runner concurrency = tasks) so
that event-loop lag can be sampled: a coroutine sleeps 10 ms and records how late it wakes.
Printed:

1. **Per-step overhead** of one task alone: the intervals between its successive tool-call
   events (one model call + one tool call + checkpoint + events each), median and p95
   (target < 50 ms median), minus the model server's own handling of that step's request
   (measured in the server: body read, JSON, reply written); the client side of the model
   call (httpx, parsing the reply) stays in the figure, which the output says.
2. **N concurrent tasks**: all reach awaiting_approval, wall time; event-loop lag p99
   (target < 100 ms) and API ``GET /api/v1/tasks/{id}`` p99 meanwhile (< 100 ms).
3. **Errors**: the ``error`` events of every task of the run, counted and listed.

Every wait has a deadline (``--timeout``, per phase): a task that never settles is
reported as ``timed_out``, never waited for forever.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import asyncio
import itertools
import json
import os
import socket
import subprocess
import tempfile
import threading
import time
from collections import Counter
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from bench.figures import percentile, rounded

FINAL = ("awaiting_approval", "failed", "done", "cancelled", "rejected")

UNDERSTANDING = {"intent": "bugfix", "summary": "Fix the greeting.", "ambiguous": False,
                 "search_terms": ["greet"]}  # fmt: skip
PLAN = {"steps": [{"title": "Fix greet()", "files": ["app/greet.py"]}], "test_strategy": "none"}
ACTIONS = [
    {"thought": "Read it.", "tool": "read_file", "args": {"path": "app/greet.py"}},
    {"thought": "Fix it.", "tool": "edit_file",
     "args": {"path": "app/greet.py", "old": "'Helo'", "new": "'Hello'"}},
    {"thought": "", "tool": "list_directory", "args": {"path": "app"}},
    {"thought": "", "tool": "search_code", "args": {"pattern": "def greet"}},
    {"thought": "", "tool": "finish", "args": {"summary": "Fixed the greeting."}},
]  # fmt: skip
PR = {"title": "Fix greeting", "summary": "Spelling.", "changes": []}
NON_ACTIONS = ("Understanding", "Plan", "PullRequestText")


def answer(body: dict[str, Any]) -> dict[str, Any]:
    schema = (body.get("response_format") or {}).get("json_schema", {}).get("name", "")
    if schema == "Understanding":
        content: dict[str, Any] = UNDERSTANDING
    elif schema == "Plan":
        content = PLAN
    elif schema == "PullRequestText":
        content = PR
    else:
        turns = sum(1 for m in body.get("messages", []) if m.get("role") == "assistant")
        content = ACTIONS[min(turns, len(ACTIONS) - 1)]
    return {
        "id": "x", "object": "chat.completion", "created": 1, "model": "coder",
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": json.dumps(content)}}],
        "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120},
    }  # fmt: skip


class InstantModel(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else headers and body wait on delayed ACKs (~40 ms)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, obj: Any) -> None:
        data = json.dumps(obj).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._send({"object": "list", "data": [{"id": "coder"}]})

    def do_POST(self) -> None:
        began = time.perf_counter()
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
        self._send(answer(body))
        schema = (body.get("response_format") or {}).get("json_schema", {}).get("name", "")
        timings: list[tuple[str, float]] = getattr(self.server, "timings", [])
        timings.append((schema, (time.perf_counter() - began) * 1000))


def admin_token(db: Any) -> str:
    """An admin and its API token, made through the store (as ``appliance token create``)."""
    from appliance.store import users
    from appliance.store.models import Role

    with db.write() as session:
        users.create_user(session, username="bench", role=Role.admin, password=None, actor="bench")
        clear, _ = users.create_token(
            session, username="bench", name="bench", role=None, expires_in=None, actor="bench"
        )
    return clear


def step_overhead(gaps: list[float], model_ms: list[float]) -> tuple[list[float], bool]:
    """The gaps between tool-call events minus the model server's time for the request each
    gap waited on (gap i holds action request i + 1); unchanged when they do not pair up
    (a retried reply), with False."""
    if len(model_ms) != len(gaps) + 1:
        return gaps, False
    return [gap - ms for gap, ms in zip(gaps, model_ms[1:], strict=True)], True


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_repo(root: Path) -> str:
    who = {"GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@l"}
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, **who,
           "GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@l"}  # fmt: skip
    work = root / "work"
    (work / "app").mkdir(parents=True)
    (work / "app" / "__init__.py").write_text("")
    (work / "app" / "greet.py").write_text("def greet(name):\n    return 'Helo' + name\n")
    (work / "README.md").write_text("# greet\n")
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "init"]):
        subprocess.run(["git", *args], cwd=work, env=env, check=True)
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(root / "remote.git")],
                   env=env, check=True)  # fmt: skip
    return f"file://{root / 'remote.git'}"


async def run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    import uvicorn

    from appliance.api import create_app
    from appliance.config import load_settings
    from appliance.pipeline import pipeline_graph

    model = ThreadingHTTPServer(("127.0.0.1", 0), InstantModel)
    timings: list[tuple[str, float]] = []
    model.timings = timings  # type: ignore[attr-defined]
    threading.Thread(target=model.serve_forever, daemon=True).start()
    url = make_repo(tmp / "repo")
    settings = load_settings(
        data_dir=tmp / "var",
        dev_mode=True,
        runner={"concurrency": max(1, args.tasks)},
        models={"endpoints": [{"base_url": f"http://127.0.0.1:{model.server_address[1]}/v1",
                               "model": "coder", "context_length": 8192}],
                "cpu_fallback": False},
        index={"embedder": "none"},
        sandbox={"cleanup_on_start": False},
    )  # fmt: skip
    app = create_app(settings, graph=pipeline_graph(), services={"sandbox": None})
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, port=port, log_level="warning", lifespan="on"))
    serving = asyncio.create_task(server.serve())
    started = time.monotonic()
    while not server.started:  # uvicorn offers no event for this
        if serving.done() or time.monotonic() - started > 60:
            raise RuntimeError("the appliance did not start within 60 s")
        await asyncio.sleep(0.05)
    appliance = app.state.appliance
    token = await asyncio.to_thread(admin_token, appliance.db)
    base = f"http://127.0.0.1:{port}/api/v1"
    out: dict[str, Any] = {"tasks": args.tasks}
    async with httpx.AsyncClient(timeout=60, headers={"Authorization": f"Bearer {token}"}) as http:
        repo = (
            await http.post(f"{base}/repositories", json={"name": "greet", "clone_url": url})
        ).json()

        async def submit() -> str:
            r = await http.post(f"{base}/tasks", json={"repository_id": repo["id"],
                                                       "prompt": "greet() says Helo"})  # fmt: skip
            return str(r.json()["task_id"])

        async def wait(task_id: str) -> str:
            deadline = time.monotonic() + args.timeout
            while time.monotonic() < deadline:
                status = (await http.get(f"{base}/tasks/{task_id}")).json()["status"]
                if status in FINAL:
                    return str(status)
                await asyncio.sleep(0.2)
            return "timed_out"

        async def wait_all(ids: list[str]) -> list[str]:
            """One list request every 0.5 s (not one poll per task: that would be the load)."""
            deadline = time.monotonic() + args.timeout
            status: dict[str, str] = {}
            while time.monotonic() < deadline:
                page = (await http.get(f"{base}/tasks", params={"limit": 200})).json()
                status = {t["id"]: t["status"] for t in page["items"]}
                if all(status.get(i) in FINAL for i in ids):
                    break
                await asyncio.sleep(0.5)
            return [s if (s := status.get(i)) in FINAL else "timed_out" for i in ids]

        async def errors_of(task_id: str) -> list[str]:
            page = (
                await http.get(
                    f"{base}/tasks/{task_id}/events/page",
                    params={"limit": 1000, "kind": ["error"]},
                )
            ).json()
            return [
                f"{e['payload'].get('severity')}: {e['payload'].get('message', '')[:200]}"
                for e in page["events"]
            ]

        # 1. one task alone: per-step overhead
        timings.clear()
        first = await submit()
        status = await wait(first)
        page = (await http.get(f"{base}/tasks/{first}/events/page",
                               params={"limit": 1000, "kind": ["tool_call"]})).json()  # fmt: skip
        stamps = [datetime.fromisoformat(e["ts"]) for e in page["events"]]
        gaps = [(b - a).total_seconds() * 1000 for a, b in itertools.pairwise(stamps)]
        actions = [ms for schema, ms in list(timings) if schema not in NON_ACTIONS]
        steps, subtracted = step_overhead(gaps, actions)
        out["single"] = {"status": status, "tool_steps": len(stamps),
                         "step_ms_p50": rounded(percentile(steps, 50)),
                         "step_ms_p95": rounded(percentile(steps, 95)),
                         "model_server_ms_subtracted": subtracted,
                         "model_server_ms_p50": rounded(percentile(actions, 50))}  # fmt: skip

        # 2. N concurrent tasks, with loop lag and GET latency sampled meanwhile
        lags: list[float] = []
        gets: list[float] = []
        done = asyncio.Event()

        async def lag_probe() -> None:
            while not done.is_set():
                t = time.perf_counter()
                await asyncio.sleep(0.01)
                lags.append((time.perf_counter() - t - 0.01) * 1000)

        async def get_probe(task_id: str) -> None:
            while not done.is_set():
                t = time.perf_counter()
                await http.get(f"{base}/tasks/{task_id}")
                gets.append((time.perf_counter() - t) * 1000)
                await asyncio.sleep(0.05)

        began = time.perf_counter()
        ids = [await submit() for _ in range(args.tasks)]
        probes = [asyncio.create_task(lag_probe()), asyncio.create_task(get_probe(ids[0]))]
        statuses = await wait_all(ids)
        done.set()
        await asyncio.gather(*probes)
        out["concurrent"] = {
            "tasks": len(ids),
            "awaiting_approval": statuses.count("awaiting_approval"),
            "other": {s: statuses.count(s) for s in set(statuses) if s != "awaiting_approval"},
            "wall_s": round(time.perf_counter() - began, 1),
            "loop_lag_ms_p99": rounded(percentile(lags, 99)),
            "api_get_ms_p50": rounded(percentile(gets, 50)),
            "api_get_ms_p99": rounded(percentile(gets, 99)),
            "api_get_samples": len(gets),
        }
        # 3. every error event of the run (the single task's and the concurrent ones)
        found = [m for task_id in [first, *ids] for m in await errors_of(task_id)]
        out["errors"] = {"count": len(found), "messages": dict(Counter(found).most_common(10))}
    server.should_exit = True
    try:
        await asyncio.wait_for(serving, timeout=60)
    except TimeoutError:
        out["shutdown"] = "the appliance did not stop within 60 s"
    model.shutdown()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=50)
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--timeout", type=float, default=600, help="seconds each phase may wait for its tasks"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp:
        out = asyncio.run(run(args, Path(tmp)))
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    s, c, e = out["single"], out["concurrent"], out["errors"]
    model_time = (
        f"model server's handling subtracted (p50 {s['model_server_ms_p50']} ms a call); "
        "the client side of the model HTTP call is included"
        if s["model_server_ms_subtracted"]
        else "model HTTP time included (replies and steps did not pair up)"
    )
    print(f"one task: {s['status']}, {s['tool_steps']} tool steps; per-step overhead "
          f"p50 {s['step_ms_p50']} ms, p95 {s['step_ms_p95']} ms (target p50 < 50 ms); "
          f"{model_time}")  # fmt: skip
    print(f"{c['tasks']} concurrent tasks: {c['awaiting_approval']} awaiting approval, "
          f"other {c['other']}, {c['wall_s']} s")  # fmt: skip
    print(f"  event-loop lag p99 {c['loop_lag_ms_p99']} ms (< 100 ms)")
    print(f"  GET /tasks/{{id}} p50 {c['api_get_ms_p50']} ms, p99 {c['api_get_ms_p99']} ms "
          f"over {c['api_get_samples']} requests (p99 < 100 ms)")  # fmt: skip
    print(f"errors: {e['count']}")
    for message, n in e["messages"].items():
        print(f"  {n} x {message}")
    if "shutdown" in out:
        print(out["shutdown"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
