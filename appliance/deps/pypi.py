"""A Python package index: the PEP 691 JSON simple API, the PyPI JSON API as fallback.

``GET {simple_url}/{normalized-name}/`` with ``Accept: application/vnd.pypi.simple.v1+json``:
versions come from ``versions`` (API 1.1) or from the file names; a version whose files
are all yanked is yanked; its upload time is its earliest file's ``upload-time``.

When the simple API answers something else (an HTML-only mirror) or no simple URL is
configured, the PyPI-compatible JSON API is asked: ``GET {json_url}/{name}/json``
(``releases``, ``upload_time_iso_8601``, ``yanked``). Its ``info.project_urls`` give the
release-notes link; with a PEP 691 mirror that link is fetched from the JSON API only when
``json_url`` is configured, and losing it costs only the link.

``json_url`` defaults to the simple URL with its trailing ``/simple`` replaced by
``/pypi`` (PyPI's and Artifactory's layout); set it for other mirrors (devpi, Nexus).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime
from typing import Any

import httpx
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)

from appliance.deps.errors import IndexResponseInvalid, PackageIndexError
from appliance.deps.index import (
    PackageInfo,
    Release,
    decode_json,
    fetch,
    make_client,
    masked,
    parse_time,
)
from appliance.deps.model import Ecosystem

log = logging.getLogger(__name__)

SIMPLE_JSON = "application/vnd.pypi.simple.v1+json"
SETTING = "the Python index URL (deps.indexes.python)"
_CHANGELOG_KEYS = ("changelog", "changes", "release notes", "releasenotes", "history", "news")
_SOURCE_KEYS = ("source", "source code", "repository", "github", "homepage", "home")


class PythonIndex:
    ecosystem: Ecosystem = "python"

    def __init__(
        self,
        simple_url: str | None,
        *,
        json_url: str | None = None,
        timeout: float = 10.0,
        verify: bool | str = True,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if simple_url is None and json_url is None:
            raise ValueError("a Python index needs simple_url or json_url")
        self.simple_url = simple_url.rstrip("/") if simple_url else None
        self._json_configured = json_url is not None
        derived = None
        if self.simple_url and self.simple_url.endswith(("/simple", "/+simple")):
            derived = self.simple_url.rsplit("/", 1)[0] + "/pypi"
        self.json_url = json_url.rstrip("/") if json_url else derived
        self._client = make_client(timeout, verify, transport)
        self._cache: dict[str, PackageInfo] = {}

    @property
    def url(self) -> str:
        return masked(self.simple_url or self.json_url or "")

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> PythonIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def package(self, name: str) -> PackageInfo:
        key = canonicalize_name(name)
        if key not in self._cache:
            self._cache[key] = self._lookup(key)
        return self._cache[key]

    def _lookup(self, key: str) -> PackageInfo:
        if self.simple_url is not None:
            url = f"{self.simple_url}/{key}/"
            response = fetch(
                self._client,
                url,
                accept=f"{SIMPLE_JSON}, text/html;q=0.01",
                setting=SETTING,
                package=key,
            )
            kind = response.headers.get("content-type", "").split(";")[0].strip()
            if kind in (SIMPLE_JSON, "application/json"):
                info = _from_simple(key, url, decode_json(response, setting=SETTING))
                if self._json_configured:
                    info = self._with_changelog(key, info)
                return info
            if self.json_url is None:
                raise IndexResponseInvalid(
                    f"package index {masked(url)} does not serve the PEP 691 JSON API "
                    f"(it answered {kind or 'no content-type'}); use a mirror that does, or "
                    "configure its PyPI JSON API as json_url",
                    url=masked(url),
                )
        assert self.json_url is not None
        url = f"{self.json_url}/{key}/json"
        response = fetch(self._client, url, accept="application/json", setting=SETTING, package=key)
        return _from_json_api(key, url, decode_json(response, setting=SETTING))

    def _with_changelog(self, key: str, info: PackageInfo) -> PackageInfo:
        url = f"{self.json_url}/{key}/json"
        try:
            response = fetch(
                self._client, url, accept="application/json", setting=SETTING, package=key
            )
            link = _changelog(decode_json(response, setting=SETTING))
        except PackageIndexError as exc:
            log.warning("no release-notes link for %s: %s", key, exc.message)
            return info
        return PackageInfo(info.name, info.releases, info.source, link)


def _from_simple(key: str, url: str, data: dict[str, Any]) -> PackageInfo:
    files = data.get("files")
    if not isinstance(files, list):
        raise IndexResponseInvalid(
            f"package index {masked(url)} answered without a 'files' list; is it a PEP 691 "
            "simple API?",
            url=masked(url),
        )
    uploaded: dict[str, list[datetime]] = defaultdict(list)
    yanked: dict[str, list[bool]] = defaultdict(list)
    for entry in files:
        if not isinstance(entry, dict) or not isinstance(entry.get("filename"), str):
            continue
        version = _version_of(entry["filename"])
        if version is None:
            continue
        yanked[version].append(bool(entry.get("yanked", False)))
        when = parse_time(entry.get("upload-time"))
        if when is not None:
            uploaded[version].append(when)
    listed = data.get("versions")
    versions = [str(v) for v in listed] if isinstance(listed, list) else list(yanked)
    releases = tuple(
        Release(
            version=v,
            uploaded=min(uploaded[v]) if uploaded.get(v) else None,
            yanked=bool(yanked.get(v)) and all(yanked[v]),
        )
        for v in versions
    )
    return PackageInfo(str(data.get("name", key)), releases, masked(url))


def _version_of(filename: str) -> str | None:
    try:
        if filename.endswith(".whl"):
            return str(parse_wheel_filename(filename)[1])
        if filename.endswith((".tar.gz", ".zip")):
            return str(parse_sdist_filename(filename)[1])
    except (InvalidWheelFilename, InvalidSdistFilename):
        return None
    return None


def _from_json_api(key: str, url: str, data: dict[str, Any]) -> PackageInfo:
    releases_data = data.get("releases")
    if not isinstance(releases_data, dict):
        raise IndexResponseInvalid(
            f"package index {masked(url)} answered without a 'releases' object; is json_url "
            "a PyPI-compatible JSON API?",
            url=masked(url),
        )
    releases: list[Release] = []
    for version, files in releases_data.items():
        if not isinstance(files, list) or not files:
            continue  # nothing to install
        times = [t for f in files if (t := parse_time(_upload_time(f))) is not None]
        releases.append(
            Release(
                version=str(version),
                uploaded=min(times) if times else None,
                yanked=all(isinstance(f, dict) and f.get("yanked") for f in files),
            )
        )
    info = data["info"] if isinstance(data.get("info"), dict) else {}
    return PackageInfo(str(info.get("name", key)), tuple(releases), masked(url), _changelog(data))


def _upload_time(entry: object) -> object:
    if not isinstance(entry, dict):
        return None
    return entry.get("upload_time_iso_8601") or entry.get("upload_time")


def _changelog(data: dict[str, Any]) -> str | None:
    info = data.get("info")
    urls = info.get("project_urls") if isinstance(info, dict) else None
    if not isinstance(urls, dict):
        return None
    by_label = {str(k).strip().lower(): v for k, v in urls.items() if isinstance(v, str)}
    for keys in (_CHANGELOG_KEYS, _SOURCE_KEYS):
        for label, link in by_label.items():
            if any(k in label for k in keys):
                return link
    return None
