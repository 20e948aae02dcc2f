"""The task state machine (DESIGN.md, "A task's life").

``queued → preparing → planning → implementing ⇄ validating → reviewing →
awaiting_approval → publishing → done``, with ``paused``, ``failed(category)``,
``cancelled`` and ``rejected`` beside them.
"""

from __future__ import annotations

from enum import StrEnum


class TaskStatus(StrEnum):
    queued = "queued"
    preparing = "preparing"
    planning = "planning"
    implementing = "implementing"
    validating = "validating"
    reviewing = "reviewing"
    awaiting_approval = "awaiting_approval"
    publishing = "publishing"
    done = "done"
    paused = "paused"
    failed = "failed"
    cancelled = "cancelled"
    rejected = "rejected"


class Priority(StrEnum):
    background = "background"
    normal = "normal"
    urgent = "urgent"

    @property
    def rank(self) -> int:
        """Lower runs first."""
        return {"urgent": 0, "normal": 1, "background": 2}[self.value]


class FailureCategory(StrEnum):
    """The PRD's error categories."""

    transient = "transient"
    user_correctable = "user_correctable"
    code_logic = "code_logic"
    security = "security"
    internal = "internal"


TERMINAL: frozenset[TaskStatus] = frozenset(
    {TaskStatus.done, TaskStatus.failed, TaskStatus.cancelled, TaskStatus.rejected}
)
# Statuses in which the runner owns the task: found at start-up, they resume.
RUNNING: frozenset[TaskStatus] = frozenset(
    {
        TaskStatus.preparing,
        TaskStatus.planning,
        TaskStatus.implementing,
        TaskStatus.validating,
        TaskStatus.reviewing,
        TaskStatus.publishing,
    }
)
# Statuses that wait for a person.
WAITING: frozenset[TaskStatus] = frozenset({TaskStatus.paused, TaskStatus.awaiting_approval})

_S = TaskStatus
# Any running step may stop, fail, be cancelled, or end the task (a graph may finish
# without publishing, e.g. when there is nothing to change). Publishing is reachable
# only from awaiting_approval: nothing is pushed before a person approves.
_ANY_STOP = {_S.paused, _S.failed, _S.cancelled, _S.done}
ALLOWED: dict[TaskStatus, frozenset[TaskStatus]] = {
    _S.queued: frozenset({_S.preparing, _S.failed, _S.cancelled}),
    _S.preparing: frozenset({_S.planning, *_ANY_STOP}),
    _S.planning: frozenset({_S.implementing, _S.awaiting_approval, *_ANY_STOP}),
    _S.implementing: frozenset({_S.validating, _S.reviewing, *_ANY_STOP}),
    _S.validating: frozenset({_S.implementing, _S.reviewing, *_ANY_STOP}),
    _S.reviewing: frozenset({_S.awaiting_approval, _S.implementing, *_ANY_STOP}),
    _S.awaiting_approval: frozenset(
        {_S.publishing, _S.implementing, _S.planning, _S.rejected, _S.cancelled}
    ),
    # A forge error while publishing hands the task back to the human gate, nothing lost.
    _S.publishing: frozenset({_S.done, _S.awaiting_approval, *_ANY_STOP}),
    _S.paused: frozenset((RUNNING - {_S.publishing}) | {_S.queued, _S.cancelled, _S.failed}),
    # A review comment on a published PR sends the agent back to work.
    _S.done: frozenset({_S.implementing}),
    _S.failed: frozenset({_S.queued}),
    _S.cancelled: frozenset(),
    _S.rejected: frozenset(),
}


def can_transition(src: TaskStatus, dst: TaskStatus) -> bool:
    return dst in ALLOWED[src]
