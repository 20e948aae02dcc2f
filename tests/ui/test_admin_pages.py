"""Repositories, models, audit, admin, jobs and analytics pages."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.ui.conftest import Ui, csrf_of, sign_in


def test_admin_adds_a_repository_and_checks_access(ui: Ui, tmp_path: Path) -> None:
    bare = tmp_path / "origin.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
    work = tmp_path / "w"
    subprocess.run(["git", "clone", "-q", str(bare), str(work)], check=True, capture_output=True)
    (work / "README").write_text("hi\n")
    git = ["git", "-C", str(work), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "init"], check=True)
    subprocess.run([*git, "push", "-q", "origin", "main"], check=True, capture_output=True)
    csrf = sign_in(ui.client, "root")
    bad = ui.client.post(
        "/repositories", data={"csrf_token": csrf, "name": "../x", "clone_url": str(bare)}
    )
    assert bad.status_code == 422
    assert "letters, digits" in bad.text
    assert str(bare) in bad.text
    resp = ui.client.post(
        "/repositories",
        data={
            "csrf_token": csrf,
            "name": "team/app",
            "forge_kind": "git",
            "clone_url": str(bare),
            "default_branch": "main",
            "token": "glpat-secret123456",
        },
        follow_redirects=False,
    )
    assert resp.status_code == 303
    page = ui.client.get(resp.headers["location"]).text
    assert "team/app" in page
    assert "glpat-secret123456" not in page
    assert "Not indexed yet" in page
    repo_url = resp.headers["location"]
    check = ui.client.post(
        f"{repo_url}/check", data={"csrf_token": csrf}, headers={"HX-Request": "true"}
    )
    assert "Readable: 1 branch(es), e.g. main" in check.text
    saved = ui.client.post(
        f"{repo_url}/settings",
        data={
            "csrf_token": csrf,
            "test_command": "pytest -q",
            "protected_paths": "migrations/**",
            "plan_approval": "1",
            "nightly_cron": "0 3 * * *",
        },
        follow_redirects=False,
    )
    assert saved.status_code == 303
    page = ui.client.get(repo_url).text
    assert 'value="pytest -q"' in page
    assert "migrations/**" in page
    assert "checked" in page
    wrong = ui.client.post(
        f"{repo_url}/settings", data={"csrf_token": csrf, "nightly_cron": "daily"}
    )
    assert wrong.status_code == 422
    assert "not a cron expression" in wrong.text


def test_models_page_without_endpoints_says_what_to_configure(ui: Ui) -> None:
    sign_in(ui.client, "vera")
    page = ui.client.get("/models").text
    assert "No model endpoint" in page
    assert "models.endpoints" in page
    assert "GPUs" in page


def test_audit_filter_verify_and_export(ui: Ui) -> None:
    csrf = sign_in(ui.client, "root")
    assert csrf
    page = ui.client.get("/audit?actor=test&action=repository.create").text
    assert "repository.create" in page
    assert "user.create" not in page
    verified = ui.client.get("/audit/verify").text
    assert "The chain is intact" in verified
    export = ui.client.get("/audit/export")
    records = [json.loads(line) for line in export.text.splitlines()]
    assert records[0]["seq"] == 1
    assert all("hash" in r for r in records)
    sign_in(ui.client, "vera")
    assert ui.client.get("/audit/export").status_code == 403
    assert ui.client.get("/audit?since=yesterday").status_code == 422


def test_admin_manages_users_roles_and_tokens(ui: Ui) -> None:
    csrf = sign_in(ui.client, "root")
    ui.client.post(
        "/admin/users",
        data={
            "csrf_token": csrf,
            "username": "nina",
            "password": "long-enough-pw",
            "role": "viewer",
        },
    )
    ui.client.post("/admin/users/nina/role", data={"csrf_token": csrf, "role": "developer"})
    page = ui.client.post(
        "/admin/tokens", data={"csrf_token": csrf, "username": "nina", "name": "ci", "days": "7"}
    ).text
    assert 'id="new-token">apl_' in page
    token = page.split('id="new-token">', 1)[1].split("<", 1)[0]
    api = ui.client.get("/api/v1/tasks", headers={"Authorization": f"Bearer {token}"})
    assert api.status_code == 200
    token_id = page.split("/admin/tokens/")[-1].split("/revoke")[0]
    ui.client.post(f"/admin/tokens/{token_id}/revoke", data={"csrf_token": csrf})
    assert (
        ui.client.get("/api/v1/tasks", headers={"Authorization": f"Bearer {token}"}).status_code
        == 401
    )
    last_admin = ui.client.post(
        "/admin/users/root/role", data={"csrf_token": csrf, "role": "viewer"}
    )
    assert last_admin.status_code == 409
    assert "last admin" in last_admin.text
    audit = ui.client.get("/audit?action=user.role").text
    assert "nina" in audit


def test_jobs_and_analytics_pages(ui: Ui) -> None:
    sign_in(ui.client, "vera")
    jobs = ui.client.get("/jobs").text
    assert "Nightly jobs" in jobs
    assert "No nightly jobs yet" in jobs
    analytics = ui.client.get("/analytics").text
    assert "<svg" in analytics
    assert "Tasks per week" in analytics


def test_login_page_has_a_token_for_the_form(ui: Ui) -> None:
    page = ui.client.get("/login")
    assert csrf_of(page.text)
    assert "appliance_session" in page.headers["set-cookie"]
