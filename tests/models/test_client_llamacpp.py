"""The pipeline's one model client against a real llama.cpp server (SmolLM2-135M on the CPU).

The same path the appliance takes without a GPU: :class:`ModelClient` over an endpoint of kind
``llamacpp``. Requests keep ``max_tokens`` small: the test machines have two cores.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

import httpx
import pytest
from pydantic import BaseModel, Field

from models.actions import estimate_tokens
from models.client import Endpoint, ModelClient
from models.llamacpp import LlamaCppServer, smollm2_gguf

pytestmark = pytest.mark.slow

CTX = 2048


class NextStep(BaseModel):
    """The agent's next step."""

    tool: Literal["read_file", "finish"]
    # bounded so a 135M model cannot ramble past max_tokens inside the string
    path: str = Field(max_length=30)


@pytest.fixture(scope="module")
def server() -> Iterator[LlamaCppServer]:
    with LlamaCppServer(smollm2_gguf(), ctx=CTX) as srv:
        yield srv


def make_client(server: LlamaCppServer) -> ModelClient:
    endpoint = Endpoint(
        base_url=server.base_url, model=server.model, kind="llamacpp", context_length=CTX
    )
    return ModelClient([endpoint], timeout=120.0)


def user(content: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": content}]


async def test_chat_returns_text_and_counts_usage_for_the_task(server: LlamaCppServer) -> None:
    async with make_client(server) as client:
        result = await client.chat(user("Say hello."), task_id="t-chat", max_tokens=12)
        again = await client.chat(user("Name a colour."), task_id="t-chat", max_tokens=8)
        usage = client.usage_for("t-chat")
    assert result.text.strip()
    assert result.endpoint.base_url == server.base_url
    assert 0 < result.usage.completion_tokens <= 12
    assert result.usage.prompt_tokens > 0
    assert usage.prompt_tokens == result.usage.prompt_tokens + again.usage.prompt_tokens
    assert usage.completion_tokens == result.usage.completion_tokens + again.usage.completion_tokens
    assert client.usage_for("another-task").prompt_tokens == 0


async def test_stream_yields_pieces_that_make_the_reply(server: LlamaCppServer) -> None:
    async with make_client(server) as client:
        pieces = [
            piece
            async for piece in client.stream(
                user("Count: one, two,"), task_id="t-stream", max_tokens=16
            )
        ]
        usage = client.usage_for("t-stream")
    assert len(pieces) > 1  # streamed, not one block
    assert "".join(pieces).strip()
    assert usage.prompt_tokens > 0
    assert 0 < usage.completion_tokens <= 16


async def test_schema_constrained_action_parses_into_the_model(server: LlamaCppServer) -> None:
    prompt = (
        "Reply with JSON: the tool to use next (read_file or finish) and a file path. "
        "Read the README."
    )
    async with make_client(server) as client:
        step = await client.action(user(prompt), NextStep, task_id="t-action", max_tokens=60)
        usage = client.usage_for("t-action")
    assert isinstance(step, NextStep)
    assert step.tool in ("read_file", "finish")
    assert len(step.path) <= 30
    assert usage.prompt_tokens > 0
    assert usage.completion_tokens > 0


async def test_count_tokens_uses_the_server_tokenizer(server: LlamaCppServer) -> None:
    text = "def add(a, b):\n    return a + b  # ünïcödé 12345"
    async with httpx.AsyncClient(timeout=10.0, trust_env=False) as raw:
        reply = await raw.post(f"{server.root_url}/tokenize", json={"content": text})
    tokens = reply.json()["tokens"]
    assert len(tokens) != estimate_tokens(text)  # so the figure below is the server's
    async with make_client(server) as client:
        assert await client.count_tokens(text) == len(tokens)
        assert await client.served_context_length() == CTX
