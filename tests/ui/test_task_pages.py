"""New task, the task page, its live stream, its panels and actions."""

from __future__ import annotations

import pytest

from appliance.states import FailureCategory, TaskStatus
from appliance.store import tasks as task_store
from tests.ui.conftest import Ui, sign_in, submit, wait_status


def test_new_task_form_lists_repositories_and_keeps_input_on_error(ui: Ui) -> None:
    csrf = sign_in(ui.client, "dana")
    page = ui.client.get("/tasks/new")
    assert "team/svc" in page.text
    assert 'name="priority"' in page.text
    resp = ui.client.post(
        "/tasks/new",
        data={
            "csrf_token": csrf,
            "repository_id": str(ui.repo_id),
            "prompt": "fix it",
            "avoid_files": "/etc/passwd",
            "max_files": "3",
            "priority": "urgent",
        },
    )
    assert resp.status_code == 422
    assert "relative to the repository root" in resp.text
    assert "/etc/passwd" in resp.text
    assert "fix it" in resp.text


def test_submitted_task_lands_on_its_page_with_constraints(ui: Ui) -> None:
    csrf = sign_in(ui.client, "dana")
    resp = ui.client.post(
        "/tasks/new",
        data={
            "csrf_token": csrf,
            "repository_id": str(ui.repo_id),
            "prompt": "fix add",
            "avoid_files": "docs/**\nsetup.py",
            "max_files": "4",
            "priority": "urgent",
        },
        follow_redirects=False,
    )
    assert resp.status_code == 303
    task_id = resp.headers["location"].rsplit("/", 1)[-1]
    with ui.db.session() as s:
        task = task_store.get_task(s, task_id)
    assert task.constraints["avoid_files"] == ["docs/**", "setup.py"]
    assert task.constraints["max_files_changed"] == 4
    assert task.priority.value == "urgent"
    wait_status(ui.db, task_id, "awaiting_approval")
    page = ui.client.get(f"/tasks/{task_id}").text
    assert "Fix add()" in page
    assert "app/calc.py" in page
    assert "11 passed" in page
    assert 'class="fail"' in page
    assert "/rounds/1" in page  # iteration history
    assert "[read_file]" in page
    assert "[cmd]" in page
    assert "[mystery_kind]" in page
    assert "Open the review" in page


def test_question_is_answered_in_place(ui: Ui) -> None:
    csrf = sign_in(ui.client, "dana")
    task_id = submit(ui, "please ask me", csrf)
    wait_status(ui.db, task_id, "paused")
    page = ui.client.get(f"/tasks/{task_id}").text
    assert "Should add() also accept floats?" in page
    assert 'name="answer"' in page
    resp = ui.client.post(
        f"/tasks/{task_id}/answer",
        data={"csrf_token": csrf, "answer": "no, ints only"},
        follow_redirects=False,
    )
    assert resp.status_code == 303
    wait_status(ui.db, task_id, "awaiting_approval")
    assert "ints only" in ui.client.get(f"/audit?subject=task:{task_id}").text


def test_constraint_and_cancel(ui: Ui) -> None:
    csrf = sign_in(ui.client, "dana")
    task_id = submit(ui, "fix add", csrf)
    wait_status(ui.db, task_id, "awaiting_approval")
    ui.client.post(
        f"/tasks/{task_id}/constraints", data={"csrf_token": csrf, "text": "no new deps"}
    )
    page = ui.client.get(f"/tasks/{task_id}").text
    assert "constraint added: no new deps" in page
    assert "Constraints added: no new deps" in page
    ui.client.post(
        f"/tasks/{task_id}/constraints",
        data={"csrf_token": csrf, "text": "leave the API alone", "avoid_files": "api.py, docs/**"},
    )
    with ui.db.session() as session:
        constraints = task_store.get_task(session, task_id).constraints
    assert constraints["avoid_files"] == ["api.py", "docs/**"]  # the tools enforce these
    other = sign_in(ui.client, "dave")
    refused = ui.client.post(f"/tasks/{task_id}/cancel", data={"csrf_token": other})
    assert refused.status_code == 403
    assert "belongs to dana" in refused.text
    csrf = sign_in(ui.client, "dana")
    ui.client.post(f"/tasks/{task_id}/cancel", data={"csrf_token": csrf})
    assert wait_status(ui.db, task_id, "cancelled") == "cancelled"


def test_failure_shows_a_categorised_banner_and_fix_it_retries(ui: Ui) -> None:
    csrf = sign_in(ui.client, "dana")
    task_id = submit(ui, "this will fail", csrf)  # fails as code_logic
    wait_status(ui.db, task_id, "failed")
    page = ui.client.get(f"/tasks/{task_id}").text
    assert 'data-category="test"' in page
    assert "The change does not pass its checks" in page
    assert "tests fail: test_add" in page
    assert f'action="/tasks/{task_id}/retry"' in page
    assert f'action="/tasks/{task_id}/abort"' in page
    assert 'href="/"' not in page.split('class="banner"')[1].split("</section>")[0]
    resp = ui.client.post(
        f"/tasks/{task_id}/retry", data={"csrf_token": csrf}, follow_redirects=False
    )
    new_id = resp.headers["location"].rsplit("/", 1)[-1]
    with ui.db.session() as s:
        assert "test_add" in task_store.get_task(s, new_id).prompt


def _fail_as(ui: Ui, task_id: str, category: FailureCategory, message: str) -> None:
    with ui.db.write() as s:
        task = task_store.get_task(s, task_id)
        task_store.transition(s, task, TaskStatus.failed, actor="test", failure=(category, message))


@pytest.mark.parametrize(
    ("category", "kind"),
    [
        (FailureCategory.security, "security"),
        (FailureCategory.code_logic, "test"),
        (FailureCategory.transient, "other"),
        (FailureCategory.internal, "other"),
        (FailureCategory.user_correctable, "other"),
    ],
)
def test_the_banner_follows_the_failure_category_not_the_message(
    ui: Ui, category: FailureCategory, kind: str
) -> None:
    csrf = sign_in(ui.client, "dana")
    task_id = submit(ui, "please ask me", csrf)
    wait_status(ui.db, task_id, "paused")
    # a message full of words the old guess keyed on: "secret", "timed out", "syntax"
    _fail_as(ui, task_id, category, "the test of the secret parser timed out on a syntax error")
    page = ui.client.get(f"/tasks/{task_id}").text
    assert f'data-category="{kind}"' in page
    assert f'<span class="badge bad">{kind}</span>' in page


def test_change_approach_opens_the_request_prefilled(ui: Ui) -> None:
    csrf = sign_in(ui.client, "dana")
    task_id = submit(ui, "this will fail", csrf)
    wait_status(ui.db, task_id, "failed")
    page = ui.client.get(f"/tasks/{task_id}").text
    banner = page.split('class="banner"')[1].split("</section>")[0]
    assert '<form method="get" action="/tasks/new"' in banner
    form = ui.client.get(
        "/tasks/new", params={"repository_id": str(ui.repo_id), "prompt": "this will fail"}
    ).text
    assert ">this will fail</textarea>" in form
    assert f'value="{ui.repo_id}" selected' in form


def test_abort_leaves_a_failed_task_and_goes_back(ui: Ui) -> None:
    csrf = sign_in(ui.client, "dana")
    task_id = submit(ui, "this will fail", csrf)
    wait_status(ui.db, task_id, "failed")
    resp = ui.client.post(
        f"/tasks/{task_id}/abort", data={"csrf_token": csrf}, follow_redirects=False
    )
    assert resp.status_code == 303
    assert resp.headers["location"] == "/"
    with ui.db.session() as s:
        assert task_store.get_task(s, task_id).status == TaskStatus.failed


def test_abort_cancels_a_task_not_yet_finished(ui: Ui) -> None:
    csrf = sign_in(ui.client, "dana")
    task_id = submit(ui, "please ask me", csrf)
    wait_status(ui.db, task_id, "paused")
    other = sign_in(ui.client, "dave")
    refused = ui.client.post(f"/tasks/{task_id}/abort", data={"csrf_token": other})
    assert refused.status_code == 403
    assert "belongs to dana" in refused.text
    csrf = sign_in(ui.client, "dana")
    resp = ui.client.post(
        f"/tasks/{task_id}/abort",
        data={"csrf_token": csrf},
        headers={"HX-Request": "true"},
    )
    assert resp.status_code == 204
    assert resp.headers["HX-Location"] == "/"
    assert wait_status(ui.db, task_id, "cancelled") == "cancelled"


def test_changed_files_show_the_latest_stat_of_each_file_not_a_sum(ui: Ui) -> None:
    csrf = sign_in(ui.client, "dana")
    task_id = submit(ui, "please ask me", csrf)  # paused before any review
    wait_status(ui.db, task_id, "paused")
    with ui.db.write() as s:  # three edits of one file: each stat is the file's diff so far
        for added, removed in ((2, 1), (5, 1), (7, 3)):
            task_store.add_event(
                s,
                task_id=task_id,
                kind="file_modified",
                payload={"path": "pkg/grow.py", "diff_stat": {"added": added, "removed": removed}},
            )
    panels = ui.client.get(f"/tasks/{task_id}/panels").text
    row = panels.split("<code>pkg/grow.py</code>")[1].split("</tr>")[0]
    assert ">+7<" in row
    assert ">\u22123<" in row  # a minus sign, as the page writes it
    assert "+14" not in row


def test_stream_sends_rendered_lines_and_ends_with_the_task(ui: Ui) -> None:
    csrf = sign_in(ui.client, "dana")
    task_id = submit(ui, "fix add", csrf)
    wait_status(ui.db, task_id, "awaiting_approval")
    ui.client.post(f"/tasks/{task_id}/reject", data={"csrf_token": csrf})
    wait_status(ui.db, task_id, "rejected")
    with ui.client.stream("GET", f"/tasks/{task_id}/stream?after=3") as resp:
        body = "".join(resp.iter_text())
    assert "event: log" in body
    assert "event: panels" in body
    assert "event: end" in body
    assert 'id="ev-4"' in body
    assert 'id="ev-3"' not in body
    assert "[plan]" in body


def test_a_task_with_5000_events_renders_only_the_last_window(ui: Ui) -> None:
    csrf = sign_in(ui.client, "dana")
    task_id = submit(ui, "fix add", csrf)
    wait_status(ui.db, task_id, "awaiting_approval")
    with ui.db.write() as s:
        for i in range(5000):
            task_store.add_event(
                s, task_id=task_id, kind="agent_thought", payload={"text": f"t{i}"}
            )
    page = ui.client.get(f"/tasks/{task_id}").text
    assert page.count('class="ln"') == 200  # the window, not 5,000 lines
    assert "t4999" in page
    assert "t4800<" in page
    assert "t4799<" not in page
    assert "t100<" not in page
    assert "Show earlier lines" in page  # the rest loads on request
    earlier = ui.client.get(f"/tasks/{task_id}/log?before=4900", headers={"HX-Request": "true"})
    assert earlier.text.count('class="ln"') == 200
    assert "<html" not in earlier.text


def test_round_diff_page(ui: Ui) -> None:
    csrf = sign_in(ui.client, "dana")
    task_id = submit(ui, "fix add", csrf)
    wait_status(ui.db, task_id, "awaiting_approval")
    page = ui.client.get(f"/tasks/{task_id}/rounds/1").text
    assert "app/calc.py" in page
    assert "Round 1" in page
    assert ui.client.get(f"/tasks/{task_id}/rounds/9").status_code == 422


def test_dashboard_shows_active_and_recent_tasks_and_health(ui: Ui) -> None:
    csrf = sign_in(ui.client, "dana")
    task_id = submit(ui, "fix add", csrf)
    wait_status(ui.db, task_id, "awaiting_approval")
    page = ui.client.get("/").text
    assert "Active tasks" in page
    assert f"/tasks/{task_id}" in page
    assert "team/svc" in page
    assert "not indexed" in page
    assert "no nightly jobs yet" in page
    fragment = ui.client.get("/fragments/active-tasks", headers={"HX-Request": "true"}).text
    assert "<html" not in fragment
    assert "awaiting approval" in fragment


def test_unknown_task_gives_a_readable_404(ui: Ui) -> None:
    sign_in(ui.client, "vera")
    resp = ui.client.get("/tasks/nope")
    assert resp.status_code == 404
    assert "No task has id nope" in resp.text
    assert "<html" in resp.text


KINDS = [
    "status",
    "step",
    "progress",
    "agent_thought",
    "tool_call",
    "file_modified",
    "command_executed",
    "checkpoint_reached",
    "error",
    "plan",
    "waiting",
    "iteration",
    "review_ready",
    "constraint_added",
    "published",
    "resumed",
    "review_comment",
    "odd",
]


def test_events_with_sparse_payloads_still_render(ui: Ui) -> None:
    """A pipeline that leaves fields out must not break the pages."""
    csrf = sign_in(ui.client, "dana")
    task_id = submit(ui, "fix add", csrf)
    wait_status(ui.db, task_id, "awaiting_approval")
    with ui.db.write() as s:
        for kind in KINDS:
            task_store.add_event(s, task_id=task_id, kind=kind, payload={})
        task_store.add_event(s, task_id=task_id, kind="plan", payload={"steps": [{}]})
        task_store.add_event(s, task_id=task_id, kind="iteration", payload={"tests": {}})
    for url in (f"/tasks/{task_id}", f"/tasks/{task_id}/panels", f"/tasks/{task_id}/review"):
        resp = ui.client.get(url)
        assert resp.status_code == 200, (url, resp.text[-500:])
    assert "[odd]" in ui.client.get(f"/tasks/{task_id}").text
