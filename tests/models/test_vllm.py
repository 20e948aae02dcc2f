"""vLLM launcher: argv, env, Quadlet text, readiness against a real HTTP server, metrics."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from models.catalog import variant
from models.errors import ModelsError
from models.sizing import Gpu, Plan, plan
from models.vllm import (
    MIN_PODMAN,
    container_name_for,
    parse_metrics,
    quadlet_unit,
    serve_argv,
    serve_env,
    systemd_quote,
    wait_ready,
)
from tests.servers import REPO_ROOT

H100 = Gpu("NVIDIA H100 80GB HBM3", 81_559)
RTX4090 = Gpu("NVIDIA GeForce RTX 4090", 24_564)
MODEL_DIR = Path("/var/lib/appliance/models/Qwen2.5-Coder-32B-Instruct")
SPEC_JSON = '{"method": "ngram", "num_speculative_tokens": 5, "prompt_lookup_max": 4}'


def h100_plan() -> Plan:
    p = plan([H100])
    assert p.variant.key == "qwen2.5-coder-32b:fp8"
    return p


def test_argv_h100_32b_fp8() -> None:
    argv = serve_argv(h100_plan(), model_dir=MODEL_DIR, served_name="coder")
    assert argv == [
        "vllm",
        "serve",
        "/var/lib/appliance/models/Qwen2.5-Coder-32B-Instruct",
        "--served-model-name",
        "coder",
        "--host",
        "127.0.0.1",
        "--port",
        "8001",
        "--quantization",
        "fp8",
        "--enable-prefix-caching",
        "--max-model-len",
        "32768",
        "--tensor-parallel-size",
        "1",
        "--gpu-memory-utilization",
        "0.90",
    ]


def test_argv_two_24gb_tp2_awq_with_ngram() -> None:
    p = plan([RTX4090, RTX4090])
    assert (p.variant.key, p.tensor_parallel_size) == ("qwen2.5-coder-32b:awq", 2)
    argv = serve_argv(
        p,
        model_dir=Path("/models/awq"),
        served_name="qwen-coder",
        host="192.168.1.10",
        port=9000,
        ngram_speculation=True,
    )
    assert argv == [
        "vllm",
        "serve",
        "/models/awq",
        "--served-model-name",
        "qwen-coder",
        "--host",
        "192.168.1.10",
        "--port",
        "9000",
        "--enable-prefix-caching",
        "--max-model-len",
        "32768",
        "--tensor-parallel-size",
        "2",
        "--gpu-memory-utilization",
        "0.90",
        "--speculative-config",
        SPEC_JSON,
    ]
    assert json.loads(argv[-1]) == {
        "method": "ngram",
        "num_speculative_tokens": 5,
        "prompt_lookup_max": 4,
    }


def test_argv_keeps_fp8_kv_cache_dtype_and_never_names_the_hub_repo() -> None:
    p = Plan(
        variant=variant("qwen2.5-coder-14b:fp8"),
        max_model_len=16_384,
        tensor_parallel_size=1,
        gpu_memory_utilization=0.9,
        kv_cache_dtype="fp8",
        sessions=4,
        gpu_name="test",
        gpu_memory_mib=24_564,
        gpu_count=1,
    )
    argv = serve_argv(p, model_dir=Path("/m/14b"), served_name="coder")
    assert argv[-2:] == ["--kv-cache-dtype", "fp8"]
    assert "--model" not in argv
    assert not any("Qwen/" in a for a in argv)
    assert argv.count("--enable-prefix-caching") == 1


def test_env_is_offline() -> None:
    assert serve_env() == {
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "VLLM_NO_USAGE_STATS": "1",
        "DO_NOT_TRACK": "1",
    }


EXPECTED_UNIT = """\
# Needs Podman 5.0+ (Quadlet Entrypoint= and Notify=healthy).
[Unit]
Description=vLLM serving Qwen2.5-Coder-32B-Instruct fp8 as coder

[Container]
Image=docker.io/vllm/vllm-openai:v0.11.0
ContainerName=vllm-coder
Volume=/var/lib/appliance/models/Qwen2.5-Coder-32B-Instruct:/models/Qwen2.5-Coder-32B-Instruct:ro
AddDevice=nvidia.com/gpu=all
Environment=HF_HUB_OFFLINE=1
Environment=TRANSFORMERS_OFFLINE=1
Environment=VLLM_NO_USAGE_STATS=1
Environment=DO_NOT_TRACK=1
Network=pasta
PublishPort=127.0.0.1:8001:8000
ShmSize=16g
Entrypoint=vllm
Exec=serve /models/Qwen2.5-Coder-32B-Instruct --served-model-name coder --host 0.0.0.0 \
--port 8000 --quantization fp8 --enable-prefix-caching --max-model-len 32768 \
--tensor-parallel-size 1 --gpu-memory-utilization 0.90 --speculative-config \
"{\\"method\\": \\"ngram\\", \\"num_speculative_tokens\\": 5, \\"prompt_lookup_max\\": 4}"
HealthCmd=curl -fsS http://127.0.0.1:8000/health
HealthInterval=30s
HealthStartPeriod=15m
HealthRetries=3
Notify=healthy

[Service]
Restart=on-failure
TimeoutStartSec=900

[Install]
WantedBy=default.target
"""


def test_quadlet_unit_full_text_with_speculation() -> None:
    unit = quadlet_unit(
        h100_plan(),
        image="docker.io/vllm/vllm-openai:v0.11.0",
        model_dir=MODEL_DIR,
        served_name="coder",
        port=8001,
        ngram_speculation=True,
    )
    assert unit == EXPECTED_UNIT


def test_each_served_model_gets_its_own_container_name() -> None:
    def name_in(unit: str) -> str:
        [line] = [x for x in unit.splitlines() if x.startswith("ContainerName=")]
        return line.removeprefix("ContainerName=")

    def unit_for(served: str, container_name: str | None = None) -> str:
        return quadlet_unit(
            h100_plan(),
            image="img",
            model_dir=MODEL_DIR,
            served_name=served,
            container_name=container_name,
        )

    assert name_in(unit_for("coder")) == "vllm-coder"
    assert name_in(unit_for("reviewer")) == "vllm-reviewer"
    # characters Podman refuses in a container name are replaced
    assert name_in(unit_for("Qwen/Qwen2.5-Coder 32B")) == "vllm-Qwen-Qwen2.5-Coder-32B"
    assert container_name_for("ünïcode:tag") == "vllm-n-code-tag"
    assert name_in(unit_for("coder", container_name="llm-main")) == "llm-main"


def test_the_ansible_preflight_asks_for_the_podman_the_unit_needs() -> None:
    """The unit uses Entrypoint= and Notify=healthy (Podman 5.0); the models role must refuse
    older Podman before installing it, not let systemd fail on unknown keys later."""
    tasks = (REPO_ROOT / "ansible/roles/models/tasks/main.yml").read_text()
    assert f'quadlet_min_podman: "{MIN_PODMAN}"' in tasks
    unit = quadlet_unit(h100_plan(), image="img", model_dir=MODEL_DIR, served_name="coder")
    assert "Entrypoint=vllm\n" in unit
    assert "Notify=healthy\n" in unit
    assert MIN_PODMAN == "5.0"
    check = (REPO_ROOT / "ansible/roles/models/tasks/quadlet_check.yml").read_text()
    assert "quadlet_version is version(quadlet_min, '>=')" in check


def test_quadlet_without_speculation_and_bad_inputs() -> None:
    unit = quadlet_unit(h100_plan(), image="img", model_dir=MODEL_DIR, served_name="coder")
    assert "--speculative-config" not in unit
    assert "PublishPort=127.0.0.1:8001:8000\n" in unit
    with pytest.raises(ValueError, match="absolute"):
        quadlet_unit(h100_plan(), image="img", model_dir=Path("rel"), served_name="coder")
    with pytest.raises(ValueError, match="image"):
        quadlet_unit(h100_plan(), image="a b", model_dir=MODEL_DIR, served_name="coder")


def test_systemd_quote() -> None:
    assert systemd_quote("--port") == "--port"
    assert systemd_quote("a b") == '"a b"'
    assert systemd_quote("") == '""'
    assert systemd_quote('x"y\\z') == '"x\\"y\\\\z"'
    assert systemd_quote("50%$HOME") == '"50%%$$HOME"'
    with pytest.raises(ValueError, match="line break"):
        systemd_quote("a\nb")


# --- readiness against a real HTTP server ---------------------------------------------------


@dataclass
class FakeVllm:
    health_status: int = 200
    models: list[str] = field(default_factory=lambda: ["coder"])
    paths: list[str] = field(default_factory=list)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        state = self.server.state
        state.paths.append(self.path)
        if self.path == "/health":
            self._send(state.health_status, b"")
        elif self.path == "/v1/models":
            body = {
                "object": "list",
                "data": [{"id": m, "object": "model", "owned_by": "vllm"} for m in state.models],
            }
            self._send(200, json.dumps(body).encode())
        else:
            self._send(404, b'{"detail": "Not Found"}')

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: FakeVllm


@pytest.fixture
def fake() -> Iterator[tuple[FakeVllm, str]]:
    srv = _Server(("127.0.0.1", 0), _Handler)
    srv.state = FakeVllm()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield srv.state, f"http://127.0.0.1:{srv.server_address[1]}/v1"
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join()


async def test_ready(fake: tuple[FakeVllm, str]) -> None:
    state, base = fake
    await wait_ready(base, "coder", timeout=5)
    assert state.paths == ["/health", "/v1/models"]


async def test_ready_with_given_client_leaves_it_open(fake: tuple[FakeVllm, str]) -> None:
    _, base = fake
    async with httpx.AsyncClient(trust_env=False) as client:
        await wait_ready(base + "/", "coder", timeout=5, client=client)
        assert not client.is_closed


async def test_model_not_listed(fake: tuple[FakeVllm, str]) -> None:
    state, base = fake
    state.models = ["other"]
    with pytest.raises(ModelsError, match=r"served model 'coder' is missing") as info:
        await wait_ready(base, "coder", timeout=0.3, interval=0.05)
    assert type(info.value).__name__ == "VllmNotReady"
    assert "other" in info.value.message


async def test_health_503(fake: tuple[FakeVllm, str]) -> None:
    state, base = fake
    state.health_status = 503
    with pytest.raises(ModelsError, match=r"GET /health answered 503"):
        await wait_ready(base, "coder", timeout=0.3, interval=0.05)
    assert "/v1/models" not in state.paths


async def test_becomes_ready_while_waiting(fake: tuple[FakeVllm, str]) -> None:
    state, base = fake
    state.health_status = 503
    timer = threading.Timer(0.2, lambda: setattr(state, "health_status", 200))
    timer.start()
    try:
        await wait_ready(base, "coder", timeout=5, interval=0.05)
    finally:
        timer.cancel()
    assert state.paths[-2:] == ["/health", "/v1/models"]


async def test_timeout_when_nothing_listens() -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on once closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ModelsError, match=r"not ready within 0.3 s: server not reachable"):
        await wait_ready(f"http://127.0.0.1:{port}/v1", "coder", timeout=0.3, interval=0.05)


# --- metrics --------------------------------------------------------------------------------

METRICS = """\
# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="coder"} 2.0
# HELP vllm:num_requests_waiting Number of requests waiting to be processed.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine="0",model_name="coder"} 1.0
# HELP vllm:kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{engine="0",model_name="coder"} 0.375
# HELP vllm:prompt_tokens_total Number of prefill tokens processed.
# TYPE vllm:prompt_tokens_total counter
vllm:prompt_tokens_total{engine="0",model_name="coder"} 12345.0
# HELP vllm:time_to_first_token_seconds Histogram of time to first token in seconds.
# TYPE vllm:time_to_first_token_seconds histogram
vllm:time_to_first_token_seconds_bucket{engine="0",le="0.1",model_name="coder"} 3.0
vllm:time_to_first_token_seconds_bucket{engine="0",le="0.5",model_name="coder"} 7.0
vllm:time_to_first_token_seconds_bucket{engine="0",le="+Inf",model_name="coder"} 8.0
vllm:time_to_first_token_seconds_count{engine="0",model_name="coder"} 8.0
vllm:time_to_first_token_seconds_sum{engine="0",model_name="coder"} 2.0
# HELP python_gc_objects_collected_total Objects collected during gc
# TYPE python_gc_objects_collected_total counter
python_gc_objects_collected_total{generation="0"} 1234.0
"""


def test_parse_metrics() -> None:
    assert parse_metrics(METRICS) == {
        "num_requests_running": 2.0,
        "num_requests_waiting": 1.0,
        "kv_cache_usage_perc": 0.375,
        "ttft_count": 8.0,
        "ttft_mean_seconds": 0.25,
    }


def test_parse_metrics_older_names_and_no_requests_yet() -> None:
    text = """\
# TYPE vllm:gpu_cache_usage_perc gauge
vllm:gpu_cache_usage_perc{model_name="coder"} 0.5
# TYPE vllm:time_to_first_token_seconds histogram
vllm:time_to_first_token_seconds_bucket{le="+Inf",model_name="coder"} 0.0
vllm:time_to_first_token_seconds_count{model_name="coder"} 0.0
vllm:time_to_first_token_seconds_sum{model_name="coder"} 0.0
"""
    assert parse_metrics(text) == {"kv_cache_usage_perc": 0.5, "ttft_count": 0.0}
    assert parse_metrics("") == {}
