"""The index clients against a real HTTP server, and their errors."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from appliance.deps import BumpPolicy, NpmRegistry, PythonIndex, plan
from appliance.deps.errors import (
    IndexResponseInvalid,
    IndexUnavailable,
    IndexUnreachable,
    PackageNotFound,
)
from appliance.deps.manifests import scan_worktree
from tests.deps.conftest import NOW, IndexServer
from tests.servers import free_port


def test_pep691_versions_times_and_yanked(python_index: PythonIndex) -> None:
    info = python_index.package("Requests")  # names are normalised
    releases = {r.version: r for r in info.releases}
    assert sorted(releases) == ["2.30.0", "2.31.0", "2.32.0", "2.32.3", "3.0.0b1"]
    assert releases["2.32.0"].yanked
    assert not releases["2.32.3"].yanked
    assert releases["2.31.0"].uploaded is not None
    assert releases["2.31.0"].uploaded.tzinfo is not None
    assert info.changelog_url is None  # the simple API has no project URLs


def test_json_api_gives_changelog_links(index_server: IndexServer) -> None:
    with PythonIndex(None, json_url=f"{index_server.url}/pypi") as index:
        info = index.package("flask")
    assert info.changelog_url == "https://example.org/flask/changes"
    assert {r.version for r in info.releases} == {"2.3.3", "3.0.0", "3.0.3"}


def test_html_only_mirror_falls_back_to_the_json_api(index_server: IndexServer) -> None:
    (index_server.root / "html" / "simple" / "flask").mkdir(parents=True)
    (index_server.root / "html" / "simple" / "flask" / "index.json").write_text("<html></html>")
    (index_server.root / "html" / "pypi").symlink_to(index_server.root / "pypi")
    with PythonIndex(f"{index_server.url}/html/simple") as index:
        info = index.package("flask")
    assert info.changelog_url == "https://example.org/flask/changes"
    assert index_server.requests[-1] == "/html/pypi/flask/json"


def test_npm_packument(npm_registry: NpmRegistry) -> None:
    info = npm_registry.package("@types/node")  # scoped: sent as @types%2fnode
    assert {r.version for r in info.releases} == {"20.1.0", "20.14.9", "22.0.0"}
    react = {r.version: r for r in npm_registry.package("react").releases}
    assert react["18.3.0"].deprecated == "broken build, use 18.3.1"
    assert (
        npm_registry.package("react").changelog_url == "https://github.com/example/react/releases"
    )


def test_missing_package_is_reported_and_the_others_still_planned(
    tmp_path: Path, python_index: PythonIndex
) -> None:
    (tmp_path / "requirements.txt").write_text("no-such-package==1.0\nflask==3.0.0\n")
    result = plan(scan_worktree(tmp_path).dependencies, python_index, BumpPolicy(), NOW)
    assert [b.dep.name for g in result.groups for b in g.bumps] == ["flask"]
    (missing,) = [s for s in result.skipped if s.kind == "not_found"]
    assert missing.dep is not None
    assert missing.dep.name == "no-such-package"
    assert "/simple/no-such-package/" in missing.reason
    assert "404" in missing.reason


def test_server_error_names_the_url(index_server: IndexServer) -> None:
    with (
        PythonIndex(f"{index_server.url}/status/500/simple") as index,
        pytest.raises(IndexUnavailable, match=r"/status/500/simple/flask/ answered HTTP 500"),
    ):
        index.package("flask")


def test_unreachable_index_names_the_url_and_the_setting() -> None:
    url = f"http://127.0.0.1:{free_port()}/npm"
    with NpmRegistry(url, timeout=2) as registry, pytest.raises(IndexUnreachable) as caught:
        registry.package("react")
    assert url in caught.value.message
    assert "deps.indexes.npm" in caught.value.message


def test_unreachable_index_fails_the_plan(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("flask==3.0.0\n")
    url = f"http://127.0.0.1:{free_port()}/simple"
    deps = scan_worktree(tmp_path).dependencies
    with PythonIndex(url, timeout=2) as index, pytest.raises(IndexUnreachable, match=url):
        plan(deps, index, BumpPolicy(), datetime.now(UTC))


def test_malformed_json_is_a_clear_error(index_server: IndexServer) -> None:
    (index_server.root / "npm" / "broken").mkdir()
    (index_server.root / "npm" / "broken" / "index.json").write_text('{"versions": {')
    with (
        NpmRegistry(f"{index_server.url}/npm") as registry,
        pytest.raises(IndexResponseInvalid, match=r"/npm/broken returned a body that is not JSON"),
    ):
        registry.package("broken")


def test_json_without_versions_is_a_clear_error(index_server: IndexServer) -> None:
    (index_server.root / "npm" / "odd").mkdir()
    (index_server.root / "npm" / "odd" / "index.json").write_text('{"name": "odd"}')
    with (
        NpmRegistry(f"{index_server.url}/npm") as registry,
        pytest.raises(IndexResponseInvalid, match="without a 'versions' object"),
    ):
        registry.package("odd")


def test_not_found_carries_the_package(python_index: PythonIndex) -> None:
    with pytest.raises(PackageNotFound) as caught:
        python_index.package("nope")
    assert caught.value.package == "nope"
    assert "ignore list" in caught.value.message
