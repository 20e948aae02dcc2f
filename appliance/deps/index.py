"""The package-index seam: :class:`PackageIndex`, and the HTTP plumbing its clients share.

The appliance has no internet; every version comes from a mirror configured per
ecosystem (a devpi/Artifactory/Nexus PyPI mirror, a Verdaccio npm registry, an Athens
GOPROXY, a Nexus/Artifactory Maven repository). A client answers one question:
:meth:`PackageIndex.package` → :class:`PackageInfo`, every release with its upload time
(None when the index does not say), whether it is yanked or deprecated, and a
release-notes link when the index has one. Version strings are kept as the index wrote
them; the planner parses them by ecosystem.

Some protocols list versions without dates and give one version's date per request (the
GOPROXY ``.info`` file, a Maven artifact's ``Last-Modified``). Asking for every version
would cost one request per release ever made, so such a client leaves ``uploaded`` None
and sets :attr:`PackageInfo.release_time`; the planner asks it only for the versions it
actually considers (usually one or two per package).

:func:`fetch` is the one place an HTTP answer becomes an error: unreachable or timed out
→ :class:`IndexUnreachable`, 401/403 → :class:`IndexAuthError`, 404 (and whatever else
the protocol says means "no such package", such as GOPROXY's 410) →
:class:`PackageNotFound`, another non-2xx → :class:`IndexUnavailable`, a body that is not
JSON → :class:`IndexResponseInvalid`. Messages name the URL (credentials masked) and the
setting to check. Clients cache answers for their lifetime (one planning run).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, Self

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
    # The upload time of one version, for indexes whose listing has none (see above);
    # None when every date the index knows is already in ``releases``.
    release_time: Callable[[str], datetime | None] | None = field(
        default=None, compare=False, repr=False
    )

    def uploaded(self, release: Release) -> datetime | None:
        """``release``'s upload time, asking the index when the listing did not say."""
        if release.uploaded is not None or self.release_time is None:
            return release.uploaded
        return self.release_time(release.version)


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
    client: httpx.Client,
    url: str,
    *,
    accept: str,
    setting: str,
    package: str,
    missing: Collection[int] = (404,),
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
    if status in missing:
        raise PackageNotFound(
            f"{package} is not on the package index {shown} ({status}); mirror it there, or add it "
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
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    # PyPI's legacy ``upload_time`` and some mirrors write UTC without saying so
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


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


class HttpIndex:
    """What the clients of one base URL share (npm, Go proxy, Maven repository): the URL,
    shown masked; one HTTP client; answers cached for the client's life; closing."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 10.0,
        verify: bool | str = True,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = url.rstrip("/")
        self._client = make_client(timeout, verify, transport)
        self._cache: dict[str, PackageInfo] = {}

    @property
    def url(self) -> str:
        return masked(self.base_url)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
