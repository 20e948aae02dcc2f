"""Opening a PR/MR that may exist already.

If opening a pull request timed out after the server had made it, every retry gets
409/422 ("already exists") and the task could never publish. :func:`open_or_adopt_pr`
then looks the PR up by its branch and, when it is open, adopts it: its title and body
become the request's. Anything else (no PR found, a closed or merged one, a failed look-up)
gives the forge's original conflict.
"""

from __future__ import annotations

import dataclasses
import logging

from appliance.forges.base import Forge, PrRequest, PrState, PullRequest
from appliance.forges.errors import ForgeConflict, ForgeError

log = logging.getLogger(__name__)


def open_or_adopt_pr(forge: Forge, request: PrRequest) -> PullRequest:
    try:
        return forge.open_pr(request)
    except ForgeConflict:
        find = getattr(forge, "pr_for_branch", None)  # GitHub and GitLab (BranchForge)
        if find is None:
            raise
        try:
            existing: PullRequest | None = find(request.branch)
        except ForgeError:
            existing = None
        if existing is None or existing.state != PrState.open:
            raise
    log.info("adopting %s, opened for %s by an earlier try", existing.url, request.branch)
    adopted = forge.update_pr(existing.number, title=request.title, body=request.body)
    note = f"the pull request existed already (an earlier try made it): adopted {adopted.url}"
    return dataclasses.replace(adopted, warnings=(*adopted.warnings, note))
