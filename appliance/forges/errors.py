"""Errors of the forge layer: every failure talking to GitHub, GitLab or a git remote.

Hierarchy::

    ApplianceError (appliance.errors)
    └── ForgeError              (502)  anything the forge layer refuses or fails at
        ├── ForgeAuthError      (502)  401: the token is invalid, expired or revoked
        ├── ForgePermissionError(502)  403: the token lacks a scope or the account a role
        ├── ForgeNotFound       (404)  404: repository, branch or PR missing, or hidden
        │                              from the token
        ├── ForgeConflict       (409)  409/422: the branch or PR already exists, or the
        │                              remote branch moved on (we never force-push)
        ├── ForgeRateLimited    (503)  403/429 with rate-limit headers, after retries;
        │                              carries ``retry_after`` (seconds) when known
        ├── ForgeUnavailable    (503)  5xx, timeouts, connection refused, DNS failures
        ├── ForgeTLSError       (502)  the server's certificate could not be verified
        ├── ForgeUnsupported    (400)  the plain git forge has no PRs, CI or comments
        ├── ForgeTokenUnreadable(500)  a stored token cannot be decrypted (secret changed)
        ├── PushRefused         (422)  a publishing rule forbids this push or PR
        │                              (force, protected branch, bad branch name)
        └── QuotaExceeded       (429)  the user opened too many PRs today

Third-party exception types (PyGithub, python-gitlab, requests) never leave the
package: :mod:`appliance.forges.boundary` translates them. Each message says what
went wrong and which setting or action fixes it.
"""

from __future__ import annotations

from appliance.errors import ApplianceError


class ForgeError(ApplianceError):
    status_code = 502
    code = "forge_error"


class ForgeAuthError(ForgeError):
    code = "forge_auth"


class ForgePermissionError(ForgeError):
    code = "forge_permission"


class ForgeNotFound(ForgeError):
    status_code = 404
    code = "forge_not_found"


class ForgeConflict(ForgeError):
    status_code = 409
    code = "forge_conflict"


class ForgeUnavailable(ForgeError):
    status_code = 503
    code = "forge_unavailable"


class ForgeRateLimited(ForgeError):
    status_code = 503
    code = "forge_rate_limited"

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ForgeTLSError(ForgeError):
    code = "forge_tls"


class ForgeUnsupported(ForgeError):
    status_code = 400
    code = "forge_unsupported"


class ForgeTokenUnreadable(ForgeError):
    status_code = 500
    code = "forge_token_unreadable"


class PushRefused(ForgeError):
    status_code = 422
    code = "push_refused"


class QuotaExceeded(ForgeError):
    status_code = 429
    code = "pr_quota_exceeded"

    def __init__(self, message: str, *, user: str, limit: int) -> None:
        super().__init__(message)
        self.user = user
        self.limit = limit
