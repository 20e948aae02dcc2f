"""Retries for forge calls: rate limits honoured, transient failures backed off.

:class:`Retrier` runs one forge operation. A :class:`ForgeRateLimited` is retried after
the wait the server asked for (``Retry-After`` or the rate-limit reset time) but at
least the backoff step; a wait longer than ``max_wait`` is not slept through, the error
goes up at once with the time to try again. A :class:`ForgeUnavailable` (5xx, timeout,
refused connection) is retried only for idempotent operations, since a write that timed
out may have happened. Backoff is 1, 2, 4 s; at most ``max_retries`` retries. The sleep
is injectable, so tests do not wait.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from appliance.forges.errors import ForgeRateLimited, ForgeUnavailable

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass
class Retrier:
    max_retries: int = 3
    backoff: Sequence[float] = (1.0, 2.0, 4.0)
    max_wait: float = 120.0
    sleep: Callable[[float], None] = time.sleep

    def run(self, op: Callable[[], T], *, idempotent: bool = True) -> T:
        attempt = 0
        while True:
            try:
                return op()
            except ForgeRateLimited as exc:
                wait = max(self._step(attempt), exc.retry_after or 0.0)
                if attempt >= self.max_retries or wait > self.max_wait:
                    if attempt == 0:
                        raise
                    raise _gave_up(exc, attempt) from exc
            except ForgeUnavailable as exc:
                if not idempotent or attempt >= self.max_retries:
                    if attempt == 0:
                        raise
                    raise _gave_up(exc, attempt) from exc
                wait = self._step(attempt)
            attempt += 1
            log.info("forge call failed, retry %d of %d in %.1f s", attempt, self.max_retries, wait)
            self.sleep(wait)

    def _step(self, attempt: int) -> float:
        if not self.backoff:
            return 0.0
        return self.backoff[min(attempt, len(self.backoff) - 1)]


def _gave_up(exc: ForgeRateLimited | ForgeUnavailable, attempts: int) -> Exception:
    message = f"{exc.message} (gave up after {attempts} retries)"
    if isinstance(exc, ForgeRateLimited):
        return ForgeRateLimited(message, retry_after=exc.retry_after)
    return ForgeUnavailable(message)
