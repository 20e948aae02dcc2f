"""The edit policy holds for the final diff, not only for the write tools: a command run in
the sandbox (which mounts the worktree read-write) that changes a protected file is caught
at review. Nothing is published: the task goes back to implementing with the file put back
while rounds remain, and fails (security) when none do."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

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
    EDIT,
    FINISH,
    PLAN,
    PR,
    READ,
    REQUEST,
    UNDERSTANDING,
    make_calc,
    reply,
)

pytestmark = pytest.mark.slow

PROTECTED = {"protected_paths": ["README.md"]}
SNEAK_COMMAND = "echo 'average() is fixed' >> README.md"
SNEAK = {
    "thought": "Note the fix in the README too.",
    "tool": "run_command",
    "args": {"command": SNEAK_COMMAND},
}
FINISH_AGAIN = {"thought": "", "tool": "finish",
                "args": {"summary": "Fixed the divisor; README left alone."}}  # fmt: skip


def test_a_protected_file_written_by_a_command_fails_the_task_unpublished(
    tmp_path: Path, model: ScriptedServer
) -> None:
    calc = make_calc(tmp_path)
    model.add(reply(UNDERSTANDING), reply(PLAN), reply(READ), reply(EDIT), reply(SNEAK),
              reply(FINISH), reply(PR))  # fmt: skip
    with app_client(model.url, max_rounds=1) as client:
        tokens = tokens_of(client)
        task_id = submit(client, tokens, calc.url, REQUEST, settings=PROTECTED)
        task = wait_status(client, task_id, tokens.viewer, "failed", "awaiting_approval")
        evs = events(client, task_id, tokens.viewer)
    assert task["status"] == "failed", failure_text(task)
    assert task["failure_category"] == "security", failure_text(task)
    message = str(task["failure_message"])
    assert "The change breaks the edit policy" in message
    assert "README.md is protected by this repository's settings ('README.md')" in message
    assert "Nothing was pushed." in message
    # the command did write the file: only the review stopped it
    assert any(c["command"] == SNEAK_COMMAND and c["exit_code"] == 0
               for c in of_kind(evs, "command_executed"))  # fmt: skip
    errors = [e for e in of_kind(evs, "error") if "edit policy" in e["message"]]
    assert errors
    assert errors[0]["recoverable"] is False
    assert of_kind(evs, "review_ready") == []
    assert plain_git(calc.bare, "branch", "--list", "appliance/*").strip() == ""
    assert len(model.requests) == 6  # the pull request's text was never asked for


def test_a_policy_breach_goes_back_to_implementing_with_the_file_put_back(
    tmp_path: Path, model: ScriptedServer
) -> None:
    calc = make_calc(tmp_path)
    model.add(reply(UNDERSTANDING), reply(PLAN), reply(READ), reply(EDIT), reply(SNEAK),
              reply(FINISH), reply(FINISH_AGAIN), reply(PR))  # fmt: skip
    with app_client(model.url) as client:
        tokens = tokens_of(client)
        task_id = submit(client, tokens, calc.url, REQUEST, settings=PROTECTED)
        task = wait_status(client, task_id, tokens.viewer, "failed", "awaiting_approval")
        evs = events(client, task_id, tokens.viewer)
    assert task["status"] == "awaiting_approval", failure_text(task)
    # the model was told why at its next step
    told = json.dumps(model.requests[6].body["messages"])
    assert "README.md is protected by this repository's settings" in told
    assert "put back as they were before the task" in told
    errors = [e for e in of_kind(evs, "error") if "edit policy" in e["message"]]
    assert errors
    assert errors[0]["recoverable"] is True
    # what waits for approval is the fix alone, README as it was
    (review,) = of_kind(evs, "review_ready")
    assert [s["path"] for s in review["stats"]] == ["calc/stats.py"]
    assert "README.md" not in review["diff"]
    assert "+    return sum(values) / len(values)" in review["diff"]
    assert plain_git(calc.bare, "branch", "--list", "appliance/*").strip() == ""


def test_the_pr_body_has_risks_evidence_and_a_decision_record_the_model_left_out(
    tmp_path: Path, model: ScriptedServer
) -> None:
    calc = make_calc(tmp_path)
    feature = {**UNDERSTANDING, "intent": "feature"}
    terse_pr = {"title": PR["title"], "summary": PR["summary"]}  # no risks, no decision record
    model.add(reply(feature), reply(PLAN), reply(READ), reply(EDIT), reply(FINISH),
              reply(terse_pr))  # fmt: skip
    with app_client(model.url) as client:
        tokens = tokens_of(client)
        task_id = submit(client, tokens, calc.url, REQUEST)
        task = wait_status(client, task_id, tokens.viewer, "failed", "awaiting_approval")
        evs = events(client, task_id, tokens.viewer)
    assert task["status"] == "awaiting_approval", failure_text(task)
    (review,) = of_kind(evs, "review_ready")
    body = review["pr_body"]
    sections = [line for line in body.splitlines() if line.startswith("## ")]
    assert sections == [
        "## Summary",
        "## Plan",
        "## Changes",
        "## Test evidence",
        "## Risks",
        "## Rollback",
        "## Architectural decision record",
    ]
    # the risks and the decision record come from the plan
    assert "## Risks\n- callers relying on the wrong value\n" in body
    assert "- Decision: Divide by the number of values in average()." in body
    assert "- Context: average() divides by len - 1 instead of len." in body
    # before/after counts: test_average failed before, both pass after
    assert "| before the change | 1 | 1 |" in body  # test_spread passed, test_average failed
    assert "| after the change | 2 | 0 |" in body
    assert "Fixed: 1 test(s) that failed before pass now (" in body
    assert "test_average" in body
