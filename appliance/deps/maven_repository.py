"""A Maven repository (Nexus, Artifactory, Reposilite, a Maven Central mirror).

``GET {repo}/{groupId with dots as slashes}/{artifactId}/maven-metadata.xml`` lists the
versions under ``<versioning><versions><version>``. ``-SNAPSHOT`` versions are dropped
(they belong in snapshot repositories and are never a bump target).

**Release dates.** The metadata has none: ``<lastUpdated>`` is when the file was last
written, which dates only the newest version, if that. A version's date is therefore
asked for lazily (:attr:`PackageInfo.release_time`), only for the versions the planner
considers: the ``Last-Modified`` header of that version's ``.pom``. On Maven Central and
on proxies that keep upstream headers it is the upload time; a proxy that stamps its own
fetch time only makes a version look younger than it is, so a minimum release age errs
on the side of waiting. When the header is missing the date is unknown, and a policy
with a minimum age does not propose that version (the skip reason says how to accept
such versions: ``min_release_age_days = 0``).

The metadata is XML from a server the appliance does not control, so it is parsed with
:mod:`defusedxml` (no DTDs, no entities).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from functools import partial
from typing import Any
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from appliance.deps.errors import IndexResponseInvalid, PackageNotFound
from appliance.deps.index import HttpIndex, PackageInfo, Release, fetch, masked
from appliance.deps.model import Ecosystem

SETTING = "the Maven repository URL (deps.maven_repository_url)"
_COORDINATE = re.compile(r"[A-Za-z0-9_.-]+")


class MavenRepository(HttpIndex):
    ecosystem: Ecosystem = "maven"

    def __init__(self, url: str, **options: Any) -> None:
        super().__init__(url, **options)
        self._times: dict[tuple[str, str], datetime | None] = {}

    def package(self, name: str) -> PackageInfo:
        """``name`` is ``groupId:artifactId``."""
        if name not in self._cache:
            url = f"{self._artifact_url(name)}/maven-metadata.xml"
            response = fetch(
                self._client,
                url,
                accept="application/xml, text/xml;q=0.9, */*;q=0.1",
                setting=SETTING,
                package=name,
            )
            versions = _versions(_metadata(response.content, url))
            self._cache[name] = PackageInfo(
                name,
                tuple(Release(v, None) for v in versions if not v.upper().endswith("-SNAPSHOT")),
                masked(url),
                release_time=partial(self._time, name),
            )
        return self._cache[name]

    def _artifact_url(self, name: str) -> str:
        group, _, artifact = name.partition(":")
        if not (_COORDINATE.fullmatch(group) and _COORDINATE.fullmatch(artifact)):
            raise PackageNotFound(
                f"{name!r} is not a Maven groupId:artifactId; fix the coordinates in the POM",
                url=self.url,
                package=name,
            )
        return f"{self.base_url}/{group.replace('.', '/')}/{artifact}"

    def _time(self, name: str, version: str) -> datetime | None:
        if (name, version) not in self._times:
            artifact = name.partition(":")[2]
            url = f"{self._artifact_url(name)}/{version}/{artifact}-{version}.pom"
            try:
                response = fetch(
                    self._client, url, accept="*/*", setting=SETTING, package=f"{name}:{version}"
                )
            except PackageNotFound:
                self._times[(name, version)] = None
            else:
                self._times[(name, version)] = _http_date(response.headers.get("last-modified"))
        return self._times[(name, version)]


def _metadata(content: bytes, url: str) -> Element:
    try:
        root = fromstring(content, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except (ParseError, DefusedXmlException) as exc:
        raise IndexResponseInvalid(
            f"Maven repository {masked(url)} returned metadata that is not plain XML ({exc}); "
            f"check that {SETTING} is the repository's root",
            url=masked(url),
        ) from exc
    if not isinstance(root, Element) or root.tag != "metadata":
        raise IndexResponseInvalid(
            f"Maven repository {masked(url)} returned XML that is not maven-metadata; check "
            f"that {SETTING} is the repository's root",
            url=masked(url),
        )
    return root


def _versions(metadata: Element) -> list[str]:
    found = [(v.text or "").strip() for v in metadata.iterfind("./versioning/versions/version")]
    return [v for v in found if v]


def _http_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)
