"""JSON-lines logging with request and task ids, and secrets scrubbed from every line."""

from __future__ import annotations

import logging
import re
import sys
from contextvars import ContextVar
from typing import Any

from pythonjsonlogger.json import JsonFormatter

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
task_id_var: ContextVar[str | None] = ContextVar("task_id", default=None)

_MASK = "***"
_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"apl_[A-Za-z0-9_\-]{8,}"), "apl_" + _MASK),
    (re.compile(r"(?i)\b(bearer|basic|token)\s+[A-Za-z0-9._~+/=\-]{8,}"), r"\1 " + _MASK),
    (re.compile(r"(?i)(://[^/\s:@]+:)[^@\s/]+@"), r"\1" + _MASK + "@"),
    (re.compile(r"\b(gh[pousr]_[A-Za-z0-9]{20,}|glpat-[A-Za-z0-9_\-]{20,})\b"), _MASK),
    (
        re.compile(
            r"(?i)([\"']?(?:password|passwd|secret(?:_key)?|api[_-]?key|access[_-]?token|token)"
            r"[\"']?\s*[:=]\s*[\"']?)([^\s\"',&}]+)"
        ),
        r"\1" + _MASK,
    ),
]


class Redactor:
    """Masks known secret values and anything shaped like a credential."""

    def __init__(self) -> None:
        self._literals: set[str] = set()

    def add_secret(self, value: str) -> None:
        if len(value) >= 6:
            self._literals.add(value)

    def __call__(self, text: str) -> str:
        for literal in self._literals:
            if literal in text:
                text = text.replace(literal, _MASK)
        for pattern, repl in _PATTERNS:
            text = pattern.sub(repl, text)
        return text


redactor = Redactor()


class _ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        record.task_id = task_id_var.get()
        return True


class _RedactingJsonFormatter(JsonFormatter):
    def format(self, record: logging.LogRecord) -> str:
        return redactor(super().format(record))


def configure_logging(level: str = "INFO", *, stream: Any = None) -> None:
    """Send every logger (ours, uvicorn's, alembic's) as JSON lines to stderr."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(_ContextFilter())
    handler.setFormatter(
        _RedactingJsonFormatter(
            "{levelname}{name}{message}{request_id}{task_id}",
            style="{",
            rename_fields={"levelname": "level", "name": "logger"},
            timestamp="ts",
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "alembic"):
        lg = logging.getLogger(name)
        lg.handlers[:] = []
        lg.propagate = True
    logging.getLogger("alembic").setLevel(max(root.level, logging.WARNING))
    # Our middleware logs each request with its id; uvicorn's access line would repeat it.
    logging.getLogger("uvicorn.access").disabled = True
