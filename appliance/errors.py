"""Domain errors of the appliance core.

Hierarchy::

    ApplianceError                 every error the core raises on purpose
    ├── ConfigError                settings are invalid or insecure (start-up)
    ├── NotFound          (404)    an id that does not exist
    ├── InvalidInput      (422)    a value a user sent is wrong; carries the field
    ├── Conflict          (409)    the request clashes with the current state
    │   └── InvalidTransition      a task cannot move from its status to the one asked
    ├── Unauthenticated   (401)    no or bad credentials
    ├── Forbidden         (403)    credentials are fine, the role is not enough
    ├── AuditChainBroken           ``audit verify`` found an edited or missing record
    ├── RepoError                  git refused or failed (clone, fetch, worktree, a bad ref)
    ├── IndexError_                the index is missing, stale or cannot be built
    └── PathRefused       (422)    a tool was asked for a path outside the worktree or in .git

The HTTP status lives on the class; ``appliance.api`` renders every one as JSON.
"""

from __future__ import annotations


class ApplianceError(Exception):
    status_code = 500
    code = "internal_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(ApplianceError):
    code = "config_error"


class NotFound(ApplianceError):
    status_code = 404
    code = "not_found"


class InvalidInput(ApplianceError):
    status_code = 422
    code = "validation_error"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class Conflict(ApplianceError):
    status_code = 409
    code = "conflict"


class InvalidTransition(Conflict):
    code = "invalid_transition"


class Unauthenticated(ApplianceError):
    status_code = 401
    code = "unauthenticated"


class Forbidden(ApplianceError):
    status_code = 403
    code = "forbidden"


class AuditChainBroken(ApplianceError):
    code = "audit_chain_broken"

    def __init__(self, message: str, *, seq: int) -> None:
        super().__init__(message)
        self.seq = seq


class RepoError(ApplianceError):
    code = "repo_error"


class IndexError_(ApplianceError):  # the builtin IndexError is another thing
    code = "index_error"


class PathRefused(InvalidInput):
    code = "path_refused"
