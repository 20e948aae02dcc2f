"""Errors of the models library.

Hierarchy::

    ModelsError                   every error this package raises on purpose
    ├── GpuInventoryError         GPU inventory text (nvidia-smi output) cannot be parsed,
    │                             or an inventory value is impossible (no memory, no name)
    ├── NoModelFits               no catalog variant fits the GPUs at the asked context and
    │                             sessions; the message says the largest context the smallest
    │                             model would fit, or suggests the CPU default
    ├── LlamaCppError             the CPU llama.cpp server cannot be found, started or reached
    ├── FormatError               a structured reply is not JSON or breaks the schema; the
    │                             message is written to be fed back to the model
    ├── ModelRequestError         the server rejected a request (4xx other than 429)
    ├── ModelUnavailable          no endpoint answered (retries spent, breakers open)
    ├── NotAModelList             GET /v1/models answered something else than the OpenAI
    │                             model list (the message quotes its start)
    └── StreamInterrupted         a stream broke after part of it reached the caller

Callers catch ``ModelsError`` to turn any of these into a user-facing message.
"""

from __future__ import annotations

from collections.abc import Sequence


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


class LlamaCppError(ModelsError):
    """The llama.cpp server could not be found, started, or reached; the message says why
    (and carries the tail of the server log where there is one)."""


class FormatError(ModelsError):
    """The model's structured reply is not valid JSON or does not match the schema.

    ``message`` is written for the model: feed it back and ask again. ``raw`` is the reply.
    """

    def __init__(self, message: str, *, raw: str = "") -> None:
        super().__init__(message)
        self.raw = raw


class ModelRequestError(ModelsError):
    """The server rejected the request (4xx other than 429); not retried."""

    def __init__(self, message: str, *, status: int, endpoint: str) -> None:
        super().__init__(message)
        self.status = status
        self.endpoint = endpoint


class ModelUnavailable(ModelsError):
    """No endpoint answered: every one failed its retries or had its breaker open."""

    def __init__(self, message: str, *, failures: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.failures = list(failures)


class NotAModelList(ModelsError):
    """``GET /v1/models`` answered something that is not the OpenAI model list."""


class StreamInterrupted(ModelsError):
    """A stream was cut after part of it had been yielded; not retried."""
