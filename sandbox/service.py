"""The sandbox user and its rootless Podman API service, started and supervised here.

The appliance (root in tests, or the sandbox user itself) runs
``podman system service --time=0 unix://<runtime dir>/podman/podman.sock`` as the
sandbox user and talks to it with podman-py. Containers survive a restart of the
service (conmon runs on its own); a stale socket after a crash does no harm.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from sandbox.errors import SandboxUnavailable

DEFAULT_USER = "appliance-sandbox"
# Services started by this process, which outlive it on purpose: kept referenced so
# that no Popen is collected (and warns) while its process still runs.
_STARTED: list[subprocess.Popen[bytes]] = []
SETUP_HINT = "run `sandbox/host/setup-host.sh` as root (make test/make run do)"


@dataclass(frozen=True)
class SandboxUser:
    name: str
    uid: int
    gid: int
    home: Path

    @property
    def runtime_dir(self) -> Path:
        return Path(f"/run/user/{self.uid}")

    @classmethod
    def lookup(cls, name: str = DEFAULT_USER) -> SandboxUser:
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            raise SandboxUnavailable(
                f"the sandbox user {name!r} does not exist: {SETUP_HINT}"
            ) from None
        return cls(name, entry.pw_uid, entry.pw_gid, Path(entry.pw_dir))

    def env(self) -> dict[str, str]:
        return {
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": str(self.home),
            "USER": self.name,
            "LOGNAME": self.name,
            "XDG_RUNTIME_DIR": str(self.runtime_dir),
        }

    def command(self, argv: list[str]) -> list[str]:
        """``argv`` run as this user (from root), or as is (when we are this user)."""
        euid = os.geteuid()
        if euid == self.uid:
            return ["env", "-i", *(f"{k}={v}" for k, v in self.env().items()), *argv]
        if euid != 0:
            raise SandboxUnavailable(
                f"running as uid {euid}: only root or {self.name} can drive the sandboxes"
            )
        env = [f"{k}={v}" for k, v in self.env().items()]
        return ["runuser", "-u", self.name, "--", "env", "-i", *env, *argv]

    def run(
        self, argv: list[str], *, timeout: float = 600, **kwargs: object
    ) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(  # type: ignore[call-overload, no-any-return]
            self.command(argv), timeout=timeout, check=False, capture_output=True, **kwargs
        )


class PodmanService:
    def __init__(self, user: SandboxUser, *, log_path: Path | None = None) -> None:
        self.user = user
        self.socket = user.runtime_dir / "podman" / "podman.sock"
        self.url = f"unix://{self.socket}"
        self.log_path = log_path or Path("/tmp") / f"appliance-podman-{user.uid}.log"  # noqa: S108
        self._proc: subprocess.Popen[bytes] | None = None

    def ping(self) -> bool:
        """True when the service answers ``GET /_ping`` with ``OK``.

        A plain socket closed on every path, not podman-py nor httpx: both leave the
        socket open when the connect itself fails, as it does while the service starts,
        and the test suite turns the resulting ResourceWarning into an error."""
        if not self.socket.exists():
            return False
        reply = b""
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(5)
                sock.connect(str(self.socket))
                sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: podman\r\n\r\n")
                while len(reply) < 65536:
                    chunk = sock.recv(4096)
                    if not chunk:
                        break
                    reply += chunk
        except OSError:
            return False
        head, _, body = reply.partition(b"\r\n\r\n")
        return head.startswith(b"HTTP/1.") and b" 200 " in head[:16] and body.strip() == b"OK"

    def ensure_running(self, timeout: float = 15.0) -> None:
        if self.ping():
            return
        if shutil.which("podman") is None:
            raise SandboxUnavailable(f"podman is not installed: {SETUP_HINT}")
        self._prepare_runtime_dir()
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                self.user.command(["podman", "system", "service", "--time=0", self.url]),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # outlives us; the next start reuses it
            )
        _STARTED.append(self._proc)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.ping():
                return
            if self._proc.poll() is not None:
                break
            time.sleep(0.05)
        tail = self.log_path.read_text(errors="replace")[-1500:] if self.log_path.exists() else ""
        raise SandboxUnavailable(
            f"the Podman API service for {self.user.name} did not start at {self.socket}; "
            f"its log ({self.log_path}) ends with:\n{tail}"
        )

    def service_pids(self) -> list[int]:
        """The processes serving this socket (``podman system service … <url>``), whoever
        started them."""
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                if entry.stat().st_uid != self.user.uid:
                    continue
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"podman" in argv[0] and b"service" in argv and self.url.encode() in argv:
                pids.append(int(entry.name))
        return pids

    def restart(self, timeout: float = 15.0) -> None:
        """Stop the service (whoever started it) and start it again: for a service that
        answers but no longer starts containers."""
        for pid in self.service_pids():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while (self.ping() or self.service_pids()) and time.monotonic() < deadline:
            time.sleep(0.1)
        if self._proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=5)
            self._proc = None
        self.ensure_running(timeout)

    def _prepare_runtime_dir(self) -> None:
        run_dir = self.user.runtime_dir / "podman"
        if os.geteuid() == 0:
            for path in (self.user.runtime_dir, run_dir):
                path.mkdir(mode=0o700, parents=True, exist_ok=True)
                os.chown(path, self.user.uid, self.user.gid)
        elif not run_dir.is_dir():
            raise SandboxUnavailable(f"{run_dir} is missing: {SETUP_HINT}")

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
        self._proc = None
