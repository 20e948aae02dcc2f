"""HTTPS forges with a company CA: refused without the bundle, fine with it."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from appliance.forges import ForgeSettings, build_forge
from appliance.forges.errors import ForgeTLSError
from tests.forges.conftest import FakeTime
from tests.forges.fakeforge import FakeForge, Reply

REPO = "/repos/acme/widgets"


def serve(server: FakeForge) -> None:
    server.on("GET", REPO, Reply(body="github/repo.json"))
    server.on("GET", f"{REPO}/languages", Reply(body="github/languages.json"))
    server.on("GET", f"{REPO}/branches", Reply(body="github/branches_protected.json"))


def build(server: FakeForge, fake_time: FakeTime, **tls: Any) -> Any:
    settings = ForgeSettings(
        kind="github", base_url=server.api, token=SecretStr("ghp_tls_test_token_1234"), **tls
    )
    return build_forge(settings, "acme/widgets", sleep=fake_time.sleep, clock=fake_time.clock)


def test_self_signed_without_ca_bundle_is_a_tls_error(
    https_github: FakeForge, fake_time: FakeTime
) -> None:
    serve(https_github)
    forge = build(https_github, fake_time)
    with pytest.raises(ForgeTLSError, match=r"set the CA bundle \(ca_bundle\).*verify_tls=false"):
        forge.metadata()
    assert fake_time.slept == []  # a certificate problem is not retried
    forge.close()


def test_with_the_ca_bundle_it_works(
    https_github: FakeForge, fake_time: FakeTime, ca_bundle: Path
) -> None:
    serve(https_github)
    forge = build(https_github, fake_time, ca_bundle=ca_bundle)
    assert forge.metadata().default_branch == "main"
    forge.close()


def test_verify_off_works_and_warns_once(
    https_github: FakeForge, fake_time: FakeTime, caplog: pytest.LogCaptureFixture
) -> None:
    serve(https_github)
    with caplog.at_level(logging.WARNING, logger="appliance.forges"):
        forge = build(https_github, fake_time, verify_tls=False)
        assert forge.metadata().default_branch == "main"
        forge.metadata(refresh=True)
    warnings = [r for r in caplog.records if "TLS verification is OFF" in r.getMessage()]
    assert len(warnings) == 1
    forge.close()


def test_gitlab_without_ca_bundle_is_a_tls_error_too(
    https_github: FakeForge, fake_time: FakeTime
) -> None:
    settings = ForgeSettings(kind="gitlab", base_url=https_github.url, token=SecretStr("x" * 20))
    forge = build_forge(settings, "acme/widgets", sleep=fake_time.sleep, clock=fake_time.clock)
    with pytest.raises(ForgeTLSError, match="ca_bundle"):
        forge.metadata()
    forge.close()


@pytest.mark.parametrize(("kind", "api"), [("github", "/api/v3"), ("gitlab", "")])
def test_a_ca_bundle_that_does_not_exist_is_a_clear_error_naming_it(
    https_github: FakeForge, fake_time: FakeTime, tmp_path: Path, kind: str, api: str
) -> None:
    missing = tmp_path / "removed-ca.pem"  # accepted once, deleted since
    settings = ForgeSettings(
        kind=kind,
        base_url=https_github.url + api,
        token=SecretStr("x" * 20),
        ca_bundle=missing,
    )
    forge = build_forge(settings, "acme/widgets", sleep=fake_time.sleep, clock=fake_time.clock)
    with pytest.raises(ForgeTLSError) as caught:
        forge.metadata()
    assert str(missing) in caught.value.message
    assert "set ca_bundle to an existing PEM file" in caught.value.message
    assert fake_time.slept == []
    assert https_github.seen == []
    forge.close()
