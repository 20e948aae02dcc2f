"""A stored repository's forge: sealed secrets, masked display, the forge built from the
settings, ``repo check`` findings against replaying servers, and the CLI."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from appliance.config import Settings
from appliance.errors import InvalidInput
from appliance.forges.access import check_repository
from appliance.forges.connect import (
    TOKEN_KEY,
    WEBHOOK_KEY,
    forge_for,
    forge_project,
    forge_settings,
    public_settings,
    seal_settings,
    secret_key,
)
from appliance.forges.github_forge import GitHubForge
from appliance.store.models import ForgeKind, Repository
from tests.cli.test_cli import cli
from tests.forges.fakeforge import FakeForge, Reply

TOKEN = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
GL_TOKEN = "glpat-" + "Zx9Yw8Vu7Ts6Rq5Po4Nm"
REPO = "/repos/acme/widgets"


def repo_with(settings: Settings, kind: str, forge: dict[str, Any], **extra: Any) -> Repository:
    sealed = seal_settings({"forge": forge, **extra}, secret_key(settings), kind=kind)
    return Repository(
        id=1,
        name="widgets",
        forge_kind=ForgeKind(kind),
        clone_url="https://forge.example/acme/widgets.git",
        settings=sealed,
    )


def test_secrets_are_sealed_and_shown_masked(settings: Settings) -> None:
    repo = repo_with(
        settings, "github", {"token": TOKEN, "base_url": "https://ghe.example/api/v3"},
        webhook_secret="hook", protected_branches=["release/*"],
    )  # fmt: skip
    stored = json.dumps(repo.settings)
    assert TOKEN not in stored
    assert "hook" not in stored.replace("webhook", "")
    assert "token" not in repo.settings["forge"]
    shown = public_settings(repo.settings, secret_key(settings))
    assert shown["forge_token"] == "ghp_****Q7r8"
    assert shown["webhook_secret"] == "set (not shown)"
    assert TOKEN_KEY not in shown
    assert WEBHOOK_KEY not in shown
    cfg = forge_settings(settings, repo)
    assert cfg.token_value() == TOKEN
    assert cfg.protected_branches == ["release/*"]
    forge = forge_for(settings, repo)
    assert isinstance(forge, GitHubForge)
    forge.close()


def test_resending_settings_keeps_secrets_and_refuses_bad_fields(settings: Settings) -> None:
    key = secret_key(settings)
    first = seal_settings({"forge": {"token": TOKEN}}, key, kind="github")
    again = seal_settings({"forge": {"timeout": 5}, TOKEN_KEY: "forged"}, key, kind="github",
                          current=first)  # fmt: skip
    assert again[TOKEN_KEY] == first[TOKEN_KEY]
    with pytest.raises(InvalidInput, match=r"forge\.verify_tls"):
        seal_settings({"forge": {"verify_tls": "sometimes"}}, key, kind="github")


@pytest.mark.parametrize(
    ("url", "project"),
    [
        ("https://github.com/acme/widgets.git", "acme/widgets"),
        ("https://gitlab.example/group/sub/project", "group/sub/project"),
        ("git@gitlab.example:group/project.git", "group/project"),
    ],
)
def test_project_comes_from_the_clone_url(url: str, project: str) -> None:
    repo = Repository(name="r", forge_kind=ForgeKind.gitlab, clone_url=url, settings={})
    assert forge_project(repo) == project
    named = Repository(
        name="r", forge_kind=ForgeKind.gitlab, clone_url=url, settings={"forge": {"project": "42"}}
    )
    assert forge_project(named) == "42"


def serve_github(server: FakeForge, permissions: dict[str, bool], scopes: str) -> None:
    repo = json.loads((Path(__file__).parent / "fixtures/github/repo.json").read_text())
    repo["permissions"] = permissions
    server.on("GET", REPO, Reply(body=repo, headers={"X-OAuth-Scopes": scopes}))
    server.on("GET", f"{REPO}/languages", Reply(body="github/languages.json"))
    server.on("GET", f"{REPO}/branches", Reply(body="github/branches_protected.json"))


def test_check_says_the_token_may_push(settings: Settings, github_server: FakeForge) -> None:
    serve_github(github_server, {"push": True, "pull": True}, "repo, workflow")
    repo = repo_with(settings, "github", {"base_url": github_server.api, "token": TOKEN})
    findings = check_repository(settings, repo)
    assert [(f.what, f.ok) for f in findings] == [("repository", True), ("push", True)]
    assert "default branch main" in findings[0].message


def test_check_names_the_missing_scope_and_role(
    settings: Settings, github_server: FakeForge
) -> None:
    serve_github(github_server, {"push": False, "pull": True}, "read:org")
    repo = repo_with(settings, "github", {"base_url": github_server.api, "token": TOKEN})
    findings = {f.what: f for f in check_repository(settings, repo)}
    assert not findings["scope"].ok
    assert "needs 'repo'" in findings["scope"].message
    assert not findings["role"].ok
    assert "Write role" in findings["role"].message


def test_check_reports_a_bad_token_and_an_untrusted_certificate(
    settings: Settings, github_server: FakeForge, https_github: FakeForge
) -> None:
    github_server.on("GET", REPO, Reply(401, "github/error_401.json"))
    repo = repo_with(settings, "github", {"base_url": github_server.api, "token": TOKEN,
                                          "max_retries": 0})  # fmt: skip
    [token] = check_repository(settings, repo)
    assert (token.what, token.ok) == ("token", False)
    assert "invalid, expired or revoked" in token.message
    repo = repo_with(settings, "github", {"base_url": https_github.api, "token": TOKEN,
                                          "max_retries": 0})  # fmt: skip
    [cert] = check_repository(settings, repo)
    assert (cert.what, cert.ok) == ("certificate", False)
    assert "ca_bundle" in cert.message


def test_check_reads_the_gitlab_role(settings: Settings, gitlab_server: FakeForge) -> None:
    gitlab_server.on("GET", "/projects/acme%2Fwidgets", Reply(body="gitlab/project.json"))
    gitlab_server.on("GET", "/projects/42/languages", Reply(body="gitlab/languages.json"))
    gitlab_server.on(
        "GET", "/projects/42/protected_branches", Reply(body="gitlab/protected_branches.json")
    )
    gitlab_server.on("GET", "/personal_access_tokens/self", Reply(body={"scopes": ["read_api"]}))
    repo = repo_with(settings, "gitlab", {"base_url": gitlab_server.url, "token": GL_TOKEN})
    findings = {f.what: f for f in check_repository(settings, repo)}
    assert findings["push"].ok  # Developer (30) in the fixture
    assert not findings["scope"].ok
    assert "needs 'api'" in findings["scope"].message


def test_cli_add_with_forge_options_then_check(
    github_server: FakeForge, tmp_path: Path, ca_bundle: Path
) -> None:
    serve_github(github_server, {"push": False, "pull": True}, "repo")
    env = {"APPLIANCE_DATA_DIR": os.environ["APPLIANCE_DATA_DIR"], "GH_TOKEN_FOR_TEST": TOKEN}
    assert cli("migrate", env=env).returncode == 0
    added = cli(
        "repo", "add", "widgets", "https://github.example/acme/widgets.git",
        "--forge", "github", "--url", github_server.api, "--token-env", "GH_TOKEN_FOR_TEST",
        "--ca-bundle", str(ca_bundle), env=env,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert "registered repository widgets" in added.stdout
    assert "webhook: POST /api/v1/webhooks/github with this secret" in added.stdout
    assert TOKEN not in added.stdout + added.stderr
    listed = cli("repo", "list", "--json", env=env)
    assert TOKEN not in listed.stdout
    [shown] = json.loads(listed.stdout)
    assert shown["settings"]["forge_token"] == "ghp_****Q7r8"
    checked = cli("repo", "check", "widgets", env=env)
    assert checked.returncode == 1
    assert "[  ok] repository: acme/widgets is readable" in checked.stdout
    assert "[FAIL] role: the token's account has no write access" in checked.stdout
    missing = cli("repo", "add", "w2", "https://x.example/a/b.git", "--forge", "github",
                  "--token-env", "NO_SUCH_VAR_SET", env=env)  # fmt: skip
    assert missing.returncode == 1
    assert "NO_SUCH_VAR_SET" in missing.stderr
