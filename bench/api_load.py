"""API load benchmark: many clients creating, reading and following tasks on a real server.

Starts ``python -m appliance serve`` (uvicorn) in a subprocess on a free port with a
fresh data directory, development mode (which creates user ``admin`` and writes its
token to ``<data_dir>/admin-token``) and the cheap ``bench.graphs:ticker_graph`` as
the runner's graph (each task runs about 0.5 s and appends ~20 events). Then N client
coroutines (asyncio + httpx) loop until the duration is over:

1. ``POST /api/v1/tasks``              create a task
2. ``GET  /api/v1/tasks/{id}``         read it
3. ``GET  /api/v1/tasks?limit=20``     read the newest page
4. ``GET  /api/v1/tasks/{id}/events``  follow its Server-Sent Events until the task ends

It prints, per request kind, the answered requests (any status) with their p50/p99/max
latency (for the event stream: the time to its response headers), errors by kind
(non-2xx, exceptions, timeouts, streams that end before the task does) with sample
messages, the ERROR records in the server's log, and the SSE delivery lag: the time
from an event's append on the server (its ``ts``) to its receipt by the client. Only
events appended after the client's stream connected count, so that replayed history
does not count its age. Server and clients share the machine (and its clock), so lag
includes the client's own scheduling delay under load.

Targets (from the issue): 0 errors, GET p99 < 100 ms, SSE lag p99 < 500 ms. They are
reported as met or MISSED; a missed target does not change the exit status. Exit
status: 0 when the run completed, 2 when the server could not be started, 1 when the
harness itself broke.

    .venv/bin/python bench/api_load.py                      # 50 clients, 30 s
    .venv/bin/python bench/api_load.py --duration 5 --clients 10 --json
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, only bench/ is on sys.path: put the repository root there too.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import asyncio
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import httpx

from bench.figures import ms_text, percentile, rounded

REPO_ROOT = Path(__file__).resolve().parent.parent
GRAPH = "bench.graphs:ticker_graph"

POST_TASK = "POST /tasks"
GET_TASK = "GET /tasks/{id}"
LIST_TASKS = "GET /tasks"
SSE_CONNECT = "SSE connect"
SSE_STREAM = "SSE stream"
KINDS = (POST_TASK, GET_TASK, LIST_TASKS, SSE_CONNECT)
GET_KINDS = (GET_TASK, LIST_TASKS)
TERMINAL = frozenset({"done", "failed", "cancelled", "rejected"})

TARGET_GET_P99_MS = 100.0
TARGET_LAG_P99_MS = 500.0
MAX_ERROR_SAMPLES = 3


class ServerStartError(RuntimeError):
    """The server under test did not come up."""


# --- the server under test ---------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """``python -m appliance serve`` in a subprocess, with its own data directory."""

    def __init__(self, workdir: Path, *, concurrency: int) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data_dir = workdir / "var"
        self.log_path = workdir / "server.log"
        self.env = {
            **os.environ,
            "APPLIANCE_DATA_DIR": str(self.data_dir),
            "APPLIANCE_DEV_MODE": "1",
            "APPLIANCE_SERVER__PORT": str(self.port),
            "APPLIANCE_RUNNER__GRAPH": GRAPH,
            "APPLIANCE_RUNNER__CONCURRENCY": str(concurrency),
            "APPLIANCE_LOGGING__LEVEL": "WARNING",
            "PYTHONPATH": str(REPO_ROOT),
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self, timeout: float = 30.0) -> None:
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "appliance", "serve"],
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=REPO_ROOT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServerStartError(
                    f"the server exited with status {self.proc.returncode} before it was "
                    f"ready; its log:\n{self.log_tail()}"
                )
            try:
                if httpx.get(self.url + "/readyz", timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise ServerStartError(
            f"the server was not ready in {timeout:.0f} s; its log:\n{self.log_tail()}"
        )

    def token(self) -> str:
        path = self.data_dir / "admin-token"
        try:
            token = path.read_text().strip()
        except OSError as exc:
            raise ServerStartError(f"no admin token at {path} ({exc}); is dev mode on?") from exc
        if not token:
            raise ServerStartError(f"{path} is empty")
        return token

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        if self._log is not None:
            self._log.close()
            self._log = None


# --- measurements ------------------------------------------------------------------


@dataclass
class Stats:
    latencies_ms: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in KINDS})
    errors: Counter[str] = field(default_factory=Counter)
    error_samples: dict[str, list[str]] = field(default_factory=dict)
    lags_ms: list[float] = field(default_factory=list)
    events_received: int = 0
    events_replayed: int = 0
    finished: Counter[str] = field(default_factory=Counter)

    def latency(self, kind: str, started: float) -> None:
        self.latencies_ms[kind].append((time.perf_counter() - started) * 1000.0)

    def error(self, kind: str, message: str) -> None:
        self.errors[kind] += 1
        samples = self.error_samples.setdefault(kind, [])
        if len(samples) < MAX_ERROR_SAMPLES:
            samples.append(message[:300])

    @property
    def requests(self) -> int:
        return sum(len(v) for v in self.latencies_ms.values()) + sum(
            n for k, n in self.errors.items() if k in KINDS
        )


def summary(values: list[float]) -> dict[str, float | int | None]:
    return {
        "count": len(values),
        "p50_ms": rounded(percentile(values, 50)),
        "p99_ms": rounded(percentile(values, 99)),
        "max_ms": rounded(max(values) if values else None),
    }


def parse_ts(text: str) -> float:
    """An ISO-8601 time (``...Z``, an offset, or naive meaning UTC) as a Unix timestamp."""
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _since(started: float) -> str:
    return f"{time.perf_counter() - started:.1f} s"


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# --- the clients -------------------------------------------------------------------


@dataclass(frozen=True)
class SseMessage:
    id: str | None
    event: str
    data: str


async def sse_messages(lines: AsyncIterator[str]) -> AsyncIterator[SseMessage]:
    """Server-Sent Events from a stream of lines (comments and pings skipped)."""
    event_id: str | None = None
    kind = "message"
    data: list[str] = []
    async for line in lines:
        if not line:
            if data:
                yield SseMessage(event_id, kind, "\n".join(data))
            event_id, kind, data = None, "message", []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "id":
            event_id = value
        elif name == "event":
            kind = value
        elif name == "data":
            data.append(value)


@dataclass
class Load:
    http: httpx.AsyncClient
    stats: Stats
    repository_id: int
    deadline: float
    stream_timeout: float

    async def request(self, kind: str, method: str, path: str, **kwargs: Any) -> Any:
        """One timed request; the decoded JSON body, or None after counting an error."""
        started = time.perf_counter()
        try:
            response = await self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            self.stats.error(kind, f"{_describe(exc)} after {_since(started)}")
            return None
        self.stats.latency(kind, started)
        if not response.is_success:
            self.stats.error(
                kind,
                f"HTTP {response.status_code} after {_since(started)}: {response.text[:200]}",
            )
            return None
        try:
            return response.json()
        except ValueError as exc:
            self.stats.error(kind, f"not JSON ({exc}): {response.text[:200]}")
            return None

    async def client(self, n: int) -> None:
        i = 0
        while time.monotonic() < self.deadline:
            i += 1
            created = await self.request(
                POST_TASK,
                "POST",
                "/tasks",
                json={
                    "repository_id": self.repository_id,
                    "prompt": f"bench client {n} task {i}: tick along",
                    "priority": "normal",
                },
            )
            if not isinstance(created, dict) or "task_id" not in created:
                await asyncio.sleep(0.1)  # do not spin against a failing server
                continue
            task_id = str(created["task_id"])
            await self.request(GET_TASK, "GET", f"/tasks/{task_id}")
            await self.request(LIST_TASKS, "GET", "/tasks", params={"limit": 20})
            await self.follow(task_id)

    async def follow(self, task_id: str) -> None:
        """Follow the task's events until the server ends the stream."""
        stats = self.stats
        started = time.perf_counter()
        received = 0
        last_status: str | None = None
        connected = False
        try:
            async with (
                asyncio.timeout(self.stream_timeout),
                self.http.stream("GET", f"/tasks/{task_id}/events") as response,
            ):
                connected_at = time.time()
                connected = True
                stats.latency(SSE_CONNECT, started)
                if response.status_code != 200:
                    await response.aread()
                    stats.error(
                        SSE_CONNECT,
                        f"task {task_id}: HTTP {response.status_code} after {_since(started)}: "
                        f"{response.text[:200]}",
                    )
                    return
                async for message in sse_messages(response.aiter_lines()):
                    now = time.time()
                    received += 1
                    stats.events_received += 1
                    event = json.loads(message.data)
                    appended = parse_ts(str(event["ts"]))
                    if appended >= connected_at:
                        stats.lags_ms.append((now - appended) * 1000.0)
                    else:
                        stats.events_replayed += 1
                    if event.get("kind") == "status":
                        last_status = str(event.get("payload", {}).get("status"))
        except TimeoutError:
            stats.error(
                SSE_STREAM if connected else SSE_CONNECT,
                f"task {task_id}: no end of stream in {self.stream_timeout:.0f} s "
                f"({received} events, last status {last_status})",
            )
            return
        except httpx.HTTPError as exc:
            stats.error(
                SSE_STREAM if connected else SSE_CONNECT,
                f"task {task_id}: {_describe(exc)} after {_since(started)} ({received} events)",
            )
            return
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            stats.error(SSE_STREAM, f"task {task_id}: bad event ({type(exc).__name__}: {exc})")
            return
        if last_status in TERMINAL:
            stats.finished[last_status] += 1
        else:
            stats.error(
                SSE_STREAM,
                f"task {task_id}: stream ended at status {last_status} ({received} events)",
            )


async def run_load(
    url: str,
    token: str,
    *,
    clients: int,
    duration: float,
    request_timeout: float,
    stream_timeout: float,
) -> tuple[Stats, float]:
    # Idle connections are dropped before uvicorn's 5 s keep-alive timeout closes them, so
    # that a request never races the server's close of the connection it reuses.
    limits = httpx.Limits(
        max_connections=clients * 2, max_keepalive_connections=clients * 2, keepalive_expiry=2.0
    )
    timeout = httpx.Timeout(request_timeout, connect=10.0)
    async with httpx.AsyncClient(
        base_url=url + "/api/v1",
        headers={"Authorization": f"Bearer {token}"},
        limits=limits,
        timeout=timeout,
    ) as http:
        response = await http.post(
            "/repositories", json={"name": "bench", "clone_url": "/srv/git/bench.git"}
        )
        if response.status_code != 201:
            raise RuntimeError(
                f"could not create the bench repository: HTTP {response.status_code}: "
                f"{response.text[:300]}"
            )
        repository_id = int(response.json()["id"])
        stats = Stats()
        started = time.monotonic()
        load = Load(http, stats, repository_id, started + duration, stream_timeout)
        await asyncio.gather(*(load.client(n) for n in range(clients)))
        elapsed = time.monotonic() - started
    return stats, elapsed


# --- the report --------------------------------------------------------------------


def figures(
    stats: Stats, elapsed: float, args: argparse.Namespace, server_log: str
) -> dict[str, Any]:
    log = server_log.splitlines()
    server_errors = server_log_errors(log)
    requests = stats.requests
    get_p99 = {k: percentile(stats.latencies_ms[k], 99) for k in GET_KINDS}
    lag_p99 = percentile(stats.lags_ms, 99)
    total_errors = sum(stats.errors.values())
    targets: dict[str, dict[str, Any]] = {
        "errors == 0": {"value": total_errors, "met": total_errors == 0},
        **{
            f"{k} p99 < {TARGET_GET_P99_MS:.0f} ms": {
                "value_ms": rounded(v),
                "met": v is not None and v < TARGET_GET_P99_MS,
            }
            for k, v in get_p99.items()
        },
        f"SSE lag p99 < {TARGET_LAG_P99_MS:.0f} ms": {
            "value_ms": rounded(lag_p99),
            "met": lag_p99 is not None and lag_p99 < TARGET_LAG_P99_MS,
        },
    }
    return {
        "config": {
            "clients": args.clients,
            "duration_s": args.duration,
            "runner_concurrency": args.concurrency,
            "request_timeout_s": args.request_timeout,
            "stream_timeout_s": args.stream_timeout,
            "graph": GRAPH,
            "cpus": os.cpu_count(),
        },
        "elapsed_s": round(elapsed, 2),
        "requests": requests,
        "throughput_rps": round(requests / elapsed, 1) if elapsed > 0 else None,
        "latency": {k: summary(v) for k, v in stats.latencies_ms.items()},
        "errors": {"total": total_errors, **dict(stats.errors)},
        "error_samples": stats.error_samples,
        "sse": {
            "events_received": stats.events_received,
            "events_replayed": stats.events_replayed,
            "lag": summary(stats.lags_ms),
        },
        "tasks_finished": {"total": sum(stats.finished.values()), **dict(stats.finished)},
        "tasks_per_s": round(sum(stats.finished.values()) / elapsed, 1) if elapsed > 0 else None,
        "server_log_errors": sum(server_errors.values()),
        "server_log_error_kinds": dict(server_errors.most_common()),
        "targets": targets,
        "all_targets_met": all(t["met"] for t in targets.values()),
    }


_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def server_log_errors(lines: list[str]) -> Counter[str]:
    """ERROR records in the server's JSON log, counted by logger, message and exception."""
    found: Counter[str] = Counter()
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            if "ERROR" in line or "Traceback" in line:
                found[line.strip()[:200]] += 1
            continue
        if not isinstance(record, dict) or record.get("level") not in ("ERROR", "CRITICAL"):
            continue
        message = str(record.get("message", "")).strip().splitlines()
        first = _UUID.sub("<id>", message[0])[:80] if message else ""
        what = f"{record.get('logger')}: {first}"
        exc_lines = str(record.get("exc_info") or "").strip().splitlines()
        if exc_lines:
            what += f" | {exc_lines[-1][:160]}"
        found[what] += 1
    return found


def render(fig: dict[str, Any]) -> str:
    cfg = fig["config"]
    out = [
        f"API load: {cfg['clients']} clients for {cfg['duration_s']:g} s, runner concurrency "
        f"{cfg['runner_concurrency']}, graph {cfg['graph']}, {cfg['cpus']} CPUs "
        f"(elapsed {fig['elapsed_s']:.1f} s)",
        "",
        f"{'request':<18}{'count':>8}{'p50 ms':>10}{'p99 ms':>10}{'max ms':>10}{'errors':>8}",
    ]
    for kind, row in fig["latency"].items():
        out.append(
            f"{kind:<18}{row['count']:>8}{ms_text(row['p50_ms']):>10}{ms_text(row['p99_ms']):>10}"
            f"{ms_text(row['max_ms']):>10}{fig['errors'].get(kind, 0):>8}"
        )
    lag = fig["sse"]["lag"]
    out += [
        "",
        f"requests: {fig['requests']} ({fig['throughput_rps']} req/s); "
        f"tasks finished: {fig['tasks_finished']['total']} ({fig['tasks_per_s']} tasks/s) "
        + " ".join(f"{k}={v}" for k, v in fig["tasks_finished"].items() if k != "total"),
        f"SSE events received: {fig['sse']['events_received']} "
        f"({fig['sse']['events_replayed']} replayed, {lag['count']} live)",
        f"SSE lag (append -> receipt, live events): p50 {ms_text(lag['p50_ms'])} ms, "
        f"p99 {ms_text(lag['p99_ms'])} ms, max {ms_text(lag['max_ms'])} ms",
        f"errors: {fig['errors']['total']}"
        + "".join(f"; {k}: {v}" for k, v in fig["errors"].items() if k != "total"),
    ]
    for kind, samples in fig["error_samples"].items():
        out.extend(f"  {kind}: {sample}" for sample in samples)
    out.append(f"server log errors: {fig['server_log_errors']}")
    out.extend(f"  {n} x {what}" for what, n in fig["server_log_error_kinds"].items())
    out += ["", "targets:"]
    for name, target in fig["targets"].items():
        value = target.get("value_ms", target.get("value"))
        shown = f"{ms_text(value)} ms" if "value_ms" in target else str(value)
        out.append(f"  {'met   ' if target['met'] else 'MISSED'}  {name:<30} ({shown})")
    out.append(f"all targets met: {'yes' if fig['all_targets_met'] else 'NO'}")
    return "\n".join(out)


# --- entry point -------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/api_load.py",
        description=(
            "Start a real `appliance serve` and load it with concurrent clients that create "
            "tasks, read them and follow their event streams; print request latency, errors "
            "and SSE delivery lag against the targets (0 errors, GET p99 < 100 ms, SSE lag "
            "p99 < 500 ms). Missed targets are reported, not fatal: the exit status is 0 "
            "unless the server could not start (2) or the harness broke (1)."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--clients", type=int, default=50, help="concurrent client coroutines")
    parser.add_argument(
        "--duration", type=float, default=30.0, help="seconds during which clients start new tasks"
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=8,
        help="runner concurrency (APPLIANCE_RUNNER__CONCURRENCY)",
    )
    parser.add_argument(
        "--request-timeout",
        type=float,
        default=60.0,
        help="seconds before a request counts as a timeout error (above the server's own "
        "10 s database pool timeout, so that its answers are seen)",
    )
    parser.add_argument(
        "--stream-timeout",
        type=float,
        default=60.0,
        help="seconds a client follows one task's events before counting a timeout error",
    )
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    parser.add_argument(
        "--keep", action="store_true", help="keep the temporary data directory and server log"
    )
    args = parser.parse_args(argv)
    if (
        min(args.clients, args.duration, args.concurrency) <= 0
        or min(args.request_timeout, args.stream_timeout) <= 0
    ):
        parser.error("all numeric options must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="appliance-bench-"))
    server = Server(workdir, concurrency=args.concurrency)
    server_log = ""
    try:
        try:
            server.start()
            token = server.token()
        except ServerStartError as exc:
            print(f"api_load: {exc}", file=sys.stderr)
            return 2
        try:
            stats, elapsed = asyncio.run(
                run_load(
                    server.url,
                    token,
                    clients=args.clients,
                    duration=args.duration,
                    request_timeout=args.request_timeout,
                    stream_timeout=args.stream_timeout,
                )
            )
        except Exception as exc:
            print(f"api_load: the harness broke: {type(exc).__name__}: {exc}", file=sys.stderr)
            print(f"server log tail:\n{server.log_tail()}", file=sys.stderr)
            return 1
    finally:
        server.stop()
        server_log = server.log_text()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    fig = figures(stats, elapsed, args, server_log)
    print(json.dumps(fig, indent=None) if args.json else render(fig))
    if args.keep:
        print(f"data and server log kept in {workdir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
