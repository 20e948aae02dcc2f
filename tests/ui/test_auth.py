"""Sign-in, sessions, sign-out, rate limiting."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.ui.conftest import PASSWORD, Ui, csrf_of, sign_in


def _post_login(client: TestClient, username: str, password: str, next_url: str = "/") -> object:
    page = client.get("/login")
    return client.post(
        "/login",
        data={
            "username": username,
            "password": password,
            "next": next_url,
            "csrf_token": csrf_of(page.text),
        },
        follow_redirects=False,
    )


def test_pages_send_a_stranger_to_the_sign_in_page(ui: Ui) -> None:
    resp = ui.client.get("/tasks/new", follow_redirects=False)
    assert resp.status_code == 303
    assert resp.headers["location"] == "/login?next=/tasks/new"


def test_htmx_request_without_session_is_told_to_sign_in(ui: Ui) -> None:
    resp = ui.client.get("/fragments/active-tasks", headers={"HX-Request": "true"})
    assert resp.status_code == 401
    assert resp.headers["HX-Redirect"].startswith("/login")


def test_sign_in_sets_a_protected_cookie_and_lands_on_next(ui: Ui) -> None:
    resp = _post_login(ui.client, "dana", PASSWORD, "/repositories")
    assert resp.status_code == 303  # type: ignore[attr-defined]
    assert resp.headers["location"] == "/repositories"  # type: ignore[attr-defined]
    cookie = resp.headers["set-cookie"].lower()  # type: ignore[attr-defined]
    assert "httponly" in cookie
    assert "samesite=lax" in cookie
    assert "secure" not in cookie  # plain HTTP here; Secure only under TLS
    page = ui.client.get("/")
    assert "dana" in page.text
    assert "Sign out" in page.text


def test_wrong_password_is_refused_with_a_message(ui: Ui) -> None:
    resp = _post_login(ui.client, "dana", "wrong-password")
    assert resp.status_code == 401  # type: ignore[attr-defined]
    assert "Wrong username or password" in resp.text  # type: ignore[attr-defined]
    assert ui.client.get("/", follow_redirects=False).status_code == 303


def test_sign_in_does_not_redirect_to_another_site(ui: Ui) -> None:
    resp = _post_login(ui.client, "dana", PASSWORD, "//evil.example/x")
    assert resp.headers["location"] == "/"  # type: ignore[attr-defined]


def test_repeated_failures_are_rate_limited(ui: Ui) -> None:
    for _ in range(5):
        assert _post_login(ui.client, "vera", "nope-nope").status_code == 401  # type: ignore[attr-defined]
    resp = _post_login(ui.client, "vera", PASSWORD)
    assert resp.status_code == 429  # type: ignore[attr-defined]
    assert "Too many failed sign-ins" in resp.text  # type: ignore[attr-defined]


def test_sign_out_ends_the_session(ui: Ui) -> None:
    csrf = sign_in(ui.client, "dana")
    old_cookie = ui.client.cookies.get("appliance_session")
    resp = ui.client.post("/logout", data={"csrf_token": csrf}, follow_redirects=False)
    assert resp.status_code == 303
    ui.client.cookies.clear()
    ui.client.cookies.set("appliance_session", str(old_cookie))  # a copied cookie is dead too
    assert ui.client.get("/", follow_redirects=False).status_code == 303


def test_a_disabled_user_loses_access_at_once(ui: Ui) -> None:
    sign_in(ui.client, "dave")
    from ui import userops

    with ui.db.write() as s:
        userops.set_disabled(s, username="dave", disabled=True, actor="test")
    assert ui.client.get("/", follow_redirects=False).status_code == 303


def test_sign_in_is_audited(ui: Ui) -> None:
    sign_in(ui.client, "root")
    page = ui.client.get("/audit?action=ui.login")
    assert "ui.login" in page.text
    assert "root" in page.text
