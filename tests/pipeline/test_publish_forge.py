"""Publishing to GitHub through the real Publishing node, a real mirror, worktree and bare
remote, and a replaying GitHub server: the PR is opened once, forge errors hand the task
back to the human gate with the forge's message (nothing lost, approve again retries),
and a review comment webhook sends a done task back to work on the same branch.

The steps before publishing are small test nodes (no model, no sandbox): they make the
worktree, write a change per round, and stop at the human gate like ``reviewing`` does.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from appliance.api import create_app
from appliance.config import load_settings
from appliance.forges.rules import branch_name
from appliance.pipeline.publish import Publishing
from appliance.pipeline.workspace import appliance_of, repository, worktrees
from appliance.runner import Graph, Next, NodeContext, Outcome, Pause, State
from appliance.runner.graph import REJECT, Node
from appliance.states import TaskStatus
from tests.conftest import Tokens, auth, make_tokens
from tests.forges.fakeforge import FIXTURES, FakeForge, Reply
from tests.forges.test_gitlab import serve_project
from tests.gitrepos import Upstream, make_upstream, plain_git

TOKEN = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
SECRET = "webhook-secret-for-tests"
REPO = "/repos/acme/widgets"


# --- the steps before publishing, as small nodes --------------------------------------
@dataclass
class Setup:
    name: str = "preparing"
    status: TaskStatus = TaskStatus.preparing

    async def run(self, ctx: NodeContext, state: State) -> Outcome:
        appliance = appliance_of(ctx)
        repo = await asyncio.to_thread(repository, ctx)

        def make() -> dict[str, str]:
            mirror = appliance.index.mirrors.ensure(repo.name, repo.clone_url)
            base = mirror.resolve("refs/heads/main")
            branch = branch_name(datetime.now(UTC), ctx.task.prompt, unique=ctx.task.id[:6])
            worktrees(appliance).create(mirror, task_id=ctx.task.id, branch=branch, base=base)
            return {"base": base, "branch": branch}

        return Next("planning", {**state, **await asyncio.to_thread(make)})


@dataclass
class Pass:
    name: str = "planning"
    status: TaskStatus = TaskStatus.planning

    async def run(self, ctx: NodeContext, state: State) -> Outcome:
        return Next("implementing", state)


@dataclass
class Edit:
    """Round n writes ``auth.py`` version n; review comments (``human``) start a round."""

    name: str = "implementing"
    status: TaskStatus = TaskStatus.implementing

    async def run(self, ctx: NodeContext, state: State) -> Outcome:
        state = dict(state)
        human = state.pop("human", None) or {}
        if human.get("action") == "request_changes":
            state["round"] = state.get("round", 0) + 1
            state["seen_feedback"] = [c["body"] for c in human.get("comments", [])]
        rnd = state.get("round", 0)
        path = worktrees(appliance_of(ctx)).get(ctx.task.id).path / "auth.py"
        path.write_text(f"def check(token):\n    return 'round {rnd}'\n")
        state["summary"] = f"round {rnd} written"
        return Next("reviewing", state)


@dataclass
class Gate:
    name: str = "reviewing"
    status: TaskStatus = TaskStatus.reviewing

    async def run(self, ctx: NodeContext, state: State) -> Outcome:
        state = {**state, "pr": {"title": "Add JWT middleware", "body": "## Plan\n..."}}
        return Pause(
            "the change waits for review",
            state,
            wait=TaskStatus.awaiting_approval,
            resume={"approve": "publishing", "request_changes": "implementing", "reject": REJECT},
        )


def graph() -> Graph:
    nodes: list[Node] = [Setup(), Pass(), Edit(), Gate(), Publishing()]
    return Graph(start="preparing", nodes={n.name: n for n in nodes})


# --- fixtures -----------------------------------------------------------------------
@dataclass
class World:
    client: TestClient
    tokens: Tokens
    upstream: Upstream
    github: FakeForge
    repo_id: int


def serve_github(server: FakeForge) -> None:
    server.on("GET", REPO, Reply(body="github/repo.json"))
    server.on("GET", f"{REPO}/languages", Reply(body="github/languages.json"))
    server.on("GET", f"{REPO}/branches", Reply(body="github/branches_protected.json"))
    server.on("POST", f"{REPO}/pulls", Reply(201, "github/pull_created.json"))
    server.on("POST", f"{REPO}/issues/7/labels", Reply(200, "github/labels.json"))
    server.on(
        "POST", f"{REPO}/pulls/7/requested_reviewers", Reply(201, "github/pull_reviewers.json")
    )
    server.on("GET", f"{REPO}/pulls/7", Reply(body="github/pull.json"))
    server.on("POST", f"{REPO}/issues/7/comments", Reply(201, "github/issue_comment.json"))


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    up = make_upstream(tmp_path, "widgets")
    up.commit({"README.md": "widgets\n"}, "initial")
    github = FakeForge(api_prefix="/api/v3").start()
    github.clone_url = up.url
    serve_github(github)
    settings = load_settings(index={"embedder": "none"})
    try:
        with TestClient(create_app(settings, graph=graph())) as client:
            tokens = make_tokens(client.app.state.appliance.db)  # type: ignore[attr-defined]
            created = client.post(
                "/api/v1/repositories",
                json={
                    "name": "widgets",
                    "clone_url": up.url,
                    "forge_kind": "github",
                    "settings": {
                        "forge": {
                            "base_url": github.api,
                            "token": TOKEN,
                            "project": "acme/widgets",
                            "max_retries": 0,
                            "timeout": 5,
                        },
                        "webhook_secret": SECRET,
                    },
                },
                headers=auth(tokens.admin),
            )
            assert created.status_code == 201, created.text
            yield World(client, tokens, up, github, created.json()["id"])
    finally:
        github.stop()


def wait_status(w: World, task_id: str, *statuses: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    task: dict[str, Any] = {}
    while time.monotonic() < deadline:
        task = w.client.get(f"/api/v1/tasks/{task_id}", headers=auth(w.tokens.viewer)).json()
        if task["status"] in statuses:
            return task
        time.sleep(0.05)
    raise AssertionError(f"task stuck in {task.get('status')} ({task.get('step')})")


def events(w: World, task_id: str) -> list[dict[str, Any]]:
    page = w.client.get(
        f"/api/v1/tasks/{task_id}/events/page",
        params={"limit": 1000},
        headers=auth(w.tokens.viewer),
    )
    return list(page.json()["events"])


def submit(w: World) -> str:
    created = w.client.post(
        "/api/v1/tasks",
        json={"repository_id": w.repo_id, "prompt": "Add JWT middleware"},
        headers=auth(w.tokens.dev),
    )
    assert created.status_code == 201, created.text
    task_id = str(created.json()["task_id"])
    wait_status(w, task_id, "awaiting_approval")
    return task_id


def approve(w: World, task_id: str) -> None:
    done = w.client.post(f"/api/v1/tasks/{task_id}/approve", headers=auth(w.tokens.dev2))
    assert done.status_code == 200, done.text


def remote_branches(w: World) -> list[str]:
    out = plain_git(w.upstream.bare, "branch", "--list", "appliance/*")
    return [b.strip().lstrip("* ") for b in out.splitlines() if b.strip()]


def signed(body: bytes) -> str:
    return "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()


# --- tests --------------------------------------------------------------------------
def test_approval_pushes_from_the_mirror_and_opens_one_pull_request(world: World) -> None:
    task_id = submit(world)
    assert remote_branches(world) == []  # nothing before approval
    approve(world, task_id)
    done = wait_status(world, task_id, "done", "failed", "awaiting_approval")
    assert done["status"] == "done", done
    [branch] = remote_branches(world)
    assert "round 0" in plain_git(world.upstream.bare, "show", f"{branch}:auth.py")
    message = plain_git(world.upstream.bare, "log", "-1", "--format=%an|%B", branch)
    assert message.startswith("Coding Agent Appliance|Add JWT middleware")
    assert "Co-authored-by: dana <dana@localhost>" in message
    [created] = world.github.requests_to("POST", f"{REPO}/pulls")
    sent = json.loads(created.body)
    assert (sent["head"], sent["base"], sent["title"]) == (branch, "main", "Add JWT middleware")
    assert created.headers["Authorization"] == f"token {TOKEN}"
    assert json.loads(world.github.requests_to("POST", f"{REPO}/issues/7/labels")[0].body) == [
        "appliance"
    ]
    published = [e for e in events(world, task_id) if e["kind"] == "published"]
    assert [(p["payload"]["pr"], p["payload"]["branch"]) for p in published] == [(7, branch)]
    assert published[0]["payload"]["url"].endswith("/acme/widgets/pull/7")
    # the token never shows: the API masks it
    shown = world.client.get(
        f"/api/v1/repositories/{world.repo_id}", headers=auth(world.tokens.viewer)
    ).json()
    assert TOKEN not in json.dumps(shown)
    assert shown["settings"]["forge_token"] == "ghp_****Q7r8"


ERRORS = {
    "401": (Reply(401, "github/error_401.json"), "rejected the token"),
    "403-rate-limit": (
        Reply(
            403,
            "github/error_403_rate.json",
            {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(time.time()) + 3600)},
        ),
        "rate-limited",
    ),
    "403-scope": (Reply(403, "github/error_403_scope.json"), "lacks a scope"),
    "404": (Reply(404, "github/error_404.json"), "found nothing to open the pull request"),
    "422": (Reply(422, "github/error_422_exists.json"), "A pull request already exists"),
    "500": (Reply(500, "github/error_500.json"), "the server has a problem"),
}


@pytest.mark.parametrize("case", sorted(ERRORS))
def test_forge_error_hands_back_to_the_gate_and_a_retry_publishes(world: World, case: str) -> None:
    reply, said = ERRORS[case]
    world.github.on("POST", f"{REPO}/pulls", reply)
    task_id = submit(world)
    approve(world, task_id)
    back = wait_status(world, task_id, "awaiting_approval", "failed", "done")
    if back["status"] == "awaiting_approval":  # wait until the second stop, not the first
        deadline = time.monotonic() + 30
        while not any(e["kind"] == "error" for e in events(world, task_id)):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        back = wait_status(world, task_id, "awaiting_approval", "failed", "done")
    assert back["status"] == "awaiting_approval", back
    [error] = [e for e in events(world, task_id) if e["kind"] == "error"]
    assert said in error["payload"]["message"]
    assert error["payload"]["message"].startswith(
        "Publishing stopped while trying to open the pull request"
    )
    assert len(remote_branches(world)) == 1  # the push was done and is kept

    world.github.on("POST", f"{REPO}/pulls", Reply(201, "github/pull_created.json"))
    approve(world, task_id)
    done = wait_status(world, task_id, "done", "failed")
    assert done["status"] == "done", done
    assert len(world.github.requests_to("POST", f"{REPO}/pulls")) == 2
    commits = plain_git(world.upstream.bare, "rev-list", "--count", remote_branches(world)[0])
    assert commits.strip() == "2"  # the initial commit and one task commit: no second commit


@pytest.mark.parametrize("where", ["timeout", "self-signed"])
def test_unreachable_forge_keeps_the_task_waiting(world: World, where: str, tmp_path: Path) -> None:
    """A forge that does not answer, or whose certificate is not trusted, stops publishing
    before the push with a message that names the setting to fix."""
    import socket
    import ssl

    import trustme

    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost", "127.0.0.1").configure_cert(context)
    https = FakeForge(api_prefix="/api/v3", ssl_context=context).start()
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    try:
        base = (
            https.api if where == "self-signed" else f"http://127.0.0.1:{silent.getsockname()[1]}"
        )
        patched = world.client.patch(
            f"/api/v1/repositories/{world.repo_id}",
            json={
                "settings": {
                    "forge": {
                        "base_url": base,
                        "project": "acme/widgets",
                        "max_retries": 0,
                        "timeout": 1,
                    }
                }
            },
            headers=auth(world.tokens.admin),
        )
        assert patched.status_code == 200, patched.text
        assert patched.json()["settings"]["forge_token"] == "ghp_****Q7r8"  # kept
        task_id = submit(world)
        approve(world, task_id)
        deadline = time.monotonic() + 30
        while not any(e["kind"] == "error" for e in events(world, task_id)):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        task = wait_status(world, task_id, "awaiting_approval", "failed")
        assert task["status"] == "awaiting_approval"
        [error] = [e for e in events(world, task_id) if e["kind"] == "error"]
        expected = "did not answer" if where == "timeout" else "could not be verified"
        assert expected in error["payload"]["message"]
        assert remote_branches(world) == []  # nothing pushed
    finally:
        https.stop()
        silent.close()


def test_review_comment_webhook_sends_the_done_task_back_to_the_same_branch(
    world: World,
) -> None:
    task_id = submit(world)
    approve(world, task_id)
    assert wait_status(world, task_id, "done", "failed")["status"] == "done"
    [branch] = remote_branches(world)

    payload = json.loads((FIXTURES / "webhooks/github_review_comment.json").read_text())
    payload["pull_request"]["head"]["ref"] = branch
    body = json.dumps(payload).encode()
    hook = world.client.post(
        "/api/v1/webhooks/github",
        content=body,
        headers={
            "X-Hub-Signature-256": signed(body),
            "X-GitHub-Event": "pull_request_review_comment",
            "Content-Type": "application/json",
        },
    )
    assert hook.status_code == 202, hook.text
    assert hook.json() == {"status": "follow_up", "task_id": task_id}
    waiting = wait_status(world, task_id, "awaiting_approval")
    assert waiting["status"] == "awaiting_approval"
    approve(world, task_id)
    assert wait_status(world, task_id, "done", "failed")["status"] == "done"

    assert remote_branches(world) == [branch]  # the same branch, one commit more
    assert "round 1" in plain_git(world.upstream.bare, "show", f"{branch}:auth.py")
    count = plain_git(world.upstream.bare, "rev-list", "--count", branch).strip()
    assert count == "3"
    assert len(world.github.requests_to("POST", f"{REPO}/pulls")) == 1  # no second PR
    [reply] = world.github.requests_to("POST", f"{REPO}/issues/7/comments")
    text = json.loads(reply.body)["body"]
    assert "Please check the token expiry here too." in text
    assert "`src/api/auth.py:27`" in text
    assert "<!-- coding-agent-appliance -->" in text
    kinds = [e["kind"] for e in events(world, task_id)]
    assert kinds.count("published") == 2
    assert "review_feedback" in kinds


def test_bad_signature_changes_nothing_and_polling_finds_new_comments(world: World) -> None:
    """Where webhooks cannot reach the appliance, polling hands new comments over; a
    forged webhook on the same PR is refused and the task stays done."""
    from appliance.forges.feedback import poll_review_comments

    task_id = submit(world)
    approve(world, task_id)
    assert wait_status(world, task_id, "done", "failed")["status"] == "done"
    [branch] = remote_branches(world)
    payload = json.loads((FIXTURES / "webhooks/github_review_comment.json").read_text())
    body = json.dumps(payload).encode()
    forged = world.client.post(
        "/api/v1/webhooks/github",
        content=body,
        headers={
            "X-Hub-Signature-256": "sha256=" + "0" * 64,
            "X-GitHub-Event": "pull_request_review_comment",
        },
    )
    assert forged.status_code == 401
    assert wait_status(world, task_id, "done")["status"] == "done"

    appliance = world.client.app.state.appliance  # type: ignore[attr-defined]
    assert world.client.portal is not None
    world.github.on("GET", f"{REPO}/pulls/7/comments", Reply(body=[]))
    world.github.on("GET", f"{REPO}/issues/7/comments", Reply(body=[]))
    assert world.client.portal.call(poll_review_comments, appliance) == 0  # nothing new
    time.sleep(1.1)  # the comment is newer than the PR (GitHub gives whole seconds)
    later = datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    comments = json.loads((FIXTURES / "github/review_comments.json").read_text())
    comments[0]["created_at"] = comments[0]["updated_at"] = later
    world.github.on("GET", f"{REPO}/pulls/7/comments", Reply(body=comments))
    assert world.client.portal.call(poll_review_comments, appliance) == 1
    assert wait_status(world, task_id, "awaiting_approval")["status"] == "awaiting_approval"
    # asked again, the same comment is not handed over twice
    assert world.client.portal.call(poll_review_comments, appliance) == 0
    approve(world, task_id)
    assert wait_status(world, task_id, "done", "failed")["status"] == "done"
    assert remote_branches(world) == [branch]


# --- plain git: a failed push waits at the gate and is retried ----------------------
def make_world(tmp_path: Path, kind: str, forge: dict[str, Any]) -> Iterator[World]:
    up = make_upstream(tmp_path, "widgets")
    up.commit({"README.md": "widgets\n"}, "initial")
    server = FakeForge(api_prefix="/api/v4" if kind == "gitlab" else "/api/v3").start()
    server.clone_url = up.url
    settings = load_settings(index={"embedder": "none"})
    try:
        with TestClient(create_app(settings, graph=graph())) as client:
            tokens = make_tokens(client.app.state.appliance.db)  # type: ignore[attr-defined]
            block = {k: (server.url if v == "{{server}}" else v) for k, v in forge.items()}
            created = client.post(
                "/api/v1/repositories",
                json={"name": "widgets", "clone_url": up.url, "forge_kind": kind,
                      "settings": {"forge": block} if block else {}},
                headers=auth(tokens.admin),
            )  # fmt: skip
            assert created.status_code == 201, created.text
            yield World(client, tokens, up, server, created.json()["id"])
    finally:
        server.stop()


@pytest.fixture
def git_world(tmp_path: Path) -> Iterator[World]:
    yield from make_world(tmp_path, "git", {})


def error_events(w: World, task_id: str, count: int = 1) -> list[dict[str, Any]]:
    """The task's error events, once there are ``count`` of them."""
    deadline = time.monotonic() + 30
    while True:
        found = [e for e in events(w, task_id) if e["kind"] == "error"]
        if len(found) >= count:
            return found
        assert time.monotonic() < deadline, "no error event"
        time.sleep(0.05)


def test_plain_git_push_failure_waits_at_the_gate_and_approving_again_pushes(
    git_world: World, tmp_path: Path
) -> None:
    w = git_world
    task_id = submit(w)
    away = tmp_path / "moved-away.git"
    w.upstream.bare.rename(away)  # the remote is unreachable when the push happens
    approve(w, task_id)
    [error] = error_events(w, task_id)
    back = wait_status(w, task_id, "awaiting_approval", "failed", "done")
    assert back["status"] == "awaiting_approval", back
    message = error["payload"]["message"]
    assert message.startswith("Publishing stopped while trying to push appliance/")
    assert "does not appear to be a git repository" in message
    assert error["payload"]["recoverable"] is True

    away.rename(w.upstream.bare)  # the remote is back
    approve(w, task_id)
    done = wait_status(w, task_id, "done", "failed")
    assert done["status"] == "done", done
    [branch] = remote_branches(w)
    assert "round 0" in plain_git(w.upstream.bare, "show", f"{branch}:auth.py")
    count = plain_git(w.upstream.bare, "rev-list", "--count", branch).strip()
    assert count == "2"  # the initial commit and the task's: not committed twice


# --- a PR the server made although opening it timed out is adopted -------------------
def task_branch(w: World, task_id: str) -> str:
    from appliance.store import tasks as task_store

    db = w.client.app.state.appliance.db  # type: ignore[attr-defined]
    with db.session() as s:
        checkpoint = task_store.latest_checkpoint(s, task_id)
        assert checkpoint is not None
        return str(checkpoint.state["branch"])


def test_an_existing_pull_request_of_the_branch_is_adopted(world: World) -> None:
    task_id = submit(world)
    branch = task_branch(world, task_id)
    existing = json.loads((FIXTURES / "github/pull.json").read_text())
    existing["head"]["ref"] = branch
    world.github.on("POST", f"{REPO}/pulls", Reply(422, "github/error_422_exists.json"))
    world.github.on("GET", f"{REPO}/pulls", Reply(body=[existing]))
    world.github.on("PATCH", f"{REPO}/pulls/7", Reply(body="github/pull_edited.json"))
    approve(world, task_id)
    done = wait_status(world, task_id, "done", "failed", "awaiting_approval")
    assert done["status"] == "done", done
    evs = events(world, task_id)
    assert [e for e in evs if e["kind"] == "error"] == []
    published = [e["payload"] for e in evs if e["kind"] == "published"]
    assert [(p["pr"], p["branch"]) for p in published] == [(7, branch)]
    [looked_up] = world.github.requests_to("GET", f"{REPO}/pulls")
    assert looked_up.query["head"] == [f"acme:{branch}"]
    [patch] = world.github.requests_to("PATCH", f"{REPO}/pulls/7")
    assert json.loads(patch.body)["title"] == "Add JWT middleware"
    assert len(world.github.requests_to("POST", f"{REPO}/pulls")) == 1
    logs = [e["payload"]["message"] for e in evs if e["kind"] == "log"]
    assert any("existed already" in m for m in logs)


# --- GitLab: errors hand the task back, a retry publishes ----------------------------
GL_TOKEN = "glpat-" + "Zx9Yw8Vu7Ts6Rq5Po4Nm"
GL_PROJECT = "/projects/42"


@pytest.fixture
def gitlab_world(tmp_path: Path) -> Iterator[World]:
    forge = {"base_url": "{{server}}", "token": GL_TOKEN, "project": "acme/widgets",
             "max_retries": 0, "timeout": 5}  # fmt: skip
    for w in make_world(tmp_path, "gitlab", forge):
        serve_project(w.github)
        w.github.on("POST", f"{GL_PROJECT}/merge_requests", Reply(201, "gitlab/mr_created.json"))
        yield w


GL_ERRORS = {
    "401": (Reply(401, "gitlab/error_401.json"), "rejected the token"),
    "403-rate-limit": (
        Reply(
            403,
            "gitlab/error_403.json",
            {"RateLimit-Remaining": "0", "RateLimit-Reset": str(int(time.time()) + 3600)},
        ),
        "rate-limited",
    ),
    "403-role": (Reply(403, "gitlab/error_403.json"), "Developer role"),
    "404": (Reply(404, "gitlab/error_404.json"), "found nothing to open the merge request"),
    "409": (Reply(409, "gitlab/error_409_exists.json"), "Another open merge request already"),
    "500": (Reply(500, "gitlab/error_500.json"), "the server has a problem"),
}


@pytest.mark.parametrize("case", sorted(GL_ERRORS))
def test_gitlab_error_hands_back_to_the_gate_and_a_retry_publishes(
    gitlab_world: World, case: str
) -> None:
    w = gitlab_world
    reply, said = GL_ERRORS[case]
    w.github.on("POST", f"{GL_PROJECT}/merge_requests", reply)
    task_id = submit(w)
    approve(w, task_id)
    [error] = error_events(w, task_id)
    back = wait_status(w, task_id, "awaiting_approval", "failed", "done")
    assert back["status"] == "awaiting_approval", back
    assert said in error["payload"]["message"]
    assert error["payload"]["message"].startswith(
        "Publishing stopped while trying to open the pull request"
    )
    assert len(remote_branches(w)) == 1  # the push was done and is kept

    w.github.on("POST", f"{GL_PROJECT}/merge_requests", Reply(201, "gitlab/mr_created.json"))
    approve(w, task_id)
    done = wait_status(w, task_id, "done", "failed")
    assert done["status"] == "done", done
    assert len(w.github.requests_to("POST", f"{GL_PROJECT}/merge_requests")) == 2
    published = [e["payload"] for e in events(w, task_id) if e["kind"] == "published"]
    assert [p["pr"] for p in published] == [3]
    commits = plain_git(w.upstream.bare, "rev-list", "--count", remote_branches(w)[0])
    assert commits.strip() == "2"


# --- the daily PR quota, end to end -------------------------------------------------
def test_the_eleventh_pull_request_of_a_day_waits_with_the_quota_message(world: World) -> None:
    for _ in range(10):
        task_id = submit(world)
        approve(world, task_id)
        assert wait_status(world, task_id, "done", "failed", "awaiting_approval")["status"] == (
            "done"
        )
    assert len(world.github.requests_to("POST", f"{REPO}/pulls")) == 10

    task_id = submit(world)
    approve(world, task_id)
    [error] = error_events(world, task_id)
    back = wait_status(world, task_id, "awaiting_approval", "failed", "done")
    assert back["status"] == "awaiting_approval", back
    message = error["payload"]["message"]
    assert "dana has opened 10 pull requests today, the daily limit" in message
    assert len(world.github.requests_to("POST", f"{REPO}/pulls")) == 10  # none reached GitHub
