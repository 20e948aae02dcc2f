"""Errors of the scheduled jobs.

Hierarchy::

    ApplianceError (appliance.errors)
    ├── NotFound (404)
    │   └── JobNotFound          no scheduled job has that id
    ├── Conflict (409)
    │   └── JobBusy              the job is running already (one instance at a time)
    └── JobError                 a job could not do its work (the run fails with it)
"""

from __future__ import annotations

from appliance.errors import ApplianceError, Conflict, NotFound


class JobNotFound(NotFound):
    code = "job_not_found"


class JobBusy(Conflict):
    code = "job_busy"


class JobError(ApplianceError):
    code = "job_error"
