"""Go and Maven from the settings to the ``appliance deps check`` report."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.config import load_settings
from appliance.deps import BumpPolicy, GoProxy, MavenRepository, check
from appliance.jobs.checkout import open_indexes
from tests.deps.conftest import NOW, IndexServer

GO_MOD = "module m\n\ngo 1.22\n\nrequire github.com/google/uuid v1.5.0\n"
POM = """<project>
  <dependencies>
    <dependency>
      <groupId>org.slf4j</groupId><artifactId>slf4j-api</artifactId><version>2.0.9</version>
    </dependency>
  </dependencies>
</project>
"""


def _repo(root: Path) -> Path:
    (root / "api").mkdir(parents=True)
    (root / "api" / "go.mod").write_text(GO_MOD)
    (root / "pom.xml").write_text(POM)
    return root


def test_configured_mirrors_are_opened_and_reported(
    tmp_path: Path, index_server: IndexServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("APPLIANCE_DEPS__GO_PROXY_URL", f"{index_server.url}/goproxy")
    monkeypatch.setenv("APPLIANCE_DEPS__MAVEN_REPOSITORY_URL", f"{index_server.url}/maven/")
    repo = _repo(tmp_path / "repo")
    with open_indexes(load_settings()) as indexes:
        assert isinstance(indexes["go"], GoProxy)
        assert isinstance(indexes["maven"], MavenRepository)
        assert indexes["maven"].url == f"{index_server.url}/maven"
        report = check(repo, BumpPolicy(), indexes, now=NOW)
    assert "2 dependencies in 2 manifests" in report
    assert (
        "Bump github.com/google/uuid from v1.5.0 to v1.6.0  [deps/go-non-major, new PR]" in report
    )
    assert "github.com/google/uuid v1.5.0 -> v1.6.0 (minor) api/go.mod:5 'v1.5.0' -> 'v1.6.0'" in (
        report
    )
    assert "Bump org.slf4j:slf4j-api from 2.0.9 to 2.0.13  [deps/maven-non-major, new PR]" in report


def test_unset_mirrors_mean_no_go_or_maven_bumps(tmp_path: Path) -> None:
    repo = _repo(tmp_path / "repo")
    settings = load_settings()
    assert (settings.deps.go_proxy_url, settings.deps.maven_repository_url) == ("", "")
    with open_indexes(settings) as indexes:
        assert "go" not in indexes
        assert "maven" not in indexes
        report = check(repo, BumpPolicy(), indexes, now=NOW)
    assert "No package index configured: 2" in report
    assert "github.com/google/uuid 'v1.5.0' (api/go.mod:5, require): no package index" in report
    assert "org.slf4j:slf4j-api '2.0.9' (pom.xml:4, dependencies): no package index" in report
