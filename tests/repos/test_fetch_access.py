"""Fetching a registered repository with everything its settings say: the token, the
company CA bundle, the TLS switch (the same settings the push uses), from the index, the
CLI and the jobs alike."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import certifi
import pytest
import trustme

from appliance.config import Settings
from appliance.errors import RepoError
from appliance.forges.connect import fetch_access, seal_settings, secret_key
from appliance.repos.mirror import Mirrors
from appliance.store.models import ForgeKind, Repository
from tests.cli.test_cli import cli
from tests.gitrepos import Upstream, plain_git
from tests.repos.gitserver import GitServer, git_server

TOKEN = "glpat-" + "Fe7chAcc3ssT0ken9xYz"
LEXICAL = {"APPLIANCE_INDEX__EMBEDDER": "none"}


@pytest.fixture(autouse=True)
def _host_with_a_default_ca_and_no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "http_proxy",
        "https_proxy",
        "all_proxy",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
    ):
        monkeypatch.delenv(name, raising=False)
    # many hosts set it (it is passed on to git); it must not beat the repository's CA
    monkeypatch.setenv("GIT_SSL_CAINFO", certifi.where())


@pytest.fixture(scope="module")
def company_ca() -> trustme.CA:
    return trustme.CA(organization_name="Acme Corp internal CA")


@pytest.fixture
def ca_file(company_ca: trustme.CA, tmp_path: Path) -> Path:
    path = tmp_path / "acme-ca.pem"
    company_ca.cert_pem.write_to_path(str(path))
    return path


@pytest.fixture
def https_server(upstream: Upstream, company_ca: trustme.CA) -> Iterator[GitServer]:
    with git_server(upstream.bare.parent, token=TOKEN, ca=company_ca) as server:
        yield server


def registered(settings: Settings, url: str, **forge: Any) -> Repository:
    sealed = seal_settings({"forge": forge}, secret_key(settings), kind="git")
    return Repository(
        id=1, name="private", forge_kind=ForgeKind.git, clone_url=url, settings=sealed
    )


def test_https_fetch_with_a_company_ca_uses_the_repositorys_ca_bundle_and_token(
    settings: Settings,
    mirrors: Mirrors,
    upstream: Upstream,
    https_server: GitServer,
    ca_file: Path,
) -> None:
    url = https_server.url(upstream.bare)
    repo = registered(settings, url, token=TOKEN, ca_bundle=str(ca_file))
    access = fetch_access(settings, repo)
    assert TOKEN not in repr(access)

    mirror = mirrors.ensure(repo.name, url, access=access)
    assert mirror.resolve("main") == plain_git(upstream.work, "rev-parse", "HEAD")
    assert set(https_server.seen) == {https_server.expected}

    newer = upstream.commit({"NEWS": "more\n"}, "news")  # the second time: a fetch
    mirrors.ensure(repo.name, https_server.url(upstream.bare), access=access)
    assert mirror.resolve("main") == newer


def test_without_the_ca_bundle_the_fetch_fails_and_says_which_setting_fixes_it(
    settings: Settings, mirrors: Mirrors, upstream: Upstream, https_server: GitServer
) -> None:
    url = https_server.url(upstream.bare)
    repo = registered(settings, url, token=TOKEN)
    with pytest.raises(RepoError) as caught:
        mirrors.ensure(repo.name, url, access=fetch_access(settings, repo))
    message = caught.value.message
    assert "certificate" in message.lower()
    assert "forge.ca_bundle" in message
    assert TOKEN not in message
    assert not mirrors.path(repo.name).exists()


def test_verify_tls_off_reaches_the_self_signed_server(
    settings: Settings, mirrors: Mirrors, upstream: Upstream, https_server: GitServer
) -> None:
    url = https_server.url(upstream.bare)
    repo = registered(settings, url, token=TOKEN, verify_tls=False)
    mirror = mirrors.ensure(repo.name, url, access=fetch_access(settings, repo))
    assert mirror.resolve("main") == plain_git(upstream.work, "rev-parse", "HEAD")


def test_the_repositorys_proxy_carries_the_fetch(
    settings: Settings, mirrors: Mirrors, upstream: Upstream, tmp_path: Path
) -> None:
    with git_server(upstream.bare.parent, token=TOKEN) as server:
        # a host only the proxy (the git server, answering absolute-form requests) knows
        url = f"http://git.acme.invalid/{upstream.bare.name}"
        server.url(upstream.bare)
        repo = registered(settings, url, token=TOKEN, proxy_url=server.base)
        mirror = mirrors.ensure(repo.name, url, access=fetch_access(settings, repo))
    assert mirror.resolve("main") == plain_git(upstream.work, "rev-parse", "HEAD")
    assert set(server.seen) == {server.expected}
    assert server.proxied
    assert all(t.startswith("http://git.acme.invalid/upstream.git/") for t in server.proxied)


@pytest.mark.slow
def test_repo_index_of_a_private_https_repository_uses_token_and_ca_bundle(
    upstream: Upstream, https_server: GitServer, ca_file: Path
) -> None:
    url = https_server.url(upstream.bare)
    env = {**LEXICAL, "ACME_GIT_TOKEN": TOKEN}
    assert cli("migrate").returncode == 0
    added = cli(
        "repo", "add", "private", url, "--forge", "git",
        "--token-env", "ACME_GIT_TOKEN", "--ca-bundle", str(ca_file), env=env,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert cli("repo", "add", "no-token", url, "--forge", "git").returncode == 0

    indexed = cli("repo", "index", "private", env=LEXICAL)
    assert indexed.returncode == 0, indexed.stderr
    assert "full index at" in indexed.stdout
    assert set(https_server.seen) == {https_server.expected}

    refused = cli("repo", "index", "no-token", env=LEXICAL)
    assert refused.returncode == 1
    assert "certificate" in refused.stderr.lower()
    assert TOKEN not in refused.stderr + refused.stdout
