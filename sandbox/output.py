"""Output capped per stream: the head and the tail are kept, the middle is dropped and
replaced by a marker that says how much was dropped. Memory stays bounded whatever a
command prints."""

from __future__ import annotations

from collections import deque


class CappedBuffer:
    def __init__(self, cap: int) -> None:
        self.cap = cap
        self._head = bytearray()
        self._head_cap = cap // 2
        self._tail: deque[bytes] = deque()
        self._tail_len = 0
        self._tail_cap = cap - self._head_cap
        self.total = 0

    def write(self, chunk: bytes) -> None:
        self.total += len(chunk)
        room = self._head_cap - len(self._head)
        if room > 0:
            self._head += chunk[:room]
            chunk = chunk[room:]
        if not chunk:
            return
        self._tail.append(chunk)
        self._tail_len += len(chunk)
        while self._tail_len - len(self._tail[0]) >= self._tail_cap:
            self._tail_len -= len(self._tail.popleft())

    @property
    def kept(self) -> int:
        return len(self._head) + min(self._tail_len, self._tail_cap)

    @property
    def truncated(self) -> bool:
        return self.total > self.kept

    def text(self) -> str:
        tail = b"".join(self._tail)
        if self._tail_len > self._tail_cap:
            tail = tail[-self._tail_cap :]
        dropped = self.total - len(self._head) - len(tail)
        if dropped <= 0:
            return (bytes(self._head) + tail).decode("utf-8", errors="replace")
        marker = (
            f"\n[... {dropped:,} bytes of output dropped (kept the first and last parts) ...]\n"
        )
        return (
            bytes(self._head).decode("utf-8", errors="replace")
            + marker
            + tail.decode("utf-8", errors="replace")
        )
