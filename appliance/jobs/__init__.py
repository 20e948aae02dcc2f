"""Nightly maintenance: scheduled jobs in the appliance process (APScheduler 3).

* ``scheduler``: :class:`JobScheduler`, the APScheduler wrapper (SQLite job store,
  coalesce, one instance, misfire grace), run claiming and recording, list / pause /
  resume / run-now.
* ``schedule``: job ids (``kind`` or ``kind:repository``), per-repository cron with the
  nightly spread, :func:`desired_jobs`.
* ``runs``: the ``job_run`` table: claim before running, finish, audit.
* ``kinds``: ``reindex``, ``retention``, ``branch_cleanup`` and the registry
  :data:`KINDS`; ``deps_job``: ``deps``; ``publish``: plain-git bump branches;
  ``checkout``: exported trees, package indexes and bump policies.
* ``context``: :class:`JobContext` and the seams (:class:`SandboxRunner`,
  :class:`RepairRunner`, :class:`BumpPublisher`, :class:`BranchHost`) in
  :class:`JobServices`.
"""

from appliance.jobs.context import (
    BranchHost,
    BumpPublisher,
    CommandResult,
    JobContext,
    JobServices,
    RepairOutcome,
    RepairRunner,
    SandboxRunner,
)
from appliance.jobs.scheduler import JobInfo, JobScheduler

__all__ = [
    "BranchHost",
    "BumpPublisher",
    "CommandResult",
    "JobContext",
    "JobInfo",
    "JobScheduler",
    "JobServices",
    "RepairOutcome",
    "RepairRunner",
    "SandboxRunner",
]
