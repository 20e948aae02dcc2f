"""`appliance models plan/unit`, run as a user would (a subprocess): where the GPU inventory
comes from, and the unit's container name."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.servers import REPO_ROOT

pytestmark = pytest.mark.slow

WEIGHTS = "/var/lib/appliance/models/Qwen2.5-Coder-32B-Instruct"


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "appliance", *args],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env={**os.environ, **env},
        check=False,
        timeout=120,
    )


def no_nvidia_smi(tmp_path: Path) -> dict[str, str]:
    """A PATH on which no nvidia-smi can be found."""
    empty = tmp_path / "bin"
    empty.mkdir(exist_ok=True)
    return {"PATH": str(empty)}


def gpus(*memory_gib: float) -> dict[str, str]:
    listed = [{"name": "NVIDIA GeForce RTX 4090", "memory_gib": m} for m in memory_gib]
    return {"APPLIANCE_MODELS__GPUS": json.dumps(listed)}


def test_plan_uses_the_gpus_listed_in_the_settings(tmp_path: Path) -> None:
    two_24 = cli("models", "plan", env=no_nvidia_smi(tmp_path) | gpus(23.99, 23.99))
    assert two_24.returncode == 0, two_24.stderr
    assert "Qwen2.5-Coder-32B-Instruct awq" in two_24.stdout
    assert "--tensor-parallel-size 2" in two_24.stdout
    one_24 = cli("models", "plan", env=no_nvidia_smi(tmp_path) | gpus(23.99))
    assert one_24.returncode == 0, one_24.stderr
    assert "Qwen2.5-Coder-7B-Instruct bf16" in one_24.stdout
    assert "--tensor-parallel-size 1" in one_24.stdout


def test_a_gpus_file_on_the_command_line_wins_over_the_settings(tmp_path: Path) -> None:
    inventory = tmp_path / "gpus.csv"
    inventory.write_text("NVIDIA H100 80GB HBM3, 81559\n")
    result = cli(
        "models", "plan", "--gpus-file", str(inventory),
        env=no_nvidia_smi(tmp_path) | gpus(23.99),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Qwen2.5-Coder-32B-Instruct fp8" in result.stdout


def test_without_any_inventory_the_error_names_every_way_to_give_one(tmp_path: Path) -> None:
    result = cli("models", "plan", env=no_nvidia_smi(tmp_path))
    assert result.returncode == 1
    assert "no nvidia-smi on this host" in result.stderr
    assert "models.gpus" in result.stderr
    assert "--gpus-file" in result.stderr


def test_bad_gpus_in_the_settings_are_refused_with_the_field_named(tmp_path: Path) -> None:
    result = cli("models", "plan", env=no_nvidia_smi(tmp_path) | gpus(0))
    assert result.returncode != 0
    assert "models.gpus.0.memory_gib" in result.stderr


def test_unit_takes_a_container_name_and_defaults_to_the_served_name(tmp_path: Path) -> None:
    env = no_nvidia_smi(tmp_path) | gpus(79.6)
    common = ["models", "unit", "--model-dir", WEIGHTS, "--image", "registry.internal/vllm:1"]
    default = cli(*common, "--served-name", "qwen-32b", env=env)
    assert default.returncode == 0, default.stderr
    assert "ContainerName=vllm-qwen-32b\n" in default.stdout
    named = cli(*common, "--served-name", "qwen-32b", "--container-name", "llm-a", env=env)
    assert named.returncode == 0, named.stderr
    assert "ContainerName=llm-a\n" in named.stdout
    bad = cli(*common, "--container-name", "two words", env=env)
    assert bad.returncode == 1
    assert "container_name must be non-empty without whitespace" in bad.stderr
