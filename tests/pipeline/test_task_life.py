"""A task's life with the real nodes, a scripted model and the sandbox switched off (the
repositories here have no test suite unless the test is about tests that cannot run):
the human decisions (a clarifying question, plan approval, request changes), the time
guard counting only active time, failures when the models are down, a constraint added
mid-run, and a worktree made just before a crash."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from appliance.config import load_settings
from appliance.index.service import IndexService
from appliance.repos.worktree import Worktrees
from appliance.store import tasks as task_store
from appliance.store.db import Database
from appliance.store.models import TaskCreate
from tests.conftest import auth
from tests.gitrepos import plain_git
from tests.models.scripted_server import Reply, ScriptedServer
from tests.pipeline.harness import (
    app_client,
    backdate,
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
    make_calc_without_tests,
    reply,
)

pytestmark = pytest.mark.slow

FIXED = "return sum(values) / len(values)"


def _prompt(model: ScriptedServer, n: int) -> str:
    """The text of every message of the model's n-th request."""
    return "\n".join(str(m.get("content")) for m in model.requests[n].body["messages"])


def _tools(evs: list[dict[str, Any]]) -> list[tuple[str, bool]]:
    return [(p["tool"], p["ok"]) for p in of_kind(evs, "tool_call")]


def _task(client: TestClient, task_id: str, token: str) -> dict[str, Any]:
    return dict(client.get(f"/api/v1/tasks/{task_id}", headers=auth(token)).json())


# --- the clarifying question ------------------------------------------------------------


def test_an_ambiguous_request_pauses_with_a_question_and_the_answer_reaches_the_model(
    tmp_path: Path, model: ScriptedServer
) -> None:
    calc = make_calc_without_tests(tmp_path)
    ambiguous = {**UNDERSTANDING, "ambiguous": True,
                 "question": "Should average() of an empty list raise or return 0?"}  # fmt: skip
    model.add(reply(ambiguous), reply(UNDERSTANDING), reply(PLAN), reply(READ), reply(EDIT),
              reply(FINISH), reply(PR))  # fmt: skip
    with app_client(model.url, sandbox=False) as client:
        tokens = tokens_of(client)
        task_id = submit(client, tokens, calc.url, REQUEST)
        task = wait_status(client, task_id, tokens.viewer, "paused", "failed")
        assert task["status"] == "paused", failure_text(task)
        [waiting] = of_kind(events(client, task_id, tokens.viewer), "waiting")
        assert waiting["question"] == "Should average() of an empty list raise or return 0?"
        assert waiting["actions"] == ["answer"]
        assert len(model.requests) == 1  # nothing planned before the answer

        answered = client.post(
            f"/api/v1/tasks/{task_id}/answer",
            json={"answer": "keep raising ValueError"},
            headers=auth(tokens.dev),
        )
        assert answered.status_code == 200, answered.text
        task = wait_status(client, task_id, tokens.viewer, "awaiting_approval", "failed")
        assert task["status"] == "awaiting_approval", failure_text(task)
    understand_again, plan = _prompt(model, 1), _prompt(model, 2)
    assert "You asked: Should average() of an empty list raise or return 0?" in understand_again
    assert "The developer answered: keep raising ValueError" in understand_again
    assert "(Answer to your question: keep raising ValueError)" in plan


# --- plan approval ----------------------------------------------------------------------


def test_plan_approval_waits_after_planning_replans_on_changes_and_implements_on_approve(
    tmp_path: Path, model: ScriptedServer
) -> None:
    calc = make_calc_without_tests(tmp_path)
    second_plan = {**PLAN, "risks": ["empty lists"]}
    model.add(reply(UNDERSTANDING), reply(PLAN), reply(second_plan), reply(READ), reply(EDIT),
              reply(FINISH), reply(PR))  # fmt: skip
    with app_client(model.url, sandbox=False) as client:
        tokens = tokens_of(client)
        task_id = submit(client, tokens, calc.url, REQUEST, settings={"plan_approval": True})
        task = wait_status(client, task_id, tokens.viewer, "awaiting_approval", "failed")
        assert task["status"] == "awaiting_approval", failure_text(task)
        assert task["step"] == "planning"
        assert len(model.requests) == 2  # understanding and plan; no action yet

        changes = client.post(
            f"/api/v1/tasks/{task_id}/request-changes",
            json={"message": "say what happens to empty lists"},
            headers=auth(tokens.dev2),
        )
        assert changes.status_code == 200, changes.text
        task = wait_status(client, task_id, tokens.viewer, "awaiting_approval", "failed")
        assert task["step"] == "planning", failure_text(task)
        assert len(model.requests) == 3  # only the plan was asked for again
        assert "Reviewer's feedback on the last plan: say what happens to empty lists" in (
            _prompt(model, 2)
        )

        approved = client.post(f"/api/v1/tasks/{task_id}/approve", headers=auth(tokens.dev2))
        assert approved.status_code == 200, approved.text
        assert approved.json()["status"] == "implementing"
        task = wait_status(client, task_id, tokens.viewer, "awaiting_approval", "failed")
        assert task["status"] == "awaiting_approval", failure_text(task)
        assert task["step"] != "planning"
        evs = events(client, task_id, tokens.viewer)
    plans = of_kind(evs, "plan")
    assert [p["risks"] for p in plans] == [PLAN["risks"], ["empty lists"]]
    assert _tools(evs) == [("read_file", True), ("edit_file", True), ("finish", True)]
    assert plain_git(calc.bare, "branch", "--list", "appliance/*") == ""  # nothing pushed


# --- stuck on the same error --------------------------------------------------------------


def test_the_same_error_three_times_hands_the_task_over(
    tmp_path: Path, model: ScriptedServer
) -> None:
    calc = make_calc_without_tests(tmp_path)

    def wrong_edit(new: str) -> dict[str, Any]:
        args = {"path": "calc/stats.py", "old": "return total / count", "new": new}
        return {"thought": "Fix it.", "tool": "edit_file", "args": args}

    model.add(reply(UNDERSTANDING), reply(PLAN), reply(wrong_edit("a")), reply(wrong_edit("b")),
              reply(wrong_edit("c")), reply(FINISH))  # fmt: skip
    with app_client(model.url, sandbox=False) as client:
        tokens = tokens_of(client)
        task_id = submit(client, tokens, calc.url, REQUEST)
        task = wait_status(client, task_id, tokens.viewer, "failed", "awaiting_approval")
        evs = events(client, task_id, tokens.viewer)
    assert task["status"] == "failed", task
    assert task["failure_category"] == "code_logic"
    message = str(task["failure_message"])
    assert message.startswith("Handed over: the same error 3 times running: "), message
    assert "step 3: edit_file calc/stats.py -> error" in message
    assert _tools(evs) == [("edit_file", False)] * 3
    assert len(model.requests) == 5  # the finish after them was never asked for


# --- the wall clock counts active time only ----------------------------------------------


def test_request_changes_after_a_long_wait_implements_instead_of_handing_over(
    tmp_path: Path, model: ScriptedServer
) -> None:
    calc = make_calc_without_tests(tmp_path)
    model.add(reply(UNDERSTANDING), reply(PLAN), reply(READ), reply(EDIT), reply(FINISH),
              reply(PR), reply(READ), reply(FINISH), reply(PR))  # fmt: skip
    with app_client(model.url, sandbox=False, max_minutes=60) as client:
        tokens = tokens_of(client)
        task_id = submit(client, tokens, calc.url, REQUEST)
        task = wait_status(client, task_id, tokens.viewer, "awaiting_approval", "failed")
        assert task["status"] == "awaiting_approval", failure_text(task)
        # the task started two hours ago and has waited for its reviewer ever since
        backdate(client, task_id, started_at=120, _paused_at=119)
        changes = client.post(
            f"/api/v1/tasks/{task_id}/request-changes",
            json={"message": "mention the fix in the docstring"},
            headers=auth(tokens.dev2),
        )
        assert changes.status_code == 200, changes.text
        task = wait_status(client, task_id, tokens.viewer, "awaiting_approval", "failed")
        assert task["status"] == "awaiting_approval", failure_text(task)
        evs = events(client, task_id, tokens.viewer)
    assert [t for t, _ in _tools(evs)] == ["read_file", "edit_file", "finish", "read_file",
                                          "finish"]  # fmt: skip
    assert "mention the fix in the docstring" in _prompt(model, 6)


def test_a_real_overrun_of_the_time_limit_still_hands_over_with_notes(
    tmp_path: Path, model: ScriptedServer
) -> None:
    calc = make_calc_without_tests(tmp_path)
    slow_read = Reply(json=reply(READ).json, delay=8)  # the model thinks past the limit
    model.add(reply(UNDERSTANDING), reply(PLAN), slow_read, reply(EDIT), reply(FINISH))
    with app_client(model.url, sandbox=False, max_minutes=0.1) as client:
        tokens = tokens_of(client)
        task_id = submit(client, tokens, calc.url, REQUEST)
        task = wait_status(client, task_id, tokens.viewer, "failed", "awaiting_approval")
    assert task["status"] == "failed", task
    assert task["failure_category"] == "code_logic"
    message = str(task["failure_message"])
    assert message.splitlines()[0] == "Handed over: the time limit (0.1 min) was reached."
    assert "Last steps:\nstep 1: read_file calc/stats.py -> ok" in message
    assert len(model.requests) == 3


# --- the models are down ------------------------------------------------------------------


def test_when_every_model_endpoint_fails_the_task_fails_as_transient_naming_them(
    tmp_path: Path, model: ScriptedServer
) -> None:
    calc = make_calc_without_tests(tmp_path)
    overloaded = Reply(status=503, json={"error": {"message": "server overloaded"}})
    model.add(overloaded)
    with ScriptedServer(models=["coder"]) as fallback:
        fallback.add(Reply(status=503, json={"error": {"message": "no capacity"}}))
        with app_client(model.url, fallback_urls=(fallback.url,), sandbox=False) as client:
            tokens = tokens_of(client)
            task_id = submit(client, tokens, calc.url, REQUEST)
            task = wait_status(client, task_id, tokens.viewer, *("failed", "awaiting_approval"))
    assert task["status"] == "failed", task
    assert task["failure_category"] == "transient", failure_text(task)
    message = str(task["failure_message"])
    assert message.startswith("planning: the model could not be reached"), message
    assert f"{model.url}: HTTP 503: server overloaded" in message
    assert f"{fallback.url}: HTTP 503: no capacity" in message
    assert "appliance doctor" in message


def test_a_request_the_model_server_rejects_fails_the_task_as_transient(
    tmp_path: Path, model: ScriptedServer
) -> None:
    calc = make_calc_without_tests(tmp_path)
    model.add(Reply(status=400, json={"error": {"message": "maximum context length exceeded"}}))
    with app_client(model.url, sandbox=False) as client:
        tokens = tokens_of(client)
        task_id = submit(client, tokens, calc.url, REQUEST)
        task = wait_status(client, task_id, tokens.viewer, "failed", "awaiting_approval")
    assert task["failure_category"] == "transient", failure_text(task)
    assert "rejected the request (HTTP 400): maximum context length exceeded" in str(
        task["failure_message"]
    )


# --- tests the sandbox cannot run: a question, not a failure -------------------------------


def test_tests_that_cannot_run_pause_with_a_question_and_continue_without_tests(
    tmp_path: Path, model: ScriptedServer
) -> None:
    calc = make_calc(tmp_path)  # it has a pytest suite, and the sandbox is off
    model.add(reply(UNDERSTANDING), reply(PLAN), reply(READ), reply(EDIT), reply(FINISH),
              reply(PR))  # fmt: skip
    with app_client(model.url, sandbox=False) as client:
        tokens = tokens_of(client)
        task_id = submit(client, tokens, calc.url, REQUEST)
        task = wait_status(client, task_id, tokens.viewer, "paused", "failed")
        assert task["status"] == "paused", failure_text(task)
        assert task["step"] == "preparing"
        [waiting] = of_kind(events(client, task_id, tokens.viewer), "waiting")
        assert waiting["question"].startswith(
            "The sandbox cannot run this repository's tests: the sandbox is switched off"
        )
        assert waiting["actions"] == ["answer", "continue_without_tests", "resume"]

        # a test command does not help while the sandbox is off: asked again
        answered = client.post(
            f"/api/v1/tasks/{task_id}/answer",
            json={"answer": "python -m pytest -q"},
            headers=auth(tokens.dev),
        )
        assert answered.status_code == 200, answered.text
        task = wait_status(client, task_id, tokens.viewer, "paused", "failed")
        assert len(of_kind(events(client, task_id, tokens.viewer), "waiting")) == 2
        assert model.requests == []

        answered = client.post(
            f"/api/v1/tasks/{task_id}/answer", json={"answer": "continue"},
            headers=auth(tokens.dev),
        )  # fmt: skip
        assert answered.status_code == 200, answered.text
        task = wait_status(client, task_id, tokens.viewer, "awaiting_approval", "failed")
        assert task["status"] == "awaiting_approval", failure_text(task)
        evs = events(client, task_id, tokens.viewer)
    errors = [e["message"] for e in of_kind(evs, "error")]
    assert errors == ["the sandbox is switched off on this appliance."] * 2
    assert "Tests:" not in _prompt(model, 2)  # the agent is not told to run tests


# --- a constraint added mid-run -------------------------------------------------------------


def test_a_constraint_added_mid_run_pauses_the_task_and_the_tools_enforce_it(
    tmp_path: Path, model: ScriptedServer
) -> None:
    calc = make_calc_without_tests(tmp_path)
    slow_read = Reply(json=reply(READ).json, delay=4)
    model.add(reply(UNDERSTANDING), reply(PLAN), slow_read, reply(EDIT), reply(FINISH))
    with app_client(model.url, sandbox=False, max_rounds=1) as client:
        tokens = tokens_of(client)
        task_id = submit(client, tokens, calc.url, REQUEST)
        deadline = time.monotonic() + 60
        while len(model.requests) < 3:  # the model is thinking about its first step
            assert time.monotonic() < deadline, _task(client, task_id, tokens.viewer)
            time.sleep(0.05)
        runner = client.app.state.appliance.runner  # type: ignore[attr-defined]
        added = client.portal.call(  # type: ignore[union-attr]
            lambda: runner.add_note(
                task_id, "leave the statistics module alone", actor="dana",
                constraints={"avoid_files": ["calc/stats.py"]},
            )
        )  # fmt: skip
        assert added.status.value == "implementing"
        task = wait_status(client, task_id, tokens.viewer, "failed", "awaiting_approval")
        evs = events(client, task_id, tokens.viewer)
    assert task["constraints"]["avoid_files"] == ["calc/stats.py"]
    assert task["constraints"]["notes"] == ["leave the statistics module alone"]
    # paused at the step boundary after the read, resumed at once at the same node
    statuses = [(p["status"], p.get("step")) for p in of_kind(evs, "status")]
    at = statuses.index(("paused", "implementing"))
    assert statuses[at + 1] == ("implementing", "implementing")
    assert {"step": "implementing", "reason": "constraint taken"} in of_kind(evs, "resumed")
    # the edit after it was refused by the tool, not just discouraged by the prompt
    calls = of_kind(evs, "tool_call")
    assert [(c["tool"], c["ok"]) for c in calls[:2]] == [("read_file", True), ("edit_file", False)]
    assert "calc/stats.py" in calls[1]["output_snippet"]
    assert "leave the statistics module alone" in _prompt(model, 3)
    assert "Do not change: calc/stats.py" in _prompt(model, 3)
    assert of_kind(evs, "file_modified") == []


# --- a worktree made just before a crash ----------------------------------------------------


def test_a_worktree_made_before_a_crash_is_taken_up_with_its_own_branch(
    tmp_path: Path, model: ScriptedServer
) -> None:
    calc = make_calc_without_tests(tmp_path)
    model.add(reply(UNDERSTANDING), reply(PLAN), reply(READ), reply(EDIT), reply(FINISH),
              reply(PR))  # fmt: skip
    settings = load_settings()
    # the repository, registered by a first run of the appliance
    with app_client(model.url, sandbox=False) as client:
        tokens = tokens_of(client)
        repo = client.post(
            "/api/v1/repositories",
            json={"name": "calc", "clone_url": calc.url},
            headers=auth(tokens.admin),
        )
        assert repo.status_code == 201, repo.text
    # a task whose preparing made its worktree, on a branch named an hour before, and
    # crashed before its checkpoint recorded it
    db = Database(settings.database_url)
    with db.write() as s:
        task_id = task_store.create_task(
            s, task_in=TaskCreate(repository_id=repo.json()["id"], prompt=REQUEST),
            created_by="dana", max_prompt_chars=20_000,
        ).id  # fmt: skip
    db.dispose()
    index = IndexService(settings)
    report = index.refresh("calc", calc.url, "main")
    old_branch = f"appliance/20260101-0900-average-{task_id[:6]}"
    trees = Worktrees(settings.data_dir / "worktrees")
    trees.create(index.mirrors.get("calc"), task_id=task_id, branch=old_branch, base=report.commit)
    index.close()

    with app_client(model.url, sandbox=False) as client:  # the restart takes the task up
        task = wait_status(client, task_id, tokens.viewer, "awaiting_approval", "failed")
        assert task["status"] == "awaiting_approval", failure_text(task)
        approved = client.post(f"/api/v1/tasks/{task_id}/approve", headers=auth(tokens.dev2))
        assert approved.status_code == 200, approved.text
        task = wait_status(client, task_id, tokens.viewer, "done", "failed", "awaiting_approval")
        assert task["status"] == "done", failure_text(task)
        evs = events(client, task_id, tokens.viewer)
    pushed = plain_git(calc.bare, "branch", "--list", "appliance/*").strip().lstrip("* ")
    assert pushed == old_branch
    assert FIXED in plain_git(calc.bare, "show", f"{old_branch}:calc/stats.py")
    # a checkpoint, and its event, at every node of the task's life
    nodes = [p["node"] for p in of_kind(evs, "checkpoint_reached")]
    assert set(nodes) == {"preparing", "planning", "implementing", "validating", "reviewing",
                          "publishing"}  # fmt: skip
    assert nodes[:2] == ["preparing", "planning"]
