"""A change that adds a live-looking cloud key is never published: the task fails
(security), the worktree is quarantined (marked, kept, audited) and an alert is raised."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.store import audit
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

KEY_ID = "AKIAQ7ZT4M2V9L8WX3KP"
SECRET = "q9Vx2LrT7bKp4WmZ8sYc1NdF6hJ3gE0aUoRiXtQe"
LEAK = {
    "thought": "The stats need the bucket's credentials.",
    "tool": "create_file",
    "args": {
        "path": "calc/storage.py",
        "content": f'AWS_ACCESS_KEY_ID = "{KEY_ID}"\nAWS_SECRET_ACCESS_KEY = "{SECRET}"\n',
    },
}


def test_a_cloud_key_in_the_diff_fails_the_task_and_quarantines_the_worktree(
    tmp_path: Path, model: ScriptedServer
) -> None:
    calc = make_calc(tmp_path)
    model.add(reply(UNDERSTANDING), reply(PLAN), reply(READ), reply(EDIT), reply(LEAK),
              reply(FINISH), reply(PR))  # fmt: skip
    with app_client(model.url) as client:
        appliance = client.app.state.appliance  # type: ignore[attr-defined]
        tokens = tokens_of(client)
        task_id = submit(client, tokens, calc.url, REQUEST)
        task = wait_status(client, task_id, tokens.viewer, "failed", "awaiting_approval")
        evs = events(client, task_id, tokens.viewer)
        with appliance.db.session() as session:
            records = audit.read(session, action="task.quarantine", subject=f"task:{task_id}")
        data_dir = Path(appliance.settings.data_dir)
    assert task["status"] == "failed", failure_text(task)
    assert task["failure_category"] == "security", failure_text(task)
    assert "the worktree is quarantined and nothing was pushed" in task["failure_message"]
    assert "aws-access-key" in task["failure_message"]
    (alert,) = [e for e in of_kind(evs, "error") if e.get("alert")]
    assert alert["severity"] == "critical"
    assert alert["recoverable"] is False
    assert "calc/storage.py" in alert["message"]
    # the marker names the finding without the key; the worktree is kept as evidence
    marker = data_dir / "tasks" / task_id / "QUARANTINED"
    assert "aws-access-key calc/storage.py:1" in marker.read_text()
    assert KEY_ID not in marker.read_text()
    assert SECRET not in marker.read_text()
    worktree = data_dir / "worktrees" / task_id
    assert KEY_ID in (worktree / "calc" / "storage.py").read_text()
    # one audit record says so, without the key either
    (record,) = records
    assert record.details["worktree"] == str(worktree)
    assert "aws-access-key" in record.details["findings"]
    assert KEY_ID not in str(record.details)
    # nothing reached the remote, and no pull request text was asked for
    assert of_kind(evs, "review_ready") == []
    assert plain_git(calc.bare, "branch", "--list", "appliance/*").strip() == ""
    assert len(model.requests) == 6
