"""The deps job's :class:`~appliance.jobs.context.RepairRunner`: the agent pipeline.

:meth:`PipelineRepairRunner.submit_repair` makes a task (by ``system:deps``) whose
constraints carry ``{"repair": {"branch": ..., "worktree": ...}}``: ``preparing`` then works
in the job's worktree, on the job's branch (the bump applied and committed), instead of
making its own; every failing test counts (there is no baseline to excuse one), and the
bumped manifests are off limits, so the agent cannot "fix" the tests by undoing the bump.

:meth:`PipelineRepairRunner.wait` polls the task: ``awaiting_approval`` means validation
saw the tests pass; the job commits and publishes the worktree itself, so the task is then
closed (rejected by ``system:deps`` with a note saying where its change went: the pipeline
must not publish the branch a second time). ``failed``, ``cancelled`` or ``rejected``: not
fixed, the failure message is the diagnosis. A task still running (or waiting for an
answer nobody gives at night) when the time runs out is cancelled.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from appliance.errors import ApplianceError, ConfigError, Conflict
from appliance.jobs.context import RepairOutcome
from appliance.states import TERMINAL, TaskStatus
from appliance.store import tasks as task_store
from appliance.store.models import Repository, TaskConstraints, TaskCreate

if TYPE_CHECKING:
    from appliance.core import Appliance

log = logging.getLogger(__name__)

ACTOR = "system:deps"
#: the constraints key the pipeline reads (appliance/pipeline/prepare.py)
REPAIR_KEY = "repair"
#: the manifests and lockfiles a bump changes: the repair must leave them as the bump made them
MANIFESTS = [
    "requirements*.txt",
    "**/requirements*.txt",
    "requirements/*.txt",
    "constraints*.txt",
    "pyproject.toml",
    "**/pyproject.toml",
    "setup.cfg",
    "setup.py",
    "Pipfile",
    "Pipfile.lock",
    "poetry.lock",
    "uv.lock",
    "package.json",
    "**/package.json",
    "package-lock.json",
    "npm-shrinkwrap.json",
    "yarn.lock",
    "pnpm-lock.yaml",
]
FAILURE_TAIL = 4000


class PipelineRepairRunner:
    """Repairs as pipeline tasks of ``appliance``'s runner."""

    def __init__(
        self, appliance: Appliance, *, timeout: float = 3600.0, poll_seconds: float = 0.5
    ) -> None:
        self.appliance = appliance
        self.timeout = timeout
        self.poll_seconds = poll_seconds

    async def submit_repair(
        self, repository: Repository, branch: str, worktree: Path, failure_output: str
    ) -> str:
        title = await asyncio.to_thread(_bump_title, self.appliance, repository, branch)
        title = title or f"on {branch}"
        tail = failure_output[-FAILURE_TAIL:]
        prompt = (
            f"The dependency bump {title} breaks the tests; make them pass without reverting "
            "the bump.\n\nThe tests' output (end):\n" + tail
        )
        limit = self.appliance.settings.limits.max_prompt_chars
        constraints = TaskConstraints(
            avoid_files=MANIFESTS,
            notes=[
                "Keep the new dependency versions: adapt the code and the tests to them; do "
                "not edit the dependency manifests or lockfiles."
            ],
        )
        repository_id = repository.id
        assert repository_id is not None

        def create() -> tuple[str, Any]:
            with self.appliance.db.write() as session:
                task = task_store.create_task(
                    session,
                    task_in=TaskCreate(
                        repository_id=repository_id,
                        prompt=prompt[:limit],
                        constraints=constraints,
                    ),
                    created_by=ACTOR,
                    max_prompt_chars=limit,
                )
                task.constraints = {
                    **task.constraints,
                    REPAIR_KEY: {"branch": branch, "worktree": str(Path(worktree).absolute())},
                }
                session.add(task)
                return task.id, task.priority

        task_id, priority = await asyncio.to_thread(create)
        self.appliance.runner.submit(task_id, priority)
        log.info("%s: repair task %s for %s", repository.name, task_id, branch)
        return task_id

    async def wait(self, task_id: str) -> RepairOutcome:
        try:
            return await self._wait(task_id)
        except asyncio.CancelledError:  # the job run stops: its worktree goes, so the task too
            await self._cancel(task_id)
            raise

    async def _wait(self, task_id: str) -> RepairOutcome:
        deadline = time.monotonic() + self.timeout
        while True:
            status, message, summary = await asyncio.to_thread(self._status, task_id)
            if status == TaskStatus.awaiting_approval:
                await self._close(task_id)
                return RepairOutcome(True, summary or "the agent made the tests pass")
            if status == TaskStatus.done:
                return RepairOutcome(True, summary or "the agent made the tests pass")
            if status in TERMINAL:
                why = message or f"the repair task ended {status.value}"
                return RepairOutcome(False, f"The repair task {task_id} gave up: {why}")
            if time.monotonic() >= deadline:
                await self._cancel(task_id)
                return RepairOutcome(
                    False,
                    f"The repair task {task_id} did not finish in {self.timeout:.0f} s "
                    f"(it was {status.value}); it was cancelled.",
                )
            await asyncio.sleep(self.poll_seconds)

    def _status(self, task_id: str) -> tuple[TaskStatus, str | None, str | None]:
        with self.appliance.db.session() as session:
            task = task_store.get_task(session, task_id)
            return task.status, task.failure_message, task.summary

    async def _close(self, task_id: str) -> None:
        """The job publishes the change with the bump: the task's own gate is closed."""
        try:
            await self.appliance.runner.act(
                task_id,
                "reject",
                {
                    "message": "Closed by the deps job: the repair is committed on the bump's "
                    "branch and published with the bump's pull request."
                },
                actor=ACTOR,
            )
        except Conflict as exc:  # someone decided in between: theirs stands
            log.info("repair task %s not closed: %s", task_id, exc.message)

    async def _cancel(self, task_id: str) -> None:
        try:
            await self.appliance.runner.cancel(task_id, actor=ACTOR)
        except (Conflict, ConfigError) as exc:  # finished meanwhile, or the runner stopped
            log.info("repair task %s not cancelled: %s", task_id, exc.message)


def _bump_title(appliance: Appliance, repository: Repository, branch: str) -> str | None:
    """The subject of the bump's commit (the job commits it before asking for a repair),
    read from the mirror: git is not run in the checkout, which the sandbox has touched."""
    try:
        mirror = appliance.index.mirrors.get(repository.name)
        log_ = mirror.git("log", "-1", "--format=%s", f"refs/heads/{branch}", "--", check=False)
    except ApplianceError:
        return None
    subject = log_.text.strip()
    return subject if log_.returncode == 0 and subject else None
