"""``validating``: lint and test the round's changes in the sandbox.

What the task changed is read from git (the worktree against the task's base commit,
untracked files included), not from the edit tools' record: a command run in the sandbox
changes files too. Only new failures count: tests that failed in the baseline run (before
any edit) do not, and linter findings count only on the lines the task added or changed
(a file's old findings are not the task's). Every round's diff and test
counts go out as an ``iteration`` event (the UI shows the history). A clean round commits
the edit transaction (it becomes the last good state) and goes to reviewing; otherwise the
failures go back to implementing as feedback, until ``max_rounds`` rounds, after which the
task is handed over.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from appliance.pipeline.events import command_event
from appliance.pipeline.execution import failing_tests, new_failures, output_tail, test_summary
from appliance.pipeline.implement import handover
from appliance.pipeline.workspace import appliance_of, open_workspace, worktrees
from appliance.review.diffs import added_lines, diff_stats
from appliance.runner.graph import Next, NodeContext, Outcome, State
from appliance.states import TaskStatus
from sandbox.errors import SandboxError
from sandbox.lint import NoLinter
from sandbox.testrun import NoTestCommand


@dataclass
class Validating:
    name: str = "validating"
    status: TaskStatus = TaskStatus.validating

    async def run(self, ctx: NodeContext, state: State) -> Outcome:
        appliance = appliance_of(ctx)
        state = dict(state)
        rnd = state.get("round", 0)
        ws = await open_workspace(ctx, state)
        diff = await asyncio.to_thread(worktrees(appliance).diff, ws.worktree, state["base"])
        changed, lines = changed_lines(diff)
        state["changed_files"] = sorted(changed)  # the handover notes list them
        problems: list[str] = []
        tests: dict[str, object] = {}
        if not changed:
            problems.append("You finished without changing any file; make the change first.")
        if ws.sandbox is not None and changed:
            await ctx.progress(0.3, f"round {rnd}: linting")
            try:
                lint = await asyncio.to_thread(ws.sandbox.lint)
                mine = [f for f in lint.findings if f.line in lines.get(f.path, ())]
                if mine:
                    listed = "\n".join(str(f) for f in mine[:20])
                    problems.append(f"The linter reports on lines you changed:\n{listed}")
            except (NoLinter, SandboxError):
                pass  # no linter for this repository, or it cannot run: tests decide
            if state.get("test_command"):
                await ctx.progress(0.6, f"round {rnd}: running the tests")
                try:
                    run = await asyncio.to_thread(ws.sandbox.tests)
                except (NoTestCommand, SandboxError) as exc:
                    problems.append(f"The tests could not run: {exc.message}")
                else:
                    fresh = new_failures(run, state.get("baseline") or [])
                    tests = {**test_summary(run), "new_failures": fresh,
                             "failing": failing_tests(run)}  # fmt: skip
                    await ctx.emit(
                        "command_executed",
                        command_event(
                            run.command.display(), run.result.exit_code, test_summary(run)
                        ),
                        key=f"validate-r{rnd}-tests",
                    )
                    if fresh or not run.available:
                        problems.append(
                            "Tests that now fail: "
                            + ", ".join(fresh[:20])
                            + f"\nTest output (end):\n{output_tail(run.result, 3000)}"
                        )
        await ctx.emit(
            "iteration",
            {"round": rnd, "diff": diff[:200_000], "tests": tests, "ok": not problems},
            key=f"iteration-{rnd}",
        )
        if not problems:
            ws.edits.commit_iteration()
            state.update(iteration_open=False, edits=ws.edits.to_state(), tests=tests)
            state.pop("feedback", None)
            return Next("reviewing", state)
        if rnd + 1 >= appliance.settings.pipeline.max_rounds:
            return handover(
                state, f"validation still fails after {rnd + 1} round(s): {problems[0][:300]}"
            )
        feedback = f"Validation of round {rnd} failed. Fix this:\n" + "\n\n".join(problems)
        if changed:
            feedback += (
                "\n\nIf this round's edits made things worse, the rollback tool undoes them "
                "(back to the last validated state)."
            )
        state.update(round=rnd + 1, feedback=feedback, finished=False, tests=tests)
        return Next("implementing", state)


def changed_lines(diff: str) -> tuple[set[str], dict[str, set[int]]]:
    """The files ``diff`` changes (both names of a rename), and the line numbers it adds
    or changes in each file's new version."""
    stats = diff_stats(diff)
    added = {path: {line.number for line in new} for path, new in added_lines(diff)}
    changed = {s.path for s in stats} | {s.old_path for s in stats if s.old_path}
    return changed, added
