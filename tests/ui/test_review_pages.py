"""The review page: highlighted diff, comments, decisions, explain."""

from __future__ import annotations

import html
import re

from appliance.store import tasks as task_store
from tests.ui.conftest import Ui, big_diff, sign_in, submit, wait_status


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


def test_big_diff_is_windowed_and_files_load_on_demand(ui: Ui) -> None:
    task_id, csrf = _waiting(ui)
    with ui.db.write() as s:  # a later review_ready wins: 6 files of 200 lines
        task_store.add_event(
            s, task_id=task_id, kind="review_ready", payload={"diff": big_diff(6, 100)}
        )
    page = ui.client.get(f"/tasks/{task_id}/review").text
    assert page.count('class="file collapsed"') == 4  # 2 files fit in INLINE_LINES (500)
    assert 'id="f-pkg-mod1-py-1"' in page
    assert 'id="f-pkg-mod2-py-1"' not in page
    assert 'id="f-pkg-mod5-py"' in page  # the file list's anchors still land
    # without JS: the link reloads the page with the file (and those open before) open
    link = re.search(r'href="(\?view=split&amp;open=pkg%2Fmod2\.py)#f-pkg-mod2-py"', page)
    assert link
    opened = ui.client.get(f"/tasks/{task_id}/review" + html.unescape(link.group(1))).text
    assert 'id="f-pkg-mod2-py-1"' in opened
    assert "open=pkg%2Fmod2.py&amp;open=pkg%2Fmod3.py" in opened  # the next link keeps it
    # with HTMX: the same route answers with the file's section alone
    assert 'hx-get="/tasks/' + task_id + '/review?view=split&amp;open=pkg%2Fmod2.py"' in page
    fragment = ui.client.get(
        f"/tasks/{task_id}/review?view=unified&open=pkg/mod4.py", headers={"HX-Request": "true"}
    ).text
    assert fragment.lstrip().startswith('<section class="file" id="f-pkg-mod4-py">')
    assert "<html" not in fragment
    assert 'class="del"' in fragment
    assert "Explain this change" in fragment
    # a comment on a line of a collapsed file shows when the file loads, and opening the
    # comment form there (no JS) opens the file
    ui.client.post(
        f"/tasks/{task_id}/comments",
        data={"csrf_token": csrf, "path": "pkg/mod5.py", "line": "7", "body": "off by one"},
    )
    fragment = ui.client.get(
        f"/tasks/{task_id}/review?open=pkg/mod5.py", headers={"HX-Request": "true"}
    ).text
    assert '<tr class="comments">' in fragment
    assert "off by one" in fragment
    form = ui.client.get(f"/tasks/{task_id}/review?comment=pkg/mod5.py:9").text
    assert "Comment on <code>pkg/mod5.py:9</code>" in form
    missing = ui.client.get(f"/tasks/{task_id}/review?open=nope.py", headers={"HX-Request": "true"})
    assert missing.status_code == 404
