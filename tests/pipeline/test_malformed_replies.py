"""Whatever the model emits, the task goes on: each kind of bad step becomes an error the
model reads at its next call (saying what was wrong), the task's events show it, and the
model's next, sensible steps still bring the task to the human gate with a working fix."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.models.scripted_server import Reply, ScriptedServer
from tests.pipeline.harness import (
    app_client,
    events,
    failure_text,
    of_kind,
    submit,
    tokens_of,
    wait_status,
)
from tests.pipeline.scenario import (
    PLAN,
    REQUEST,
    UNDERSTANDING,
    make_calc,
    raw,
    recovery,
    reply,
)

pytestmark = pytest.mark.slow


@dataclass
class Case:
    bad: list[Reply]  # the malformed step's replies (two for one the client retries itself)
    #: what the model is told at its next call (the last message of that request)
    told: str
    #: in-call retry: what the client said after the first bad reply of the same step
    retry_told: str | None = None
    constraints: dict[str, Any] = field(default_factory=dict)
    #: a failed tool_call for this tool (None: the reply never became a tool call)
    tool: str | None = None


PROSE = "Sure! First I will read calc/stats.py to see what average() does."
CUT = '{"thought": "read it", "tool": "read_file", "args": {"path": "calc/st'
ARGS_NOT_OBJECT = {"thought": "read it", "tool": "read_file", "args": "calc/stats.py"}
UNKNOWN_TOOL = {"thought": "open it", "tool": "open_file", "args": {"path": "calc/stats.py"}}
TWICE = {
    "thought": "fix the return",
    "tool": "edit_file",
    "args": {"path": "calc/stats.py", "old": "    return ", "new": "    return 0 + "},
}
ESCAPE = {"thought": "look around", "tool": "read_file", "args": {"path": "../../etc/passwd"}}
AVOIDED = {
    "thought": "document it",
    "tool": "edit_file",
    "args": {"path": "README.md", "old": "# calc", "new": "# calc (average fixed)"},
}

CASES = {
    "invalid_json": Case(
        bad=[raw(PROSE), raw(CUT)],
        retry_told="Your reply is not valid JSON",
        told="Error of (invalid reply):\nYour reply was not a valid action: "
        "Your reply is not valid JSON",
    ),
    "schema_violation": Case(
        bad=[reply(ARGS_NOT_OBJECT), reply(ARGS_NOT_OBJECT)],
        retry_told="does not match the Action schema: field 'args': Input should be a valid "
        "dictionary",
        told="Your reply was not a valid action: Your reply does not match the Action schema: "
        "field 'args': Input should be a valid dictionary",
    ),
    "unknown_tool": Case(
        bad=[reply(UNKNOWN_TOOL), reply(UNKNOWN_TOOL)],
        retry_told="field 'tool': Input should be 'read_file'",
        told="Your reply was not a valid action: Your reply does not match the Action schema: "
        "field 'tool': Input should be 'read_file'",
    ),
    "edit_matching_twice": Case(
        bad=[reply(TWICE)],
        told="Error of edit_file:\nold occurs 2 times in calc/stats.py",
        tool="edit_file",
    ),
    "path_escape": Case(
        bad=[reply(ESCAPE)],
        told="Error of read_file:\n'../../etc/passwd' contains '..'; paths cannot leave the "
        "worktree",
        tool="read_file",
    ),
    "avoided_file": Case(
        bad=[reply(AVOIDED)],
        told="Error of edit_file:\nREADME.md is in the request's files to avoid",
        constraints={"avoid_files": ["README.md"]},
        tool="edit_file",
    ),
}


def _last_message(body: dict[str, Any]) -> str:
    return str(body["messages"][-1]["content"])


@pytest.mark.parametrize("name", list(CASES))
def test_a_malformed_step_is_reported_to_the_model_and_the_task_recovers(
    tmp_path: Path, model: ScriptedServer, name: str
) -> None:
    case = CASES[name]
    calc = make_calc(tmp_path)
    model.add(reply(UNDERSTANDING), reply(PLAN), *case.bad, *recovery())
    with app_client(model.url) as client:
        tokens = tokens_of(client)
        task_id = submit(client, tokens, calc.url, REQUEST, constraints=case.constraints)
        task = wait_status(client, task_id, tokens.viewer, "awaiting_approval", "failed")
        evs = events(client, task_id, tokens.viewer)
    assert task["status"] == "awaiting_approval", failure_text(task)

    bodies = [r.body for r in model.requests]
    first_bad = 2  # understanding and plan came first
    if case.retry_told is not None:
        # the client asked again within the same step, saying what was wrong
        assert case.retry_told in _last_message(bodies[first_bad + 1])
    after_bad = bodies[first_bad + len(case.bad)]
    assert case.told in _last_message(after_bad), _last_message(after_bad)

    tool_calls = of_kind(evs, "tool_call")
    if case.tool is None:
        errors = of_kind(evs, "error")
        assert any(e["message"].startswith("invalid model reply: ") for e in errors), errors
        assert all(e["recoverable"] for e in errors)
    else:
        failed = [c for c in tool_calls if not c["ok"]]
        assert [c["tool"] for c in failed] == [case.tool]
        assert case.told.split("\n", 1)[1] in failed[0]["output_snippet"]
    # the model's later steps ran: the fix went in and the tests passed
    assert [c["tool"] for c in tool_calls if c["ok"]] == [
        "read_file",
        "edit_file",
        "run_tests",
        "finish",
    ]
    diff = of_kind(evs, "review_ready")[0]["diff"]
    assert "+    return sum(values) / len(values)" in diff
    assert "README.md" not in diff
    assert of_kind(evs, "iteration")[-1]["tests"]["new_failures"] == []
    if case.constraints:
        # the model was told up front, not only when it hit the wall
        system = bodies[first_bad]["messages"][0]["content"]
        assert "Do not change: README.md" in system, system
