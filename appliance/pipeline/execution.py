"""Running a task's commands, tests and linter in its sandbox.

:class:`TaskSandbox` opens one container per call (about 0.2 s) so that nothing lingers
between steps and a crash leaves at most one container for the orphan sweep; the worktree
is mounted at /workspace. Test runs are compared by test id: :func:`new_failures` is what
a change broke, so failures that were there before any edit (the baseline) never count
against the agent.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from sandbox.base import RunResult
from sandbox.lint import LintRun, run_linter
from sandbox.policy import SandboxPolicy
from sandbox.testrun import TestRun, run_tests


class SandboxOpener(Protocol):
    """:class:`sandbox.podman.PodmanSandbox` as the pipeline uses it."""

    def open(self, worktree: Path, policy: SandboxPolicy, *, task_id: str) -> Any: ...


@dataclass
class TaskSandbox:
    sandbox: SandboxOpener
    worktree: Path
    task_id: str
    policy: SandboxPolicy
    test_command: str | None = None  # a repository setting; None = detected

    def run(self, command: str, *, timeout: float | None = None) -> RunResult:
        with self.sandbox.open(self.worktree, self.policy, task_id=self.task_id) as session:
            result: RunResult = session.run(["/bin/sh", "-c", command], timeout=timeout)
            return result

    def tests(self, *, timeout: float | None = None) -> TestRun:
        with self.sandbox.open(self.worktree, self.policy, task_id=self.task_id) as session:
            return run_tests(session, self.worktree, command=self.test_command, timeout=timeout)

    def lint(self, *, timeout: float | None = None) -> LintRun:
        with self.sandbox.open(self.worktree, self.policy, task_id=self.task_id) as session:
            return run_linter(session, self.worktree, timeout=timeout)


def failing_tests(run: TestRun) -> list[str]:
    """Ids of the failing tests ("classname::name"); ["<suite>"] for a run that failed
    without a report (it crashed, timed out, or its command failed)."""
    if run.report is not None:
        return sorted(
            f"{c.classname}::{c.name}" for c in run.report.cases if c.outcome in ("failed", "error")
        )
    return [] if run.ok else ["<suite>"]


def new_failures(run: TestRun, baseline: list[str]) -> list[str]:
    """What the change broke. A run without a report that failed names no test, so a
    baseline cannot excuse it: that it failed before says nothing of what fails now."""
    if run.report is None and not run.ok:
        return ["<suite>"]
    before = set(baseline)
    return [t for t in failing_tests(run) if t not in before]


def test_summary(run: TestRun) -> dict[str, Any]:
    report = run.report
    return {
        "command": run.command.display(),
        "passed": report.passed if report else None,
        "failed": (report.failed + report.errors) if report else None,
        "exit_code": run.result.exit_code,
        "timed_out": run.result.timed_out,
        "available": run.available,
        "note": run.note,
    }


def output_tail(result: RunResult, limit: int = 3000) -> str:
    text = (result.stdout + ("\n" + result.stderr if result.stderr else "")).strip()
    return text if len(text) <= limit else "[... earlier output cut ...]\n" + text[-limit:]
