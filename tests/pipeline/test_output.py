"""Live sandbox output reaches the task's events in batches, capped per task."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from appliance.pipeline.output import OutputRelay


async def _relay_run(chunks: list[tuple[str, bytes]], **kw: Any) -> list[dict[str, Any]]:
    loop = asyncio.get_running_loop()
    events: list[dict[str, Any]] = []

    async def emit(kind: str, payload: dict[str, Any]) -> None:
        assert kind == "output"
        events.append(payload)

    relay = OutputRelay(loop, emit, **kw)

    def produce() -> None:  # the sandbox calls back from a worker thread
        for stream, data in chunks:
            relay(stream, data)

    thread = threading.Thread(target=produce)
    thread.start()
    await asyncio.to_thread(thread.join)
    await asyncio.sleep(0.3)  # past the batching interval: the tail is flushed too
    return events


def test_chunks_arrive_in_few_events_with_nothing_lost() -> None:
    chunks = [("stdout", f"line {i}\n".encode()) for i in range(500)]
    chunks.append(("stderr", b"a warning\n"))
    events = asyncio.run(_relay_run(chunks, interval=0.1, batch=1_000))
    out = "".join(e["text"] for e in events if e["stream"] == "stdout")
    assert out == "".join(f"line {i}\n" for i in range(500))
    assert [e["text"] for e in events if e["stream"] == "stderr"] == ["a warning\n"]
    assert len(events) < 20  # batched: not one event per chunk


def test_output_past_the_cap_is_dropped_with_one_note() -> None:
    chunks = [("stdout", b"x" * 100) for _ in range(100)]  # 10,000 characters
    events = asyncio.run(_relay_run(chunks, interval=0.05, batch=500, cap=2_000))
    assert sum(len(e["text"]) for e in events) == 2_000
    notes = [e["note"] for e in events if e.get("note")]
    assert notes == ["live output stops here (over 2,000 characters for this task)"]


def test_undecodable_bytes_do_not_break_the_stream() -> None:
    events = asyncio.run(_relay_run([("stdout", b"ok \xff\xfe end\n")], interval=0.05))
    assert events[0]["text"] == "ok \ufffd\ufffd end\n"
