"""Branches and the PRs opened from them, on GitHub and GitLab (real HTTP, recorded
responses): what the nightly bumps and the branch clean-up rely on, and the rule that
only the appliance's own, unprotected branches are ever deleted."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from appliance.forges import PrState, rules
from appliance.forges.base import BranchForge
from appliance.forges.errors import ForgeConflict, ForgeNotFound, PushRefused
from appliance.jobs.forge_publish import branch_forge
from tests.forges import test_github as gh
from tests.forges import test_gitlab as gl
from tests.forges.conftest import FakeTime
from tests.forges.fakeforge import FIXTURES, FakeForge, Reply

BUMP = "appliance/deps/python-non-major"
TASK = "appliance/20240501-0930-add-jwt-middleware"


def github_pull(number: int, branch: str, *, state: str = "open", merged: bool = False) -> Any:
    """The recorded pull request #7, renumbered and moved to ``branch``."""
    text = (FIXTURES / "github/pull.json").read_text()
    for path in ("/pulls/", "/issues/", "/pull/"):
        text = text.replace(f"{path}7", f"{path}{number}")
    pull = json.loads(text)
    pull.update(number=number, state=state, merged=merged, body=f"body of #{number}")
    pull["head"]["ref"] = branch
    pull["head"]["label"] = f"acme:{branch}"
    return pull


def gitlab_mr(iid: int, branch: str, *, state: str = "opened") -> Any:
    mr = json.loads((FIXTURES / "gitlab/mr.json").read_text())
    mr.update(iid=iid, state=state, source_branch=branch, description=f"body of !{iid}")
    return mr


@pytest.fixture
def github(github_server: FakeForge, fake_time: FakeTime) -> Iterator[BranchForge]:
    gh.serve_repo(github_server)
    forge = branch_forge(gh.make(github_server, fake_time))
    yield forge
    forge.close()


@pytest.fixture
def gitlab(gitlab_server: FakeForge, fake_time: FakeTime) -> Iterator[BranchForge]:
    gl.serve_project(gitlab_server)
    forge = branch_forge(gl.make(gitlab_server, fake_time))
    yield forge
    forge.close()


def test_bump_branches_follow_the_rules_and_nothing_else_gets_in() -> None:
    assert rules.bump_branch("python-non-major") == BUMP
    assert rules.check_push(BUMP) == f"refs/heads/{BUMP}:refs/heads/{BUMP}"
    for bad in ("appliance/deps/../main", "appliance/deps/Py", "appliance/deps/", "deps/x"):
        with pytest.raises(PushRefused):
            rules.check_push(bad)


@pytest.mark.parametrize(
    ("branch", "why"),
    [
        ("main", "only its own branches"),  # refused before the forge is even asked
        ("release-2.x", "only its own branches"),
        ("appliance/20240430-1200-release-freeze", "protected"),  # protected on the forge
        ("feature/login", "only its own branches"),
    ],
)
def test_github_never_deletes_the_default_a_protected_or_a_foreign_branch(
    github: BranchForge, github_server: FakeForge, branch: str, why: str
) -> None:
    with pytest.raises(PushRefused, match=why):
        github.delete_branch(branch)
    assert not [s for s in github_server.seen if s.method == "DELETE"]


def test_github_lists_open_bump_prs_finds_a_branch_pr_and_deletes_a_branch(
    github: BranchForge, github_server: FakeForge
) -> None:
    github_server.on(
        "GET",
        f"{gh.REPO}/pulls?state=open",
        Reply(body=[github_pull(12, BUMP), github_pull(7, TASK)]),
    )
    [bump] = github.open_prs(branch_prefix=rules.BUMP_PREFIX)
    assert (bump.number, bump.branch, bump.body) == (12, BUMP, "body of #12")

    github_server.on(
        "GET",
        f"{gh.REPO}/pulls?state=all&head=acme:{TASK}",
        Reply(body=[github_pull(7, TASK, state="closed", merged=True)]),
    )
    found = github.pr_for_branch(TASK)
    assert found is not None
    assert (found.number, found.state) == (7, PrState.merged)
    asked = github_server.requests_to("GET", f"{gh.REPO}/pulls")[-1]
    assert asked.query["head"] == [f"acme:{TASK}"]
    assert asked.query["state"] == ["all"]
    github_server.on("GET", f"{gh.REPO}/pulls?state=all&head=acme:{BUMP}", Reply(body=[]))
    assert github.pr_for_branch(BUMP) is None

    refs = [
        {"ref": f"refs/heads/{b}", "url": "{{api}}/x", "object": {"sha": gh.SHA, "type": "commit"}}
        for b in (TASK, BUMP)
    ]
    github_server.on("GET", f"{gh.REPO}/git/matching-refs/heads/appliance/", Reply(body=refs))
    assert github.branches("appliance/") == [TASK, BUMP]

    github_server.on("DELETE", f"{gh.REPO}/git/refs/heads/{TASK}", Reply(204))
    github.delete_branch(TASK)
    [deleted] = github_server.requests_to("DELETE", f"{gh.REPO}/git/refs/heads/{TASK}")
    assert gh.TOKEN in deleted.headers["Authorization"]


def test_github_deleting_a_branch_already_gone_says_so(
    github: BranchForge, github_server: FakeForge
) -> None:
    github_server.on(
        "DELETE",
        f"{gh.REPO}/git/refs/heads/{TASK}",
        Reply(422, {"message": "Reference does not exist"}),
    )
    with pytest.raises(ForgeConflict) as caught:
        github.delete_branch(TASK)
    assert caught.value.message == (
        f"GitHub refused to delete the branch {TASK}: Reference does not exist (422)."
    )


def test_gitlab_lists_open_bump_mrs_finds_a_branch_mr_and_deletes_a_branch(
    gitlab: BranchForge, gitlab_server: FakeForge
) -> None:
    gitlab_server.on(
        "GET",
        f"{gl.PROJECT}/merge_requests?state=opened",
        Reply(body=[gitlab_mr(3, BUMP), gitlab_mr(2, TASK)]),
    )
    [bump] = gitlab.open_prs(branch_prefix=rules.BUMP_PREFIX)
    assert (bump.number, bump.branch, bump.body) == (3, BUMP, "body of !3")

    gitlab_server.on(
        "GET",
        f"{gl.PROJECT}/merge_requests?state=all&source_branch={TASK}",
        Reply(body=[gitlab_mr(2, TASK, state="closed")]),
    )
    found = gitlab.pr_for_branch(TASK)
    assert found is not None
    assert (found.number, found.state) == (2, PrState.closed)

    gitlab_server.on(
        "GET",
        f"{gl.PROJECT}/repository/branches",
        Reply(body=[{"name": TASK, "protected": False}, {"name": "appliance-notes"}]),
    )
    assert gitlab.branches("appliance/") == [TASK]  # GitLab's search is a hint only
    listing = gitlab_server.requests_to("GET", f"{gl.PROJECT}/repository/branches")[0]
    assert listing.query["search"] == ["^appliance/"]

    gitlab_server.on("DELETE", f"{gl.PROJECT}/repository/branches/{TASK}", Reply(204))
    gitlab.delete_branch(TASK)
    [deleted] = gitlab_server.requests_to("DELETE", f"{gl.PROJECT}/repository/branches/{TASK}")
    assert "%2F" in deleted.path  # the branch name travels URL-encoded, as GitLab wants
    assert deleted.headers["PRIVATE-TOKEN"] == gl.TOKEN

    gitlab_server.on(
        "DELETE",
        f"{gl.PROJECT}/repository/branches/{BUMP}",
        Reply(404, {"message": "404 Branch Not Found"}),
    )
    with pytest.raises(ForgeNotFound):
        gitlab.delete_branch(BUMP)
    with pytest.raises(PushRefused, match="only its own branches"):
        gitlab.delete_branch("release/2.0")
