"""A model server in a child process, and a supervisor that keeps one running.

:class:`ChildProcess` is the part every server launcher shares: spawn with the output
appended to a log file, in its own session (a terminal's Ctrl-C reaches the parent, which
stops the child in order), stop with SIGTERM then SIGKILL, and quote the log's tail in
errors. :class:`models.llamacpp.LlamaCppServer` and :class:`models.vllm_server.VllmServer`
build on it.

:func:`supervise` runs a :class:`ModelServer` until asked to stop and starts it again when it
dies, waiting 1, 2, 4 … 60 s between attempts; more than ``max_restarts`` deaths within
``window_s`` seconds mean the server cannot stay up, and it gives up with the last error.
"""

from __future__ import annotations

import contextlib
import logging
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Protocol

from models.errors import ModelsError

log = logging.getLogger(__name__)

_LOG_TAIL_LINES = 20


def log_tail(path: Path, lines: int = _LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines of a log file ("(empty)" or "(missing)" when there are none)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(missing)"
    tail = text.strip().splitlines()[-lines:]
    return "\n".join(tail) if tail else "(empty)"


class ChildProcess:
    """One spawned command whose output goes to ``log_path``."""

    def __init__(self, argv: Sequence[str], *, env: Mapping[str, str], log_path: Path) -> None:
        self.argv = list(argv)
        self.env = dict(env)
        self.log_path = log_path
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    def spawn(self) -> None:
        if self._proc is not None:
            raise ModelsError(f"{self.argv[0]} is already started")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with self.log_path.open("ab") as log_file:
                self._proc = subprocess.Popen(
                    self.argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    env=self.env,
                    start_new_session=True,  # a terminal's Ctrl-C reaches us, not the child
                )
        except OSError as exc:
            raise ModelsError(f"cannot run {self.argv[0]}: {exc}") from exc

    def exit_code(self) -> int | None:
        """None while running (or before spawn), else the exit status."""
        return None if self._proc is None else self._proc.poll()

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def tail(self) -> str:
        return f"last lines of {self.log_path}:\n{log_tail(self.log_path)}"

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout`` seconds. Idempotent."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                proc.wait()
        else:
            proc.wait()


class ModelServer(Protocol):
    """What :func:`supervise` needs of a server launcher."""

    @property
    def base_url(self) -> str: ...

    def start(self) -> object: ...

    def running(self) -> bool: ...

    def stop(self, timeout: float = 10.0) -> None: ...


def _backoff(attempt: int) -> float:
    return float(min(60, 2 ** max(0, attempt - 1)))


def supervise(
    server: ModelServer,
    stop: threading.Event,
    *,
    max_restarts: int = 5,
    window_s: float = 600.0,
    poll_s: float = 1.0,
    backoff: Callable[[int], float] = _backoff,
    on_ready: Callable[[ModelServer], None] | None = None,
) -> None:
    """Keep ``server`` running until ``stop`` is set; then stop it and return.

    The first start's error propagates (a bad model path should fail at once). A server that
    dies later is started again after a backoff; more than ``max_restarts`` deaths within
    ``window_s`` raise :class:`ModelsError` saying so, with the last start error if any.
    """
    server.start()
    if on_ready is not None:
        on_ready(server)
    deaths: deque[float] = deque()
    try:
        while not stop.wait(poll_s):
            if server.running():
                continue
            now = time.monotonic()
            deaths.append(now)
            while deaths and now - deaths[0] > window_s:
                deaths.popleft()
            if len(deaths) > max_restarts:
                raise ModelsError(
                    f"the model server died {len(deaths)} times within {window_s:.0f} s; "
                    "giving up (see its log)"
                )
            delay = backoff(len(deaths))
            log.warning("the model server exited; starting it again in %.0f s", delay)
            server.stop()
            if stop.wait(delay):
                return
            try:
                server.start()
            except ModelsError as exc:
                log.error("restarting the model server failed: %s", exc)
                continue
            log.info("the model server is back at %s", server.base_url)
            if on_ready is not None:
                on_ready(server)
    finally:
        server.stop()
