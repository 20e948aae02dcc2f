"""A small client of the JSON API v1, for the CLI and scripts."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from appliance.errors import ApplianceError


class ApiError(ApplianceError):
    """The server answered with an error; ``message`` is its explanation."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status


@dataclass(frozen=True)
class SseEvent:
    id: str | None
    event: str
    data: dict[str, Any]


class ApiClient:
    def __init__(self, base_url: str, token: str | None, *, timeout: float = 30.0) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(
            base_url=base_url.rstrip("/") + "/api/v1", headers=headers, timeout=timeout
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ApiError(
                0,
                f"cannot reach the appliance at {self._http.base_url} ({exc}); "
                "is `appliance serve` running, and is --server right?",
            ) from exc
        if response.status_code >= 400:
            raise ApiError(response.status_code, _error_message(response))
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    def events(self, task_id: str, *, last_event_id: int | None = None) -> Iterator[SseEvent]:
        """Follow a task's event stream until the server ends it."""
        headers = {"Last-Event-ID": str(last_event_id)} if last_event_id else {}
        timeout = httpx.Timeout(30.0, read=60.0)
        try:
            with self._http.stream(
                "GET", f"/tasks/{task_id}/events", headers=headers, timeout=timeout
            ) as response:
                if response.status_code >= 400:
                    response.read()
                    raise ApiError(response.status_code, _error_message(response))
                yield from parse_sse(response.iter_lines())
        except httpx.TransportError as exc:
            raise ApiError(0, f"the event stream broke off: {exc}") from exc


def parse_sse(lines: Iterator[str]) -> Iterator[SseEvent]:
    event_id: str | None = None
    kind = "message"
    data: list[str] = []
    for line in lines:
        if not line:
            if data:
                yield SseEvent(event_id, kind, json.loads("\n".join(data)))
            event_id, kind, data = None, "message", []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "id":
            event_id = value
        elif field == "event":
            kind = value
        elif field == "data":
            data.append(value)


def _error_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}: {response.text[:300]}"
    message = str(body.get("message") or body)
    return f"HTTP {response.status_code}: {message}"
