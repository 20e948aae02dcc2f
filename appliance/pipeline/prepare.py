"""``preparing``: fetch the repository, bring its index to the base commit, make the task's
worktree on its own branch, find the test command and record the baseline test run.

Each side effect is recorded in the state as it happens (``base``, ``branch``,
``worktree``, ``baseline``), so a re-run after a crash skips what is done: the worktree
is made once, and a worktree made before a crash (not yet recorded) is taken up with its
own branch and base.

When the sandbox cannot run the tests (the image lacks the toolchain, the command is
wrong), the task pauses with a question, since the user can correct it: ``answer`` with
the command that runs the tests, or "continue" to go on without tests (the linter alone
checks the change); ``resume`` tries again (after the repository's settings were fixed).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from appliance.errors import Conflict, InvalidInput, NotFound
from appliance.forges.connect import fetch_access
from appliance.forges.rules import branch_name
from appliance.pipeline.events import command_event
from appliance.pipeline.execution import failing_tests, test_summary
from appliance.pipeline.workspace import (
    appliance_of,
    repair_target,
    repository,
    task_sandbox,
    worktrees,
)
from appliance.repos.mirror import GitRepo
from appliance.runner.graph import Fail, Next, NodeContext, Outcome, Pause, State
from appliance.states import FailureCategory, TaskStatus
from appliance.store.models import Repository
from sandbox.errors import SandboxError
from sandbox.testrun import NoTestCommand, detect_test_command

log = logging.getLogger(__name__)
#: answers to the no-tests question that mean "go on without tests"
WITHOUT_TESTS = frozenset(
    {"continue", "continue without tests", "without tests", "no tests", "skip", "skip tests"}
)


@dataclass
class Preparing:
    name: str = "preparing"
    status: TaskStatus = TaskStatus.preparing

    async def run(self, ctx: NodeContext, state: State) -> Outcome:
        appliance = appliance_of(ctx)
        repo = await asyncio.to_thread(repository, ctx)
        state = dict(state)
        state.setdefault("started_at", datetime.now(UTC).isoformat())
        self._take_answer(state, state.pop("human", None) or {})
        # --- repair of a deps job's branch (appliance.jobs.repair) ----------------------
        repair = repair_target(ctx.task.constraints)
        if repair is not None and "worktree" not in state:
            failed = await self._adopt(ctx, state, repo, repair)
            if failed is not None:
                return failed
        # --- end of repair ------------------------------------------------------------
        if "base" not in state:
            await ctx.progress(0.05, f"fetching {repo.name}")
            access = fetch_access(appliance.settings, repo)  # token, CA bundle, TLS, proxy
            report = await asyncio.to_thread(
                functools.partial(
                    appliance.index.refresh,
                    repo.name,
                    repo.clone_url,
                    repo.default_branch,
                    access=access,
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
            except Conflict:  # made before a crash, not yet recorded: take it up as it is
                made = await asyncio.to_thread(trees.get, ctx.task.id)
                path = made.path
                state.update(branch=made.branch, base=made.base)
            state["worktree"] = str(path)
            await ctx.emit(
                "log",
                {"message": f"worktree on branch {state['branch']}", "step": "worktree"},
                key="prepare-worktree",
            )
        worktree = Path(state["worktree"])
        configured = state.get("test_command_override") or (repo.settings or {}).get("test_command")
        test_command = configured
        if test_command is None:
            detected = await asyncio.to_thread(detect_test_command, worktree)
            test_command = detected.display() if detected else None
        if state.get("without_tests"):
            test_command = None
        state["test_command"] = test_command
        if "baseline" not in state:
            attempt = int(state.get("baseline_attempts", 0))
            counts: dict[str, int | None] = {}
            baseline, why = await self._baseline(
                ctx, worktree, repo, test_command, configured, attempt, counts
            )
            if baseline is None:
                state["baseline_attempts"] = attempt + 1
                question = (
                    f"The sandbox cannot run this repository's tests: {why} "
                    "Answer with the command that runs them (e.g. `python -m pytest -q`), "
                    'or "continue" to go on without tests (the linter alone will check the '
                    "change); or fix the repository's settings (test command, sandbox image) "
                    "and resume."
                )
                return Pause(
                    "the tests cannot run in the sandbox",
                    state,
                    question=question,
                    resume={
                        "answer": self.name,
                        "resume": self.name,
                        "continue_without_tests": self.name,
                    },
                )
            state["baseline"] = baseline
            if counts:
                state["baseline_counts"] = counts
        return Next("planning", state)

    @staticmethod
    def _take_answer(state: State, human: dict[str, object]) -> None:
        """A person's reply to the no-tests question (see the module's docstring)."""
        action = human.get("action")
        answer = str(human.get("answer") or "").strip().strip("`").strip()
        if action == "continue_without_tests" or (
            action == "answer" and answer.lower().rstrip(".!") in WITHOUT_TESTS
        ):
            state["without_tests"] = True
        elif action == "answer" and answer:
            state["test_command_override"] = answer

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
            access = fetch_access(appliance.settings, repo)  # token, CA bundle, TLS, proxy
            report = await asyncio.to_thread(
                functools.partial(
                    appliance.index.refresh,
                    repo.name,
                    repo.clone_url,
                    repo.default_branch,
                    access=access,
                )
            )
            await ctx.emit(
                "log", {"message": report.summary(), "step": "index"}, key="prepare-index"
            )
        # The edit policy judges only what the repair changes: the job's own commit on the
        # branch (a bumped requirements file, say) is not the agent's doing.
        start = await asyncio.to_thread(GitRepo(record.repo).resolve, record.branch)
        state.update(
            base=record.base,
            policy_base=start,
            branch=record.branch,
            worktree=str(path),
            baseline=[],
        )
        await ctx.emit(
            "log",
            {"message": f"repairing branch {record.branch} in its worktree", "step": "worktree"},
            key="prepare-worktree",
        )
        return None

    # --- end of repair ----------------------------------------------------------------

    async def _baseline(
        self,
        ctx: NodeContext,
        worktree: Path,
        repo: Repository,
        test_command: str | None,
        configured: str | None,
        attempt: int,
        counts: dict[str, int | None],
    ) -> tuple[list[str] | None, str]:
        """Failing tests before any edit ([] when there are no tests to run), or None and
        why the sandbox could not run them. ``counts`` receives the run's passed/failed
        counts."""
        if test_command is None:
            await ctx.emit(
                "log",
                {"message": "no test suite found: changes will be checked by the linter only"},
                key="prepare-no-tests",
            )
            return [], ""
        appliance = appliance_of(ctx)
        sandbox = task_sandbox(appliance, ctx.task.id, repo, worktree, configured, emit=ctx.emit)
        if sandbox is None:
            why = "the sandbox is switched off on this appliance."
            await self._cannot_run(ctx, why, attempt)
            return None, why
        # The configured command (a reply to the question, or the repository's setting),
        # or None so that the run detects the command itself, as validation does: the
        # detected command's display string, run as a custom command, would lose its
        # report format and its checks of the sandbox image.
        await ctx.progress(0.6, "baseline test run")
        try:
            run = await asyncio.to_thread(sandbox.tests)
        except (SandboxError, NoTestCommand) as exc:
            await self._cannot_run(ctx, exc.message, attempt)
            return None, exc.message
        if not run.available:  # the image lacks what the tests need: nothing ran
            await self._cannot_run(ctx, run.note, attempt)
            return None, run.note
        failing = failing_tests(run)
        # before/after counts for the pull request's test evidence (appliance.pipeline.review)
        counts["passed"] = run.report.passed if run.report else None
        counts["failed"] = len(failing)
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
        return failing, ""

    @staticmethod
    async def _cannot_run(ctx: NodeContext, why: str, attempt: int) -> None:
        # keyed per attempt: a retry after the question may fail again, and says why
        await ctx.emit(
            "error",
            {"severity": "error", "message": why, "recoverable": True},
            key=f"prepare-baseline-error-{attempt}",
        )
