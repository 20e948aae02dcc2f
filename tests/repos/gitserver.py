"""A dumb-HTTP(S) git server over a directory of bare repositories, for fetch tests: it
can want one ``Authorization`` header, and serve TLS with a certificate of a test CA."""

from __future__ import annotations

import base64
import contextlib
import functools
import ssl
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import trustme

from tests.gitrepos import plain_git


def basic(token: str, username: str = "oauth2") -> str:
    return "Basic " + base64.b64encode(f"{username}:{token}".encode()).decode()


@dataclass
class GitServer:
    base: str
    expected: str | None  # the Authorization header wanted; None: anyone may read
    seen: list[str | None] = field(default_factory=list)
    proxied: list[str] = field(default_factory=list)  # absolute-form targets (as a proxy)

    def url(self, bare: Path) -> str:
        plain_git(bare, "update-server-info")  # what a dumb-HTTP client reads
        return f"{self.base}/{bare.name}"


@contextlib.contextmanager
def git_server(
    root: Path, *, token: str | None = None, ca: trustme.CA | None = None
) -> Iterator[GitServer]:
    """Serve the bare repositories under ``root``; https with a certificate for
    ``localhost`` signed by ``ca`` when given."""
    state = GitServer("", basic(token) if token else None)

    class Handler(SimpleHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.startswith(("http://", "https://")):  # asked as an HTTP proxy
                state.proxied.append(self.path)
                parts = urllib.parse.urlsplit(self.path)
                self.path = parts.path + (f"?{parts.query}" if parts.query else "")
            state.seen.append(self.headers.get("Authorization"))
            if state.expected is not None and self.headers.get("Authorization") != state.expected:
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="git"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            super().do_GET()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
    server.daemon_threads = True
    scheme, host = "http", "127.0.0.1"
    if ca is not None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("localhost", "127.0.0.1").configure_cert(context)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        scheme, host = "https", "localhost"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02})
    thread.daemon = True
    thread.start()
    state.base = f"{scheme}://{host}:{server.server_address[1]}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
