"""A task's working parts, rebuilt from its checkpoint at every node.

Nothing here lives in memory between nodes: the worktree and its record are on disk, the
edit transaction's originals in ``<data dir>/tasks/<id>/edit-backups``, the rest in the
checkpoint state. So a task resumed after a crash finds the same branch, the same files
and the same history, and never makes a second branch.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from appliance.errors import ConfigError, NotFound
from appliance.index.indexer import RepoIndex
from appliance.pipeline.execution import DepsSource, TaskSandbox
from appliance.pipeline.output import Emit, OutputRelay
from appliance.repos.mirror import GitRepo
from appliance.repos.worktree import Worktrees
from appliance.runner.graph import NodeContext, State
from appliance.store.models import Repository
from appliance.tools.changeset import EditSession
from appliance.tools.edit import WRITE_TOOLS
from appliance.tools.files import READ_TOOLS
from appliance.tools.index_tools import INDEX_TOOLS
from appliance.tools.policy import EditPolicy
from appliance.tools.project import PROJECT_TOOLS
from appliance.tools.registry import Tool, ToolContext, ToolRegistry
from appliance.tools.sandbox_tools import SANDBOX_TOOLS
from sandbox.policy import HARD_TIMEOUT_CAP_S, SandboxPolicy

if TYPE_CHECKING:
    from appliance.config import Settings
    from appliance.core import Appliance
    from models.client import ModelClient


def appliance_of(ctx: NodeContext) -> Appliance:
    appliance = ctx.services.get("appliance")
    if appliance is None:
        raise ConfigError("the pipeline needs the appliance among the runner's services")
    return appliance  # type: ignore[no-any-return]


def model_client(ctx: NodeContext) -> ModelClient:
    client = appliance_of(ctx).model_client
    if client is None:
        from models.errors import ModelUnavailable

        raise ModelUnavailable(
            "no model endpoint is configured: set models.endpoints (a vLLM server) or "
            "allow the CPU demo model (models.cpu_fallback)"
        )
    return client


def repository(ctx: NodeContext) -> Repository:
    appliance = appliance_of(ctx)
    with appliance.db.session() as session:
        repo = session.get(Repository, ctx.task.repository_id)
        if repo is None:
            raise NotFound(f"the task's repository {ctx.task.repository_id} no longer exists")
        session.expunge(repo)
        return repo


def finish_tool() -> Tool[Any]:
    from pydantic import BaseModel, ConfigDict, Field

    class FinishArgs(BaseModel):
        model_config = ConfigDict(extra="forbid")
        summary: str = Field(max_length=2000, description="What you changed and how you tested.")

    return Tool(
        "finish",
        "Call when the change is complete and the tests pass: the work goes to validation.",
        FinishArgs,
        lambda _ctx, args: args.summary,
    )


@dataclass
class Workspace:
    """What the nodes after ``preparing`` work with."""

    repo: Repository
    mirror: GitRepo
    worktree: Path
    index: RepoIndex
    edits: EditSession
    sandbox: TaskSandbox | None
    tools: ToolRegistry = field(default_factory=ToolRegistry)
    on_command: Callable[[str, int, str], None] | None = None

    def tool_context(self) -> ToolContext:
        return ToolContext(
            worktree=self.worktree,
            index=self.index,
            edits=self.edits,
            sandbox=self.sandbox,
            on_command=self.on_command,
        )


def task_dir(appliance: Appliance, task_id: str) -> Path:
    return appliance.settings.data_dir / "tasks" / task_id


def worktrees(appliance: Appliance) -> Worktrees:
    return Worktrees(appliance.settings.data_dir / "worktrees")


# --- repairs of a deps-job branch (appliance.jobs.repair) ---------------------------------


def repair_target(constraints: Mapping[str, Any]) -> dict[str, str] | None:
    """``{"branch", "worktree"}`` when the task repairs the tests on a deps job's branch, in
    the job's worktree (``constraints["repair"]``); None for an ordinary task."""
    repair = constraints.get("repair")
    if isinstance(repair, dict) and repair.get("worktree") and repair.get("branch"):
        return {"branch": str(repair["branch"]), "worktree": str(repair["worktree"])}
    return None


def task_worktree(appliance: Appliance, ctx: NodeContext) -> Path:
    """The checkout the task works in: its own worktree, or a repair's given one."""
    repair = repair_target(ctx.task.constraints)
    if repair is not None:
        return Path(repair["worktree"])
    return worktrees(appliance).get(ctx.task.id).path


# --- end of repairs ---------------------------------------------------------------------


def task_constraints(ctx: NodeContext, state: State) -> dict[str, Any]:
    """The task's rules: those of the request and any added while it runs (the task's
    constraints) joined with those planning read out of the request (``state``): every
    path to avoid, the smallest ``max_files_changed``."""
    task = dict(ctx.task.constraints)
    planned = dict(state.get("constraints", {}))
    merged = {**task, **planned}
    avoid = {*task.get("avoid_files", []), *planned.get("avoid_files", [])}
    if avoid:
        merged["avoid_files"] = sorted(avoid)
    limits = [v for v in (task.get("max_files_changed"), planned.get("max_files_changed")) if v]
    if limits:
        merged["max_files_changed"] = min(limits)
    return merged


def edit_policy(repo: Repository, constraints: dict[str, Any]) -> EditPolicy:
    settings = repo.settings or {}
    return EditPolicy(
        protected=list(settings.get("protected_paths", [])),
        unprotected=list(settings.get("unprotected_paths", [])),
        avoid_files=list(constraints.get("avoid_files", [])),
        max_files_changed=constraints.get("max_files_changed"),
    )


def sandbox_policy(repo: Repository, settings: Settings | None = None) -> SandboxPolicy:
    """The repository's sandbox image; the container lives at most as long as a task may
    run (``pipeline.max_minutes``) plus one command's hard cap, when ``settings`` are given."""
    image = (repo.settings or {}).get("sandbox_image")
    fields: dict[str, Any] = {"image": image} if image else {}
    if settings is not None:
        fields["session_max_s"] = int(settings.pipeline.max_minutes * 60 + HARD_TIMEOUT_CAP_S)
    return SandboxPolicy(**fields)


def task_sandbox(
    appliance: Any,
    task_id: str,
    repo: Repository,
    worktree: Path,
    test_command: str | None,
    *,
    emit: Emit | None = None,
) -> TaskSandbox | None:
    """The task's sandbox (one container for all its nodes while it runs, see
    :mod:`appliance.pipeline.sandboxes`), with the repository's offline dependency caches
    and its commands' live output sent as ``output`` events through ``emit``; None when the
    appliance has no sandbox. Call it on the event loop."""
    opener = appliance.sandbox()
    if opener is None:
        return None
    settings = appliance.settings
    loop = asyncio.get_running_loop()

    def make() -> TaskSandbox:
        return TaskSandbox(
            opener,
            worktree,
            task_id,
            sandbox_policy(repo, settings),
            test_command,
            deps=DepsSource(
                settings.data_dir / "deps",
                repo.name,
                python_index_url=settings.deps.python_index_url,
                npm_registry_url=settings.deps.npm_registry_url,
            ),
            on_output=OutputRelay(loop, emit) if emit is not None else None,
        )

    boxes = getattr(appliance, "task_sandboxes", None)
    if boxes is None:
        return make()
    box: TaskSandbox = boxes.get(task_id, make, test_command=test_command)
    return box


async def open_workspace(ctx: NodeContext, state: State) -> Workspace:
    """The workspace of a task that went through ``preparing``."""
    appliance = appliance_of(ctx)
    repo = await asyncio.to_thread(repository, ctx)
    mirror = appliance.index.mirrors.get(repo.name)
    worktree = task_worktree(appliance, ctx)
    index = await asyncio.to_thread(appliance.index.open, repo.name)
    policy = edit_policy(repo, task_constraints(ctx, state))
    backups = task_dir(appliance, ctx.task.id) / "edit-backups"
    edits_state = state.get("edits")
    if edits_state:
        edits = EditSession.from_state(worktree, policy, edits_state, backup_dir=backups)
    else:
        edits = EditSession(worktree, policy, backup_dir=backups)
    sandbox = task_sandbox(
        appliance,
        ctx.task.id,
        repo,
        worktree,
        # a command the user gave when the tests could not run, or the repository's
        state.get("test_command_override") or (repo.settings or {}).get("test_command"),
        emit=ctx.emit,
    )
    return Workspace(repo, mirror, worktree, index, edits, sandbox, task_tools(sandbox is not None))


@functools.cache
def task_tools(with_sandbox: bool) -> ToolRegistry:
    """The agent's tool set (built once: the registry and its schemas are the same for every
    task; what differs per task is the :class:`ToolContext`)."""
    return ToolRegistry(
        (
            *READ_TOOLS,
            *INDEX_TOOLS,
            *PROJECT_TOOLS,
            *WRITE_TOOLS,
            *(SANDBOX_TOOLS if with_sandbox else ()),
            finish_tool(),
        )
    )
