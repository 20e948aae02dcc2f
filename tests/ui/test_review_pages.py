"""The review page: highlighted diff, comments, decisions, explain."""

from __future__ import annotations

from tests.ui.conftest import Ui, sign_in, submit, wait_status


def _waiting(ui: Ui) -> tuple[str, str]:
    csrf = sign_in(ui.client, "dana")
    task_id = submit(ui, "fix add", csrf)
    wait_status(ui.db, task_id, "awaiting_approval")
    return task_id, csrf


def test_diff_is_highlighted_side_by_side_and_unified(ui: Ui) -> None:
    task_id, _ = _waiting(ui)
    split = ui.client.get(f"/tasks/{task_id}/review").text
    assert '<span class="k">def</span>' in split  # Pygments on the server
    assert "app/calc.py" in split
    assert "tests/test_calc.py" in split
    assert "Fix add()" in split
    assert "docstring" in split  # the findings
    unified = ui.client.get(f"/tasks/{task_id}/review?view=unified").text
    assert 'class="del"' in unified
    assert 'class="add"' in unified
    assert "Approve and publish" in unified
    assert "Explain this change" in unified


def test_line_comment_goes_with_request_changes(ui: Ui) -> None:
    task_id, csrf = _waiting(ui)
    form = ui.client.get(f"/tasks/{task_id}/review?comment=app/calc.py:3").text
    assert "Comment on <code>app/calc.py:3</code>" in form  # works without JavaScript
    fragment = ui.client.get(
        f"/tasks/{task_id}/comment-form?path=app/calc.py&line=3", headers={"HX-Request": "true"}
    ).text
    assert fragment.startswith('<tr class="comment-form">')
    added = ui.client.post(
        f"/tasks/{task_id}/comments",
        data={"csrf_token": csrf, "path": "app/calc.py", "line": "3", "body": "use math.fsum"},
        headers={"HX-Request": "true"},
    )
    assert added.status_code == 200
    assert "use math.fsum" in added.text
    assert "use math.fsum" in ui.client.get(f"/tasks/{task_id}/review").text
    ui.client.post(f"/tasks/{task_id}/request-changes", data={"csrf_token": csrf})
    wait_status(ui.db, task_id, "awaiting_approval", "implementing", "validating", "reviewing")
    audit = ui.client.get(f"/audit?subject=task:{task_id}&action=task.transition").text
    assert "request_changes" in audit
    assert "use math.fsum" in audit


def test_request_changes_without_words_is_refused(ui: Ui) -> None:
    task_id, csrf = _waiting(ui)
    resp = ui.client.post(f"/tasks/{task_id}/request-changes", data={"csrf_token": csrf})
    assert resp.status_code == 422
    assert "Say what to change" in resp.text


def test_approve_publishes_and_shows_the_pr_link(ui: Ui) -> None:
    task_id, csrf = _waiting(ui)
    resp = ui.client.post(
        f"/tasks/{task_id}/approve",
        data={"csrf_token": csrf, "message": "lgtm"},
        follow_redirects=False,
    )
    assert resp.status_code == 303
    wait_status(ui.db, task_id, "done")
    page = ui.client.get(f"/tasks/{task_id}").text
    assert 'id="pr-link"' in page
    assert "https://forge.example/team/svc/pull/" in page
    assert "Approve" not in ui.client.get(f"/tasks/{task_id}/review").text  # decided already


def test_explain_without_a_model_says_so(ui: Ui) -> None:
    task_id, csrf = _waiting(ui)
    resp = ui.client.post(
        f"/tasks/{task_id}/explain",
        data={"csrf_token": csrf, "path": "app/calc.py", "hunk": "0"},
        headers={"HX-Request": "true"},
    )
    assert resp.status_code == 200
    assert "No model is configured" in resp.text
    bad = ui.client.post(
        f"/tasks/{task_id}/explain",
        data={"csrf_token": csrf, "path": "nope.py", "hunk": "0"},
        headers={"HX-Request": "true"},
    )
    assert bad.status_code == 422
    assert bad.headers["HX-Retarget"] == "#flash"
