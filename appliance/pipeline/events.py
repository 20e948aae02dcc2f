"""The shapes of the pipeline's events (the UI and API render them by ``kind``)."""

from __future__ import annotations

from typing import Any


def command_event(command: str, exit_code: int, details: dict[str, Any] | str) -> dict[str, Any]:
    snippet = details if isinstance(details, str) else ""
    payload: dict[str, Any] = {"command": command, "exit_code": exit_code}
    if isinstance(details, dict):
        payload["tests"] = details
        snippet = details.get("note") or ""
    payload["output_snippet"] = snippet[:500]
    return payload


def error_event(
    message: str, *, severity: str = "error", recoverable: bool = True
) -> dict[str, Any]:
    return {"severity": severity, "message": message, "recoverable": recoverable}
