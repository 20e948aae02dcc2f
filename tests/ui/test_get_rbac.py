"""Every page and fragment (GET route) checks the session and the role on the server: an
anonymous visitor is sent to sign in (an HTMX request gets 401 and where to go), a viewer
reaches no developer page, a developer no admin page."""

from __future__ import annotations

import pytest

from tests.ui.conftest import Ui, sign_in, submit, ui_routes, wait_status

GET_ROUTES = ui_routes("GET")
OPEN = {"/login"}
DEVELOPER_ONLY = {"/tasks/new", "/tasks/{task_id}/comment-form"}
ADMIN_ONLY = {"/admin", "/audit/export"}
GUARDED = [p for p in GET_ROUTES if p not in OPEN]
#: query parameters a route needs to answer at all
QUERY = {
    "/tasks/{task_id}/log": "?before=100000",
    "/tasks/{task_id}/comment-form": "?path=app/calc.py&line=1",
}


def _url(path: str, repo_id: int, task_id: str) -> str:
    url = (
        path.replace("{task_id}", task_id)
        .replace("{repo_id}", str(repo_id))
        .replace("{round_no}", "1")
    )
    return url + QUERY.get(path, "")


def test_the_route_list_covers_every_page_and_fragment() -> None:
    assert len(GET_ROUTES) >= 20
    for path in ("/", "/fragments/active-tasks", "/tasks/{task_id}/panels", "/admin"):
        assert path in GET_ROUTES
    assert set(GET_ROUTES) >= DEVELOPER_ONLY | ADMIN_ONLY


@pytest.mark.parametrize("path", GUARDED)
def test_anonymous_is_sent_to_sign_in(path: str, ui: Ui) -> None:
    ui.client.cookies.clear()
    url = _url(path, ui.repo_id, "some-task")
    page = ui.client.get(url, follow_redirects=False)
    assert page.status_code == 303, (url, page.status_code)
    assert page.headers["location"].startswith("/login?next=")
    fragment = ui.client.get(url, headers={"HX-Request": "true"}, follow_redirects=False)
    assert fragment.status_code == 401, (url, fragment.status_code)
    assert fragment.headers["HX-Redirect"].startswith("/login?next=")
    assert "<html" not in fragment.text


@pytest.mark.parametrize("path", sorted(DEVELOPER_ONLY | ADMIN_ONLY))
def test_viewer_cannot_open_developer_pages(path: str, ui: Ui) -> None:
    sign_in(ui.client, "vera")
    url = _url(path, ui.repo_id, "some-task")
    resp = ui.client.get(url, follow_redirects=False)
    assert resp.status_code == 403, (url, resp.status_code)
    assert "role" in resp.text


@pytest.mark.parametrize("path", sorted(ADMIN_ONLY))
def test_developer_cannot_open_admin_pages(path: str, ui: Ui) -> None:
    sign_in(ui.client, "dana")
    url = _url(path, ui.repo_id, "some-task")
    resp = ui.client.get(url, follow_redirects=False)
    assert resp.status_code == 403, (url, resp.status_code)
    assert "role" in resp.text


def test_each_role_opens_the_pages_it_may(ui: Ui) -> None:
    """The other side: the pages above are refused for the role, not for everyone."""
    csrf = sign_in(ui.client, "dana")
    task_id = submit(ui, "fix add", csrf)
    wait_status(ui.db, task_id, "awaiting_approval")
    endless = {"/tasks/{task_id}/stream"}  # a live stream of a waiting task never ends
    allowed = {
        "vera": [p for p in GUARDED if p not in DEVELOPER_ONLY | ADMIN_ONLY | endless],
        "dana": [p for p in GUARDED if p not in ADMIN_ONLY | endless],
        "root": [p for p in GUARDED if p not in endless],
    }
    for username, paths in allowed.items():
        sign_in(ui.client, username)
        for path in paths:
            url = _url(path, ui.repo_id, task_id)
            resp = ui.client.get(url, follow_redirects=False)
            assert resp.status_code == 200, (username, url, resp.status_code, resp.text[:300])
