"""Errors of the diff review (secret scan, diff statistics).

Hierarchy::

    ApplianceError                 (appliance.errors)
    └── ReviewError                the review of a diff could not be done
        └── DiffUnreadable         the text given is not a unified diff git could have printed

Messages never quote the diff: a line of it may hold the very secret being looked for.
A caller that cannot scan a diff must treat it as blocking, never as clean.
"""

from __future__ import annotations

from appliance.errors import ApplianceError


class ReviewError(ApplianceError):
    code = "review_error"


class DiffUnreadable(ReviewError):
    code = "diff_unreadable"
