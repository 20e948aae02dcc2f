"""Live output of a task's sandbox commands as ``output`` events.

The sandbox calls back from the worker thread that runs a command, once per chunk read.
:class:`OutputRelay` gathers the chunks and hands them to the event loop in batches (at
most every ``interval`` seconds, or sooner when ``batch`` characters are waiting), so a
chatty test run becomes a few events a second, not thousands; past ``cap`` characters per
task it says so once and drops the rest (the command's result keeps its own capped copy).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Coroutine
from typing import Any

log = logging.getLogger(__name__)

Emit = Callable[[str, dict[str, Any]], Coroutine[Any, Any, None]]


class OutputRelay:
    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        emit: Emit,
        *,
        interval: float = 0.5,
        batch: int = 4_000,
        cap: int = 1_000_000,
    ) -> None:
        self._loop = loop
        self._emit = emit
        self._interval = interval
        self._batch = batch
        self._cap = cap
        self._lock = threading.Lock()
        self._buffers: dict[str, str] = {}
        self._sent = 0
        self._capped = False
        self._flush_due = False

    def __call__(self, stream: str, data: bytes) -> None:
        """The sandbox's ``on_output`` (any thread)."""
        text = data.decode("utf-8", errors="replace")
        with self._lock:
            if self._capped:
                return
            self._buffers[stream] = self._buffers.get(stream, "") + text
            waiting = sum(len(b) for b in self._buffers.values())
            now = waiting >= self._batch
            if not now and self._flush_due:
                return
            self._flush_due = True
        try:
            if now:
                self._loop.call_soon_threadsafe(self._flush)
            else:
                self._loop.call_soon_threadsafe(self._loop.call_later, self._interval, self._flush)
        except RuntimeError:  # the loop is closed (shutting down): nothing to show it to
            pass

    def _flush(self) -> None:
        """On the event loop: send what is waiting as one event per stream."""
        with self._lock:
            buffers, self._buffers = self._buffers, {}
            self._flush_due = False
            batches: list[dict[str, Any]] = []
            for stream, text in buffers.items():
                if not text:
                    continue
                room = self._cap - self._sent
                if len(text) > room:
                    text = text[: max(room, 0)]
                    self._capped = True
                self._sent += len(text)
                if text:
                    batches.append({"stream": stream, "text": text})
                if self._capped:
                    note = f"live output stops here (over {self._cap:,} characters for this task)"
                    batches.append({"stream": stream, "text": "", "note": note})
                    break
        for payload in batches:
            task: asyncio.Task[None] = self._loop.create_task(self._emit("output", payload))
            task.add_done_callback(_log_failure)


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("live output event lost: %s", task.exception())
