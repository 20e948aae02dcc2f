"""``appliance repo check`` findings beyond the basics: an unreachable forge, a GitLab
role too low to push, and TLS verification switched off."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

from appliance.config import Settings
from appliance.forges.access import check_repository
from tests.cli.test_cli import cli
from tests.forges.fakeforge import FIXTURES, FakeForge, Reply
from tests.forges.test_wiring import GL_TOKEN, TOKEN, repo_with, serve_github


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # nothing listens once it is closed


def test_a_refused_connection_is_a_network_finding(settings: Settings) -> None:
    base = f"http://127.0.0.1:{closed_port()}"
    for kind, url in (("github", f"{base}/api/v3"), ("gitlab", base)):
        repo = repo_with(settings, kind, {"base_url": url, "token": TOKEN, "max_retries": 0})
        [finding] = check_repository(settings, repo)
        assert (finding.what, finding.ok) == ("network", False), finding
        assert "could not connect" in finding.message
        assert "Connection refused" in finding.message
        assert "check base_url, proxy_url and the network" in finding.message


def test_a_reporter_on_gitlab_is_told_it_needs_developer(
    settings: Settings, gitlab_server: FakeForge
) -> None:
    project = json.loads((FIXTURES / "gitlab/project.json").read_text())
    project["permissions"] = {
        "project_access": {"access_level": 20, "notification_level": 3},
        "group_access": None,
    }
    gitlab_server.on("GET", "/projects/acme%2Fwidgets", Reply(body=project))
    gitlab_server.on("GET", "/projects/42/languages", Reply(body="gitlab/languages.json"))
    gitlab_server.on(
        "GET", "/projects/42/protected_branches", Reply(body="gitlab/protected_branches.json")
    )
    gitlab_server.on("GET", "/personal_access_tokens/self", Reply(body={"scopes": ["api"]}))
    repo = repo_with(settings, "gitlab", {"base_url": gitlab_server.url, "token": GL_TOKEN})
    findings = check_repository(settings, repo)
    assert [(f.what, f.ok) for f in findings] == [("repository", True), ("role", False)]
    assert "access level 20" in findings[1].message
    assert "at least Developer (30)" in findings[1].message


def test_cli_no_verify_tls_warns_when_added_and_at_every_check(
    https_github: FakeForge, tmp_path: Path
) -> None:
    serve_github(https_github, {"push": True, "pull": True}, "repo")
    env = {"APPLIANCE_DATA_DIR": os.environ["APPLIANCE_DATA_DIR"], "GH_TOKEN_FOR_TEST": TOKEN}
    assert cli("migrate", env=env).returncode == 0
    added = cli(
        "repo", "add", "widgets", "https://ghe.example/acme/widgets.git",
        "--forge", "github", "--url", https_github.api, "--token-env", "GH_TOKEN_FOR_TEST",
        "--no-verify-tls", env=env,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert "TLS verification of the forge is switched OFF for widgets" in added.stderr
    checked = cli("repo", "check", "widgets", env=env)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    lines = checked.stdout.splitlines()
    assert lines[0] == "[  ok] certificate: TLS verification is OFF: set ca_bundle instead"
    assert "[  ok] repository: acme/widgets is readable" in checked.stdout
    assert "[  ok] push: the token may push branches and open pull requests" in checked.stdout
