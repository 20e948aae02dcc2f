"""One sandbox per task while it runs: the nodes of a task share its container.

A task's :class:`~appliance.pipeline.execution.TaskSandbox` is made on first use (the
baseline test run, or the first command) and kept here, so preparing, implementing and
validating run in the same container. When the task stops running (it finishes, fails,
or waits for a person) the runner calls :meth:`TaskSandboxes.release`, which removes the
container; a task that goes on later gets a fresh one. Whatever is never released (a
crash) is bounded by the container's own lifetime and the orphan sweep at start-up.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from appliance.pipeline.execution import TaskSandbox

log = logging.getLogger(__name__)


class TaskSandboxes:
    """The live task sandboxes of one appliance, by task id (thread-safe)."""

    def __init__(self) -> None:
        self._boxes: dict[str, TaskSandbox] = {}
        self._lock = threading.Lock()

    def get(
        self, task_id: str, make: Callable[[], TaskSandbox], *, test_command: str | None
    ) -> TaskSandbox:
        """The task's sandbox, made by ``make`` on first use. ``test_command`` is the
        command the caller wants now (a reply to a question may have changed it)."""
        with self._lock:
            box = self._boxes.get(task_id)
            if box is None:
                box = self._boxes[task_id] = make()
            box.test_command = test_command
            return box

    def release(self, task_id: str) -> None:
        """Remove the task's container, if it has one (blocking: call it in a thread)."""
        with self._lock:
            box = self._boxes.pop(task_id, None)
        if box is not None:
            box.close()
            log.debug("task %s: sandbox released", task_id)

    def release_all(self) -> None:
        with self._lock:
            ids = list(self._boxes)
        for task_id in ids:
            self.release(task_id)

    def __contains__(self, task_id: object) -> bool:
        return task_id in self._boxes
