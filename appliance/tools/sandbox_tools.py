"""The agent's tools that execute: ``run_command``, ``run_tests``, ``run_linter``.

They run in the task's sandbox (``ToolContext.sandbox``: a container per call, no network,
the worktree at /workspace), never on the host. Output is cut to what a model can use: the
exit code, and the tail of the output, where errors are.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from appliance.errors import InvalidInput
from appliance.tools.registry import Tool, ToolContext

if TYPE_CHECKING:
    from appliance.pipeline.execution import TaskSandbox


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _sandbox(ctx: ToolContext) -> TaskSandbox:
    if ctx.sandbox is None:
        raise InvalidInput("no sandbox is available to this task; commands cannot run")
    return ctx.sandbox


class RunCommandArgs(_Args):
    command: str = Field(min_length=1, max_length=2000, description="A shell command.")
    timeout_s: int = Field(120, ge=1, le=900, description="Seconds before it is killed.")


def run_command(ctx: ToolContext, args: RunCommandArgs) -> str:
    from appliance.pipeline.execution import output_tail

    result = _sandbox(ctx).run(args.command, timeout=args.timeout_s)
    status = "timed out" if result.timed_out else f"exit code {result.exit_code}"
    if ctx.on_command is not None:
        ctx.on_command(args.command, result.exit_code, output_tail(result, 500))
    return f"$ {args.command}\n{status} after {result.duration_s:.1f}s\n{output_tail(result)}"


class NoArgs(_Args):
    pass


def run_tests(ctx: ToolContext, args: NoArgs) -> str:
    from appliance.pipeline.execution import failing_tests, output_tail

    run = _sandbox(ctx).tests()
    if not run.available:
        return f"the tests cannot run in this sandbox: {run.note}"
    failing = failing_tests(run)
    report = run.report
    counts = f"{report.passed} passed, {report.failed + report.errors} failed" if report else ""
    head = f"$ {run.command.display()}\n{'PASSED' if run.ok else 'FAILED'} {counts}".strip()
    if ctx.on_command is not None:
        ctx.on_command(run.command.display(), run.result.exit_code, counts or run.note)
    if run.ok:
        return head
    details: list[str] = []
    if report is not None:
        for case in report.cases:
            if case.outcome in ("failed", "error") and len(details) < 10:
                details.append(f"- {case.classname}::{case.name}: {(case.message or '')[:400]}")
    listed = "\n".join(details) or ", ".join(failing)
    return f"{head}\n{listed}\n\nOutput (end):\n{output_tail(run.result, 2500)}"


def run_linter(ctx: ToolContext, args: NoArgs) -> str:
    run = _sandbox(ctx).lint()
    if not run.available:
        return f"the linter cannot run in this sandbox: {run.note}"
    if run.ok:
        return f"{run.command.linter}: no findings"
    lines = [str(f) for f in run.findings[:40]]
    more = f"\n(and {len(run.findings) - 40} more)" if len(run.findings) > 40 else ""
    return f"{run.command.linter}: {len(run.findings)} finding(s)\n" + "\n".join(lines) + more


SANDBOX_TOOLS: tuple[Tool[BaseModel], ...] = (
    Tool(
        "run_command",
        "Run a shell command in the sandbox (no network) at the repository root.",
        RunCommandArgs,
        run_command,  # type: ignore[arg-type]
    ),
    Tool("run_tests", "Run the repository's tests; shows failures.", NoArgs, run_tests),  # type: ignore[arg-type]
    Tool("run_linter", "Run the repository's linter; shows findings.", NoArgs, run_linter),  # type: ignore[arg-type]
)
