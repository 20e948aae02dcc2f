"""The seam the pipeline talks to: ``Sandbox.open(worktree, policy) -> Session``."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Literal, Protocol

from sandbox.policy import SandboxPolicy

Stream = Literal["stdout", "stderr"]
OutputCallback = Callable[[Stream, bytes], None]
WORKSPACE = "/workspace"


@dataclass(frozen=True)
class RunResult:
    exit_code: int
    stdout: str
    stderr: str
    duration_s: float
    timed_out: bool = False
    truncated: bool = False
    oom_killed: bool = False

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out and not self.oom_killed


@dataclass(frozen=True)
class EnforcedLimits:
    """What this host really enforces for a session (never more than is true)."""

    memory: bool
    pids: bool
    cpu: bool
    network_none: bool = True
    ulimits: bool = True
    notes: tuple[str, ...] = field(default_factory=tuple)
    # How the limits are enforced: "cgroup-v1" (a per-task cgroup_parent), "cgroup-v2"
    # (Podman's own limits, on delegated controllers) or "" (not at all).
    via: str = ""


class Session(Protocol):
    """A running sandbox with the worktree at /workspace."""

    task_id: str
    enforced: EnforcedLimits

    def run(
        self,
        cmd: Sequence[str] | str,
        *,
        cwd: str = WORKSPACE,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
        on_output: OutputCallback | None = None,
    ) -> RunResult: ...

    def close(self) -> None: ...

    def __enter__(self) -> Session: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class Sandbox(Protocol):
    def open(self, worktree: Path, policy: SandboxPolicy, *, task_id: str) -> Session: ...

    def cleanup_orphans(self) -> int:
        """Remove containers and cgroups left by a crash; return how many containers."""
        ...
