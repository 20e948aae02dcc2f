"""``publishing``: commit the approved change and push its branch — only after a person
approved it (the state machine reaches publishing from awaiting_approval alone).

The commit's author is the platform identity, with a ``Co-authored-by`` trailer for the
person who asked. The push goes from the bare mirror (the task's commits are there: the
worktree shares its objects), never from the worktree, whose ``.git`` file the sandbox
could have rewritten; the forge rules are checked first: no force, never the default or a
protected branch. Plain-git repositories stop there (review happened in the appliance);
GitHub and GitLab repositories get a pull/merge request through the forge layer.

Each side effect is recorded (``state["commit"]``, ``state["pushed"]``) so a re-run after a
crash does not commit or push twice.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from appliance.errors import RepoError
from appliance.forges.errors import ForgeError
from appliance.forges.rules import check_push, commit_message
from appliance.pipeline.workspace import appliance_of, repository, worktrees
from appliance.repos.git import run_git
from appliance.runner.graph import Done, Fail, NodeContext, Outcome, State
from appliance.states import FailureCategory, TaskStatus

log = logging.getLogger(__name__)
PUSH_TIMEOUT = 300.0


@dataclass
class Publishing:
    name: str = "publishing"
    status: TaskStatus = TaskStatus.publishing

    async def run(self, ctx: NodeContext, state: State) -> Outcome:
        appliance = appliance_of(ctx)
        limits = appliance.settings.pipeline
        state = dict(state)
        approver = (state.pop("human", None) or {}).get("by", "unknown")
        repo = await asyncio.to_thread(repository, ctx)
        trees = worktrees(appliance)
        worktree = trees.get(ctx.task.id).path
        branch = state["branch"]
        pr = state.get("pr") or {"title": ctx.task.prompt.splitlines()[0][:72], "body": ""}
        try:
            refspec = check_push(
                branch,
                default_branch=repo.default_branch,
                protected=(repo.settings or {}).get("protected_branches", []),
            )
        except ForgeError as exc:
            return Fail(FailureCategory.security, exc.message)
        if "commit" not in state:
            user = ctx.task.created_by
            message = commit_message(
                pr["title"],
                f"Approved by {approver}.",
                co_author_name=user,
                co_author_email=f"{user}@{limits.user_email_domain}",
            )
            state["commit"] = await asyncio.to_thread(
                trees.commit_all,
                worktree,
                message,
                author_name=limits.author_name,
                author_email=limits.author_email,
            )
            await ctx.emit("log", {"message": f"committed {state['commit'][:12]}"}, key="commit")
        if not state.get("pushed"):
            mirror = appliance.index.mirrors.get(repo.name)
            try:
                await asyncio.to_thread(
                    run_git,
                    ["push", "--porcelain", "--no-verify", "--", repo.clone_url, refspec],
                    git_dir=mirror.path,
                    timeout=PUSH_TIMEOUT,
                )
            except RepoError as exc:
                # nothing lost: the commit stays on the branch; approving again retries
                return Fail(FailureCategory.transient, f"the push failed: {exc.message}")
            state["pushed"] = True
        await ctx.emit(
            "published",
            {"branch": branch, "url": repo.clone_url, "commit": state["commit"]},
            key="published",
        )
        return Done(summary=f"pushed {branch} ({state['commit'][:12]}) to {repo.clone_url}")
