"""The plain git forge against real bare remotes."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from pydantic import SecretStr

from appliance.forges import ForgeSettings, PrRequest, build_forge
from appliance.forges.errors import (
    ForgeConflict,
    ForgeNotFound,
    ForgeUnavailable,
    ForgeUnsupported,
    PushRefused,
)
from tests.forges.conftest import BRANCH, Repos, git
from tests.forges.fakeforge import FakeForge, Reply

UNREACHABLE = "http://127.0.0.1:9/acme/widgets.git"  # nothing listens on the discard port


def test_push_reaches_the_bare_remote(repos: Repos) -> None:
    forge = build_forge(ForgeSettings(kind="git"), str(repos.remote))
    forge.push(repos.work, BRANCH)
    head = git("rev-parse", "HEAD", cwd=repos.work).strip()
    assert f"refs/heads/{BRANCH} {head}" in repos.remote_refs()
    assert forge.metadata().default_branch == "main"


def test_push_does_not_run_the_worktrees_hooks(repos: Repos, tmp_path: Path) -> None:
    marker = tmp_path / "hook-ran"
    hook = repos.work / ".git" / "hooks" / "pre-push"
    hook.write_text(f"#!/bin/sh\ntouch {marker}\nexit 1\n")
    hook.chmod(0o755)
    build_forge(ForgeSettings(kind="git"), str(repos.remote)).push(repos.work, BRANCH)
    assert not marker.exists()
    assert BRANCH in repos.remote_refs()


@pytest.mark.parametrize("remote_kind", ["bare", "unreachable"])
@pytest.mark.parametrize(
    ("branch", "force", "message"),
    [
        (BRANCH, True, "force-pushing is never allowed"),
        ("+" + BRANCH, False, "force-pushing is never allowed"),
        ("main", False, "appliance/YYYYMMDD-HHMM"),
        ("release/2.0", False, "protected branch"),
        ("appliance/20240501-0930-frozen", False, "protected branch"),
    ],
)
def test_forbidden_pushes_are_refused_before_any_git_call(
    repos: Repos, remote_kind: str, branch: str, force: bool, message: str
) -> None:
    url = str(repos.remote) if remote_kind == "bare" else UNREACHABLE
    settings = ForgeSettings(kind="git", protected_branches=["release/*", "*-frozen"])
    before = repos.remote_refs()
    forge = build_forge(settings, url)
    with pytest.raises(PushRefused, match=message):
        forge.push(repos.work, branch, force=force)
    assert repos.remote_refs() == before


def test_push_to_the_remotes_default_branch_is_refused(repos: Repos) -> None:
    # a remote whose HEAD is an appliance-shaped branch: only ls-remote can tell
    git("push", str(repos.remote), BRANCH, cwd=repos.work)
    git("symbolic-ref", "HEAD", f"refs/heads/{BRANCH}", cwd=repos.remote)
    git("commit", "--allow-empty", "-m", "more", cwd=repos.work)
    before = repos.remote_refs()
    with pytest.raises(PushRefused, match="default branch"):
        build_forge(ForgeSettings(kind="git"), str(repos.remote)).push(repos.work, BRANCH)
    assert repos.remote_refs() == before


def test_remote_that_moved_on_gives_a_conflict_not_a_force(repos: Repos, tmp_path: Path) -> None:
    forge = build_forge(ForgeSettings(kind="git"), str(repos.remote))
    forge.push(repos.work, BRANCH)
    other = tmp_path / "other"
    git("clone", "--branch", BRANCH, str(repos.remote), str(other))
    (other / "x.txt").write_text("someone else\n")
    git("add", "x.txt", cwd=other)
    git("commit", "-m", "other", cwd=other)
    git("push", "origin", BRANCH, cwd=other)
    git("commit", "--amend", "-m", "rewritten", cwd=repos.work)
    with pytest.raises(ForgeConflict, match="never force-pushes"):
        forge.push(repos.work, BRANCH)


def test_unreachable_and_missing_remotes_say_so(repos: Repos, tmp_path: Path) -> None:
    with pytest.raises(ForgeUnavailable, match="Check the remote URL"):
        build_forge(ForgeSettings(kind="git"), UNREACHABLE).push(repos.work, BRANCH)
    with pytest.raises(ForgeNotFound, match="Check the repository URL"):
        build_forge(ForgeSettings(kind="git"), str(tmp_path / "nope.git")).metadata()


def test_token_reaches_git_as_a_header_not_in_argv_or_url(repos: Repos) -> None:
    server = FakeForge().start()
    try:
        server.on("GET", "/acme/widgets.git/info/refs", Reply(404, "not found"))
        settings = ForgeSettings(kind="git", token=SecretStr("s3cr3t-token-value"))
        forge = build_forge(settings, f"{server.url}/acme/widgets.git")
        with pytest.raises(ForgeNotFound):
            forge.metadata()
        sent = server.requests_to("GET", "/acme/widgets.git/info/refs")[0]
    finally:
        server.stop()
    expected = base64.b64encode(b"git:s3cr3t-token-value").decode()
    assert sent.headers["Authorization"] == f"Basic {expected}"
    assert forge.clone_source().url == f"{server.url}/acme/widgets.git"


def test_server_operations_are_unsupported_with_a_clear_message(repos: Repos) -> None:
    forge = build_forge(ForgeSettings(kind="git"), str(repos.remote))
    assert forge.supports_reviews is False
    with pytest.raises(ForgeUnsupported, match="review happens in the appliance"):
        forge.open_pr(PrRequest(branch=BRANCH, title="t", body="b"))
    with pytest.raises(ForgeUnsupported):
        forge.wait_for_ci(BRANCH, timeout=1, poll=1)
