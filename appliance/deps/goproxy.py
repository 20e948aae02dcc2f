"""A Go module proxy (Athens, Artifactory, Nexus, goproxy): the GOPROXY protocol.

``GET {proxy}/{module}/@v/list`` lists a module's tagged versions, one per line, in no
particular order (pseudo-versions are not listed). ``GET {proxy}/{module}/@v/{version}.info``
is ``{"Version": ..., "Time": RFC 3339}``; that date is asked for lazily, only for the
versions the planner considers (:attr:`PackageInfo.release_time`). Module paths and
versions are case-encoded in URLs (``github.com/BurntSushi/toml`` →
``github.com/!burnt!sushi/toml``). The protocol says 404 *and* 410 mean "not here".

A newer major version of a module is another module (``…/v2``, ``gopkg.in/x.v3``), so
the list of ``example.com/m`` never shows it. To say in a PR that one exists, the client
also asks for the next majors' lists (one request per module when there is none) and
adds their versions; the planner never proposes them (see
:func:`appliance.deps.go_versions.refusal`) but names the newest as held back. A failing
probe costs only that note. Modules on GitHub or GitLab get their releases page as the
release-notes link. One URL is configured (``GOPROXY`` lists with ``,``/``|`` are not):
the mirror the appliance reads.
"""

from __future__ import annotations

import logging
from datetime import datetime
from functools import partial
from typing import Any

from appliance.deps import go_versions
from appliance.deps.errors import IndexResponseInvalid, PackageIndexError, PackageNotFound
from appliance.deps.index import (
    HttpIndex,
    PackageInfo,
    Release,
    decode_json,
    fetch,
    masked,
    parse_time,
)
from appliance.deps.model import Ecosystem

log = logging.getLogger(__name__)

SETTING = "the Go module proxy URL (deps.go_proxy_url)"
MISSING = (404, 410)
MAX_MAJOR_PROBES = 3  # newer majors looked for past the module's own


class GoProxy(HttpIndex):
    ecosystem: Ecosystem = "go"

    def __init__(self, url: str, **options: Any) -> None:
        super().__init__(url, **options)
        self._times: dict[tuple[str, str], datetime | None] = {}

    def package(self, name: str) -> PackageInfo:
        if name not in self._cache:
            url = self._module_url(name) + "/@v/list"
            releases = [Release(v, None) for v in self._list(name, url)]
            releases += [Release(v, None) for v in self._newer_majors(name)]
            self._cache[name] = PackageInfo(
                name,
                tuple(releases),
                masked(url),
                _releases_page(name),
                release_time=partial(self._time, name),
            )
        return self._cache[name]

    def _module_url(self, module: str) -> str:
        return f"{self.base_url}/{go_versions.escape(module)}"

    def _list(self, module: str, url: str) -> list[str]:
        response = fetch(
            self._client,
            url,
            accept="text/plain",
            setting=SETTING,
            package=module,
            missing=MISSING,
        )
        try:
            lines = response.content.decode("utf-8").split()
        except UnicodeDecodeError as exc:
            raise IndexResponseInvalid(
                f"Go module proxy {masked(url)} returned a version list that is not UTF-8 "
                f"text; check {SETTING}",
                url=masked(url),
            ) from exc
        bad = [line for line in lines if go_versions.parse(line) is None]
        if bad:
            raise IndexResponseInvalid(
                f"Go module proxy {masked(url)} returned {bad[0][:60]!r} in a version list; "
                f"is {SETTING} the proxy's root (what GOPROXY would be set to)?",
                url=masked(url),
            )
        return lines

    def _newer_majors(self, module: str) -> list[str]:
        """Versions of the next major module paths, for the held-back note."""
        major = go_versions.major_of_path(module) or 1
        found: list[str] = []
        for next_major in range(major + 1, major + 1 + MAX_MAJOR_PROBES):
            path = go_versions.path_for_major(module, next_major)
            url = self._module_url(path) + "/@v/list"
            try:
                versions = self._list(path, url)
            except PackageNotFound:
                break
            except PackageIndexError as exc:
                log.warning("no newer-major check for %s: %s", module, exc.message)
                break
            found += [v for v in versions if not go_versions.is_incompatible(v)]
        return found

    def _time(self, module: str, version: str) -> datetime | None:
        """The ``Time`` of ``version``'s ``.info`` (the module path follows the major)."""
        parsed = go_versions.parse(version)
        if (
            parsed is not None
            and parsed.major >= 2
            and not go_versions.is_incompatible(version)
            and go_versions.major_of_path(module) != parsed.major
        ):
            module = go_versions.path_for_major(module, parsed.major)
        if (module, version) not in self._times:
            url = f"{self._module_url(module)}/@v/{go_versions.escape(version)}.info"
            try:
                response = fetch(
                    self._client,
                    url,
                    accept="application/json",
                    setting=SETTING,
                    package=f"{module}@{version}",
                    missing=MISSING,
                )
            except PackageNotFound:
                self._times[(module, version)] = None
            else:
                info = decode_json(response, setting=SETTING)
                self._times[(module, version)] = parse_time(info.get("Time"))
        return self._times[(module, version)]


def _releases_page(module: str) -> str | None:
    parts = module.split("/")
    if parts[0] in ("github.com", "gitlab.com") and len(parts) >= 3:
        return f"https://{'/'.join(parts[:3])}/releases"
    return None
