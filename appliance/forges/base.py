"""The ``Forge`` seam and the plain records that cross it.

The pipeline publishes through a :class:`Forge` handed to it at start-up; three
implementations stand behind it (``github``, ``gitlab``, ``git``, see
:data:`appliance.forges.FORGES`) and tests may hand it any other object with the same
shape.

Rules that hold whatever the model or user asks (no force-push, no push to the default
or a protected branch, branch names ``appliance/{yyyymmdd-hhmm}-{slug}``, PR quota) are
checked by :mod:`appliance.forges.rules` inside every implementation before any network
call.

The plain ``git`` forge has no server: :meth:`Forge.open_pr`, :meth:`Forge.update_pr`,
:meth:`Forge.comment`, :meth:`Forge.review_comments`, :meth:`Forge.ci_status`,
:meth:`Forge.wait_for_ci` and :meth:`Forge.close_pr` raise
:class:`~appliance.forges.errors.ForgeUnsupported` there ("review happens in the
appliance"); check :attr:`Forge.supports_reviews` first to avoid the exception.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Protocol

from pydantic import SecretStr

from appliance.forges.codeowners import CodeOwners


@dataclass(frozen=True)
class RepoMetadata:
    full_name: str
    default_branch: str
    web_url: str
    clone_url: str
    languages: dict[str, float] = field(default_factory=dict)  # GitHub: bytes, GitLab: %
    protected_branches: tuple[str, ...] = ()  # names or fnmatch patterns
    codeowners: CodeOwners = field(default_factory=CodeOwners)


@dataclass(frozen=True)
class CloneSource:
    """Where to fetch from and with what token; the token is never part of ``url``."""

    url: str
    token: SecretStr | None
    username: str  # the Basic-auth user the forge expects with a token

    def git_config(self) -> dict[str, str]:
        """``http.extraHeader`` to pass to git through ``GIT_CONFIG_*``, never argv."""
        if self.token is None:
            return {}
        pair = f"{self.username}:{self.token.get_secret_value()}".encode()
        return {"http.extraHeader": "Authorization: Basic " + base64.b64encode(pair).decode()}


@dataclass(frozen=True)
class PrRequest:
    branch: str
    title: str
    body: str
    labels: Sequence[str] = ()
    draft: bool = False
    changed_files: Sequence[str] = ()  # reviewers come from CODEOWNERS for these
    reviewers: Sequence[str] = ()  # asked for explicitly, on top of CODEOWNERS
    requested_by: str | None = None  # appliance user, counted by the PR quota


class PrState(StrEnum):
    open = "open"
    closed = "closed"
    merged = "merged"


@dataclass(frozen=True)
class PullRequest:
    number: int  # GitHub number, GitLab iid
    url: str
    state: PrState
    branch: str
    draft: bool = False
    # what could not be done after the PR existed (a label, a reviewer): the PR is kept
    warnings: tuple[str, ...] = ()
    body: str = ""
    title: str = ""


@dataclass(frozen=True)
class ReviewFeedback:
    pr_number: int
    branch: str | None
    author: str
    body: str
    path: str | None
    line: int | None
    created_at: datetime | None


class CiState(StrEnum):
    success = "success"
    failure = "failure"
    pending = "pending"
    none = "none"  # no check, status or pipeline reported for the ref


@dataclass(frozen=True)
class CiCheck:
    name: str
    state: CiState
    url: str | None = None


@dataclass(frozen=True)
class CiStatus:
    ref: str
    state: CiState
    checks: tuple[CiCheck, ...] = ()


class CiOutcome(StrEnum):
    success = "success"
    failure = "failure"
    pending_timeout = "pending-timeout"


class Forge(Protocol):
    kind: str
    supports_reviews: bool

    def metadata(self, *, refresh: bool = False) -> RepoMetadata: ...

    def clone_source(self) -> CloneSource: ...

    def push(self, worktree: Path, branch: str, *, force: bool = False) -> None: ...

    def open_pr(self, request: PrRequest) -> PullRequest: ...

    def update_pr(
        self, number: int, *, title: str | None = None, body: str | None = None
    ) -> PullRequest: ...

    def comment(self, number: int, body: str) -> None: ...

    def review_comments(
        self, number: int, *, since: datetime | None = None
    ) -> list[ReviewFeedback]: ...

    def ci_status(self, ref: str) -> CiStatus: ...

    def wait_for_ci(self, ref: str, *, timeout: float, poll: float) -> CiOutcome: ...

    def close_pr(self, number: int) -> PullRequest: ...

    def close(self) -> None: ...


class BranchForge(Forge, Protocol):
    """A forge with a server (GitHub, GitLab) whose appliance branches and their pull
    requests can be listed, for the nightly bumps and the branch clean-up."""

    def open_prs(self, *, branch_prefix: str) -> list[PullRequest]:
        """Open PRs/MRs whose source branch starts with ``branch_prefix``."""
        ...

    def pr_for_branch(self, branch: str) -> PullRequest | None:
        """The newest PR/MR opened from ``branch`` in any state; None when there is none."""
        ...

    def branches(self, prefix: str) -> list[str]:
        """Names of the repository's branches that start with ``prefix``."""
        ...

    def delete_branch(self, branch: str) -> None:
        """Delete an appliance branch; any other branch is refused before the network."""
        ...
