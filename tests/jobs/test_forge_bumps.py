"""Bump PRs on GitHub and the branch clean-up of GitHub/GitLab repositories, end to end:
the deps job and the clean-up job on the scheduler, a real git remote the forge pushes
to, the local package index over HTTP, and GitHub's/GitLab's REST API replayed by a real
HTTP server (recorded, documented responses). The forge wiring is the appliance's own
(:func:`publisher_for`, :func:`branch_host_for`)."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from typing import Any

import pytest

from appliance.config import Settings
from appliance.forges.connect import seal_settings, secret_key
from appliance.jobs import JobServices
from appliance.jobs.forge_publish import branch_host_for, publisher_for
from appliance.store import repositories as repo_store
from appliance.store.db import Database
from appliance.store.models import ForgeKind, JobOutcome, Repository, RepositoryCreate
from tests.deps.conftest import IndexServer
from tests.forges import test_github as gh
from tests.forges import test_gitlab as gl
from tests.forges.fakeforge import FakeForge, Reply
from tests.forges.test_branches import github_pull, gitlab_mr
from tests.gitrepos import Upstream, make_upstream, plain_git
from tests.jobs.conftest import Clock, Factory
from tests.jobs.test_deps_job import EditingRepairRunner, SubprocessRunner
from tests.jobs.test_kinds import last_run

BUMP = "appliance/deps/python-non-major"
CHECK = "print('3 passed')\n"


@pytest.fixture
def settings(settings: Settings, index_server: IndexServer) -> Settings:
    settings.deps.python_index_url = f"{index_server.url}/simple"
    return settings


@pytest.fixture
def github_server() -> Iterator[FakeForge]:
    server = FakeForge(api_prefix="/api/v3").start()
    gh.serve_repo(server)
    yield server
    server.stop()


@pytest.fixture
def gitlab_server() -> Iterator[FakeForge]:
    server = FakeForge(api_prefix="/api/v4").start()
    gl.serve_project(server)
    yield server
    server.stop()


def add_forge_repo(
    db: Database, settings: Settings, kind: ForgeKind, url: str, base_url: str, token: str
) -> Repository:
    stored = seal_settings(
        {
            "forge": {"base_url": base_url, "project": "acme/widgets", "token": token},
            "test_command": "python check.py",
            "deps_policy": {"update_types": ["patch", "minor"]},
        },
        secret_key(settings),
        kind=kind.value,
    )
    with db.write() as session:
        return repo_store.create_repository(
            session,
            repo_in=RepositoryCreate(name="shop", clone_url=url, forge_kind=kind, settings=stored),
            actor="test",
        )


def services(settings: Settings) -> JobServices:
    return JobServices(
        sandbox=SubprocessRunner(),
        repair=EditingRepairRunner(fix=False),
        publisher=functools.partial(publisher_for, settings),
        branch_host=functools.partial(branch_host_for, settings),
    )


def github_shop(
    db: Database, settings: Settings, server: FakeForge, tmp_path: Any, check: str
) -> Upstream:
    """A GitHub repository whose remote holds attrs 23.1.0 and ``check`` as its tests,
    with GitHub answering for a first night: no bump PR yet, #12 once opened."""
    upstream = make_upstream(tmp_path)
    upstream.commit({"requirements.txt": "attrs==23.1.0\n", "check.py": check}, "app")
    server.clone_url = upstream.url
    add_forge_repo(db, settings, ForgeKind.github, upstream.url, server.api, gh.TOKEN)
    pulls = f"{gh.REPO}/pulls"
    server.on("GET", f"{pulls}?state=open", Reply(body=[]))
    server.on("GET", f"{pulls}?state=all&head=acme:{BUMP}", Reply(body=[]))
    server.on("POST", pulls, Reply(201, github_pull(12, BUMP)))
    server.on("POST", f"{gh.REPO}/issues/12/labels", Reply(body="github/labels.json"))
    server.on("POST", f"{pulls}/12/requested_reviewers", Reply(201, "github/pull_reviewers.json"))
    return upstream


def sent_json(server: FakeForge, method: str, path: str) -> list[Any]:
    return [json.loads(s.body) for s in server.requests_to(method, path)]


def on_branch(upstream: Upstream, ref: str, path: str) -> str:
    return plain_git(upstream.bare, "show", f"{ref}:{path}")


async def test_bumps_become_a_github_pr_that_a_newer_bump_updates_without_force_pushing(
    make_scheduler: Factory,
    db: Database,
    settings: Settings,
    github_server: FakeForge,
    tmp_path: Any,
    clock: Clock,
) -> None:
    upstream = github_shop(db, settings, github_server, tmp_path, CHECK)
    pulls = f"{gh.REPO}/pulls"
    scheduler = make_scheduler(services=services(settings))
    await scheduler.start(process=False)

    # Night one: attrs 23.1.0 -> 23.2.0, tests green: a PR is opened.
    await scheduler.run_now("deps:shop", actor="test", wait=True)
    run = last_run(db, "deps:shop")
    assert run.outcome == JobOutcome.ok, run.message
    [group] = run.details["groups"]
    assert group["status"] == "published"
    assert group["pr"].endswith("/acme/widgets/pull/12 (ready)")
    assert on_branch(upstream, BUMP, "requirements.txt") == "attrs==23.2.0"
    first_tip = plain_git(upstream.bare, "rev-parse", BUMP)
    [opened] = sent_json(github_server, "POST", pulls)
    assert (opened["head"], opened["base"], opened["draft"]) == (BUMP, "main", False)
    assert "attrs" in opened["title"]
    body = opened["body"]
    assert "| attrs | 23.1.0 | 23.2.0 | minor |" in body
    assert "### Tests" in body
    assert "3 passed" in body
    assert "python check.py" in body
    assert body.rstrip().endswith("-->")
    assert "appliance-deps key=python-non-major" in body
    [labels] = sent_json(github_server, "POST", f"{gh.REPO}/issues/12/labels")
    assert labels == ["dependencies"]
    push_auth = [s for s in github_server.seen if gh.TOKEN in s.headers.get("Authorization", "")]
    assert push_auth  # the API calls carried the stored (decrypted) token

    # Night two: main moved on and added requests 2.31.0 (2.32.3 is out): the same
    # group, new bumps. The open PR is updated, and its branch moves forward only.
    upstream.commit({"requirements.txt": "attrs==23.1.0\nrequests==2.31.0\n"}, "add requests")
    open_pr = github_pull(12, BUMP)
    open_pr["body"] = body
    github_server.on("GET", f"{pulls}?state=open", Reply(body=[open_pr]))
    github_server.on("GET", f"{pulls}?state=all&head=acme:{BUMP}", Reply(body=[open_pr]))
    github_server.on("GET", f"{pulls}/12", Reply(body=open_pr))
    github_server.on("PATCH", f"{pulls}/12", Reply(body=open_pr))
    github_server.on(
        "POST", f"{gh.REPO}/issues/12/comments", Reply(201, "github/issue_comment.json")
    )
    clock.advance(days=1)
    await scheduler.run_now("deps:shop", actor="test", wait=True)

    run = last_run(db, "deps:shop")
    assert run.outcome == JobOutcome.ok, run.message
    assert len(sent_json(github_server, "POST", pulls)) == 1  # no second PR
    [patched] = sent_json(github_server, "PATCH", f"{pulls}/12")
    assert "| requests | 2.31.0 | 2.32.3 | minor |" in patched["body"]
    assert "| attrs | 23.1.0 | 23.2.0 | minor |" in patched["body"]
    [note] = sent_json(github_server, "POST", f"{gh.REPO}/issues/12/comments")
    assert "requests 2.31.0 → 2.32.3" in note["body"]
    new_tip = plain_git(upstream.bare, "rev-parse", BUMP)
    assert new_tip != first_tip
    plain_git(upstream.bare, "merge-base", "--is-ancestor", first_tip, new_tip)  # no force
    assert on_branch(upstream, BUMP, "requirements.txt") == "attrs==23.2.0\nrequests==2.32.3"
    # What a reviewer sees (the diff from the merge base with main): only the bumps.
    diff = plain_git(upstream.bare, "diff", f"main...{BUMP}")
    changed = [line for line in diff.splitlines() if line[:1] in "+-" and line[:3] not in "+++---"]
    assert sorted(changed) == [
        "+attrs==23.2.0",
        "+requests==2.32.3",
        "-attrs==23.1.0",
        "-requests==2.31.0",
    ]
    assert on_branch(upstream, "main", "requirements.txt").startswith("attrs==23.1.0")

    # Night three: someone made the same change on main by hand; the PR is not needed
    # any more and is closed with a word why (its branch goes with the clean-up).
    upstream.commit({"requirements.txt": "attrs==23.2.0\nrequests==2.32.3\n"}, "bump by hand")
    open_pr["body"] = patched["body"]
    clock.advance(days=1)
    await scheduler.run_now("deps:shop", actor="test", wait=True)

    run = last_run(db, "deps:shop")
    assert run.outcome == JobOutcome.ok, run.message
    assert run.details["groups"] == [
        {
            "key": "python-non-major",
            "status": "retired",
            "pr": group["pr"].replace("(ready)", "(closed)"),
        }
    ]
    *_, closing = sent_json(github_server, "PATCH", f"{pulls}/12")
    assert closing == {"state": "closed"}
    *_, why = sent_json(github_server, "POST", f"{gh.REPO}/issues/12/comments")
    assert "no longer needed" in why["body"]
    assert len(sent_json(github_server, "POST", pulls)) == 1


async def test_a_github_bump_still_red_is_a_draft_pr_that_needs_a_human(
    make_scheduler: Factory,
    db: Database,
    settings: Settings,
    github_server: FakeForge,
    tmp_path: Any,
) -> None:
    failing = "import sys\nsys.exit('FAILED test_attrs: attrs 23.2 changed define()')\n"
    github_shop(db, settings, github_server, tmp_path, failing)
    pulls = f"{gh.REPO}/pulls"
    scheduler = make_scheduler(services=services(settings))
    await scheduler.start(process=False)

    await scheduler.run_now("deps:shop", actor="test", wait=True)

    run = last_run(db, "deps:shop")
    assert run.outcome == JobOutcome.ok, run.message
    [group] = run.details["groups"]
    assert group["status"] == "needs-human"
    assert group["pr"].endswith("(needs human)")
    [opened] = sent_json(github_server, "POST", pulls)
    assert opened["draft"] is True
    assert opened["title"].endswith("(needs a human)")
    assert opened["body"].startswith("> **Needs a human.**")
    assert "flask 3 needs changes I could not make" in opened["body"]  # the diagnosis
    assert "FAILED test_attrs" in opened["body"]
    [labels] = sent_json(github_server, "POST", f"{gh.REPO}/issues/12/labels")
    assert labels == ["dependencies", "needs-human"]


async def test_github_cleanup_deletes_branches_whose_pr_closed_and_keeps_the_rest(
    make_scheduler: Factory,
    db: Database,
    settings: Settings,
    github_server: FakeForge,
) -> None:
    add_forge_repo(db, settings, ForgeKind.github, "file:///unused", github_server.api, gh.TOKEN)
    merged, closed, live, bare = (
        "appliance/20240601-0900-add-login",
        "appliance/deps/npm-react-major",
        "appliance/20240630-1000-fix-cart",
        "appliance/20240630-1100-no-pr-yet",
    )
    refs = [
        {"ref": f"refs/heads/{b}", "url": "{{api}}/x", "object": {"sha": gh.SHA, "type": "commit"}}
        for b in (merged, closed, live, bare, "appliance/20240430-1200-release-freeze")
    ]
    github_server.on("GET", f"{gh.REPO}/git/matching-refs/heads/appliance/", Reply(body=refs))
    frozen = "appliance/20240430-1200-release-freeze"  # protected on GitHub, PR merged
    pulls = f"{gh.REPO}/pulls?state=all&head=acme:"
    github_server.on(
        "GET", pulls + merged, Reply(body=[github_pull(4, merged, state="closed", merged=True)])
    )
    github_server.on("GET", pulls + closed, Reply(body=[github_pull(5, closed, state="closed")]))
    github_server.on("GET", pulls + live, Reply(body=[github_pull(6, live)]))
    github_server.on("GET", pulls + bare, Reply(body=[]))
    github_server.on(
        "GET", pulls + frozen, Reply(body=[github_pull(3, frozen, state="closed", merged=True)])
    )
    for branch in (merged, closed):
        github_server.on("DELETE", f"{gh.REPO}/git/refs/heads/{branch}", Reply(204))
    scheduler = make_scheduler(services=services(settings))
    await scheduler.start(process=False)

    await scheduler.run_now("branch_cleanup:shop", actor="test", wait=True)

    run = last_run(db, "branch_cleanup:shop")
    assert run.outcome == JobOutcome.ok, run.message
    assert run.details["deleted"] == [merged, closed]
    assert run.details["kept"][live] == "pull request open"
    assert run.details["kept"][bare] == "no pull request"
    assert "protected branch" in run.details["kept"][frozen]  # GitHub protects it: kept
    deletes = [s.path for s in github_server.seen if s.method == "DELETE"]
    assert deletes == [f"/api/v3{gh.REPO}/git/refs/heads/{b}" for b in (merged, closed)]


async def test_gitlab_cleanup_deletes_the_branch_of_a_merged_mr_only(
    make_scheduler: Factory,
    db: Database,
    settings: Settings,
    gitlab_server: FakeForge,
) -> None:
    add_forge_repo(db, settings, ForgeKind.gitlab, "file:///unused", gitlab_server.url, gl.TOKEN)
    done, live = "appliance/20240601-0900-add-login", "appliance/deps/python-non-major"
    gitlab_server.on(
        "GET",
        f"{gl.PROJECT}/repository/branches",
        Reply(body=[{"name": done}, {"name": live}]),
    )
    mrs = f"{gl.PROJECT}/merge_requests?state=all&source_branch="
    gitlab_server.on("GET", mrs + done, Reply(body=[gitlab_mr(2, done, state="merged")]))
    gitlab_server.on("GET", mrs + live, Reply(body=[gitlab_mr(3, live)]))
    gitlab_server.on("DELETE", f"{gl.PROJECT}/repository/branches/{done}", Reply(204))
    scheduler = make_scheduler(services=services(settings))
    await scheduler.start(process=False)

    await scheduler.run_now("branch_cleanup:shop", actor="test", wait=True)

    run = last_run(db, "branch_cleanup:shop")
    assert run.outcome == JobOutcome.ok, run.message
    assert run.details["deleted"] == [done]
    assert run.details["kept"] == {live: "pull request open"}
    assert len([s for s in gitlab_server.seen if s.method == "DELETE"]) == 1
