"""Wakes live event streams when a task's events change.

The store is the source of truth: a stream reads events from the database and
waits here between reads. ``notify`` is safe to call from any thread (API routes
run in a thread pool); waiters live on the event loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections import defaultdict


class EventHub:
    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiters: defaultdict[str, set[asyncio.Event]] = defaultdict(set)
        self._thread_id: int | None = None

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._thread_id = threading.get_ident()

    def subscribe(self, task_id: str) -> asyncio.Event:
        event = asyncio.Event()
        self._waiters[task_id].add(event)
        return event

    def unsubscribe(self, task_id: str, event: asyncio.Event) -> None:
        waiters = self._waiters.get(task_id)
        if waiters is not None:
            waiters.discard(event)
            if not waiters:
                del self._waiters[task_id]

    def notify(self, task_id: str) -> None:
        if self._loop is None:
            return
        if threading.get_ident() == self._thread_id:
            self._wake(task_id)
        elif not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._wake, task_id)

    def _wake(self, task_id: str) -> None:
        for event in self._waiters.get(task_id, ()):
            event.set()
