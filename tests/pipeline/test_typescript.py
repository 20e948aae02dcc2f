"""A small TypeScript project, end to end in the node sandbox image: its failing test is
found in the baseline run, a wrong first fix is caught by validation and sent back, the
right one passes, the task waits for approval, and approval pushes the branch."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import auth
from tests.gitrepos import plain_git
from tests.models.scripted_server import ScriptedServer
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
    NODE_IMAGE,
    TS_PLAN,
    TS_PR,
    TS_REQUEST,
    TS_UNDERSTANDING,
    make_shapes,
    reply,
    ts_edit,
)

pytestmark = pytest.mark.slow

READ_AREA = {"thought": "Find area().", "tool": "read_file", "args": {"path": "src/area.ts"}}
WRONG = ts_edit("return r.width * r.width;", "Multiply.")
RIGHT = {
    "thought": "I squared the width; multiply width by height.",
    "tool": "edit_file",
    "args": {"path": "src/area.ts", "old": "r.width * r.width", "new": "r.width * r.height"},
}
TEST = {"thought": "Run them.", "tool": "run_tests", "args": {}}
FINISH = {"thought": "", "tool": "finish", "args": {"summary": "area() multiplies the sides."}}


def test_a_typescript_bug_is_fixed_in_the_node_sandbox_and_pushed(
    tmp_path: Path, model: ScriptedServer
) -> None:
    shapes = make_shapes(tmp_path)
    model.add(reply(TS_UNDERSTANDING), reply(TS_PLAN), reply(READ_AREA), reply(WRONG),
              reply(FINISH), reply(RIGHT), reply(TEST), reply(FINISH), reply(TS_PR))  # fmt: skip
    with app_client(model.url) as client:
        tokens = tokens_of(client)
        task_id = submit(
            client, tokens, shapes.url, TS_REQUEST, name="shapes",
            settings={"sandbox_image": NODE_IMAGE},
        )  # fmt: skip
        task = wait_status(client, task_id, tokens.viewer, "awaiting_approval", "failed")
        assert task["status"] == "awaiting_approval", failure_text(task)
        evs = events(client, task_id, tokens.viewer)

        commands = of_kind(evs, "command_executed")
        baseline = commands[0]
        assert baseline["command"] == "npm test"
        assert baseline["exit_code"] != 0  # the area test fails before any change
        rounds = of_kind(evs, "iteration")
        assert [r["ok"] for r in rounds] == [False, True]
        assert rounds[0]["tests"]["exit_code"] != 0  # r.width * r.width: 9, not 12
        assert rounds[1]["tests"]["exit_code"] == 0
        # the model was told why its first round failed
        feedback = model.requests[5].body["messages"][1]["content"]
        assert "Validation of round 0 failed" in feedback
        assert "9 !== 12" in feedback
        diff = of_kind(evs, "review_ready")[0]["diff"]
        assert "-  return r.width + r.height;" in diff
        assert "+  return r.width * r.height;" in diff

        approved = client.post(f"/api/v1/tasks/{task_id}/approve", headers=auth(tokens.dev2))
        assert approved.status_code == 200, approved.text
        done = wait_status(client, task_id, tokens.viewer, "done", "failed")
        assert done["status"] == "done", failure_text(done)
    branch = plain_git(shapes.bare, "branch", "--list", "appliance/*").strip().lstrip("* ")
    pushed = plain_git(shapes.bare, "show", f"{branch}:src/area.ts")
    assert "return r.width * r.height;" in pushed
    assert "export interface Rect" in pushed


def test_a_node_project_in_the_python_image_pauses_early_saying_what_is_missing(
    tmp_path: Path, model: ScriptedServer
) -> None:
    """Without the repository's ``sandbox_image`` setting its tests cannot run: the task
    pauses in preparing with a question a person can answer, before the model is asked."""
    shapes = make_shapes(tmp_path)
    model.add(reply(TS_UNDERSTANDING))
    with app_client(model.url) as client:
        tokens = tokens_of(client)
        task_id = submit(client, tokens, shapes.url, TS_REQUEST, name="shapes")
        task = wait_status(client, task_id, tokens.viewer, "paused", "failed")
        evs = events(client, task_id, tokens.viewer)
    assert task["status"] == "paused", failure_text(task)
    assert task["step"] == "preparing"
    [waiting] = of_kind(evs, "waiting")
    assert waiting["question"].startswith("The sandbox cannot run this repository's tests")
    assert "node is not installed in this sandbox image (use the node image)" in str(
        waiting["question"]
    )
    errors = of_kind(evs, "error")
    assert "node is not installed in this sandbox image (use the node image)" in str(errors)
    assert model.requests == []
