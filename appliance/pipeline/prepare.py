"""``preparing``: fetch the repository, bring its index to the base commit, make the task's
worktree on its own branch, find the test command and record the baseline test run.

Each side effect is recorded in the state as it happens (``base``, ``branch``,
``worktree``, ``baseline``), so a re-run after a crash skips what is done: the worktree
is made once, the branch named once.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from appliance.errors import Conflict, InvalidInput, NotFound
from appliance.forges.connect import forge_token
from appliance.forges.rules import branch_name
from appliance.pipeline.events import command_event
from appliance.pipeline.execution import TaskSandbox, failing_tests, test_summary
from appliance.pipeline.workspace import (
    appliance_of,
    repair_target,
    repository,
    sandbox_policy,
    worktrees,
)
from appliance.runner.graph import Fail, Next, NodeContext, Outcome, State
from appliance.states import FailureCategory, TaskStatus
from appliance.store.models import Repository
from sandbox.errors import SandboxError
from sandbox.testrun import NoTestCommand, detect_test_command

log = logging.getLogger(__name__)


@dataclass
class Preparing:
    name: str = "preparing"
    status: TaskStatus = TaskStatus.preparing

    async def run(self, ctx: NodeContext, state: State) -> Outcome:
        appliance = appliance_of(ctx)
        repo = await asyncio.to_thread(repository, ctx)
        state = dict(state)
        state.setdefault("started_at", datetime.now(UTC).isoformat())
        # --- repair of a deps job's branch (appliance.jobs.repair) ----------------------
        repair = repair_target(ctx.task.constraints)
        if repair is not None and "worktree" not in state:
            failed = await self._adopt(ctx, state, repo, repair)
            if failed is not None:
                return failed
        # --- end of repair ------------------------------------------------------------
        if "base" not in state:
            await ctx.progress(0.05, f"fetching {repo.name}")
            token = forge_token(appliance.settings, repo)  # private remotes need it
            report = await asyncio.to_thread(
                functools.partial(
                    appliance.index.refresh,
                    repo.name,
                    repo.clone_url,
                    repo.default_branch,
                    token=token,
                )
            )
            state["base"] = report.commit
            await ctx.emit(
                "log", {"message": report.summary(), "step": "index"}, key="prepare-index"
            )
            appliance.index.embed_in_background(repo.name)
        trees = worktrees(appliance)
        mirror = appliance.index.mirrors.get(repo.name)
        if "branch" not in state:
            state["branch"] = branch_name(
                datetime.now(UTC), ctx.task.prompt.splitlines()[0], unique=ctx.task.id[:6]
            )
        if "worktree" not in state:
            await ctx.progress(0.3, f"creating branch {state['branch']}")
            try:
                path = await asyncio.to_thread(
                    trees.create,
                    mirror,
                    task_id=ctx.task.id,
                    branch=state["branch"],
                    base=state["base"],
                )
            except Conflict:  # made before a crash, not yet recorded: reuse it
                path = trees.get(ctx.task.id).path
            state["worktree"] = str(path)
            await ctx.emit(
                "log",
                {"message": f"worktree on branch {state['branch']}", "step": "worktree"},
                key="prepare-worktree",
            )
        worktree = Path(state["worktree"])
        test_command = (repo.settings or {}).get("test_command")
        if test_command is None:
            detected = await asyncio.to_thread(detect_test_command, worktree)
            test_command = detected.display() if detected else None
        state["test_command"] = test_command
        if "baseline" not in state:
            state["baseline"] = await self._baseline(ctx, worktree, repo, test_command)
            if state["baseline"] is None and test_command is not None:
                return Fail(
                    FailureCategory.user_correctable,
                    "the sandbox cannot run this repository's tests; see the task's events "
                    "and `appliance doctor`",
                )
        return Next("planning", state)

    # --- repair of a deps job's branch (appliance.jobs.repair) --------------------------

    async def _adopt(
        self, ctx: NodeContext, state: State, repo: Repository, repair: dict[str, str]
    ) -> Outcome | None:
        """Work in the job's worktree, on its branch: no worktree or branch of the task's
        own. The base is the commit the job's worktree was made from (the default branch's
        tip), so the diff shown is the bump and the repair. The index of the default branch
        serves (refreshed only when the repository was never indexed). Every failing test
        counts: the baseline is empty, the repair is there to make the tests pass."""
        appliance = appliance_of(ctx)
        trees = worktrees(appliance)
        path = Path(repair["worktree"])
        try:
            record = trees.get(path.name)
        except (NotFound, InvalidInput):
            record = None
        if record is None or record.path != path or record.branch != repair["branch"]:
            return Fail(
                FailureCategory.internal,
                f"the repair's worktree {path} is not a worktree of branch "
                f"{repair['branch']!r} under {trees.root}",
            )
        if appliance.index.status(repo.name) is None:
            await ctx.progress(0.05, f"indexing {repo.name}")
            token = forge_token(appliance.settings, repo)
            report = await asyncio.to_thread(
                functools.partial(
                    appliance.index.refresh,
                    repo.name,
                    repo.clone_url,
                    repo.default_branch,
                    token=token,
                )
            )
            await ctx.emit(
                "log", {"message": report.summary(), "step": "index"}, key="prepare-index"
            )
        state.update(base=record.base, branch=record.branch, worktree=str(path), baseline=[])
        await ctx.emit(
            "log",
            {"message": f"repairing branch {record.branch} in its worktree", "step": "worktree"},
            key="prepare-worktree",
        )
        return None

    # --- end of repair ----------------------------------------------------------------

    async def _baseline(
        self, ctx: NodeContext, worktree: object, repo: object, test_command: str | None
    ) -> list[str] | None:
        """Failing tests before any edit ([] when there are no tests to run)."""
        if test_command is None:
            await ctx.emit(
                "log",
                {"message": "no test suite found: changes will be checked by the linter only"},
                key="prepare-no-tests",
            )
            return []
        appliance = appliance_of(ctx)
        opener = appliance.sandbox()
        assert isinstance(repo, Repository)
        # The repository's setting, or None so that the run detects the command itself,
        # as validation does: the detected command's display string, run as a custom
        # command, would lose its report format and its checks of the sandbox image.
        sandbox = TaskSandbox(
            opener,
            Path(str(worktree)),
            ctx.task.id,
            sandbox_policy(repo),
            (repo.settings or {}).get("test_command"),
        )
        await ctx.progress(0.6, "baseline test run")
        try:
            run = await asyncio.to_thread(sandbox.tests)
        except (SandboxError, NoTestCommand) as exc:
            await ctx.emit(
                "error",
                {"severity": "error", "message": exc.message, "recoverable": False},
                key="prepare-baseline-error",
            )
            return None
        if not run.available:  # the image lacks what the tests need: nothing ran
            await ctx.emit(
                "error",
                {"severity": "error", "message": run.note, "recoverable": False},
                key="prepare-baseline-error",
            )
            return None
        failing = failing_tests(run)
        await ctx.emit(
            "command_executed",
            command_event(run.command.display(), run.result.exit_code, test_summary(run)),
            key="prepare-baseline",
        )
        if failing:
            await ctx.emit(
                "log",
                {"message": f"{len(failing)} test(s) fail before any change; they won't count"},
                key="prepare-baseline-note",
            )
        return failing
