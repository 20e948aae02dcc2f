from __future__ import annotations

from pathlib import Path

import pytest

from appliance.config import load_settings
from appliance.errors import ConfigError


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("APPLIANCE_DATA_DIR")
    cfg = load_settings()
    assert cfg.data_dir == Path("var")
    assert (cfg.server.host, cfg.server.port) == ("127.0.0.1", 8000)
    assert cfg.limits.max_prompt_chars == 20_000
    assert cfg.database_url.endswith("/var/appliance.db")
    assert cfg.database_url.startswith("sqlite:///")


def test_env_overrides_nested_sections(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APPLIANCE_SERVER__PORT", "9123")
    monkeypatch.setenv("APPLIANCE_RUNNER__CONCURRENCY", "7")
    monkeypatch.setenv("APPLIANCE_MODELS__ENDPOINTS", '["http://127.0.0.1:8001/v1"]')
    cfg = load_settings()
    assert cfg.server.port == 9123
    assert cfg.runner.concurrency == 7
    assert [e.base_url for e in cfg.models.endpoints] == ["http://127.0.0.1:8001/v1"]
    assert cfg.models.endpoints[0].kind == "openai"


def test_endpoints_with_keys_never_show_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "APPLIANCE_MODELS__ENDPOINTS",
        '[{"base_url": "http://gpu1:8001/v1", "model": "qwen-coder", "kind": "vllm",'
        ' "api_key": "sk-very-secret", "context_length": 32768}]',
    )
    endpoint = load_settings().models.endpoints[0]
    assert (endpoint.kind, endpoint.model, endpoint.context_length) == ("vllm", "qwen-coder", 32768)
    assert "sk-very-secret" not in repr(endpoint)
    assert endpoint.api_key is not None
    assert endpoint.api_key.get_secret_value() == "sk-very-secret"


def test_toml_file_named_by_appliance_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "appliance.toml"
    path.write_text("[server]\nport = 8800\n[limits]\nmax_prompt_chars = 500\n")
    monkeypatch.setenv("APPLIANCE_CONFIG", str(path))
    monkeypatch.setenv("APPLIANCE_SERVER__PORT", "8900")  # the environment wins
    cfg = load_settings()
    assert cfg.limits.max_prompt_chars == 500
    assert cfg.server.port == 8900


def test_missing_config_file_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APPLIANCE_CONFIG", "/nonexistent/appliance.toml")
    with pytest.raises(ConfigError, match="not a readable file"):
        load_settings()


def test_unknown_and_invalid_keys_are_refused_with_their_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "appliance.toml"
    path.write_text("[server]\nprot = 1\n[runner]\nconcurrency = 0\n")
    monkeypatch.setenv("APPLIANCE_CONFIG", str(path))
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert "server.prot" in err.value.message
    assert "runner.concurrency" in err.value.message


def test_default_secret_refused_outside_dev_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APPLIANCE_DEV_MODE", "0")
    with pytest.raises(ConfigError, match="APPLIANCE_SECURITY__SECRET_KEY"):
        load_settings().check_secure()
    monkeypatch.setenv("APPLIANCE_SECURITY__SECRET_KEY", "a-long-random-secret-value-0123456789")
    load_settings().check_secure()
