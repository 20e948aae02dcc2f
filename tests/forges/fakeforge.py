"""A real HTTP(S) server that replays recorded GitHub/GitLab REST responses.

Routes are ``(METHOD, path[?k=v...])`` → a list of replies, served in order; the last
one repeats. Bodies are JSON fixture files under ``fixtures/`` (or inline values) in
which ``{{api}}``, ``{{web}}`` and ``{{clone_url}}`` are replaced at serve time, so the
URLs PyGithub and python-gitlab follow point back at this server. Every request is
recorded. Requests sent through it as an HTTP proxy (absolute-form request target) are
served the same way and marked ``via_proxy``.
"""

from __future__ import annotations

import json
import ssl
import threading
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parent / "fixtures"


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # a fixture name ("github/repo.json"), a JSON value, bytes or str
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    via_proxy: bool


@dataclass
class _Route:
    method: str
    path: str
    query: dict[str, str]
    replies: list[Reply]


class FakeForge:
    def __init__(self, *, api_prefix: str = "", ssl_context: ssl.SSLContext | None = None) -> None:
        self.api_prefix = api_prefix
        self.clone_url = ""
        self.routes: list[_Route] = []
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        if ssl_context is not None:
            self._server.socket = ssl_context.wrap_socket(self._server.socket, server_side=True)
        scheme = "https" if ssl_context else "http"
        host = "localhost" if ssl_context else "127.0.0.1"
        self.url = f"{scheme}://{host}:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def api(self) -> str:
        return self.url + self.api_prefix

    def start(self) -> FakeForge:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def on(self, method: str, target: str, *replies: Reply) -> None:
        """Serve ``replies`` (in order, the last repeating) for ``METHOD target``."""
        path, _, query = target.partition("?")
        wanted = dict(urllib.parse.parse_qsl(query))
        route = _Route(method, self.api_prefix + path, wanted, list(replies))
        with self._lock:
            self.routes.insert(0, route)  # a later registration overrides an earlier one

    def requests_to(self, method: str, path: str) -> list[Seen]:
        full = self.api_prefix + path
        return [s for s in self.seen if s.method == method and _same(s.path, full)]

    def _render(self, reply: Reply) -> bytes:
        body = reply.body
        if isinstance(body, str) and body.endswith((".json", ".txt")) and "/" in body:
            body = (FIXTURES / body).read_text()
        elif body is None:
            return b""
        elif not isinstance(body, (str, bytes)):
            body = json.dumps(body)
        if isinstance(body, bytes):
            return body
        text = str(body)
        for key, value in (
            ("{{api}}", self.api),
            ("{{web}}", self.url),
            ("{{clone_url}}", self.clone_url),
        ):
            text = text.replace(key, value)
        return text.encode()

    def _pick(self, method: str, path: str, query: dict[str, list[str]]) -> Reply:
        with self._lock:
            for route in self.routes:
                if route.method != method or not _same(route.path, path):
                    continue
                if any(query.get(k, [None])[0] != v for k, v in route.query.items()):
                    continue
                return route.replies.pop(0) if len(route.replies) > 1 else route.replies[0]
        return Reply(404, {"message": "Not Found", "documentation_url": "https://docs"})

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        forge = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet test output
                return None

            def _serve(self) -> None:
                target = self.path
                via_proxy = target.startswith(("http://", "https://"))
                if via_proxy:
                    parts = urllib.parse.urlsplit(target)
                    target = parts.path + ("?" + parts.query if parts.query else "")
                path, _, query = target.partition("?")
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parsed = urllib.parse.parse_qs(query)
                with forge._lock:
                    forge.seen.append(
                        Seen(self.command, path, parsed, dict(self.headers), body, via_proxy)
                    )
                reply = forge._pick(self.command, path, parsed)
                data = forge._render(reply)
                self.send_response(reply.status)
                is_json = data[:1] in (b"{", b"[")
                self.send_header("Content-Type", "application/json" if is_json else "text/plain")
                self.send_header("Content-Length", str(len(data)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve

        return Handler


def _same(a: str, b: str) -> bool:
    """Paths are the same resource when they match with percent-encoding undone."""
    return urllib.parse.unquote(a) == urllib.parse.unquote(b)
