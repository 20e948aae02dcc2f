"""Errors of the models library.

Hierarchy::

    ModelsError                   every error this package raises on purpose
    ├── GpuInventoryError         GPU inventory text (nvidia-smi output) cannot be parsed,
    │                             or an inventory value is impossible (no memory, no name)
    └── NoModelFits               no catalog variant fits the GPUs at the asked context and
                                  sessions; the message says the largest context the smallest
                                  model would fit, or suggests the CPU default

Callers catch ``ModelsError`` to turn any of these into a user-facing message.
"""

from __future__ import annotations


class ModelsError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class GpuInventoryError(ModelsError):
    pass


class NoModelFits(ModelsError):
    def __init__(self, message: str, *, largest_context: int | None = None) -> None:
        super().__init__(message)
        #: largest context (tokens) the smallest model would fit; None when even that fails
        self.largest_context = largest_context
