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
