"""vLLM as a child process of ``appliance models serve``: start, wait until ready, stop.

The command is :func:`models.vllm.serve_argv` for a sizing plan, run with the offline
environment (:func:`models.vllm.serve_env`) and the program ``vllm`` from the ``gpu`` extra
(found beside this Python first, then on ``PATH``). Readiness is :func:`models.vllm.wait_ready`
(``/health`` *and* ``/v1/models`` listing the served name), polled while watching the child,
so a server that dies while loading fails at once with the tail of its log instead of
waiting out the timeout. Loading a 32B model takes minutes: the default timeout is 15 min.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

import httpx

from models.errors import ModelsError
from models.process import ChildProcess
from models.sizing import Plan
from models.vllm import DEFAULT_HOST, DEFAULT_PORT, VllmNotReady, serve_argv, serve_env, wait_ready

GPU_EXTRA_HINT = (
    "install the gpu extra (pip install 'coding-agent-appliance[gpu]') on the GPU server"
)


def find_vllm() -> str:
    """The ``vllm`` program of this environment; :class:`ModelsError` when there is none."""
    beside = Path(sys.executable).with_name("vllm")
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("vllm")
    if found is None:
        raise ModelsError(f"vLLM is not installed here: {GPU_EXTRA_HINT}")
    return found


class VllmServer:
    """One ``vllm serve`` for ``plan`` over the local weights in ``model_dir``.

    ``program`` replaces the ``vllm`` executable (an argv prefix); the tests pass a stand-in
    that speaks vLLM's HTTP interface, because vLLM itself needs a GPU.
    """

    def __init__(
        self,
        plan: Plan,
        *,
        model_dir: Path,
        served_name: str,
        log_path: Path,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        ngram_speculation: bool = False,
        program: Sequence[str] | None = None,
        startup_timeout: float = 900.0,
    ) -> None:
        if not model_dir.is_dir():
            raise ModelsError(
                f"model directory not found: {model_dir} (copy the weights there first; "
                "the appliance never downloads them)"
            )
        self.plan = plan
        self.model_dir = model_dir
        self.model = served_name
        self.host = host
        self.port = port
        self.log_path = log_path
        self.startup_timeout = startup_timeout
        self._argv = serve_argv(
            plan,
            model_dir=model_dir,
            served_name=served_name,
            host=host,
            port=port,
            ngram_speculation=ngram_speculation,
        )
        self._program = program
        self._child: ChildProcess | None = None
        #: seconds from spawning to ready, set by start()
        self.startup_seconds: float | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def command(self) -> list[str]:
        program = list(self._program) if self._program else [find_vllm()]
        return [*program, *self._argv[1:]]

    @property
    def pid(self) -> int | None:
        return None if self._child is None else self._child.pid

    def running(self) -> bool:
        return self._child is not None and self._child.running()

    def start(self) -> Self:
        if self._child is not None:
            raise ModelsError("the vLLM server is already started")
        child = ChildProcess(
            self.command(), env={**os.environ, **serve_env()}, log_path=self.log_path
        )
        began = time.monotonic()
        child.spawn()
        self._child = child
        try:
            asyncio.run(self._wait_ready(child, deadline=began + self.startup_timeout))
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - began
        return self

    async def _wait_ready(self, child: ChildProcess, *, deadline: float) -> None:
        last = "it did not answer yet"
        async with httpx.AsyncClient(trust_env=False, timeout=5.0) as http:
            while True:
                code = child.exit_code()
                if code is not None:
                    raise ModelsError(
                        f"vLLM exited with code {code} while loading {self.model_dir.name}; "
                        f"{child.tail()}"
                    )
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise VllmNotReady(
                        f"vLLM was not ready within {self.startup_timeout:.0f} s ({last}); "
                        f"{child.tail()}"
                    )
                try:
                    await wait_ready(
                        self.base_url, self.model, timeout=min(2.0, remaining), client=http
                    )
                    return
                except VllmNotReady as exc:
                    last = str(exc).rsplit(": ", 1)[-1]

    def stop(self, timeout: float = 30.0) -> None:
        child, self._child = self._child, None
        if child is not None:
            child.stop(timeout)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
