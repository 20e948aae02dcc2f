"""Fixtures of the forge tests: replaying forge servers, a fake clock, git repositories."""

from __future__ import annotations

import socket
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import trustme

from tests.forges.fakeforge import FakeForge

BRANCH = "appliance/20240501-0930-add-jwt-middleware"


@dataclass
class FakeTime:
    """An injected clock: ``sleep`` records the wait and moves time on, instantly."""

    now: float = 1_714_550_000.0
    slept: list[float] = field(default_factory=list)

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def github_server() -> Iterator[FakeForge]:
    server = FakeForge(api_prefix="/api/v3").start()
    yield server
    server.stop()


@pytest.fixture
def gitlab_server() -> Iterator[FakeForge]:
    server = FakeForge(api_prefix="/api/v4").start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def ca_bundle(ca: trustme.CA, tmp_path: Path) -> Path:
    path = tmp_path / "company-ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


@pytest.fixture
def https_github(ca: trustme.CA) -> Iterator[FakeForge]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost", "127.0.0.1").configure_cert(context)
    server = FakeForge(api_prefix="/api/v3", ssl_context=context).start()
    yield server
    server.stop()


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield int(sock.getsockname()[1])


def git(*args: str, cwd: Path | None = None) -> str:
    env = {
        "PATH": "/usr/bin:/bin:/usr/local/bin",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": "/dev/null",
        "GIT_AUTHOR_NAME": "Coding Agent",
        "GIT_AUTHOR_EMAIL": "appliance@acme.example",
        "GIT_COMMITTER_NAME": "Coding Agent",
        "GIT_COMMITTER_EMAIL": "appliance@acme.example",
    }
    proc = subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True
    )
    return proc.stdout


@dataclass
class Repos:
    remote: Path  # bare, HEAD → main
    work: Path  # a clone with BRANCH committed on top of main

    def remote_refs(self) -> str:
        return git("for-each-ref", "--format=%(refname) %(objectname)", cwd=self.remote)


@pytest.fixture
def repos(tmp_path: Path) -> Repos:
    remote = tmp_path / "remote.git"
    git("init", "--bare", "--initial-branch=main", str(remote))
    seed = tmp_path / "seed"
    git("init", "--initial-branch=main", str(seed))
    (seed / "README.md").write_text("widgets\n")
    git("add", "README.md", cwd=seed)
    git("commit", "-m", "initial", cwd=seed)
    git("push", str(remote), "main", cwd=seed)
    work = tmp_path / "work"
    git("clone", str(remote), str(work))
    git("switch", "-c", BRANCH, cwd=work)
    (work / "auth.py").write_text("def check(token): ...\n")
    git("add", "auth.py", cwd=work)
    git("commit", "-m", "Add JWT middleware", cwd=work)
    return Repos(remote, work)
