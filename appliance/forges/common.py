"""What the three forges share: the push path with its rules, CI waiting, set-up.

:class:`ForgeCore` is a small base, not a framework: it checks the publishing rules
(:mod:`appliance.forges.rules`) in a fixed order and pushes with the private git runner.

Order of a push, so that a forbidden push never reaches the network:

1. rules that need no server: force/``+``, configured protected branches, the branch
   name pattern (``main`` or ``release/1.0`` fail here already);
2. the forge's metadata (one API call or ``ls-remote``, cached): default branch and
   protected branches;
3. ``git push URL refs/heads/X:refs/heads/X`` with the token in the environment.

Building a forge registers its token with the log redactor and logs one warning when
TLS verification is off.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

from appliance.forges import ci, gitpush, rules
from appliance.forges.base import CiOutcome, CiStatus, CloneSource, RepoMetadata
from appliance.forges.retry import Retrier
from appliance.forges.settings import ForgeSettings
from appliance.logs import redactor

log = logging.getLogger("appliance.forges")

PUSH_TIMEOUT = 600.0


class ForgeCore:
    kind = "?"
    supports_reviews = True

    def __init__(
        self,
        settings: ForgeSettings,
        repository: str,
        *,
        quota: rules.PrQuota | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.repository = repository
        self.quota = quota
        self._sleep = sleep
        self._clock = clock
        self._retrier = Retrier(max_retries=settings.max_retries, sleep=sleep)
        self._metadata: RepoMetadata | None = None
        token = settings.token_value()
        if token:
            redactor.add_secret(token)
        if not settings.verify_tls:
            log.warning(
                "TLS verification is OFF for the %s forge at %s: its certificate is not "
                "checked. Set ca_bundle instead where possible.",
                self.kind,
                settings.api_url() or repository,
            )

    # --- to be provided by each forge ---------------------------------------------
    def _fetch_metadata(self) -> RepoMetadata:
        raise NotImplementedError

    def clone_source(self) -> CloneSource:
        raise NotImplementedError

    def ci_status(self, ref: str) -> CiStatus:
        raise NotImplementedError

    # --- shared -------------------------------------------------------------------
    def metadata(self, *, refresh: bool = False) -> RepoMetadata:
        if self._metadata is None or refresh:
            self._metadata = self._fetch_metadata()
        return self._metadata

    def push(self, worktree: Path, branch: str, *, force: bool = False) -> None:
        """Push ``branch`` of ``worktree``; forbidden pushes raise PushRefused first."""
        rules.check_push(branch, force=force, protected=self.settings.protected_branches)
        meta = self.metadata()
        refspec = rules.check_push(
            branch,
            default_branch=meta.default_branch,
            protected=[*self.settings.protected_branches, *meta.protected_branches],
        )
        source = self.clone_source()
        config = {**gitpush.transport_config(self.settings), **source.git_config()}
        gitpush.push(worktree, source.url, refspec, config=config, timeout=PUSH_TIMEOUT)

    def delete_branch(self, branch: str) -> None:
        """Delete ``branch`` on the forge; only the appliance's own, unprotected branches."""
        rules.check_delete(branch, protected=self.settings.protected_branches)
        meta = self.metadata()
        name = rules.check_delete(
            branch,
            default_branch=meta.default_branch,
            protected=[*self.settings.protected_branches, *meta.protected_branches],
        )
        self._delete_branch(name)

    def _delete_branch(self, branch: str) -> None:
        raise NotImplementedError

    def wait_for_ci(self, ref: str, *, timeout: float, poll: float = 15.0) -> CiOutcome:
        start = self._clock()
        return ci.wait_for_ci(
            lambda: self.ci_status(ref),
            timeout=timeout,
            poll=poll,
            sleep=self._sleep,
            clock=lambda: self._clock() - start,
        )

    def _check_quota(self, user: str | None) -> None:
        if self.quota is not None and user is not None:
            self.quota.check(user)

    def close(self) -> None:
        return None
