"""Validating: what changed is read from git, so a fix made by a command in the sandbox is
tested like one made with the edit tools; linter findings count only on the lines the task
changed (a file's old findings are not the task's); and the round limit (default 5) ends a
task whose every round breaks a test as handed over with notes, not left running nor
crashed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.gitrepos import make_upstream
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
    PR,
    REQUEST,
    STATS,
    TESTS,
    UNDERSTANDING,
    make_calc,
    reply,
)

pytestmark = pytest.mark.slow

SPREAD = "return max(values) - min(values)"


def breaking_round(k: int) -> list[Reply]:
    """Round ``k``: an edit that keeps test_spread failing (off by k + 1), then finish."""
    old = SPREAD if k == 0 else f"{SPREAD} + {k}"
    edit: dict[str, Any] = {
        "thought": f"Try adjusting spread(), attempt {k + 1}.",
        "tool": "edit_file",
        "args": {"path": "calc/stats.py", "old": old, "new": f"{SPREAD} + {k + 1}"},
    }
    finish = {"thought": "", "tool": "finish", "args": {"summary": f"attempt {k + 1} done"}}
    return [reply(edit), reply(finish)]


def test_the_fifth_failed_validation_round_hands_the_task_over(
    tmp_path: Path, model: ScriptedServer
) -> None:
    calc = make_calc(tmp_path)
    model.add(reply(UNDERSTANDING), reply(PLAN))
    for k in range(6):  # one round more than the limit allows
        model.add(*breaking_round(k))
    with app_client(model.url) as client:
        tokens = tokens_of(client)
        task_id = submit(client, tokens, calc.url, REQUEST)
        task = wait_status(
            client, task_id, tokens.viewer, "failed", "awaiting_approval", timeout=300
        )
        evs = events(client, task_id, tokens.viewer)
    assert task["status"] == "failed", failure_text(task)
    assert task["failure_category"] == "code_logic", failure_text(task)
    message = str(task["failure_message"])
    first = message.splitlines()[0]
    assert first.startswith("Handed over: validation still fails after 5 round(s): "), first
    assert "test_spread" in message
    # the notes say what was tried: the last steps, the fifth attempt among them
    assert "Last steps:" in message
    assert "attempt 5 done" in message or "edit_file calc/stats.py" in message
    iterations = of_kind(evs, "iteration")
    assert [i["round"] for i in iterations] == [0, 1, 2, 3, 4]
    assert not any(i["ok"] for i in iterations)
    assert all(any("test_spread" in t for t in i["tests"]["new_failures"]) for i in iterations)
    # understanding, plan, then five rounds of edit + finish; the sixth round never started
    assert len(model.requests) == 2 + 5 * 2


# calc whose stats.py has an old linter finding (an unused import: flake8 F401, line 2)
OLD_FINDING = STATS.replace(
    '"""Small statistics helpers."""\n', '"""Small statistics helpers."""\nimport os\n'
)
SED_FIX = {
    "thought": "Fix the divisor with sed.",
    "tool": "run_command",
    "args": {"command": "sed -i 's|/ (len(values) - 1)|/ len(values);|' calc/stats.py"},
}
FINISH_0 = {"thought": "", "tool": "finish", "args": {"summary": "fixed the divisor"}}
DROP_SEMICOLON = {
    "thought": "Remove the stray semicolon.",
    "tool": "edit_file",
    "args": {"path": "calc/stats.py", "old": "/ len(values);", "new": "/ len(values)"},
}
FINISH_1 = {"thought": "", "tool": "finish", "args": {"summary": "fixed, lint clean"}}


def test_a_command_made_fix_is_validated_and_only_new_lint_findings_count(
    tmp_path: Path, model: ScriptedServer
) -> None:
    up = make_upstream(tmp_path, "calc")
    up.commit(
        {"calc/__init__.py": "", "calc/stats.py": OLD_FINDING, "tests/test_stats.py": TESTS,
         "pytest.ini": "[pytest]\ntestpaths = tests\n"},
        "calc with a bug in average and an unused import",
    )  # fmt: skip
    model.add(reply(UNDERSTANDING), reply(PLAN), reply(SED_FIX), reply(FINISH_0),
              reply(DROP_SEMICOLON), reply(FINISH_1), reply(PR))  # fmt: skip
    with app_client(model.url) as client:
        tokens = tokens_of(client)
        task_id = submit(client, tokens, up.url, REQUEST)
        task = wait_status(client, task_id, tokens.viewer, "failed", "awaiting_approval")
        evs = events(client, task_id, tokens.viewer)
    assert task["status"] == "awaiting_approval", failure_text(task)
    first, second = of_kind(evs, "iteration")
    # round 0: the command's change was seen and tested (the fix works) ...
    assert "+    return sum(values) / len(values);" in first["diff"]
    assert first["tests"]["passed"] == 2
    assert first["tests"]["new_failures"] == []
    # ... but the semicolon it added is a finding on a changed line; the old unused
    # import, in the same file, is not the task's and is not reported
    assert not first["ok"]
    told = json.dumps(model.requests[4].body["messages"])
    assert "The linter reports on lines you changed" in told
    assert "E703" in told
    assert "F401" not in told
    assert "finished without changing any file" not in told
    assert second["ok"]
    (review,) = of_kind(evs, "review_ready")
    assert "+    return sum(values) / len(values)\n" in review["diff"]
    assert "import os" not in review["diff"]
