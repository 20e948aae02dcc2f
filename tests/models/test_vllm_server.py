"""`appliance models serve` on a GPU host: vLLM as a supervised child process.

vLLM needs a GPU, so the program is a stand-in (tests/models/standin_vllm.py) that speaks
vLLM's HTTP interface; the launcher, readiness, failure reporting and restarts are real.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from models.errors import ModelsError
from models.process import supervise
from models.sizing import Plan, parse_nvidia_smi, plan
from models.vllm import VllmNotReady
from models.vllm_server import VllmServer
from tests.models.scripted_server import dead_port

STANDIN = [sys.executable, str(Path(__file__).with_name("standin_vllm.py"))]


@pytest.fixture
def h100() -> Plan:
    return plan(parse_nvidia_smi("NVIDIA H100 80GB HBM3, 81559\n"))


def server(h100: Plan, tmp_path: Path, **kw: object) -> VllmServer:
    weights = tmp_path / "Qwen2.5-Coder-32B-Instruct"
    weights.mkdir(exist_ok=True)
    return VllmServer(
        h100,
        model_dir=weights,
        served_name="coder",
        log_path=tmp_path / "vllm.log",
        port=dead_port(),
        program=STANDIN,
        **kw,  # type: ignore[arg-type]
    )


def test_starts_offline_with_the_plan_and_is_ready_only_once_the_model_is_listed(
    h100: Plan, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = tmp_path / "argv.json"
    monkeypatch.setenv("STANDIN_RECORD", str(record))
    monkeypatch.setenv("STANDIN_LOAD_SECONDS", "1.0")  # /v1/models is empty while loading
    with server(h100, tmp_path) as vllm:
        assert (vllm.startup_seconds or 0) >= 1.0
        listed = httpx.get(f"{vllm.base_url}/models").json()["data"]
        assert [m["id"] for m in listed] == ["coder"]
        started = json.loads(record.read_text())
    assert started["env"] == {"HF_HUB_OFFLINE": "1", "VLLM_NO_USAGE_STATS": "1"}
    argv = started["argv"]
    assert argv[:2] == ["serve", str(tmp_path / "Qwen2.5-Coder-32B-Instruct")]
    assert "--enable-prefix-caching" in argv
    assert argv[argv.index("--max-model-len") + 1] == str(h100.max_model_len)
    assert not vllm.running()


def test_a_server_that_dies_while_loading_fails_at_once_with_its_log(
    h100: Plan, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STANDIN_EXIT", "3")
    began = time.monotonic()
    with pytest.raises(ModelsError, match="exited with code 3") as info:
        server(h100, tmp_path).start()
    assert "CUDA out of memory" in str(info.value)
    assert time.monotonic() - began < 30  # not the 900 s readiness timeout


def test_a_server_that_never_lists_its_model_times_out_saying_so(
    h100: Plan, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STANDIN_LOAD_SECONDS", "600")
    with pytest.raises(VllmNotReady, match="'coder' is missing from GET /v1/models"):
        server(h100, tmp_path, startup_timeout=3.0).start()


def test_missing_weights_and_missing_vllm_are_clear_errors(
    h100: Plan, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ModelsError, match="model directory not found"):
        VllmServer(h100, model_dir=tmp_path / "nope", served_name="c", log_path=tmp_path / "l")
    weights = tmp_path / "w"
    weights.mkdir()
    monkeypatch.setenv("PATH", str(tmp_path))
    lone = VllmServer(h100, model_dir=weights, served_name="c", log_path=tmp_path / "l")
    if Path(sys.executable).with_name("vllm").exists():
        pytest.fail("vllm is installed in this environment; this test expects the CPU build")
    with pytest.raises(ModelsError, match="install the gpu extra"):
        lone.start()


def test_the_supervisor_restarts_a_server_that_dies_and_stops_it_on_request(
    h100: Plan, tmp_path: Path
) -> None:
    vllm = server(h100, tmp_path)
    stop = threading.Event()
    ready: list[float] = []
    runner = threading.Thread(
        target=supervise,
        args=(vllm, stop),
        kwargs={"poll_s": 0.1, "backoff": lambda n: 0.1, "on_ready": lambda s: ready.append(1)},
    )
    runner.start()
    try:
        deadline = time.monotonic() + 30
        while not ready and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ready, "the server never became ready"
        assert vllm.pid is not None
        os.kill(vllm.pid, signal.SIGKILL)  # a crash
        while len(ready) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(ready) == 2, "the supervisor did not bring the server back"
        assert httpx.get(f"{vllm.base_url}/models").status_code == 200
    finally:
        stop.set()
        runner.join(30)
    assert not runner.is_alive()
    assert not vllm.running()


def test_the_supervisor_gives_up_on_a_server_that_keeps_dying(h100: Plan, tmp_path: Path) -> None:
    vllm = server(h100, tmp_path)
    stop = threading.Event()

    def crash(s: object) -> None:
        assert vllm.pid is not None
        os.kill(vllm.pid, signal.SIGKILL)

    with pytest.raises(ModelsError, match="died 3 times"):
        supervise(vllm, stop, max_restarts=2, poll_s=0.05, backoff=lambda n: 0.0, on_ready=crash)
    assert not vllm.running()
