"""Errors of the sandbox library.

Hierarchy::

    SandboxError                  every error this package raises on purpose
    ├── SandboxUnavailable        podman, its service, the sandbox user or an image is missing,
    │                             or the host cannot enforce a limit the policy requires
    ├── PolicyError               a policy value is refused (e.g. a network other than none)
    └── SessionClosed             a command was run on a session that is closed or broken

Podman's own exceptions never leave this package: ``podman.py`` translates them.
"""

from __future__ import annotations


class SandboxError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class SandboxUnavailable(SandboxError):
    pass


class PolicyError(SandboxError):
    pass


class SessionClosed(SandboxError):
    pass


def service_fault(exc: SandboxError) -> bool:
    """A container start the service itself failed (HTTP 500 from Podman, after the
    container was created): worth one retry on a restarted service. Errors that come from
    the request (a missing image, a bad option) are 4xx and are not."""
    return "did not start" in exc.message and "500 Server Error" in exc.message
