"""Every state-changing UI route refuses a request without the CSRF token, and checks the
role on the server: a viewer can change nothing, a developer nothing an admin owns."""

from __future__ import annotations

import pytest

from appliance.store import users as user_store
from tests.ui.conftest import Ui, sign_in, submit, ui_routes, wait_status

POST_ROUTES = ui_routes("POST")
ADMIN_ONLY = ("/repositories", "/admin", "/jobs")
OPEN = ("/login", "/logout")


def test_the_route_list_covers_every_page() -> None:
    assert len(POST_ROUTES) >= 20
    assert "/tasks/{task_id}/approve" in POST_ROUTES


def _url(path: str, ui: Ui, task_id: str, token_id: int) -> str:
    return (
        path.replace("{task_id}", task_id)
        .replace("{repo_id}", str(ui.repo_id))
        .replace("{username}", "dave")
        .replace("{token_id}", str(token_id))
        .replace("{job_id:path}", "reindex:team/svc")
    )


@pytest.fixture
def waiting_task(ui: Ui) -> str:
    csrf = sign_in(ui.client, "dana")
    task_id = submit(ui, "fix add", csrf)
    wait_status(ui.db, task_id, "awaiting_approval")
    return task_id


@pytest.fixture
def token_id(ui: Ui) -> int:
    with ui.db.write() as s:
        _, token = user_store.create_token(
            s, username="dave", name="t", role=None, expires_in=None, actor="test"
        )
    assert token.id is not None
    return token.id


@pytest.mark.parametrize("path", POST_ROUTES)
def test_post_without_csrf_token_is_refused(
    path: str, ui: Ui, waiting_task: str, token_id: int
) -> None:
    sign_in(ui.client, "root")
    url = _url(path, ui, waiting_task, token_id)
    resp = ui.client.post(url, data={"message": "x", "text": "x"}, follow_redirects=False)
    assert resp.status_code == 403, (url, resp.status_code)
    assert "security token" in resp.text or "another site" in resp.text
    forged = ui.client.post(
        url,
        data={"csrf_token": "forged"},
        headers={"Origin": "http://testserver"},
        follow_redirects=False,
    )
    assert forged.status_code == 403
    with ui.db.session() as s:  # nothing happened: the task still waits
        from appliance.store import tasks as task_store

        assert task_store.get_task(s, waiting_task).status.value == "awaiting_approval"


@pytest.mark.parametrize("path", [p for p in POST_ROUTES if p not in OPEN])
def test_viewer_cannot_post(path: str, ui: Ui, waiting_task: str, token_id: int) -> None:
    csrf = sign_in(ui.client, "vera")
    url = _url(path, ui, waiting_task, token_id)
    resp = ui.client.post(url, data={"csrf_token": csrf, "message": "ok"}, follow_redirects=False)
    assert resp.status_code == 403, (url, resp.status_code, resp.text[:200])
    assert "role" in resp.text


@pytest.mark.parametrize("path", [p for p in POST_ROUTES if p.startswith(ADMIN_ONLY)])
def test_developer_cannot_post_admin_routes(
    path: str, ui: Ui, waiting_task: str, token_id: int
) -> None:
    csrf = sign_in(ui.client, "dana")
    url = _url(path, ui, waiting_task, token_id)
    resp = ui.client.post(url, data={"csrf_token": csrf}, follow_redirects=False)
    assert resp.status_code == 403, (url, resp.status_code)


def test_post_from_another_origin_is_refused(ui: Ui, waiting_task: str) -> None:
    csrf = sign_in(ui.client, "dana")
    resp = ui.client.post(
        f"/tasks/{waiting_task}/approve",
        data={"csrf_token": csrf},
        headers={"Origin": "https://evil.example"},
    )
    assert resp.status_code == 403
    assert "another site" in resp.text


def test_htmx_header_token_is_accepted(ui: Ui, waiting_task: str) -> None:
    csrf = sign_in(ui.client, "dana")
    resp = ui.client.post(
        f"/tasks/{waiting_task}/constraints",
        data={"text": "keep the public API"},
        headers={"X-CSRF-Token": csrf, "HX-Request": "true"},
    )
    assert resp.status_code == 204
    assert resp.headers["HX-Location"] == f"/tasks/{waiting_task}"


def test_viewer_sees_no_approve_button(ui: Ui, waiting_task: str) -> None:
    sign_in(ui.client, "vera")
    page = ui.client.get(f"/tasks/{waiting_task}/review")
    assert page.status_code == 200
    assert "Approve" not in page.text
    assert "needs the developer role" in page.text
    task_page = ui.client.get(f"/tasks/{waiting_task}")
    assert "Cancel task" not in task_page.text
    assert "Add a constraint" not in task_page.text


def test_a_csrf_token_of_another_session_is_refused(ui: Ui, waiting_task: str) -> None:
    other = sign_in(ui.client, "dave")
    sign_in(ui.client, "dana")
    resp = ui.client.post(f"/tasks/{waiting_task}/reject", data={"csrf_token": other})
    assert resp.status_code == 403
