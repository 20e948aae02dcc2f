"""A repository's own proxy wins over the host's HTTP(S)_PROXY (requests would prefer the
environment's): GitHub, GitLab and ``repo check`` alike."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from appliance.forges import ForgeSettings, build_forge
from appliance.forges.access import _gitlab_push
from appliance.forges.errors import ForgeNotFound
from tests.forges.conftest import FakeTime
from tests.forges.fakeforge import FakeForge

TOKEN = "ghp_" + "Pr0xyT0kenA1b2C3d4E5f6G7h8I9j0K1l2"


@pytest.fixture
def env_proxy(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeForge]:
    """The host's proxy, which must see nothing of a repository with its own."""
    server = FakeForge().start()
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, server.url)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    yield server
    server.stop()


@pytest.fixture
def repo_proxy() -> Iterator[FakeForge]:
    server = FakeForge().start()
    yield server
    server.stop()


def test_github_uses_the_repositorys_proxy_not_the_environments(
    env_proxy: FakeForge, repo_proxy: FakeForge, fake_time: FakeTime
) -> None:
    settings = ForgeSettings(
        kind="github",
        base_url="http://ghe.acme.invalid/api/v3",
        token=SecretStr(TOKEN),
        proxy_url=repo_proxy.url,
        timeout=5,
    )
    forge = build_forge(settings, "acme/widgets", sleep=fake_time.sleep, clock=fake_time.clock)
    try:
        with pytest.raises(ForgeNotFound):  # the replaying proxy knows no such repository
            forge.metadata()
    finally:
        forge.close()
    assert env_proxy.seen == []
    (seen,) = repo_proxy.seen
    assert seen.via_proxy
    assert seen.path == "/api/v3/repos/acme/widgets"
    assert seen.headers["Host"].startswith("ghe.acme.invalid")


def test_gitlab_uses_the_repositorys_proxy_not_the_environments(
    env_proxy: FakeForge, repo_proxy: FakeForge, fake_time: FakeTime
) -> None:
    settings = ForgeSettings(
        kind="gitlab",
        base_url="http://gitlab.acme.invalid",
        token=SecretStr("glpat-" + "x" * 20),
        proxy_url=repo_proxy.url,
        timeout=5,
    )
    forge = build_forge(settings, "acme/widgets", sleep=fake_time.sleep, clock=fake_time.clock)
    try:
        with pytest.raises(ForgeNotFound):  # the replaying proxy knows no such project
            forge.metadata()
    finally:
        forge.close()
    assert env_proxy.seen == []
    (seen,) = repo_proxy.seen
    assert seen.via_proxy
    assert seen.headers["Host"].startswith("gitlab.acme.invalid")


def test_repo_check_uses_the_repositorys_proxy_not_the_environments(
    env_proxy: FakeForge, repo_proxy: FakeForge
) -> None:
    settings = ForgeSettings(
        kind="gitlab",
        base_url="http://gitlab.acme.invalid",
        token=SecretStr("glpat-" + "x" * 20),
        proxy_url=repo_proxy.url,
        timeout=5,
    )
    with pytest.raises(ForgeNotFound):
        _gitlab_push(settings, "acme/widgets")
    assert env_proxy.seen == []
    assert [s.path for s in repo_proxy.seen] == ["/api/v4/projects/acme%2Fwidgets"]


def test_without_a_repository_proxy_the_environments_is_used(
    env_proxy: FakeForge, fake_time: FakeTime
) -> None:
    settings = ForgeSettings(
        kind="gitlab", base_url="http://gitlab.acme.invalid", token=SecretStr("g" * 20), timeout=5
    )
    forge = build_forge(settings, "acme/widgets", sleep=fake_time.sleep, clock=fake_time.clock)
    try:
        with pytest.raises(ForgeNotFound):
            forge.metadata()
    finally:
        forge.close()
    assert [s.via_proxy for s in env_proxy.seen] == [True]
