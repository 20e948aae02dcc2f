"""An npm registry (Verdaccio, Artifactory, Nexus): ``GET {registry}/{name}``.

The full document is asked for (``Accept: application/json``) because the abbreviated
``application/vnd.npm.install-v1+json`` one has no ``time`` map, and the minimum release
age needs publish times. Scoped names are escaped as npm does (``@scope%2fname``).
``versions[v].deprecated`` marks a deprecated version (never proposed). The release
notes link is the repository (``…/releases`` on GitHub-style hosts) or the homepage.
"""

from __future__ import annotations

import re
from typing import Any

from appliance.deps.errors import IndexResponseInvalid
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

SETTING = "the npm registry URL (deps.indexes.npm)"


class NpmRegistry(HttpIndex):
    ecosystem: Ecosystem = "npm"

    def package(self, name: str) -> PackageInfo:
        if name not in self._cache:
            url = f"{self.base_url}/{name.replace('/', '%2f')}"
            response = fetch(
                self._client, url, accept="application/json", setting=SETTING, package=name
            )
            self._cache[name] = _parse(name, url, decode_json(response, setting=SETTING))
        return self._cache[name]


def _parse(name: str, url: str, data: dict[str, Any]) -> PackageInfo:
    versions = data.get("versions")
    if not isinstance(versions, dict):
        raise IndexResponseInvalid(
            f"npm registry {masked(url)} answered without a 'versions' object; is {SETTING} "
            "the registry root?",
            url=masked(url),
        )
    times = data["time"] if isinstance(data.get("time"), dict) else {}
    releases = tuple(
        Release(
            version=str(version),
            uploaded=parse_time(times.get(version)),
            deprecated=str(meta["deprecated"])
            if isinstance(meta, dict) and meta.get("deprecated")
            else None,
        )
        for version, meta in versions.items()
    )
    return PackageInfo(name, releases, masked(url), _link(data))


def _link(data: dict[str, Any]) -> str | None:
    repository = data.get("repository")
    repo_url = repository.get("url") if isinstance(repository, dict) else repository
    if isinstance(repo_url, str) and repo_url:
        cleaned = re.sub(r"^git\+|\.git$", "", repo_url).replace("git://", "https://")
        cleaned = re.sub(r"^ssh://git@", "https://", cleaned)
        if cleaned.startswith("https://"):
            return cleaned + "/releases" if "github" in cleaned or "gitea" in cleaned else cleaned
    homepage = data.get("homepage")
    return homepage if isinstance(homepage, str) and homepage.startswith("http") else None
