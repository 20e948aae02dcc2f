"""Errors of the dependency-bump engine.

Hierarchy::

    ApplianceError (appliance.errors)
    └── DepsError                   anything the bump engine refuses or fails at
        ├── PackageIndexError       a package index (mirror) could not be used
        │   ├── IndexUnreachable    connection refused, DNS failure, timeout
        │   ├── IndexUnavailable    the index answered 5xx (or another unexpected status)
        │   ├── IndexAuthError      401/403: the mirror wants credentials
        │   ├── IndexResponseInvalid  the body is not the JSON the API promises
        │   └── PackageNotFound     404 for one package (the planner reports it per package)
        ├── ManifestError           a manifest cannot be read (invalid TOML/JSON)
        └── RewriteConflict         a manifest changed since it was scanned; the edit is refused

Every index error names the URL it tried and the setting that fixes it; the planner
catches only :class:`PackageNotFound` (one package missing from a mirror must not stop
the others) and lets the rest go up, since a night without an index is a failed night.
"""

from __future__ import annotations

from appliance.errors import ApplianceError, InvalidInput


class DepsError(ApplianceError):
    code = "deps_error"


class PackageIndexError(DepsError):
    status_code = 502
    code = "package_index_error"

    def __init__(self, message: str, *, url: str) -> None:
        super().__init__(message)
        self.url = url


class IndexUnreachable(PackageIndexError):
    status_code = 503
    code = "package_index_unreachable"


class IndexUnavailable(PackageIndexError):
    status_code = 503
    code = "package_index_unavailable"


class IndexAuthError(PackageIndexError):
    code = "package_index_auth"


class IndexResponseInvalid(PackageIndexError):
    code = "package_index_invalid_response"


class PackageNotFound(PackageIndexError):
    status_code = 404
    code = "package_not_found"

    def __init__(self, message: str, *, url: str, package: str) -> None:
        super().__init__(message, url=url)
        self.package = package


class ManifestError(InvalidInput):
    code = "manifest_error"


class RewriteConflict(DepsError):
    status_code = 409
    code = "manifest_rewrite_conflict"
