"""Forges: where approved work is published (GitHub, GitLab, or a plain git remote).

``FORGES`` maps a settings ``kind`` to its implementation; :func:`build_forge` makes
one for a repository (GitHub ``owner/name``, GitLab ``group/project`` or id, git: the
remote's URL or path). Everything the pipeline needs crosses the
:class:`~appliance.forges.base.Forge` Protocol; see :mod:`appliance.forges.rules` for
the publishing rules and :mod:`appliance.forges.errors` for the error hierarchy.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from appliance.forges.base import (
    CiOutcome,
    CiState,
    CiStatus,
    CloneSource,
    Forge,
    PrRequest,
    PrState,
    PullRequest,
    RepoMetadata,
    ReviewFeedback,
)
from appliance.forges.git_forge import GitForge
from appliance.forges.github_forge import GitHubForge
from appliance.forges.gitlab_forge import GitLabForge
from appliance.forges.rules import PrQuota, branch_name, commit_message, validate_branch_name
from appliance.forges.settings import ForgeSettings

FORGES: dict[str, Callable[..., Forge]] = {
    "github": GitHubForge,
    "gitlab": GitLabForge,
    "git": GitForge,
}


def build_forge(
    settings: ForgeSettings,
    repository: str,
    *,
    quota: PrQuota | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.time,
) -> Forge:
    """The forge of ``settings.kind`` for ``repository``; nothing is contacted yet."""
    return FORGES[settings.kind](settings, repository, quota=quota, sleep=sleep, clock=clock)


__all__ = [
    "FORGES",
    "CiOutcome",
    "CiState",
    "CiStatus",
    "CloneSource",
    "Forge",
    "ForgeSettings",
    "PrQuota",
    "PrRequest",
    "PrState",
    "PullRequest",
    "RepoMetadata",
    "ReviewFeedback",
    "branch_name",
    "build_forge",
    "commit_message",
    "validate_branch_name",
]
