"""The jobs' :class:`~appliance.jobs.context.SandboxRunner`: a command in a worktree, run in
a fresh sandbox container (no network, the worktree at /workspace), like a task's."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from appliance.jobs.context import CommandResult
from sandbox.errors import SandboxError
from sandbox.policy import SandboxPolicy

OUTPUT_KEEP = 20_000


class PodmanJobSandbox:
    def __init__(self, sandbox: Callable[[], Any], policy: SandboxPolicy | None = None) -> None:
        self._sandbox = sandbox  # the appliance's sandbox, built on first use
        self.policy = policy or SandboxPolicy()

    async def run(self, worktree: Path, argv: Sequence[str], *, time_limit: float) -> CommandResult:
        return await asyncio.to_thread(self._run, worktree, list(argv), time_limit)

    def _run(self, worktree: Path, argv: list[str], time_limit: float) -> CommandResult:
        opener = self._sandbox()
        if opener is None:
            return CommandResult(127, "no sandbox is available to the jobs")
        try:
            with opener.open(worktree, self.policy, task_id=f"job-{uuid.uuid4().hex[:8]}") as s:
                result = s.run(argv, timeout=time_limit)
        except SandboxError as exc:
            return CommandResult(125, f"the sandbox failed: {exc.message}")
        output = (result.stdout + ("\n" + result.stderr if result.stderr else "")).strip()
        if result.timed_out:
            output += f"\n[timed out after {time_limit:.0f} s]"
        return CommandResult(result.exit_code, output[-OUTPUT_KEEP:])
