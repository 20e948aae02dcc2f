"""The appliance's start-up: the CPU demo model when there is no endpoint and no GPU, the
model client and the endpoint monitor behind ``GET /api/v1/models``."""

from __future__ import annotations

import httpx
import pytest
from fastapi.testclient import TestClient

from appliance.api import create_app
from appliance.config import load_settings
from tests.conftest import auth, make_tokens
from tests.graphs import scripted_graph

pytestmark = pytest.mark.slow


def test_without_endpoint_or_gpu_the_cpu_demo_model_serves_beside_the_appliance() -> None:
    app = create_app(load_settings(models={"cpu_fallback": True}), graph=scripted_graph())
    with TestClient(app) as client:
        appliance = app.state.appliance
        [endpoint] = appliance.model_endpoints
        assert endpoint.kind == "llamacpp"
        listed = httpx.get(endpoint.base_url + "/models", timeout=10).json()
        assert endpoint.model in {m["id"] for m in listed["data"]}
        server = appliance.model_server
        # the pipeline's one client talks to it
        assert client.portal is not None
        reply = client.portal.call(
            appliance.model_client.chat, [{"role": "user", "content": "Say hi."}]
        )
        assert reply.text
        # prompts are budgeted against the context llama.cpp really serves, not a default
        served = client.portal.call(appliance.model_client.served_context_length)
        assert served == server.ctx
        assert endpoint.context_length == served
        assert appliance.model_client.context_length == served
        # the API says plainly that this is the demo model
        client.portal.call(appliance.model_monitor.poll_once)
        token = make_tokens(appliance.db).viewer
        body = client.get("/api/v1/models", headers=auth(token)).json()
        [status] = body["endpoints"]
        assert status["ready"] is True
        assert status["demo"] is True
        assert status["latency_ms"] > 0
        assert "not a coding model" in body["note"]
    assert server is not None
    assert not server.running()  # stopped with the appliance


def test_a_configured_endpoint_means_no_demo_model() -> None:
    settings = load_settings(models={"cpu_fallback": True, "endpoints": ["http://127.0.0.1:9/v1"]})
    app = create_app(settings, graph=scripted_graph())
    with TestClient(app) as client:
        assert app.state.appliance.model_server is None
        assert [e.base_url for e in app.state.appliance.model_endpoints] == [
            "http://127.0.0.1:9/v1"
        ]
        assert client.portal is not None
        client.portal.call(app.state.appliance.model_monitor.poll_once)
        token = make_tokens(app.state.appliance.db).viewer
        [status] = client.get("/api/v1/models", headers=auth(token)).json()["endpoints"]
    assert status["ready"] is False
    assert status["demo"] is False
    assert status["problem"] == "not reachable (ConnectError)"
