"""The GitHub forge against a real HTTP server replaying documented REST responses."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import SecretStr

from appliance.forges import CiOutcome, CiState, ForgeSettings, PrRequest, PrState, build_forge
from appliance.forges.base import Forge
from appliance.forges.errors import (
    ForgeAuthError,
    ForgeConflict,
    ForgeNotFound,
    ForgePermissionError,
    ForgeRateLimited,
    ForgeUnavailable,
    PushRefused,
)
from appliance.logs import redactor
from tests.forges.conftest import BRANCH, FakeTime, Repos, git
from tests.forges.fakeforge import FakeForge, Reply

TOKEN = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
REPO = "/repos/acme/widgets"
SHA = "4f3c1c1e0b2a9d8e7f6a5b4c3d2e1f0a9b8c7d6e"


def make(server: FakeForge, fake_time: FakeTime, **extra: Any) -> Forge:
    settings = ForgeSettings(
        kind="github", base_url=server.api, token=SecretStr(TOKEN), timeout=5, **extra
    )
    return build_forge(settings, "acme/widgets", sleep=fake_time.sleep, clock=fake_time.clock)


def serve_repo(server: FakeForge) -> None:
    server.on("GET", REPO, Reply(body="github/repo.json"))
    server.on("GET", f"{REPO}/languages", Reply(body="github/languages.json"))
    server.on("GET", f"{REPO}/branches", Reply(body="github/branches_protected.json"))
    server.on("GET", f"{REPO}/contents/.github/CODEOWNERS", Reply(body="github/codeowners.json"))


def serve_pull(server: FakeForge) -> None:
    server.on("GET", f"{REPO}/pulls/7", Reply(body="github/pull.json"))


@pytest.fixture
def forge(github_server: FakeForge, fake_time: FakeTime) -> Any:
    serve_repo(github_server)
    f = make(github_server, fake_time)
    yield f
    f.close()


def test_metadata_reads_default_branch_protection_and_codeowners(
    forge: Forge, github_server: FakeForge
) -> None:
    meta = forge.metadata()
    assert meta.full_name == "acme/widgets"
    assert meta.default_branch == "main"
    assert meta.languages == {"Python": 182340, "Shell": 4021, "Dockerfile": 611}
    assert meta.protected_branches == (
        "main",
        "release-2.x",
        "appliance/20240430-1200-release-freeze",
    )
    assert meta.codeowners.as_dict() == {
        "*": ("@acme/platform",),
        "/src/api/": ("@alice", "@acme/backend"),
        "*.md": ("docs@acme.example",),
    }
    listing = github_server.requests_to("GET", f"{REPO}/branches")[0]
    assert listing.query["protected"] == ["true"]
    assert TOKEN in listing.headers["Authorization"]
    assert TOKEN not in redactor(f"token={TOKEN} header {TOKEN}")  # registered as a secret


def test_open_pr_sends_draft_labels_and_codeowners_reviewers(
    forge: Forge, github_server: FakeForge
) -> None:
    github_server.on("POST", f"{REPO}/pulls", Reply(201, "github/pull_created.json"))
    github_server.on("POST", f"{REPO}/issues/7/labels", Reply(200, "github/labels.json"))
    github_server.on(
        "POST", f"{REPO}/pulls/7/requested_reviewers", Reply(201, "github/pull_reviewers.json")
    )
    pr = forge.open_pr(
        PrRequest(
            branch=BRANCH,
            title="Add JWT middleware",
            body="## Plan",
            labels=["appliance"],
            draft=True,
            changed_files=["src/api/auth.py"],
        )
    )
    assert (pr.number, pr.state, pr.draft, pr.branch) == (7, PrState.open, True, BRANCH)
    assert pr.url == f"{github_server.url}/acme/widgets/pull/7"
    assert pr.warnings == ()
    created = json.loads(github_server.requests_to("POST", f"{REPO}/pulls")[0].body)
    assert created == {
        "base": "main",
        "head": BRANCH,
        "title": "Add JWT middleware",
        "body": "## Plan",
        "draft": True,
    }
    labels = json.loads(github_server.requests_to("POST", f"{REPO}/issues/7/labels")[0].body)
    assert labels == ["appliance"]
    asked = json.loads(
        github_server.requests_to("POST", f"{REPO}/pulls/7/requested_reviewers")[0].body
    )
    assert asked == {"reviewers": ["alice"], "team_reviewers": ["backend"]}


def test_existing_pr_is_a_conflict_with_githubs_reason(
    forge: Forge, github_server: FakeForge
) -> None:
    github_server.on("POST", f"{REPO}/pulls", Reply(422, "github/error_422_exists.json"))
    with pytest.raises(ForgeConflict, match="A pull request already exists for acme:appliance/"):
        forge.open_pr(PrRequest(branch=BRANCH, title="t", body="b"))


def test_reviewer_failure_keeps_the_pr_and_says_what_was_skipped(
    forge: Forge, github_server: FakeForge
) -> None:
    github_server.on("POST", f"{REPO}/pulls", Reply(201, "github/pull_created.json"))
    github_server.on(
        "POST",
        f"{REPO}/pulls/7/requested_reviewers",
        Reply(422, {"message": "Reviews may only be requested from collaborators."}),
    )
    pr = forge.open_pr(PrRequest(branch=BRANCH, title="t", body="b", reviewers=["@mallory"]))
    assert pr.number == 7
    assert pr.warnings == (
        "reviewers not requested: GitHub refused to request reviewers: Reviews may only be "
        "requested from collaborators. (422).",
    )


def test_pr_from_a_foreign_branch_is_refused_before_any_request(
    forge: Forge, github_server: FakeForge
) -> None:
    with pytest.raises(PushRefused):
        forge.open_pr(PrRequest(branch="main", title="t", body="b"))
    assert github_server.seen == []


def test_bad_token_says_which_setting_to_fix(github_server: FakeForge, fake_time: FakeTime) -> None:
    github_server.on("GET", REPO, Reply(401, "github/error_401.json"))
    forge = make(github_server, fake_time)
    with pytest.raises(ForgeAuthError, match=r"rejected the token .*\(token\)"):
        forge.metadata()
    forge.close()


def test_missing_scope_is_a_permission_error_naming_the_scope(
    forge: Forge, github_server: FakeForge
) -> None:
    github_server.on("POST", f"{REPO}/pulls", Reply(403, "github/error_403_scope.json"))
    with pytest.raises(ForgePermissionError, match="'repo' scope"):
        forge.open_pr(PrRequest(branch=BRANCH, title="t", body="b"))


def test_missing_repo_is_not_found(github_server: FakeForge, fake_time: FakeTime) -> None:
    github_server.on("GET", REPO, Reply(404, "github/error_404.json"))
    forge = make(github_server, fake_time)
    with pytest.raises(ForgeNotFound, match="does not exist, or the token cannot see it"):
        forge.metadata()
    forge.close()


def test_rate_limit_waits_until_the_reset_then_succeeds(
    github_server: FakeForge, fake_time: FakeTime
) -> None:
    reset = str(int(fake_time.now) + 30)
    limited = Reply(
        403,
        "github/error_403_rate.json",
        {"X-RateLimit-Limit": "5000", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset},
    )
    serve_repo(github_server)
    github_server.on("GET", REPO, limited, Reply(body="github/repo.json"))
    forge = make(github_server, fake_time)
    assert forge.metadata().default_branch == "main"
    assert fake_time.slept == [30]
    forge.close()


def test_429_retry_after_is_honoured_for_a_write(
    forge: Forge, github_server: FakeForge, fake_time: FakeTime
) -> None:
    github_server.on(
        "POST",
        f"{REPO}/pulls",
        Reply(429, {"message": "You have exceeded a secondary rate limit."}, {"Retry-After": "3"}),
        Reply(201, "github/pull_created.json"),
    )
    assert forge.open_pr(PrRequest(branch=BRANCH, title="t", body="b")).number == 7
    assert fake_time.slept == [3]
    assert len(github_server.requests_to("POST", f"{REPO}/pulls")) == 2


def test_rate_limit_too_far_away_is_reported_at_once(
    github_server: FakeForge, fake_time: FakeTime
) -> None:
    reset = str(int(fake_time.now) + 3600)
    github_server.on(
        "GET",
        REPO,
        Reply(
            403,
            "github/error_403_rate.json",
            {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset},
        ),
    )
    forge = make(github_server, fake_time)
    with pytest.raises(ForgeRateLimited, match="Try again in 3600 s") as err:
        forge.metadata()
    assert err.value.retry_after == 3600
    assert fake_time.slept == []
    forge.close()


def test_server_errors_are_retried_then_reported_and_nothing_is_lost(
    github_server: FakeForge, fake_time: FakeTime
) -> None:
    serve_repo(github_server)
    github_server.on(
        "GET", REPO, *[Reply(500, "github/error_500.json")] * 4, Reply(body="github/repo.json")
    )
    forge = make(github_server, fake_time)
    with pytest.raises(ForgeUnavailable, match=r"500 Server Error.*gave up after 3 retries"):
        forge.metadata()
    assert fake_time.slept == [1, 2, 4]
    assert forge.metadata().default_branch == "main"  # the server recovered
    forge.close()


def test_a_server_that_never_answers_times_out(silent_port: int, fake_time: FakeTime) -> None:
    settings = ForgeSettings(
        kind="github",
        base_url=f"http://127.0.0.1:{silent_port}/api/v3",
        token=SecretStr(TOKEN),
        timeout=0.2,
        max_retries=1,
    )
    forge = build_forge(settings, "acme/widgets", sleep=fake_time.sleep, clock=fake_time.clock)
    started = time.monotonic()
    with pytest.raises(ForgeUnavailable, match=r"did not answer within 0.2 s"):
        forge.metadata()
    assert time.monotonic() - started < 3
    assert fake_time.slept == [1]
    forge.close()


def test_push_goes_to_the_clone_url_and_protected_branches_are_refused(
    forge: Forge, github_server: FakeForge, repos: Repos
) -> None:
    github_server.clone_url = str(repos.remote)
    assert forge.clone_source().url == str(repos.remote)
    assert forge.clone_source().token is not None
    forge.push(repos.work, BRANCH)
    assert BRANCH in repos.remote_refs()
    frozen = "appliance/20240430-1200-release-freeze"  # protected on GitHub
    git("branch", frozen, cwd=repos.work)
    with pytest.raises(PushRefused, match="protected branch"):
        forge.push(repos.work, frozen)
    assert frozen not in repos.remote_refs()


def test_update_comment_and_close(forge: Forge, github_server: FakeForge) -> None:
    serve_pull(github_server)
    github_server.on("PATCH", f"{REPO}/pulls/7", Reply(body="github/pull_edited.json"))
    github_server.on("POST", f"{REPO}/issues/7/comments", Reply(201, "github/issue_comment.json"))
    pr = forge.update_pr(7, title="Add JWT middleware (v2)")
    assert pr.number == 7
    patch = json.loads(github_server.requests_to("PATCH", f"{REPO}/pulls/7")[0].body)
    assert patch == {"title": "Add JWT middleware (v2)"}
    forge.comment(7, "CI is green.")
    sent = json.loads(github_server.requests_to("POST", f"{REPO}/issues/7/comments")[0].body)
    assert sent == {"body": "CI is green."}
    github_server.on("PATCH", f"{REPO}/pulls/7", Reply(body="github/pull_closed.json"))
    assert forge.close_pr(7).state is PrState.closed


def test_review_comments_since_a_time(forge: Forge, github_server: FakeForge) -> None:
    serve_pull(github_server)
    github_server.on("GET", f"{REPO}/pulls/7/comments", Reply(body="github/review_comments.json"))
    github_server.on("GET", f"{REPO}/issues/7/comments", Reply(body="github/issue_comments.json"))
    since = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
    found = forge.review_comments(7, since=since)
    assert [(f.author, f.body, f.path, f.line) for f in found] == [
        ("alice", "Please check the token expiry here too.", "src/api/auth.py", 27),
        ("alice", "Also add a test for an expired token.", None, None),
    ]
    assert all(f.branch == BRANCH and f.pr_number == 7 for f in found)
    asked = github_server.requests_to("GET", f"{REPO}/pulls/7/comments")[0]
    assert asked.query["since"] == ["2024-05-01T10:00:00Z"]


def serve_ci(server: FakeForge, *check_runs: str) -> None:
    server.on("GET", f"{REPO}/commits/{BRANCH}", Reply(body="github/commit.json"))
    server.on(
        "GET", f"{REPO}/commits/{SHA}/check-runs", *[Reply(body=f"github/{c}") for c in check_runs]
    )
    server.on("GET", f"{REPO}/commits/{SHA}/status", Reply(body="github/status_success.json"))


def test_ci_status_combines_check_runs_and_statuses(forge: Forge, github_server: FakeForge) -> None:
    serve_ci(github_server, "check_runs_pending.json")
    status = forge.ci_status(BRANCH)
    assert status.state is CiState.pending
    assert [(c.name, c.state) for c in status.checks] == [
        ("lint", CiState.success),
        ("tests", CiState.pending),
        ("continuous-integration/jenkins", CiState.success),
    ]


@pytest.mark.parametrize(
    ("runs", "outcome"),
    [
        (("check_runs_pending.json", "check_runs_success.json"), CiOutcome.success),
        (("check_runs_pending.json", "check_runs_failure.json"), CiOutcome.failure),
        (("check_runs_pending.json",), CiOutcome.pending_timeout),
    ],
)
def test_wait_for_ci(
    github_server: FakeForge, fake_time: FakeTime, runs: tuple[str, ...], outcome: CiOutcome
) -> None:
    serve_repo(github_server)
    serve_ci(github_server, *runs)
    forge = make(github_server, fake_time)
    assert forge.wait_for_ci(BRANCH, timeout=60, poll=20) is outcome
    assert sum(fake_time.slept) <= 60
    forge.close()


def test_proxy_setting_routes_requests_through_the_proxy(
    github_server: FakeForge, fake_time: FakeTime
) -> None:
    settings = ForgeSettings(
        kind="github",
        base_url="http://ghe.acme.invalid/api/v3",  # resolvable only by the proxy
        token=SecretStr(TOKEN),
        proxy_url=github_server.url,
        timeout=5,
    )
    forge = build_forge(settings, "acme/widgets", sleep=fake_time.sleep, clock=fake_time.clock)
    try:
        with pytest.raises(ForgeNotFound):  # the replaying proxy knows no such repo
            forge.metadata()
    finally:
        forge.close()
    (seen,) = github_server.seen
    assert seen.via_proxy
    assert seen.path == "/api/v3/repos/acme/widgets"
    assert seen.headers["Host"].startswith("ghe.acme.invalid")
