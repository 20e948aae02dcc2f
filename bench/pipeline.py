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
   (target < 50 ms median).
2. **N concurrent tasks**: all reach awaiting_approval, errors, wall time; event-loop lag
   p99 (target < 100 ms) and API ``GET /api/v1/tasks/{id}`` p99 meanwhile (< 100 ms).
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
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from bench.figures import percentile, rounded

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
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
        self._send(answer(body))


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
    from tests.conftest import make_tokens

    model = ThreadingHTTPServer(("127.0.0.1", 0), InstantModel)
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
    while not server.started:  # noqa: ASYNC110 - uvicorn offers no event for this
        await asyncio.sleep(0.05)
    appliance = app.state.appliance
    tokens = await asyncio.to_thread(make_tokens, appliance.db)
    base = f"http://127.0.0.1:{port}/api/v1"
    out: dict[str, Any] = {"tasks": args.tasks}
    async with httpx.AsyncClient(
        timeout=60, headers={"Authorization": f"Bearer {tokens.admin}"}
    ) as http:
        repo = (
            await http.post(f"{base}/repositories", json={"name": "greet", "clone_url": url})
        ).json()

        async def submit() -> str:
            r = await http.post(f"{base}/tasks", json={"repository_id": repo["id"],
                                                       "prompt": "greet() says Helo"})  # fmt: skip
            return str(r.json()["task_id"])

        async def wait(task_id: str) -> str:
            while True:
                status = (await http.get(f"{base}/tasks/{task_id}")).json()["status"]
                if status in ("awaiting_approval", "failed", "done", "cancelled"):
                    return str(status)
                await asyncio.sleep(0.2)

        async def wait_all(ids: list[str]) -> list[str]:
            """One list request every 0.5 s (not one poll per task: that would be the load)."""
            final = ("awaiting_approval", "failed", "done", "cancelled")
            while True:
                page = (await http.get(f"{base}/tasks", params={"limit": 200})).json()
                status = {t["id"]: t["status"] for t in page["items"]}
                if all(status.get(i) in final for i in ids):
                    return [status[i] for i in ids]
                await asyncio.sleep(0.5)

        # 1. one task alone: per-step overhead
        first = await submit()
        status = await wait(first)
        page = (await http.get(f"{base}/tasks/{first}/events/page",
                               params={"limit": 1000, "kind": ["tool_call"]})).json()  # fmt: skip
        stamps = [datetime.fromisoformat(e["ts"]) for e in page["events"]]
        gaps = [(b - a).total_seconds() * 1000 for a, b in itertools.pairwise(stamps)]
        out["single"] = {"status": status, "tool_steps": len(stamps),
                         "step_ms_p50": rounded(percentile(gaps, 50)),
                         "step_ms_p95": rounded(percentile(gaps, 95))}  # fmt: skip

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
    server.should_exit = True
    await serving
    model.shutdown()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=50)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp:
        out = asyncio.run(run(args, Path(tmp)))
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    s, c = out["single"], out["concurrent"]
    print(f"one task: {s['status']}, {s['tool_steps']} tool steps; per-step overhead "
          f"p50 {s['step_ms_p50']} ms, p95 {s['step_ms_p95']} ms (target p50 < 50 ms)")  # fmt: skip
    print(f"{c['tasks']} concurrent tasks: {c['awaiting_approval']} awaiting approval, "
          f"other {c['other']}, {c['wall_s']} s")  # fmt: skip
    print(f"  event-loop lag p99 {c['loop_lag_ms_p99']} ms (< 100 ms)")
    print(f"  GET /tasks/{{id}} p50 {c['api_get_ms_p50']} ms, p99 {c['api_get_ms_p99']} ms "
          f"over {c['api_get_samples']} requests (p99 < 100 ms)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
