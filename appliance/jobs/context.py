"""What a job gets (:class:`JobContext`) and the seams its external effects cross.

A job kind is a plain callable ``kind(ctx) -> str`` (sync: run in a worker thread; or
async) returning a one-line summary; it links tasks and adds details through ``ctx``.
Raising fails the run with the exception's message.

Seams (Protocols) handed in through :class:`JobServices`, so the jobs run end to end in
tests with real git remotes and a local package index:

* :class:`SandboxRunner`: run a command (the tests, a lockfile refresh) in a worktree,
  in the sandbox. The appliance wires the Podman sandbox.
* :class:`RepairRunner`: hand failing tests to the agent pipeline and wait for it.
* :class:`BumpPublisher`: open or update the PR of a bump group (plain git: push the
  branch, see :mod:`appliance.jobs.publish`; GitHub/GitLab: a PR/MR, see
  :mod:`appliance.jobs.forge_publish`).
* :class:`BranchHost`: list and delete the ``appliance/*`` branches of a forge and tell
  their PR's state, for the branch clean-up of GitHub/GitLab repositories.

Publishers and branch hosts are made per run by the factories in :class:`JobServices`
and closed when the run ends.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from appliance.config import Settings
from appliance.deps import BumpGroup, PackageIndex
from appliance.deps.model import Ecosystem
from appliance.forges.base import PrState
from appliance.forges.connect import fetch_access, forge_token
from appliance.index.service import IndexService
from appliance.jobs.errors import JobError
from appliance.repos import FetchAccess, GitRepo, Mirrors, Worktree, Worktrees
from appliance.store.db import Database
from appliance.store.models import Repository


@dataclass(frozen=True)
class CommandResult:
    exit_code: int
    output: str  # stdout and stderr together, capped by the runner

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


class SandboxRunner(Protocol):
    """Runs one command in a worktree, isolated (no network), and returns its output."""

    async def run(
        self, worktree: Path, argv: Sequence[str], *, time_limit: float
    ) -> CommandResult: ...


@dataclass(frozen=True)
class RepairOutcome:
    fixed: bool  # the pipeline believes the tests pass now
    diagnosis: str  # what it found and did, for the PR body when it did not succeed


class RepairRunner(Protocol):
    """The agent pipeline, asked to make failing tests pass on a branch."""

    async def submit_repair(
        self, repository: Repository, branch: str, worktree: Path, failure_output: str
    ) -> str:
        """Start a repair task on ``branch``, checked out at ``worktree`` (the job waits,
        nothing else touches it); returns the task id."""
        ...

    async def wait(self, task_id: str) -> RepairOutcome:
        """Return once the task has finished its rounds."""
        ...


class BumpPublisher(Protocol):
    """Where bump branches become pull requests."""

    def open_bump_prs(self, repository: Repository, mirror: GitRepo) -> dict[str, str]:
        """Keys of the open bump PRs mapped to the fingerprint each was made for."""
        ...

    def publish(
        self,
        repository: Repository,
        mirror: GitRepo,
        worktree: Worktree,
        group: BumpGroup,
        *,
        needs_human: str | None,
        evidence: str = "",
    ) -> str:
        """Push the worktree's branch as the group's branch and open or update its PR,
        marked needs-human with the diagnosis when given, with ``evidence`` (the test run)
        in its description where it has one; returns its URL or ref."""
        ...

    def retire(self, repository: Repository, mirror: GitRepo, key: str, reason: str) -> str:
        """Close the open bump PR of ``key``, no longer planned, saying ``reason``;
        returns what was done."""
        ...

    def close(self) -> None: ...


class BranchHost(Protocol):
    """A forge's view of the appliance's branches."""

    def appliance_branches(self) -> list[str]: ...

    def pr_state(self, branch: str) -> PrState | None:
        """The state of the PR opened from ``branch``; None when it has none."""
        ...

    def delete_branch(self, branch: str) -> None: ...

    def close(self) -> None: ...


@dataclass
class JobServices:
    """The seams, wired by the appliance at start-up; None where not available."""

    sandbox: SandboxRunner | None = None
    repair: RepairRunner | None = None
    publisher: Callable[[Repository], BumpPublisher | None] | None = None
    branch_host: Callable[[Repository], BranchHost | None] | None = None
    package_indexes: Callable[[], Mapping[Ecosystem, PackageIndex]] | None = None


@dataclass
class JobContext:
    job_id: str
    kind: str
    scheduled_for: datetime  # UTC
    now: datetime  # the scheduler's clock when the run started
    settings: Settings
    db: Database
    index: IndexService
    worktrees: Worktrees
    services: JobServices
    repository: Repository | None = None
    task_ids: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def mirrors(self) -> Mirrors:
        return self.index.mirrors

    def fetch_mirror(self, repo: Repository) -> GitRepo:
        """Clone or fetch ``repo``'s mirror, with its forge token (private remotes), CA
        bundle, TLS switch and proxy."""
        return self.mirrors.ensure(repo.name, repo.clone_url, access=self.fetch_access(repo))

    def fetch_access(self, repo: Repository) -> FetchAccess:
        """What fetching ``repo`` needs: token and transport settings (``index.refresh``'s
        ``access``)."""
        return fetch_access(self.settings, repo)

    def forge_token(self, repo: Repository) -> str | None:
        return forge_token(self.settings, repo)

    def link_task(self, task_id: str) -> None:
        if task_id not in self.task_ids:
            self.task_ids.append(task_id)

    def require_repository(self) -> Repository:
        if self.repository is None:
            raise JobError(
                f"job {self.job_id!r} names no registered repository (it was deleted?); "
                "`appliance jobs list` after the next schedule sync drops it"
            )
        return self.repository
