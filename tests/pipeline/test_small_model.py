"""The real CPU model (SmolLM2-135M through llama.cpp) drives a task on the fixture
repository. It is far too small to fix anything, and that is the point: whatever it emits,
the task ends cleanly within its budgets: at the human gate, or failed with a category and
a message for a person; never stuck, never an internal error."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from models.llamacpp import LlamaCppServer, smollm2_gguf
from tests.pipeline.harness import (
    SETTLED,
    app_client,
    events,
    failure_text,
    of_kind,
    submit,
    tokens_of,
    wait_status,
)
from tests.pipeline.scenario import REQUEST, make_calc

pytestmark = pytest.mark.slow

MAX_STEPS = 8
MAX_MINUTES = 0.5


@pytest.fixture(scope="module")
def smollm2() -> Iterator[LlamaCppServer]:
    with LlamaCppServer(smollm2_gguf(), ctx=4096) as server:
        yield server


def test_the_tiny_cpu_model_drives_a_task_to_a_clean_end(
    tmp_path: Path, smollm2: LlamaCppServer
) -> None:
    calc = make_calc(tmp_path)
    started = time.monotonic()
    with app_client(
        smollm2.base_url,
        model=smollm2.model,
        kind="llamacpp",
        context_length=4096,
        max_steps=MAX_STEPS,
        max_minutes=MAX_MINUTES,
        reply_tokens=64,
    ) as client:
        tokens = tokens_of(client)
        task_id = submit(client, tokens, calc.url, REQUEST)
        task = wait_status(client, task_id, tokens.viewer, *SETTLED, timeout=170)
        evs = events(client, task_id, tokens.viewer)
    elapsed = time.monotonic() - started

    assert task["status"] in ("awaiting_approval", "failed"), failure_text(task)
    if task["status"] == "failed":
        assert task["failure_category"] not in (None, "internal"), failure_text(task)
        assert task["failure_message"], task
        if task["failure_category"] == "code_logic":
            assert str(task["failure_message"]).startswith("Handed over: "), failure_text(task)
    else:
        assert of_kind(evs, "review_ready"), [e["kind"] for e in evs]
    # each step is a tool call or a reported bad reply, and there are no more than allowed;
    # none at all only when understanding and planning alone used up the time (a busy CPU)
    steps = of_kind(evs, "tool_call") + [
        e for e in of_kind(evs, "error") if e["message"].startswith("invalid model reply")
    ]
    assert len(steps) <= MAX_STEPS, [e["kind"] for e in evs]
    if not steps:
        assert "the time limit (0.5 min) was reached" in str(task["failure_message"]), task
    assert not [e for e in of_kind(evs, "error") if not e.get("recoverable", True)], evs
    # the wall clock guard is checked between steps; planning's calls are capped too
    assert elapsed < 120, elapsed
