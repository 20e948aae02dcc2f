"""A real HTTP server on 127.0.0.1 that replays a script of replies, one per request.

Each request takes the next :class:`Reply` from the script (the last one repeats when the
script runs out, or 500 when it was empty). A reply can be a JSON body, raw bytes (invalid
JSON), an SSE stream (optionally cut before ``[DONE]`` or held open), with a delay before it.
The server records every request (:class:`Recorded`) and notices when the client hangs up.
HTTP/1.0: one request per connection, so each attempt of the client is its own connection.
"""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    status: int = 200
    json: Any = None
    body: bytes | None = None  # raw body (wins over json)
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before the status line
    sse: list[str] | None = None  # SSE ``data:`` payloads (JSON text), streamed in order
    sse_done: bool = True  # end the stream with ``data: [DONE]``; False = truncated
    chunk_delay: float = 0.0
    hold: float = 0.0  # keep the stream open this long after the chunks (waits for hang-up)


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    disconnected: threading.Event = field(default_factory=threading.Event)


def completion(
    content: str | None,
    *,
    model: str = "coder",
    prompt_tokens: int = 10,
    completion_tokens: int = 5,
    tool_calls: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls is not None:
        message["tool_calls"] = tool_calls
    return {
        "id": "chatcmpl-0123456789",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": "tool_calls" if tool_calls else "stop",
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def chunks(pieces: Iterable[str], *, model: str = "coder", usage: bool = True) -> list[str]:
    """``chat.completion.chunk`` payloads for the pieces, like vLLM sends them."""
    base = {"id": "chatcmpl-s", "object": "chat.completion.chunk", "created": 1, "model": model}
    pieces = list(pieces)
    out = [
        json.dumps(
            base
            | {"choices": [{"index": 0, "delta": {"role": "assistant"}, "finish_reason": None}]}
        )
    ]
    for piece in pieces:
        choice = {"index": 0, "delta": {"content": piece}, "finish_reason": None}
        out.append(json.dumps(base | {"choices": [choice]}))
    out.append(json.dumps(base | {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}))
    if usage:
        u = {"prompt_tokens": 7, "completion_tokens": len(pieces), "total_tokens": 7 + len(pieces)}
        out.append(json.dumps(base | {"choices": [], "usage": u}))
    return out


def error_body(message: str, *, code: int = 400) -> dict[str, Any]:
    return {"object": "error", "message": message, "type": "BadRequestError", "code": code}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw
        rec = Recorded(self.command, self.path, dict(self.headers.items()), body)
        owner = self.server.owner
        reply = owner._take(rec)
        try:
            if reply.delay and self._wait(rec, reply.delay):
                return
            if reply.sse is not None:
                self._stream(rec, reply)
                return
            data = reply.body
            if data is None:
                data = json.dumps(reply.json).encode() if reply.json is not None else b""
            self.send_response(reply.status)
            ctype = "application/json" if reply.body is None else "text/plain"
            headers = {"Content-Type": ctype, **reply.headers}
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()
        except OSError:
            rec.disconnected.set()

    def _stream(self, rec: Recorded, reply: Reply) -> None:
        self.send_response(reply.status)
        self.send_header("Content-Type", "text/event-stream")
        for k, v in reply.headers.items():
            self.send_header(k, v)
        self.end_headers()
        for payload in reply.sse or []:
            self.wfile.write(f"data: {payload}\n\n".encode())
            self.wfile.flush()
            if reply.chunk_delay and self._wait(rec, reply.chunk_delay):
                return
        if reply.hold and self._wait(rec, reply.hold):
            return
        if reply.sse_done:
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()

    def _wait(self, rec: Recorded, seconds: float) -> bool:
        """Sleep up to ``seconds``; True (and recorded) when the client hung up meanwhile."""
        deadline = time.monotonic() + seconds
        sock = self.connection
        while time.monotonic() < deadline and not self.server.owner.stopping.is_set():
            readable, _, _ = select.select([sock], [], [], 0.02)
            if readable:
                try:
                    peek = sock.recv(1, socket.MSG_PEEK)
                except OSError:
                    peek = b""
                if not peek:
                    rec.disconnected.set()
                    return True
        return self.server.owner.stopping.is_set()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: ScriptedServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # client hang-ups are expected and recorded


class ScriptedServer:
    """Start with ``with ScriptedServer([...]) as srv:``; ``srv.url`` is the ``/v1`` base."""

    def __init__(
        self, replies: Iterable[Reply] = (), *, port: int = 0, models: Iterable[str] = ()
    ) -> None:
        self.script: list[Reply] = list(replies)
        #: with model names, GET /v1/models and /health answer on their own (a monitor's
        #: probes then never consume the script, which is for the chat calls)
        self.models = list(models)
        self.requests: list[Recorded] = []
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._httpd = _Server(("127.0.0.1", port), _Handler)
        self._httpd.owner = self
        self.port: int = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.root}/v1"

    def add(self, *replies: Reply) -> None:
        with self._lock:
            self.script.extend(replies)

    def _take(self, rec: Recorded) -> Reply:
        if self.models and rec.method == "GET":
            if rec.path.endswith("/models"):
                data = [{"id": m, "object": "model"} for m in self.models]
                return Reply(json={"object": "list", "data": data})
            return Reply(json={"status": "ok"})
        with self._lock:
            self.requests.append(rec)
            if len(self.script) > 1:
                return self.script.pop(0)
            if self.script:
                return self.script[0]
            return Reply(status=500, json=error_body("script exhausted", code=500))

    def close(self) -> None:
        self.stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> ScriptedServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def dead_port() -> int:
    """A local port nobody listens on (connections are refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port
