"""A PR/MR that an earlier, timed-out try created is adopted instead of failing every
retry with 422/409 "already exists" (recorded GitHub and GitLab responses)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import SecretStr

from appliance.forges import ForgeSettings, PrRequest, PrState, build_forge
from appliance.forges.adopt import open_or_adopt_pr
from appliance.forges.base import Forge
from appliance.forges.errors import ForgeConflict
from tests.forges.conftest import BRANCH, FakeTime
from tests.forges.fakeforge import FIXTURES, FakeForge, Reply
from tests.forges.test_github import serve_repo
from tests.forges.test_gitlab import PROJECT, serve_project

GH_REPO = "/repos/acme/widgets"
REQUEST = PrRequest(branch=BRANCH, title="Add JWT middleware", body="## Plan\nretried")


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


@pytest.fixture
def github(github_server: FakeForge, fake_time: FakeTime) -> Iterator[Forge]:
    serve_repo(github_server)
    github_server.on("POST", f"{GH_REPO}/pulls", Reply(422, "github/error_422_exists.json"))
    settings = ForgeSettings(
        kind="github", base_url=github_server.api, token=SecretStr("g" * 40), timeout=5
    )
    forge = build_forge(settings, "acme/widgets", sleep=fake_time.sleep, clock=fake_time.clock)
    yield forge
    forge.close()


@pytest.fixture
def gitlab(gitlab_server: FakeForge, fake_time: FakeTime) -> Iterator[Forge]:
    serve_project(gitlab_server)
    gitlab_server.on(
        "POST", f"{PROJECT}/merge_requests", Reply(409, "gitlab/error_409_exists.json")
    )
    settings = ForgeSettings(
        kind="gitlab", base_url=gitlab_server.url, token=SecretStr("g" * 20), timeout=5
    )
    forge = build_forge(settings, "acme/widgets", sleep=fake_time.sleep, clock=fake_time.clock)
    yield forge
    forge.close()


def test_github_adopts_the_open_pull_request_of_the_branch(
    github: Forge, github_server: FakeForge
) -> None:
    github_server.on(
        "GET",
        f"{GH_REPO}/pulls?state=all&head=acme:{BRANCH}",
        Reply(body=[fixture("github/pull.json")]),
    )
    github_server.on("GET", f"{GH_REPO}/pulls/7", Reply(body="github/pull.json"))
    github_server.on("PATCH", f"{GH_REPO}/pulls/7", Reply(body="github/pull_edited.json"))
    pr = open_or_adopt_pr(github, REQUEST)
    assert (pr.number, pr.state) == (7, PrState.open)
    assert pr.url.endswith("/acme/widgets/pull/7")
    assert any("existed already" in w for w in pr.warnings)
    [patch] = github_server.requests_to("PATCH", f"{GH_REPO}/pulls/7")
    assert json.loads(patch.body) == {"title": REQUEST.title, "body": REQUEST.body}
    assert len(github_server.requests_to("POST", f"{GH_REPO}/pulls")) == 1  # not re-created


def test_gitlab_adopts_the_open_merge_request_of_the_branch(
    gitlab: Forge, gitlab_server: FakeForge
) -> None:
    gitlab_server.on(
        "GET",
        f"{PROJECT}/merge_requests?source_branch={BRANCH}",
        Reply(body=[fixture("gitlab/mr.json")]),
    )
    gitlab_server.on("GET", f"{PROJECT}/merge_requests/3", Reply(body="gitlab/mr.json"))
    gitlab_server.on("PUT", f"{PROJECT}/merge_requests/3", Reply(body="gitlab/mr_updated.json"))
    pr = open_or_adopt_pr(gitlab, REQUEST)
    assert (pr.number, pr.state) == (3, PrState.open)
    assert any("existed already" in w for w in pr.warnings)
    [put] = gitlab_server.requests_to("PUT", f"{PROJECT}/merge_requests/3")
    assert json.loads(put.body) == {"title": REQUEST.title, "description": REQUEST.body}


def test_a_closed_pull_request_of_the_branch_is_not_adopted(
    github: Forge, github_server: FakeForge
) -> None:
    github_server.on(
        "GET",
        f"{GH_REPO}/pulls?state=all&head=acme:{BRANCH}",
        Reply(body=[fixture("github/pull_closed.json")]),
    )
    with pytest.raises(ForgeConflict, match="A pull request already exists"):
        open_or_adopt_pr(github, REQUEST)
    assert github_server.requests_to("PATCH", f"{GH_REPO}/pulls/7") == []


def test_no_merge_request_found_keeps_gitlabs_conflict(
    gitlab: Forge, gitlab_server: FakeForge
) -> None:
    gitlab_server.on("GET", f"{PROJECT}/merge_requests?source_branch={BRANCH}", Reply(body=[]))
    with pytest.raises(ForgeConflict, match="Another open merge request already exists"):
        open_or_adopt_pr(gitlab, REQUEST)
