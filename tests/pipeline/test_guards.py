"""The guards of the tool loop: a model that repeats itself, one that never finishes, and
one that spends too many tokens are stopped, and the task is handed over to a person with
notes (failed, code_logic, "Handed over: …" and the last steps), not left running."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.models.scripted_server import ScriptedServer
from tests.pipeline.harness import app_client, submit, tokens_of, wait_status
from tests.pipeline.scenario import PLAN, READ, REQUEST, UNDERSTANDING, make_calc, reply

pytestmark = pytest.mark.slow

READ_TESTS = {"thought": "What do the tests expect?", "tool": "read_file",
              "args": {"path": "tests/test_stats.py"}}  # fmt: skip
LIST = {"thought": "What else is there?", "tool": "list_directory", "args": {"path": "."}}
SEARCH = {"thought": "Who calls it?", "tool": "search_code", "args": {"pattern": "average"}}


def _handed_over(tmp_path: Path, model: ScriptedServer, **pipeline: Any) -> str:
    calc = make_calc(tmp_path)
    with app_client(model.url, **pipeline) as client:
        tokens = tokens_of(client)
        task_id = submit(client, tokens, calc.url, REQUEST)
        task = wait_status(client, task_id, tokens.viewer, "failed", "awaiting_approval")
    assert task["status"] == "failed", task
    assert task["failure_category"] == "code_logic", task
    message = str(task["failure_message"])
    assert message.startswith("Handed over: "), message
    return message


def test_a_model_repeating_the_same_action_is_stopped_and_handed_over(
    tmp_path: Path, model: ScriptedServer
) -> None:
    # the scripted server repeats its last reply forever: the model reads the same file
    # again and again
    model.add(reply(UNDERSTANDING), reply(PLAN), reply(READ))
    message = _handed_over(tmp_path, model)
    assert message.splitlines()[0] == "Handed over: the same action (read_file) 3 times running."
    assert "Last steps:\nstep 1: read_file calc/stats.py -> ok" in message
    assert "step 3: read_file calc/stats.py -> ok" in message
    # stopped at the third repeat: understanding, plan, three reads, and no further call
    assert len(model.requests) == 5


def test_the_step_limit_hands_the_task_over(tmp_path: Path, model: ScriptedServer) -> None:
    model.add(reply(UNDERSTANDING), reply(PLAN), reply(READ), reply(READ_TESTS), reply(LIST),
              reply(SEARCH))  # fmt: skip
    message = _handed_over(tmp_path, model, max_steps=3)
    assert message.splitlines()[0] == "Handed over: the step limit (3 tool calls) was reached."
    assert "step 1: read_file calc/stats.py -> ok" in message
    assert "step 2: read_file tests/test_stats.py -> ok" in message
    assert "step 3: list_directory . -> ok" in message
    assert len(model.requests) == 5  # the fourth step never asked the model


def test_the_token_budget_hands_the_task_over(tmp_path: Path, model: ScriptedServer) -> None:
    # every reply reports 400 prompt + 50 completion tokens: understanding and plan spend
    # 900 of the 1,000, the first step goes over, the second is not asked for
    model.add(reply(UNDERSTANDING), reply(PLAN), reply(READ), reply(READ_TESTS), reply(LIST))
    message = _handed_over(tmp_path, model, max_tokens=1000)
    assert message.splitlines()[0] == "Handed over: the token budget (1,000) was spent."
    assert "step 1: read_file calc/stats.py -> ok" in message
    assert len(model.requests) == 3
