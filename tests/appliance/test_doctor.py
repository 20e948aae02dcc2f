from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

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
        good = _model_check(f'[{{{base}, "model": "{server.model}"}}]')
        wrong = _model_check(f'[{{{base}, "model": "qwen-coder"}}]')
    assert good["status"] == "ok", good
    assert wrong["status"] == "fail"
    assert "does not serve 'qwen-coder'" in wrong["message"]
