"""The GitLab forge against a real HTTP server replaying documented REST responses."""

from __future__ import annotations

import json
from collections.abc import Iterator
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
)
from tests.forges.conftest import BRANCH, FakeTime, Repos
from tests.forges.fakeforge import FakeForge, Reply

TOKEN = "glpat-" + "Zx9Yw8Vu7Ts6Rq5Po4Nm"
PROJECT = "/projects/42"


def make(server: FakeForge, fake_time: FakeTime) -> Forge:
    settings = ForgeSettings(kind="gitlab", base_url=server.url, token=SecretStr(TOKEN), timeout=5)
    return build_forge(settings, "acme/widgets", sleep=fake_time.sleep, clock=fake_time.clock)


def serve_project(server: FakeForge) -> None:
    server.on("GET", "/projects/acme%2Fwidgets", Reply(body="gitlab/project.json"))
    server.on("GET", f"{PROJECT}/languages", Reply(body="gitlab/languages.json"))
    server.on("GET", f"{PROJECT}/protected_branches", Reply(body="gitlab/protected_branches.json"))
    server.on(
        "GET",
        f"{PROJECT}/repository/files/.gitlab%2FCODEOWNERS/raw",
        Reply(body="gitlab/CODEOWNERS.txt"),
    )
    server.on("GET", "/users", Reply(body="gitlab/users_none.json"))
    server.on("GET", "/users?username=alice", Reply(body="gitlab/users_alice.json"))


@pytest.fixture
def forge(gitlab_server: FakeForge, fake_time: FakeTime) -> Iterator[Forge]:
    serve_project(gitlab_server)
    f = make(gitlab_server, fake_time)
    yield f
    f.close()


def test_metadata_from_project_protected_branches_and_codeowners(
    forge: Forge, gitlab_server: FakeForge
) -> None:
    meta = forge.metadata()
    assert (meta.full_name, meta.default_branch) == ("acme/widgets", "main")
    assert meta.protected_branches == ("main", "release/*")
    assert meta.languages["Python"] == pytest.approx(87.45)
    assert meta.codeowners.owners_for(["src/api/auth.py", "README.md"]) == [
        "@alice",
        "@acme/backend",
        "@bob",
    ]
    sent = gitlab_server.requests_to("GET", "/projects/acme%2Fwidgets")[0]
    assert sent.headers["PRIVATE-TOKEN"] == TOKEN
    raw = gitlab_server.requests_to("GET", f"{PROJECT}/repository/files/.gitlab%2FCODEOWNERS/raw")
    assert raw[0].query["ref"] == ["main"]


def test_open_mr_as_draft_with_labels_and_user_reviewers(
    forge: Forge, gitlab_server: FakeForge
) -> None:
    gitlab_server.on("POST", f"{PROJECT}/merge_requests", Reply(201, "gitlab/mr_created.json"))
    pr = forge.open_pr(
        PrRequest(
            branch=BRANCH,
            title="Add JWT middleware",
            body="## Plan",
            labels=["appliance", "security"],
            draft=True,
            changed_files=["src/api/auth.py"],
        )
    )
    assert (pr.number, pr.state, pr.draft) == (3, PrState.open, True)
    assert pr.url == f"{gitlab_server.url}/acme/widgets/-/merge_requests/3"
    assert pr.warnings == ("reviewer acme/backend not requested: no GitLab user of that name",)
    sent = json.loads(gitlab_server.requests_to("POST", f"{PROJECT}/merge_requests")[0].body)
    assert sent == {
        "source_branch": BRANCH,
        "target_branch": "main",
        "title": "Draft: Add JWT middleware",
        "description": "## Plan",
        "remove_source_branch": False,
        "labels": "appliance,security",
        "reviewer_ids": [7],
    }


def test_existing_mr_is_a_conflict_with_gitlabs_reason(
    forge: Forge, gitlab_server: FakeForge
) -> None:
    gitlab_server.on(
        "POST", f"{PROJECT}/merge_requests", Reply(409, "gitlab/error_409_exists.json")
    )
    with pytest.raises(ForgeConflict, match="Another open merge request already exists"):
        forge.open_pr(PrRequest(branch=BRANCH, title="t", body="b"))


@pytest.mark.parametrize(
    ("status", "fixture", "error", "message"),
    [
        (401, "gitlab/error_401.json", ForgeAuthError, r"rejected the token"),
        (403, "gitlab/error_403.json", ForgePermissionError, r"'api' scope.*Developer role"),
        (404, "gitlab/error_404.json", ForgeNotFound, r"404 Project Not Found"),
    ],
)
def test_http_errors_become_clear_forge_errors(
    gitlab_server: FakeForge,
    fake_time: FakeTime,
    status: int,
    fixture: str,
    error: type[Exception],
    message: str,
) -> None:
    gitlab_server.on("GET", "/projects/acme%2Fwidgets", Reply(status, fixture))
    forge = make(gitlab_server, fake_time)
    with pytest.raises(error, match=message):
        forge.metadata()
    assert fake_time.slept == []
    forge.close()


def test_429_retry_after_is_honoured_instead_of_python_gitlabs_sleep(
    gitlab_server: FakeForge, fake_time: FakeTime
) -> None:
    serve_project(gitlab_server)
    gitlab_server.on(
        "GET",
        "/projects/acme%2Fwidgets",
        Reply(429, "gitlab/error_429.json", {"Retry-After": "7", "RateLimit-Remaining": "0"}),
        Reply(body="gitlab/project.json"),
    )
    forge = make(gitlab_server, fake_time)
    assert forge.metadata().default_branch == "main"
    assert fake_time.slept == [7]
    forge.close()


def test_500_is_retried_then_unavailable_and_works_after_recovery(
    gitlab_server: FakeForge, fake_time: FakeTime
) -> None:
    serve_project(gitlab_server)
    gitlab_server.on(
        "GET",
        "/projects/acme%2Fwidgets",
        *[Reply(500, "gitlab/error_500.json")] * 4,
        Reply(body="gitlab/project.json"),
    )
    forge = make(gitlab_server, fake_time)
    with pytest.raises(ForgeUnavailable, match=r"500 Internal Server Error.*after 3 retries"):
        forge.metadata()
    assert fake_time.slept == [1, 2, 4]
    assert forge.metadata().default_branch == "main"
    forge.close()


def test_update_comment_notes_and_close(forge: Forge, gitlab_server: FakeForge) -> None:
    gitlab_server.on("GET", f"{PROJECT}/merge_requests/3", Reply(body="gitlab/mr.json"))
    gitlab_server.on("PUT", f"{PROJECT}/merge_requests/3", Reply(body="gitlab/mr_updated.json"))
    assert forge.update_pr(3, body="new body").number == 3
    put = json.loads(gitlab_server.requests_to("PUT", f"{PROJECT}/merge_requests/3")[0].body)
    assert put == {"description": "new body"}

    gitlab_server.on(
        "POST", f"{PROJECT}/merge_requests/3/notes", Reply(201, "gitlab/note_created.json")
    )
    forge.comment(3, "CI is green.")
    note = gitlab_server.requests_to("POST", f"{PROJECT}/merge_requests/3/notes")[0]
    assert json.loads(note.body) == {"body": "CI is green."}

    gitlab_server.on("GET", f"{PROJECT}/merge_requests/3/notes", Reply(body="gitlab/notes.json"))
    found = forge.review_comments(3, since=datetime(2024, 5, 1, tzinfo=UTC))
    assert [(f.body, f.path, f.line, f.branch) for f in found] == [
        ("Please check the token expiry here too.", "src/api/auth.py", 27, BRANCH),
        ("Also add a test for an expired token.", None, None, BRANCH),
    ]

    gitlab_server.on("PUT", f"{PROJECT}/merge_requests/3", Reply(body="gitlab/mr_closed.json"))
    assert forge.close_pr(3).state is PrState.closed
    put = json.loads(gitlab_server.requests_to("PUT", f"{PROJECT}/merge_requests/3")[-1].body)
    assert put == {"state_event": "close"}


def test_pipeline_of_the_branch_decides_ci(gitlab_server: FakeForge, fake_time: FakeTime) -> None:
    serve_project(gitlab_server)
    gitlab_server.on(
        "GET",
        f"{PROJECT}/pipelines",
        Reply(body="gitlab/pipelines_running.json"),
        Reply(body="gitlab/pipelines_success.json"),
    )
    forge = make(gitlab_server, fake_time)
    assert forge.ci_status(BRANCH).state is CiState.pending
    assert gitlab_server.requests_to("GET", f"{PROJECT}/pipelines")[0].query["ref"] == [BRANCH]
    assert forge.wait_for_ci(BRANCH, timeout=300, poll=30) is CiOutcome.success
    forge.close()


def test_push_uses_the_projects_clone_url(
    forge: Forge, gitlab_server: FakeForge, repos: Repos
) -> None:
    gitlab_server.clone_url = str(repos.remote)
    source = forge.clone_source()
    assert source.url == str(repos.remote)
    assert TOKEN not in source.url
    header: Any = source.git_config()["http.extraHeader"]
    assert header.startswith("Authorization: Basic ")
    forge.push(repos.work, BRANCH)
    assert BRANCH in repos.remote_refs()


def test_403_with_ratelimit_headers_is_a_rate_limit_not_a_permission_problem(
    gitlab_server: FakeForge, fake_time: FakeTime
) -> None:
    serve_project(gitlab_server)
    reset = str(int(fake_time.now) + 3600)
    gitlab_server.on(
        "GET",
        "/projects/acme%2Fwidgets",
        Reply(
            403,
            "gitlab/error_403.json",
            {"RateLimit-Limit": "600", "RateLimit-Remaining": "0", "RateLimit-Reset": reset},
        ),
    )
    forge = make(gitlab_server, fake_time)
    with pytest.raises(ForgeRateLimited, match=r"GitLab rate-limited.*Try again in 3600 s") as err:
        forge.metadata()
    assert err.value.retry_after == 3600
    assert fake_time.slept == []  # too far away to wait for: reported at once
    forge.close()


def test_403_with_ratelimit_headers_soon_is_waited_for(
    gitlab_server: FakeForge, fake_time: FakeTime
) -> None:
    serve_project(gitlab_server)
    reset = str(int(fake_time.now) + 5)
    gitlab_server.on(
        "GET",
        "/projects/acme%2Fwidgets",
        Reply(403, "gitlab/error_403.json", {"RateLimit-Remaining": "0", "RateLimit-Reset": reset}),
        Reply(body="gitlab/project.json"),
    )
    forge = make(gitlab_server, fake_time)
    assert forge.metadata().default_branch == "main"
    assert fake_time.slept == [5]
    forge.close()


def test_a_gitlab_that_never_answers_times_out(silent_port: int, fake_time: FakeTime) -> None:
    settings = ForgeSettings(
        kind="gitlab",
        base_url=f"http://127.0.0.1:{silent_port}",
        token=SecretStr(TOKEN),
        timeout=0.2,
        max_retries=1,
    )
    forge = build_forge(settings, "acme/widgets", sleep=fake_time.sleep, clock=fake_time.clock)
    with pytest.raises(ForgeUnavailable, match=r"GitLab .* did not answer within 0.2 s"):
        forge.metadata()
    assert fake_time.slept == [1]  # a read is retried once, then reported
    forge.close()


@pytest.mark.parametrize(
    ("status", "fixture", "said"),
    [
        (409, "gitlab/error_409_exists.json", "Another open merge request already exists"),
        (422, {"message": ["Branch already exists"]}, "Branch already exists"),
    ],
)
def test_already_exists_is_a_conflict_with_gitlabs_reason(
    forge: Forge, gitlab_server: FakeForge, fake_time: FakeTime, status: int, fixture: Any,
    said: str,
) -> None:  # fmt: skip
    gitlab_server.on("POST", f"{PROJECT}/merge_requests", Reply(status, fixture))
    with pytest.raises(ForgeConflict, match=f"{said}.*\\({status}\\)"):
        forge.open_pr(PrRequest(branch=BRANCH, title="t", body="b"))
    assert fake_time.slept == []  # a conflict is not retried
    assert len(gitlab_server.requests_to("POST", f"{PROJECT}/merge_requests")) == 1
