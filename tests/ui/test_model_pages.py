"""Pages that talk to a model endpoint: the models page's live vLLM figures, and "Explain
this change" on the review page. The endpoints are real HTTP servers: the vLLM stand-in
(canned ``/metrics``) and the scripted OpenAI-compatible server (replayed replies)."""

from __future__ import annotations

import html
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.config import Settings, load_settings
from models.sizing import parse_nvidia_smi, plan
from models.vllm_server import VllmServer
from tests.models.scripted_server import Reply, ScriptedServer, completion, dead_port
from tests.ui.conftest import Ui, sign_in, submit, wait_status

STANDIN = [sys.executable, str(Path(__file__).parents[1] / "models" / "standin_vllm.py")]


@pytest.fixture
def endpoint(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    """The model endpoint the appliance is configured with (``vllm`` or ``scripted``)."""
    if request.param == "vllm":
        weights = tmp_path / "weights"
        weights.mkdir()
        with VllmServer(
            plan(parse_nvidia_smi("NVIDIA H100 80GB HBM3, 81559\n")),
            model_dir=weights,
            served_name="coder",
            log_path=tmp_path / "vllm.log",
            port=dead_port(),
            program=STANDIN,
        ) as vllm:
            yield {"base_url": vllm.base_url, "model": "coder", "kind": "vllm"}
        return
    reply = Reply(json=completion("It makes add() return the sum instead of the difference."))
    with ScriptedServer([reply], models=["coder"]) as scripted:
        request.node.scripted = scripted
        yield {"base_url": scripted.url, "model": "coder", "kind": "openai"}


@pytest.fixture
def settings(endpoint: dict[str, str]) -> Settings:
    return load_settings(models={"cpu_fallback": False, "endpoints": [endpoint]})


def _poll(ui: Ui, url: str, wanted: str, timeout: float = 15.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        resp = ui.client.get(url, headers={"HX-Request": "true"})
        if wanted in resp.text or time.monotonic() > deadline:
            return resp.text
        time.sleep(0.1)


@pytest.mark.parametrize("endpoint", ["vllm"], indirect=True)
def test_models_page_shows_vllm_figures_in_words_and_refreshes_them(ui: Ui) -> None:
    sign_in(ui.client, "vera")
    fragment = _poll(ui, "/fragments/model-status", "Requests running")
    assert "<html" not in fragment
    rows = re.findall(r"<tr><th>([^<]+)</th><td>([^<]+)</td></tr>", fragment)
    figures = {html.unescape(k): html.unescape(v) for k, v in rows}
    assert figures["Requests running"] == "2"
    assert figures["Requests waiting"] == "1"
    assert figures["KV-cache use"] == "25.0 %"
    assert figures["Time to first token (mean)"] == "300 ms"  # 3.0 s over 10 requests
    assert "num_requests_running" not in fragment  # no raw metric names
    assert "ttft" not in fragment
    page = ui.client.get("/models").text
    assert 'hx-get="/fragments/model-status"' in page
    assert 'hx-trigger="every 5s"' in page
    assert "300 ms" in page
    ui.client.cookies.clear()  # the fragment is checked like the page
    anonymous = ui.client.get("/fragments/model-status", headers={"HX-Request": "true"})
    assert anonymous.status_code == 401


@pytest.mark.parametrize("endpoint", ["scripted"], indirect=True)
def test_explain_sends_the_hunk_with_its_indentation(
    ui: Ui, request: pytest.FixtureRequest
) -> None:
    scripted: ScriptedServer = request.node.scripted
    csrf = sign_in(ui.client, "dana")
    task_id = submit(ui, "fix add", csrf)
    wait_status(ui.db, task_id, "awaiting_approval")
    resp = ui.client.post(
        f"/tasks/{task_id}/explain",
        data={"csrf_token": csrf, "path": "app/calc.py", "hunk": "0"},
        headers={"HX-Request": "true"},
    )
    assert resp.status_code == 200
    assert "return the sum instead of the difference" in resp.text
    [chat] = [r for r in scripted.requests if r.path.endswith("/chat/completions")]
    asked = chat.body["messages"][-1]["content"]
    assert "\n-    return a - b\n" in asked  # the code as written, indentation and all
    assert '\n+    """Sum of a and b."""\n' in asked
    assert "\n+    return a + b\n" in asked
    assert "\n def mul(a: int, b: int) -> int:\n" in asked
    assert "<span" not in asked
