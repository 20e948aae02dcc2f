"""``publishing``: commit the approved change, push its branch and, on GitHub/GitLab, open
the pull/merge request — only after a person approved it (the state machine reaches
publishing from awaiting_approval alone).

The commit's author is the platform identity, with a ``Co-authored-by`` trailer for the
person who asked. The push goes from the bare mirror (the task's commits are there: the
worktree shares its objects), never from the worktree, whose ``.git`` file the sandbox
could have rewritten; the forge rules are checked first: no force, never the default or a
protected branch (the configured ones, then the forge's own). Plain-git repositories stop
after the push (review happened in the appliance).

On GitHub/GitLab the pull request is opened once per task (title and body from
``state["pr"]``, labels, draft, the PR quota of the user who asked); a follow-up round
(review comments sent the task back, see :mod:`appliance.forges.feedback`) pushes to the
same branch and answers the comments on the PR instead.

A forge error (token, permission, rate limit, conflict, server, network, certificate)
hands the task back to the human gate (awaiting_approval) with the forge's message in an
``error`` event: nothing is lost, approving again retries from where it stopped.

Each side effect is recorded in ``state["publish"]`` (per round: ``commit``, ``pushed``,
``replied``) and ``state["pull_request"]``, and checkpointed by going on at this same node,
so a re-run after a crash does not commit, push, open or comment twice.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from appliance.errors import RepoError
from appliance.forges import build_forge
from appliance.forges.adopt import open_or_adopt_pr
from appliance.forges.base import Forge, PrRequest
from appliance.forges.connect import forge_project, forge_settings, wants_draft
from appliance.forges.errors import ForgeError
from appliance.forges.feedback import PR_OPENED_KEY, REPLY_MARKER, count_prs_opened
from appliance.forges.gitpush import classify_git_failure, transport_config
from appliance.forges.rules import PrQuota, check_push, commit_message
from appliance.forges.settings import ForgeSettings
from appliance.pipeline.workspace import appliance_of, repair_target, repository, worktrees
from appliance.repos.git import run_git
from appliance.runner.graph import REJECT, Done, Fail, Next, NodeContext, Outcome, Pause, State
from appliance.states import FailureCategory, TaskStatus
from appliance.store import tasks as task_store
from appliance.store.models import ForgeKind, Repository

if TYPE_CHECKING:
    from appliance.core import Appliance

log = logging.getLogger(__name__)
PUSH_TIMEOUT = 300.0
#: what a person may do when publishing failed and the task waits again
RETRY_ACTIONS = {"approve": "publishing", "request_changes": "implementing", "reject": REJECT}


@dataclass
class Publishing:
    name: str = "publishing"
    status: TaskStatus = TaskStatus.publishing

    async def run(self, ctx: NodeContext, state: State) -> Outcome:
        appliance = appliance_of(ctx)
        if repair_target(ctx.task.constraints) is not None:
            return Fail(
                FailureCategory.user_correctable,
                "this task repairs a dependency bump: the nightly deps job publishes the "
                "repair with the bump's pull request; approving it here publishes nothing",
            )
        state = dict(state)
        human = state.pop("human", None) or {}
        if human.get("by"):
            state["approved_by"] = human["by"]
        repo = await asyncio.to_thread(repository, ctx)
        branch = state["branch"]
        rnd = state.get("round", 0)
        pub: dict[str, Any] = dict(state.get("publish") or {})
        if pub.get("round") != rnd:  # a new round of work since the last publish
            pub = {"round": rnd}
        settings = repo.settings or {}
        try:  # the rules that need no server, before anything is written
            check_push(
                branch,
                default_branch=repo.default_branch,
                protected=[
                    *settings.get("protected_branches", []),
                    *(settings.get("forge") or {}).get("protected_branches", []),
                ],
            )
        except ForgeError as exc:
            return Fail(FailureCategory.security, exc.message)
        if "commit" not in pub:
            pub["commit"] = await self._commit(ctx, appliance, repo, state)
            await ctx.emit(
                "log", {"message": f"committed {pub['commit'][:12]}"}, key=f"commit-{rnd}"
            )
            return Next(self.name, {**state, "publish": pub})  # checkpoint the commit
        if repo.forge_kind == ForgeKind.git:
            return await self._publish_git(ctx, appliance, repo, state, pub)
        try:
            forge_cfg = forge_settings(appliance.settings, repo)
        except ForgeError as exc:
            return await self._hand_back(ctx, state, exc, "read the forge settings")
        quota = PrQuota(
            lambda user, day: count_prs_opened(appliance.db, user, day),
            limit=appliance.settings.forges.pr_limit_per_day,
        )
        forge = build_forge(forge_cfg, forge_project(repo), quota=quota)
        try:
            return await self._publish_forge(ctx, appliance, repo, forge, forge_cfg, state, pub)
        finally:
            forge.close()

    # --- plain git ------------------------------------------------------------------
    async def _publish_git(
        self, ctx: NodeContext, appliance: Appliance, repo: Repository, state: State,
        pub: dict[str, Any],
    ) -> Outcome:  # fmt: skip
        branch = state["branch"]
        if not pub.get("pushed"):
            mirror = appliance.index.mirrors.get(repo.name)
            refspec = f"refs/heads/{branch}:refs/heads/{branch}"
            try:
                cfg = forge_settings(appliance.settings, repo)
                await asyncio.to_thread(
                    run_git,
                    ["push", "--porcelain", "--no-verify", "--", repo.clone_url, refspec],
                    git_dir=mirror.path,
                    env_config=_git_config(cfg, "git"),
                    timeout=PUSH_TIMEOUT,
                )
            except RepoError as exc:
                # nothing lost: the commit stays on the branch; approving again retries
                failure = classify_git_failure(exc.message, f"push {branch}")
                return await self._hand_back(ctx, state, failure, f"push {branch}")
            except ForgeError as exc:
                return await self._hand_back(ctx, state, exc, f"push {branch}")
            pub["pushed"] = True
            return Next(self.name, {**state, "publish": pub})
        commit = pub["commit"]
        await ctx.emit(
            "published",
            {"branch": branch, "url": repo.clone_url, "commit": commit},
            key=f"published-{pub['round']}",
        )
        return Done(summary=f"pushed {branch} ({commit[:12]}) to {repo.clone_url}")

    # --- GitHub / GitLab ------------------------------------------------------------
    async def _publish_forge(
        self, ctx: NodeContext, appliance: Appliance, repo: Repository, forge: Forge,
        cfg: ForgeSettings, state: State, pub: dict[str, Any],
    ) -> Outcome:  # fmt: skip
        branch = state["branch"]
        if not pub.get("pushed"):
            mirror = appliance.index.mirrors.get(repo.name)
            try:
                await asyncio.to_thread(push_from_mirror, forge, cfg, mirror.path, branch)
            except ForgeError as exc:
                return await self._hand_back(ctx, state, exc, f"push {branch}")
            pub["pushed"] = True
            return Next(self.name, {**state, "publish": pub})
        pull = state.get("pull_request") or await asyncio.to_thread(
            _recorded_pr, appliance, ctx.task.id
        )
        if pull is None:
            request = await asyncio.to_thread(self._pr_request, ctx, appliance, repo, state, pub)
            try:
                opened = await asyncio.to_thread(open_or_adopt_pr, forge, request)
            except ForgeError as exc:
                return await self._hand_back(ctx, state, exc, "open the pull request")
            pull = {"number": opened.number, "url": opened.url}
            await ctx.emit(
                "published",
                {"branch": branch, "url": opened.url, "pr": opened.number,
                 "commit": pub["commit"], "draft": opened.draft},
                key=PR_OPENED_KEY,
            )  # fmt: skip
            for warning in opened.warnings:
                await ctx.emit("log", {"message": warning, "step": "publishing"})
            return Next(self.name, {**state, "publish": pub, "pull_request": pull})
        follow_up = state.get("follow_up") or {}
        if follow_up and not pub.get("replied"):
            body = reply_body(branch, pub["commit"], follow_up, state.get("summary"))
            try:
                await asyncio.to_thread(forge.comment, int(pull["number"]), body)
            except ForgeError as exc:
                return await self._hand_back(ctx, state, exc, "answer the review comments")
            pub["replied"] = True
            await ctx.emit(
                "published",
                {"branch": branch, "url": pull["url"], "pr": pull["number"],
                 "commit": pub["commit"], "follow_up": follow_up.get("n")},
                key=f"published-{pub['round']}",
            )  # fmt: skip
            return Next(self.name, {**state, "publish": pub, "pull_request": pull})
        return Done(summary=f"pushed {branch} ({pub['commit'][:12]}): {pull['url']}")

    # --- helpers --------------------------------------------------------------------
    async def _commit(
        self, ctx: NodeContext, appliance: Appliance, repo: Repository, state: State
    ) -> str:
        limits = appliance.settings.pipeline
        trees = worktrees(appliance)
        worktree = trees.get(ctx.task.id).path
        pr = state.get("pr") or {"title": ctx.task.prompt.splitlines()[0][:72], "body": ""}
        user = ctx.task.created_by
        follow = state.get("follow_up") or {}
        subject = pr["title"] if not follow else f"Address review comments ({pr['title']})"
        message = commit_message(
            subject,
            f"Approved by {state.get('approved_by', 'unknown')}.",
            co_author_name=user,
            co_author_email=f"{user}@{limits.user_email_domain}",
        )
        try:
            sha: str = await asyncio.to_thread(
                trees.commit_all,
                worktree,
                message,
                author_name=limits.author_name,
                author_email=limits.author_email,
            )
        except RepoError as exc:
            if "nothing to commit" not in exc.message:
                raise
            # a follow-up round that needed no change: publish the branch as it is
            mirror = appliance.index.mirrors.get(repo.name)
            ref = f"refs/heads/{state['branch']}"
            result = await asyncio.to_thread(
                run_git, ["rev-parse", "--verify", ref], git_dir=mirror.path
            )
            sha = result.stdout.decode().strip()
        return sha

    def _pr_request(
        self, ctx: NodeContext, appliance: Appliance, repo: Repository, state: State,
        pub: dict[str, Any],
    ) -> PrRequest:  # fmt: skip
        pr = state.get("pr") or {"title": ctx.task.prompt.splitlines()[0][:72], "body": ""}
        changed: list[str] = []
        if state.get("base"):
            mirror = appliance.index.mirrors.get(repo.name)
            out = run_git(
                ["diff", "--name-only", state["base"], pub["commit"], "--"],
                git_dir=mirror.path,
                check=False,
            )
            changed = out.stdout.decode("utf-8", "replace").split()
        return PrRequest(
            branch=state["branch"],
            title=pr["title"],
            body=pr.get("body", ""),
            labels=list(appliance.settings.forges.labels),
            draft=wants_draft(appliance.settings, repo),
            changed_files=changed,
            requested_by=ctx.task.created_by,
        )

    async def _hand_back(
        self, ctx: NodeContext, state: State, exc: ForgeError, doing: str
    ) -> Pause:
        message = f"Publishing stopped while trying to {doing}: {exc.message}"
        await ctx.emit(
            "error",
            {"severity": "error", "message": message, "code": exc.code, "recoverable": True},
        )
        return Pause(
            f"{message} Nothing was lost: approve again to retry, or reject.",
            state,
            wait=TaskStatus.awaiting_approval,
            resume=RETRY_ACTIONS,
        )


def _git_config(cfg: ForgeSettings, username: str) -> dict[str, str]:
    """TLS/proxy settings and the token's header, for git's environment (never argv)."""
    config = transport_config(cfg)
    token = cfg.token_value()
    if token:
        import base64

        pair = base64.b64encode(f"{username}:{token}".encode()).decode()
        config["http.extraHeader"] = f"Authorization: Basic {pair}"
    return config


def push_from_mirror(forge: Forge, cfg: ForgeSettings, mirror: Path, branch: str) -> None:
    """Push ``branch`` of the bare mirror to the forge's clone URL under the rules: the
    forge's default and protected branches come from its metadata."""
    meta = forge.metadata()
    refspec = check_push(
        branch,
        default_branch=meta.default_branch,
        protected=[*cfg.protected_branches, *meta.protected_branches],
    )
    source = forge.clone_source()
    config = {**transport_config(cfg), **source.git_config()}
    try:
        run_git(
            ["push", "--porcelain", "--no-verify", "--", source.url, refspec],
            git_dir=mirror,
            env_config=config,
            timeout=PUSH_TIMEOUT,
        )
    except RepoError as exc:
        raise classify_git_failure(exc.message, f"push {branch}") from exc


def _recorded_pr(appliance: Appliance, task_id: str) -> dict[str, Any] | None:
    """The PR a run cut off before its checkpoint opened (its ``pr-opened`` event)."""
    with appliance.db.session() as session:
        for event in task_store.events_after(session, task_id, 0, limit=100_000):
            if event.key == PR_OPENED_KEY:
                return {"number": event.payload["pr"], "url": event.payload["url"]}
    return None


def reply_body(branch: str, commit: str, follow_up: dict[str, Any], summary: str | None) -> str:
    """The comment that answers the review comments a follow-up round addressed."""
    lines = [REPLY_MARKER, f"Pushed {commit[:12]} to `{branch}`, addressing:"]
    for c in follow_up.get("comments", []):
        where = f" (`{c['path']}:{c['line']}`)" if c.get("path") else ""
        first = str(c.get("body", "")).strip().splitlines()[0][:200] if c.get("body") else ""
        lines.append(f"- @{c.get('author', 'reviewer')}{where}: {first}")
    if summary:
        lines += ["", str(summary)]
    return "\n".join(lines) + "\n"
