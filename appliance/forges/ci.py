"""CI status: one verdict from GitHub check runs and statuses or a GitLab pipeline.

GitHub reports CI two ways, check runs (Actions, apps) and commit statuses (older
integrations); both count. A check run that has not ``completed`` is pending; its
``success``, ``neutral`` and ``skipped`` conclusions pass, every other conclusion
(``failure``, ``cancelled``, ``timed_out``, ``action_required``, ``stale``) fails. A
status ``error`` or ``failure`` fails. GitLab: the newest pipeline of the branch decides;
``success`` and ``skipped`` pass, ``failed`` and ``canceled`` fail, everything else
(``created``, ``pending``, ``running``, ``manual``, ``scheduled``…) is pending.

:func:`combine`: any failure → failure, else any pending → pending, else success;
nothing reported → ``none``. :func:`wait_for_ci` polls until a verdict or the timeout.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from appliance.forges.base import CiCheck, CiOutcome, CiState, CiStatus

_CHECK_PASS = {"success", "neutral", "skipped"}
_STATUS = {
    "success": CiState.success,
    "failure": CiState.failure,
    "error": CiState.failure,
    "pending": CiState.pending,
}
_PIPELINE_PASS = {"success", "skipped"}
_PIPELINE_FAIL = {"failed", "canceled", "cancelled"}


def check_run_state(status: str | None, conclusion: str | None) -> CiState:
    if status != "completed":
        return CiState.pending
    return CiState.success if conclusion in _CHECK_PASS else CiState.failure


def commit_status_state(state: str | None) -> CiState:
    return _STATUS.get(state or "", CiState.pending)


def pipeline_state(status: str | None) -> CiState:
    if status in _PIPELINE_PASS:
        return CiState.success
    if status in _PIPELINE_FAIL:
        return CiState.failure
    return CiState.pending


def combine(ref: str, checks: Iterable[CiCheck]) -> CiStatus:
    items = tuple(checks)
    states = {c.state for c in items}
    if not items:
        state = CiState.none
    elif CiState.failure in states:
        state = CiState.failure
    elif CiState.pending in states:
        state = CiState.pending
    else:
        state = CiState.success
    return CiStatus(ref=ref, state=state, checks=items)


def wait_for_ci(
    status: Callable[[], CiStatus],
    *,
    timeout: float,
    poll: float,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> CiOutcome:
    """Poll ``status`` every ``poll`` s until success/failure, or ``pending-timeout``.

    ``none`` (no CI reported yet) counts as pending: a pipeline often appears a few
    seconds after the push.
    """
    deadline = clock() + timeout
    while True:
        state = status().state
        if state is CiState.success:
            return CiOutcome.success
        if state is CiState.failure:
            return CiOutcome.failure
        left = deadline - clock()
        if left <= 0:
            return CiOutcome.pending_timeout
        sleep(min(poll, left))
