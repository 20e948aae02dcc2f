from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from appliance.config import load_settings
from appliance.doctor import check_model_endpoints
from tests.models.scripted_server import Reply, ScriptedServer, dead_port
from tests.servers import REPO_ROOT

pytestmark = pytest.mark.slow


def _doctor(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "appliance", "doctor", "--json"],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env={**os.environ, **env},
        check=False,
    )


def test_doctor_reports_unmigrated_database_and_missing_podman(tmp_path: Path) -> None:
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    result = _doctor({"PATH": str(empty_bin)})
    assert result.returncode == 1
    report = json.loads(result.stdout)
    checks = {c["name"]: c for c in report["checks"]}
    assert report["ok"] is False
    assert checks["data_dir"]["status"] == "ok"
    assert checks["database"]["status"] == "fail"
    assert "appliance migrate" in checks["database"]["message"]
    assert checks["podman"]["status"] == "fail"
    assert "setup-host.sh" in checks["podman"]["message"]
    assert checks["gpus"]["status"] == "warn"


def test_doctor_fails_on_unreachable_model_endpoint(tmp_path: Path) -> None:
    result = _doctor({"APPLIANCE_MODELS__ENDPOINTS": '["http://127.0.0.1:9/v1"]'})
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert checks["models"]["status"] == "fail"
    assert "127.0.0.1:9" in checks["models"]["message"]
    assert result.returncode == 1


def test_doctor_reports_rootless_podman_images_and_enforced_limits() -> None:
    subprocess.run(
        [sys.executable, "-m", "appliance", "migrate"],
        cwd=REPO_ROOT,
        check=True,
        capture_output=True,
    )
    result = _doctor({})
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert checks["podman"]["status"] == "ok", checks["podman"]
    assert "rootless as appliance-sandbox" in checks["podman"]["message"]
    assert checks["sandbox_images"]["status"] == "ok", checks["sandbox_images"]
    assert checks["sandbox_limits"]["status"] == "ok"
    assert "memory, pids, CPU" in checks["sandbox_limits"]["message"]


def _model_check(endpoints: str) -> dict[str, str]:
    report = json.loads(_doctor({"APPLIANCE_MODELS__ENDPOINTS": endpoints}).stdout)
    return next(c for c in report["checks"] if c["name"] == "models")


def test_doctor_checks_a_real_model_endpoint_and_names_a_missing_model() -> None:
    from models.llamacpp import LlamaCppServer, smollm2_gguf

    with LlamaCppServer(smollm2_gguf(), ctx=1024) as server:
        base = f'"base_url": "{server.base_url}", "kind": "llamacpp"'
        good = _model_check(f'[{{{base}, "model": "{server.model}", "context_length": 1024}}]')
        wrong = _model_check(f'[{{{base}, "model": "qwen-coder", "context_length": 1024}}]')
        # the default context_length (8192) is more than this server serves
        too_long = _model_check(f'[{{{base}, "model": "{server.model}"}}]')
    assert good["status"] == "ok", good
    assert wrong["status"] == "fail"
    assert "does not serve 'qwen-coder'" in wrong["message"]
    assert too_long["status"] == "fail"
    assert "configured context_length 8192, server serves 1024" in too_long["message"]
    assert "set context_length = 1024" in too_long["message"]


def test_doctor_reports_a_model_list_that_is_not_json_without_a_traceback() -> None:
    page = b"<html><head><title>Proxy login</title></head><body>" + b"x" * 200 + b"</body></html>"
    with ScriptedServer([Reply(body=page)]) as srv:
        result = _doctor({"APPLIANCE_MODELS__ENDPOINTS": f'["{srv.url}"]'})
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 1
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    message = checks["models"]["message"]
    assert checks["models"]["status"] == "fail"
    assert f"endpoint {srv.url} answered /v1/models with something that is not the OpenAI" in (
        message
    )
    assert "<html><head><title>Proxy login</title></head><body>xxx" in message
    assert "x" * 100 not in message  # only the start of the page is quoted


def test_a_json_reply_that_is_not_a_model_list_is_a_problem_too() -> None:
    with ScriptedServer([Reply(json=["coder"])]) as srv:
        check = check_model_endpoints(load_settings(models={"endpoints": [srv.url]}))
    assert check.status == "fail"
    assert "not the OpenAI model list: '[\"coder\"]'" in check.message


def test_vllm_max_model_len_below_the_configured_context_is_a_problem() -> None:
    listed = {"object": "list", "data": [{"id": "coder", "max_model_len": 32768}]}
    health = Reply(json={})
    script = [health, Reply(json=listed), health, Reply(json=listed)]
    with ScriptedServer(script) as srv:
        endpoint = {"base_url": srv.url, "kind": "vllm", "model": "coder"}
        too_long = check_model_endpoints(
            load_settings(models={"endpoints": [endpoint | {"context_length": 65536}]})
        )
        right = check_model_endpoints(
            load_settings(models={"endpoints": [endpoint | {"context_length": 32768}]})
        )
    assert too_long.status == "fail"
    assert "configured context_length 65536, server serves 32768" in too_long.message
    assert right.status == "ok", right


def test_doctor_asks_local_endpoints_directly_not_through_the_environment_proxy() -> None:
    from models.llamacpp import LlamaCppServer, smollm2_gguf

    dead_proxy = f"http://127.0.0.1:{dead_port()}"
    proxies = {"HTTP_PROXY": dead_proxy, "http_proxy": dead_proxy, "ALL_PROXY": dead_proxy}
    no_bypass = {"NO_PROXY": "", "no_proxy": ""}
    with LlamaCppServer(smollm2_gguf(), ctx=1024) as server:
        endpoint = (
            f'[{{"base_url": "{server.base_url}", "kind": "llamacpp", '
            f'"model": "{server.model}", "context_length": 1024}}]'
        )
        result = _doctor({"APPLIANCE_MODELS__ENDPOINTS": endpoint, **proxies, **no_bypass})
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert checks["models"]["status"] == "ok", checks["models"]
