"""The package-index seam: :class:`PackageIndex`, and the HTTP plumbing its clients share.

The appliance has no internet; every version comes from a mirror configured per
ecosystem (a devpi/Artifactory/Nexus PyPI mirror, a Verdaccio npm registry). A client
answers one question: :meth:`PackageIndex.package` → :class:`PackageInfo`, every
release with its upload time (None when the index does not say), whether it is yanked
or deprecated, and a release-notes link when the index has one. Version strings are
kept as the index wrote them; the planner parses them by ecosystem.

:func:`fetch` is the one place an HTTP answer becomes an error: unreachable or timed out
→ :class:`IndexUnreachable`, 401/403 → :class:`IndexAuthError`, 404 →
:class:`PackageNotFound`, another non-2xx → :class:`IndexUnavailable`, a body that is not
JSON → :class:`IndexResponseInvalid`. Messages name the URL (credentials masked) and the
setting to check. Clients cache answers for their lifetime (one planning run).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import httpx

from appliance.deps.errors import (
    IndexAuthError,
    IndexResponseInvalid,
    IndexUnavailable,
    IndexUnreachable,
    PackageNotFound,
)
from appliance.deps.model import Ecosystem


@dataclass(frozen=True)
class Release:
    version: str
    uploaded: datetime | None
    yanked: bool = False
    deprecated: str | None = None


@dataclass(frozen=True)
class PackageInfo:
    name: str
    releases: tuple[Release, ...]
    source: str  # the URL it was read from
    changelog_url: str | None = None


class PackageIndex(Protocol):
    ecosystem: Ecosystem

    @property
    def url(self) -> str: ...

    def package(self, name: str) -> PackageInfo: ...


def masked(url: str) -> str:
    """``url`` without the password of its user-info, fit for messages and logs."""
    parsed = httpx.URL(url)
    if not parsed.password:
        return url
    return str(parsed.copy_with(password="***"))  # noqa: S106 - a mask, not a secret


def fetch(
    client: httpx.Client, url: str, *, accept: str, setting: str, package: str
) -> httpx.Response:
    shown = masked(url)
    try:
        response = client.get(url, headers={"Accept": accept})
    except httpx.TimeoutException as exc:
        raise IndexUnreachable(
            f"package index {shown} did not answer in time; check that the mirror is up "
            f"and that {setting} points at it",
            url=shown,
        ) from exc
    except httpx.TransportError as exc:
        raise IndexUnreachable(
            f"package index {shown} is unreachable ({exc}); check {setting} and that the "
            "mirror is running and reachable from the appliance",
            url=shown,
        ) from exc
    status = response.status_code
    if status == 404:
        raise PackageNotFound(
            f"{package} is not on the package index {shown} (404); mirror it there, or add it "
            "to the bump policy's ignore list",
            url=shown,
            package=package,
        )
    if status in (401, 403):
        raise IndexAuthError(
            f"package index {shown} refused the request (HTTP {status}); give the appliance "
            f"read access (credentials in {setting})",
            url=shown,
        )
    if not response.is_success:
        raise IndexUnavailable(
            f"package index {shown} answered HTTP {status}; check the mirror's health "
            f"and {setting}",
            url=shown,
        )
    return response


def decode_json(response: httpx.Response, *, setting: str) -> dict[str, Any]:
    shown = masked(str(response.request.url))
    try:
        data = json.loads(response.content)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        kind = response.headers.get("content-type", "no content-type")
        raise IndexResponseInvalid(
            f"package index {shown} returned a body that is not JSON ({kind}: {exc}); "
            f"check that {setting} is the mirror's API root",
            url=shown,
        ) from exc
    if not isinstance(data, dict):
        raise IndexResponseInvalid(
            f"package index {shown} returned JSON that is not an object; check {setting}",
            url=shown,
        )
    return data


def parse_time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def make_client(
    timeout: float, verify: bool | str, transport: httpx.BaseTransport | None
) -> httpx.Client:
    """A client for one mirror. ``trust_env=False``: proxy variables must not send mirror
    traffic elsewhere; a private CA is given as ``verify`` (a CA bundle path)."""
    return httpx.Client(
        timeout=timeout,
        follow_redirects=True,
        transport=transport,
        trust_env=False,
        verify=verify,
    )
