"""The `appliance` command, run as a user would: in a subprocess."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from appliance.config import Settings
from tests.conftest import Tokens
from tests.servers import REPO_ROOT, ServerProcess

pytestmark = pytest.mark.slow


def cli(
    *args: str, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "appliance", *args],
        capture_output=True,
        text=True,
        input=stdin,
        cwd=REPO_ROOT,
        env={**os.environ, **(env or {})},
        check=False,
        timeout=120,
    )


def test_every_command_has_help() -> None:
    for args in (
        [],
        ["serve"],
        ["migrate"],
        ["doctor"],
        ["user", "create"],
        ["token", "create"],
        ["repo", "add"],
        ["repo", "list"],
        ["task", "submit"],
        ["task", "list"],
        ["task", "show"],
        ["task", "cancel"],
        ["task", "follow"],
        ["audit", "verify"],
        ["audit", "export"],
        ["sandbox", "build-image"],
        ["models", "plan"],
        ["models", "serve"],
        ["models", "unit"],
        ["jobs", "list"],
        ["jobs", "run"],
        ["deps", "check"],
        ["repo", "index"],
        ["search"],
        ["backup"],
        ["restore"],
    ):
        result = cli(*args, "--help")
        assert result.returncode == 0, (args, result.stderr)
        assert "Usage:" in result.stdout


def test_commands_before_migrate_say_to_migrate() -> None:
    result = cli("repo", "list")
    assert result.returncode == 2
    assert "run `appliance migrate` first" in result.stderr
    assert "Traceback" not in result.stderr


def test_admin_flow_users_tokens_repos_audit(settings: Settings) -> None:
    assert "database migrated" in cli("migrate").stdout
    assert "already at" in cli("migrate").stdout
    created = cli(
        "user",
        "create",
        "alice",
        "--role",
        "admin",
        "--password-stdin",
        stdin="correct horse battery\n",
    )
    assert created.returncode == 0, created.stderr
    short = cli("user", "create", "bob", "--password-stdin", stdin="short\n")
    assert short.returncode == 1
    assert "at least 8 characters" in short.stderr
    dup = cli("user", "create", "alice", "--no-password")
    assert dup.returncode == 1
    assert "exists already" in dup.stderr
    token = cli("token", "create", "alice", "--name", "laptop").stdout.strip()
    assert token.startswith("apl_")
    assert len(token) > 40
    over = cli("user", "create", "vic", "--role", "viewer", "--no-password")
    assert over.returncode == 0
    too_much = cli("token", "create", "vic", "--role", "admin")
    assert too_much.returncode == 1
    assert "cannot carry more" in too_much.stderr
    added = cli(
        "repo", "add", "team/api", "https://gitlab.internal/team/api.git", "--forge", "gitlab"
    )
    assert added.returncode == 0
    assert "id 1" in added.stdout
    listed = json.loads(cli("repo", "list", "--json").stdout)
    assert [(r["name"], r["forge_kind"]) for r in listed] == [("team/api", "gitlab")]

    ok = cli("audit", "verify")
    assert ok.returncode == 0
    assert "intact" in ok.stdout
    export = settings.data_dir / "audit.jsonl"
    cli("audit", "export", "-o", str(export))
    records = [json.loads(line) for line in export.read_text().splitlines()]
    assert [r["action"] for r in records] == [
        "user.create",
        "token.create",
        "user.create",
        "repository.create",
    ]
    assert all(r["actor"].startswith("cli:") for r in records)
    assert records[1]["prev_hash"] == records[0]["hash"]
    # The clear token is never stored or audited, only its hash.
    assert token not in export.read_text()
    raw = sqlite3.connect(settings.data_dir / "appliance.db")
    assert token not in "".join(str(row) for row in raw.execute("SELECT * FROM api_token"))
    raw.execute("DROP TRIGGER audit_record_no_update")
    raw.execute("UPDATE audit_record SET actor='cli:mallory' WHERE seq=3")
    raw.commit()
    raw.close()
    broken = cli("audit", "verify")
    assert broken.returncode == 1
    assert "BROKEN at record 3" in broken.stderr


def test_audit_verify_catches_the_newest_records_removed(settings: Settings) -> None:
    assert cli("migrate").returncode == 0
    for name in ("ann", "ben", "cat"):
        assert cli("user", "create", name, "--no-password").returncode == 0
    intact = cli("audit", "verify")
    assert intact.returncode == 0, intact.stderr
    assert "audit chain intact: 3 records" in intact.stdout
    assert intact.stderr == ""  # the head is anchored: no warning
    raw = sqlite3.connect(settings.data_dir / "appliance.db")
    raw.execute("DROP TRIGGER audit_record_no_delete")
    raw.execute("DELETE FROM audit_record WHERE seq = 3")
    raw.commit()
    raw.close()
    broken = cli("audit", "verify")
    assert broken.returncode == 1
    assert "BROKEN at record 3" in broken.stderr
    assert "the log ends at seq 2 but the anchor says 3: records were removed" in broken.stderr
    (settings.data_dir / "audit-head").unlink()  # both the records and the anchor gone
    unanchored = cli("audit", "verify")
    assert unanchored.returncode == 0
    assert "no head anchor" in unanchored.stderr


def test_task_commands_against_a_running_server(
    server_tokens: Tokens, gate_dir: Path, tmp_path: Path
) -> None:
    env = {"APPLIANCE_RUNNER__GRAPH": "tests.graphs:blocking_graph"}
    with ServerProcess(env, tmp_path / "server.log") as server:
        assert cli("repo", "add", "demo", "/srv/git/demo.git").returncode == 0
        dev = {"APPLIANCE_SERVER_URL": server.url, "APPLIANCE_TOKEN": server_tokens.dev}
        no_token = cli("task", "list", env={"APPLIANCE_SERVER_URL": server.url})
        assert no_token.returncode == 2
        assert "APPLIANCE_TOKEN" in no_token.stderr
        submitted = cli(
            "task",
            "submit",
            "--repo",
            "demo",
            "-",
            "--max-files",
            "2",
            stdin="add a flag\n",
            env=dev,
        )
        assert submitted.returncode == 0, submitted.stderr
        task_id = submitted.stdout.strip()
        shown = json.loads(cli("task", "show", task_id, "--json", env=dev).stdout)
        assert shown["prompt"] == "add a flag\n"
        assert shown["constraints"]["max_files_changed"] == 2
        listed = cli("task", "list", env=dev)
        assert task_id in listed.stdout
        (gate_dir / task_id).touch()
        followed = cli("task", "follow", task_id, env=dev)
        assert followed.returncode == 0, followed.stderr
        assert "status -> done" in followed.stdout
        assert "waiting at the gate" in followed.stdout

        second = cli("task", "submit", "--repo", "demo", "refactor it", env=dev).stdout.strip()
        viewer = {**dev, "APPLIANCE_TOKEN": server_tokens.viewer}
        refused = cli("task", "cancel", second, env=viewer)
        assert refused.returncode == 1
        assert "HTTP 403" in refused.stderr
        cancelled = cli("task", "cancel", second, env=dev)
        assert cancelled.returncode == 0
        assert "cancelled" in cancelled.stdout
        again = cli("task", "follow", second, env=dev)
        assert again.returncode == 1
        assert "status -> cancelled" in again.stdout
        unknown = cli("task", "submit", "--repo", "nope", "x", env=dev)
        assert unknown.returncode == 1
        assert "no repository named 'nope'" in unknown.stderr

    down = cli("task", "list", env=dev)
    assert down.returncode == 1
    assert "cannot reach the appliance" in down.stderr


def test_serve_refuses_default_secret_outside_dev_mode() -> None:
    result = cli("serve", env={"APPLIANCE_DEV_MODE": "0"})
    assert result.returncode == 2
    assert "APPLIANCE_SECURITY__SECRET_KEY" in result.stderr


def test_dev_serve_bootstraps_an_admin_token_file(settings: Settings, tmp_path: Path) -> None:
    import httpx

    with ServerProcess({}, tmp_path / "server.log") as server:
        token_file = settings.data_dir / "admin-token"
        assert token_file.stat().st_mode & 0o777 == 0o600
        token = token_file.read_text().strip()
        r = httpx.get(server.url + "/api/v1/tasks", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200
        log = server.log()
    assert token not in log
    assert "admin-token" in log


def test_models_plan_reads_an_inventory_and_prints_the_arithmetic(tmp_path: Path) -> None:
    inventory = tmp_path / "gpus.csv"
    inventory.write_text("NVIDIA RTX A6000, 49140\n")
    result = cli("models", "plan", "--gpus-file", str(inventory))
    assert result.returncode == 0, result.stderr
    assert "Qwen2.5-Coder-32B-Instruct awq" in result.stdout
    assert "--max-model-len 32768" in result.stdout
    inventory.write_text("not a gpu line\n")
    bad = cli("models", "plan", "--gpus-file", str(inventory))
    assert bad.returncode == 1
    assert "not '<name>, <memory MiB>'" in bad.stderr


def test_models_unit_writes_the_quadlet_for_the_plan(tmp_path: Path) -> None:
    inventory = tmp_path / "gpus.csv"
    inventory.write_text("NVIDIA H100 80GB HBM3, 81559\n")
    weights = "/var/lib/appliance/models/Qwen2.5-Coder-32B-Instruct"
    result = cli(
        "models", "unit", "--gpus-file", str(inventory), "--model-dir", weights,
        "--image", "registry.internal/vllm/vllm-openai:v0.11.0",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Image=registry.internal/vllm/vllm-openai:v0.11.0" in result.stdout
    assert "AddDevice=nvidia.com/gpu=all" in result.stdout
    assert f"Volume={weights}:/models/Qwen2.5-Coder-32B-Instruct:ro" in result.stdout
    relative = cli(
        "models", "unit", "--gpus-file", str(inventory), "--model-dir", "weights",
        "--image", "x",
    )  # fmt: skip
    assert relative.returncode == 1
    assert "absolute" in relative.stderr


def test_models_serve_without_a_gpu_build_says_what_to_install(tmp_path: Path) -> None:
    inventory = tmp_path / "gpus.csv"
    inventory.write_text("NVIDIA H100 80GB HBM3, 81559\n")
    weights = tmp_path / "weights"
    weights.mkdir()
    no_dir = cli("models", "serve", "--gpus-file", str(inventory))
    assert no_dir.returncode == 1
    assert "pass --model-dir" in no_dir.stderr
    result = cli(
        "models", "serve", "--gpus-file", str(inventory), "--model-dir", str(weights),
        env={"PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert result.returncode == 1
    assert "vLLM is not installed here: install the gpu extra" in result.stderr


def test_the_demo_repository_is_registered_once_and_has_a_failing_test(tmp_path: Path) -> None:
    assert cli("migrate").returncode == 0
    first = cli("repo", "demo")
    assert first.returncode == 0, first.stderr
    assert "registered the demo repository demo/calc" in first.stdout
    again = cli("repo", "demo")
    assert "is registered" in again.stdout
    listed = json.loads(cli("repo", "list", "--json").stdout)
    [demo] = [r for r in listed if r["name"] == "demo/calc"]
    checkout = tmp_path / "calc"
    subprocess.run(["git", "clone", "-q", demo["clone_url"], str(checkout)], check=True)
    failing = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(checkout / "tests")],
        cwd=checkout,
        capture_output=True,
        text=True,
        check=False,
    )
    assert failing.returncode == 1
    assert "1 failed, 1 passed" in failing.stdout
