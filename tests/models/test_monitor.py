"""The endpoint monitor behind ``GET /api/v1/models``: serving or not, latency, vLLM load."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from models.endpoint import Endpoint
from models.monitor import EndpointMonitor
from models.sizing import parse_nvidia_smi, plan
from models.vllm_server import VllmServer
from tests.models.scripted_server import Reply, ScriptedServer, dead_port

STANDIN = [sys.executable, str(Path(__file__).with_name("standin_vllm.py"))]


@pytest.fixture
def vllm(tmp_path: Path) -> Iterator[VllmServer]:
    weights = tmp_path / "weights"
    weights.mkdir()
    with VllmServer(
        plan(parse_nvidia_smi("NVIDIA H100 80GB HBM3, 81559\n")),
        model_dir=weights,
        served_name="coder",
        log_path=tmp_path / "vllm.log",
        port=dead_port(),
        program=STANDIN,
    ) as server:
        yield server


async def test_a_serving_vllm_reports_its_load(vllm: VllmServer) -> None:
    monitor = EndpointMonitor([Endpoint(vllm.base_url, "coder", kind="vllm")])
    try:
        [status] = await monitor.poll_once()
    finally:
        await monitor.aclose()
    assert status.ready
    assert status.problem is None
    assert status.served_models == ["coder"]
    assert status.latency_ms is not None
    assert status.metrics == {
        "num_requests_running": 2.0,
        "num_requests_waiting": 1.0,
        "kv_cache_usage_perc": 0.25,
        "ttft_count": 10.0,
        "ttft_mean_seconds": 0.3,
    }


async def test_problems_are_reported_not_raised(vllm: VllmServer) -> None:
    with ScriptedServer([Reply(body=b"<html>proxy login</html>")]) as garbage:
        monitor = EndpointMonitor(
            [
                Endpoint(vllm.base_url, "other-model", kind="vllm"),
                Endpoint(f"http://127.0.0.1:{dead_port()}/v1", "coder"),
                Endpoint(garbage.url, "coder"),
            ]
        )
        try:
            wrong, dead, html = await monitor.poll_once()
        finally:
            await monitor.aclose()
    assert not wrong.ready
    assert wrong.problem == "the server does not serve 'other-model' (it lists coder)"
    assert not dead.ready
    assert dead.problem == "not reachable (ConnectError)"
    assert not html.ready
    assert html.problem is not None
    assert html.problem.startswith("answered something that is not OpenAI's model list")


async def test_a_recovered_endpoint_is_ready_again(tmp_path: Path) -> None:
    port = dead_port()
    monitor = EndpointMonitor([Endpoint(f"http://127.0.0.1:{port}/v1", "m")])
    try:
        [down] = await monitor.poll_once()
        assert not down.ready
        listing = {"object": "list", "data": [{"id": "m"}]}
        with ScriptedServer([Reply(json=listing)], port=port):
            [up] = await monitor.poll_once()
    finally:
        await monitor.aclose()
    assert up.ready
    assert up.problem is None
