"""The embedded default: any plain git remote (a bare repository path or URL).

There is no server to open a pull request on: review happens in the appliance's own
UI. So this forge only pushes (same rules as the others) and reads metadata: the
default branch from ``git ls-remote --symref`` and the protected list from the
settings. Every server operation (:meth:`open_pr`, :meth:`update_pr`,
:meth:`comment`, :meth:`review_comments`, :meth:`ci_status`, :meth:`wait_for_ci`,
:meth:`close_pr`) raises :class:`ForgeUnsupported`; ``supports_reviews`` is False so
callers can skip them.

A token, when set, is sent as HTTP Basic ``git:TOKEN`` through ``http.extraHeader``.
"""

from __future__ import annotations

from datetime import datetime
from typing import NoReturn

from appliance.forges import gitpush
from appliance.forges.base import (
    CiOutcome,
    CiStatus,
    CloneSource,
    PrRequest,
    PullRequest,
    RepoMetadata,
    ReviewFeedback,
)
from appliance.forges.common import ForgeCore
from appliance.forges.errors import ForgeUnsupported

LS_REMOTE_TIMEOUT = 60.0


class GitForge(ForgeCore):
    kind = "git"
    supports_reviews = False

    def clone_source(self) -> CloneSource:
        return CloneSource(url=self.repository, token=self.settings.token, username="git")

    def _fetch_metadata(self) -> RepoMetadata:
        source = self.clone_source()
        config = {**gitpush.transport_config(self.settings), **source.git_config()}
        default = gitpush.remote_default_branch(
            self.repository, config=config, timeout=LS_REMOTE_TIMEOUT
        )
        return RepoMetadata(
            full_name=self.repository,
            default_branch=default or "main",
            web_url="",
            clone_url=self.repository,
            protected_branches=tuple(self.settings.protected_branches),
        )

    def _unsupported(self, what: str) -> NoReturn:
        raise ForgeUnsupported(
            f"{what} is not supported by plain git: review happens in the appliance. "
            "Configure a GitHub or GitLab forge to get pull/merge requests and CI."
        )

    def open_pr(self, request: PrRequest) -> PullRequest:
        self._unsupported("opening a pull request")

    def update_pr(
        self, number: int, *, title: str | None = None, body: str | None = None
    ) -> PullRequest:
        self._unsupported("updating a pull request")

    def comment(self, number: int, body: str) -> None:
        self._unsupported("commenting on a pull request")

    def review_comments(
        self, number: int, *, since: datetime | None = None
    ) -> list[ReviewFeedback]:
        self._unsupported("reading review comments")

    def ci_status(self, ref: str) -> CiStatus:
        self._unsupported("reading CI status")

    def wait_for_ci(self, ref: str, *, timeout: float, poll: float = 15.0) -> CiOutcome:
        self._unsupported("waiting for CI")

    def close_pr(self, number: int) -> PullRequest:
        self._unsupported("closing a pull request")
