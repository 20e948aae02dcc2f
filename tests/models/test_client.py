"""The model client against a real scripted HTTP server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterator

import pytest
from pydantic import BaseModel

from models.client import (
    CircuitBreaker,
    Endpoint,
    FormatError,
    ModelClient,
    ModelRequestError,
    ModelUnavailable,
    StreamInterrupted,
    estimate_tokens,
)
from models.errors import ModelsError
from tests.models.scripted_server import (
    Reply,
    ScriptedServer,
    chunks,
    completion,
    dead_port,
    error_body,
)

MSGS = [{"role": "user", "content": "hi"}]
TINY = (0.01, 0.02, 0.04, 0.08)


class Action(BaseModel):
    tool: str
    path: str
    line: int


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Sleeps:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        await asyncio.sleep(0)


def _wait_for_request(srv: ScriptedServer) -> None:
    deadline = time.monotonic() + 5
    while not srv.requests and time.monotonic() < deadline:
        time.sleep(0.01)


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as srv:
        yield srv


def make(*urls: str, kind: str = "vllm", sleeps: Sleeps | None = None, **kw: object) -> ModelClient:
    eps = [Endpoint(base_url=u, model="coder", kind=kind) for u in urls]  # type: ignore[arg-type]
    return ModelClient(eps, backoff=TINY, sleep=sleeps or Sleeps(), **kw)  # type: ignore[arg-type]


async def test_500_then_success_is_retried_with_backoff(server: ScriptedServer) -> None:
    server.add(Reply(500, error_body("boom", code=500)), Reply(json=completion("hello")))
    sleeps = Sleeps()
    async with make(server.url, sleeps=sleeps) as client:
        result = await client.chat(MSGS, max_tokens=20)
    assert result.text == "hello"
    assert result.endpoint.base_url == server.url
    assert sleeps.delays == [0.01]
    assert len(server.requests) == 2
    body = server.requests[1].body
    assert body["model"] == "coder"
    assert body["messages"] == MSGS
    assert body["max_tokens"] == 20
    assert server.requests[1].path == "/v1/chat/completions"


async def test_backoff_sequence_and_at_most_three_retries(server: ScriptedServer) -> None:
    server.add(Reply(503, error_body("overloaded", code=503)))
    sleeps = Sleeps()
    async with make(server.url, sleeps=sleeps) as client:
        with pytest.raises(ModelUnavailable, match="overloaded"):
            await client.chat(MSGS)
    assert sleeps.delays == [0.01, 0.02, 0.04]
    assert len(server.requests) == 4


async def test_default_backoff_is_1_2_4_seconds_and_three_retries(
    server: ScriptedServer,
) -> None:
    server.add(Reply(503, error_body("overloaded", code=503)))
    sleeps = Sleeps()  # records the delays instead of waiting them
    endpoint = Endpoint(base_url=server.url, model="coder", kind="vllm")
    async with ModelClient([endpoint], sleep=sleeps) as client:  # the defaults otherwise
        with pytest.raises(ModelUnavailable, match="overloaded"):
            await client.chat(MSGS)
    assert sleeps.delays == [1.0, 2.0, 4.0]
    assert len(server.requests) == 4


HTML_PAGE = b"<html><body><h1>502 Bad Gateway</h1>nginx</body></html>"


async def test_a_200_that_is_not_json_is_retried(server: ScriptedServer) -> None:
    server.add(Reply(body=HTML_PAGE), Reply(json=completion("fine")))
    sleeps = Sleeps()
    async with make(server.url, sleeps=sleeps) as client:
        assert (await client.chat(MSGS)).text == "fine"
    assert sleeps.delays == [0.01]
    assert len(server.requests) == 2


async def test_a_200_that_is_not_json_falls_back_to_the_secondary(
    server: ScriptedServer,
) -> None:
    with ScriptedServer([Reply(body=HTML_PAGE)]) as primary:
        server.add(Reply(json=completion("from secondary")))
        async with make(primary.url, server.url, max_retries=1) as client:
            result = await client.chat(MSGS)
        assert len(primary.requests) == 2  # tried, retried, then given up on
    assert result.text == "from secondary"
    assert result.endpoint.base_url == server.url


async def test_when_every_endpoint_answers_html_the_error_says_so(
    server: ScriptedServer,
) -> None:
    server.add(Reply(body=HTML_PAGE))
    with ScriptedServer([Reply(body=HTML_PAGE)]) as primary:
        async with make(primary.url, server.url, max_retries=1) as client:
            with pytest.raises(ModelUnavailable) as caught:
                await client.chat(MSGS)
    message = caught.value.message
    assert message.startswith("no model endpoint answered")
    quoted = "response body is not JSON: '<html><body><h1>502 Bad Gateway</h1>nginx"
    assert f"vllm:{primary.url}: {quoted}" in message
    assert f"vllm:{server.url}: {quoted}" in message
    assert len(caught.value.failures) == 4


async def test_429_honours_retry_after(server: ScriptedServer) -> None:
    server.add(
        Reply(429, error_body("slow down", code=429), headers={"Retry-After": "3"}),
        Reply(json=completion("ok")),
    )
    sleeps = Sleeps()
    async with make(server.url, sleeps=sleeps) as client:
        assert (await client.chat(MSGS)).text == "ok"
    assert sleeps.delays == [3.0]


async def test_timeout_is_retried_then_error(server: ScriptedServer) -> None:
    server.add(Reply(json=completion("late"), delay=2.0))
    async with make(server.url, max_retries=1) as client:
        with pytest.raises(ModelUnavailable, match="timed out"):
            await client.chat(MSGS, timeout=0.2)
    assert len(server.requests) == 2


async def test_timeout_then_success(server: ScriptedServer) -> None:
    server.add(Reply(json=completion("late"), delay=2.0), Reply(json=completion("quick")))
    async with make(server.url) as client:
        assert (await client.chat(MSGS, timeout=0.2)).text == "quick"


async def test_truncated_stream_is_retried(server: ScriptedServer) -> None:
    server.add(
        Reply(sse=chunks([])[:1], sse_done=False),  # role chunk only, then cut
        Reply(sse=chunks(["Hel", "lo"])),
    )
    async with make(server.url) as client:
        pieces = [p async for p in client.stream(MSGS, task_id="t1")]
    assert "".join(pieces) == "Hello"
    assert len(server.requests) == 2
    assert server.requests[1].body["stream"] is True
    assert client.usage_for("t1").completion_tokens == 2


async def test_truncated_stream_always_is_an_error(server: ScriptedServer) -> None:
    server.add(Reply(sse=chunks([])[:1], sse_done=False))
    async with make(server.url, max_retries=2) as client:
        with pytest.raises(ModelUnavailable, match=r"\[DONE\]"):
            _ = [p async for p in client.stream(MSGS)]
    assert len(server.requests) == 3


async def test_stream_cut_after_text_raises_stream_interrupted(server: ScriptedServer) -> None:
    server.add(Reply(sse=chunks(["partial"], usage=False)[:2], sse_done=False))
    async with make(server.url) as client:
        got: list[str] = []

        async def consume() -> None:
            async for piece in client.stream(MSGS):
                got.append(piece)

        with pytest.raises(StreamInterrupted):
            await consume()
    assert got == ["partial"]
    assert len(server.requests) == 1


async def test_invalid_json_action_raises_format_error(server: ScriptedServer) -> None:
    server.add(Reply(json=completion('{"tool": "read", "path": ')))
    async with make(server.url) as client:
        with pytest.raises(FormatError, match="not valid JSON") as info:
            await client.action(MSGS, Action)
    assert info.value.raw == '{"tool": "read", "path": '
    rf = server.requests[0].body["response_format"]
    assert rf["type"] == "json_schema"
    assert rf["json_schema"]["name"] == "Action"
    assert rf["json_schema"]["strict"] is True
    assert rf["json_schema"]["schema"] == Action.model_json_schema()


async def test_schema_violation_names_the_field(server: ScriptedServer) -> None:
    server.add(Reply(json=completion(json.dumps({"tool": "read", "path": "a.py", "line": "x"}))))
    async with make(server.url) as client:
        with pytest.raises(FormatError) as info:
            await client.action(MSGS, Action)
    assert "'line'" in info.value.message
    assert "integer" in info.value.message
    assert isinstance(info.value, ModelsError)


async def test_valid_action_parsed(server: ScriptedServer) -> None:
    text = "```json\n" + json.dumps({"tool": "read", "path": "a.py", "line": 3}) + "\n```"
    server.add(Reply(json=completion(text)))
    async with make(server.url) as client:
        action = await client.action(MSGS, Action, task_id="t")
    assert action == Action(tool="read", path="a.py", line=3)


async def test_format_retries_feed_the_error_back(server: ScriptedServer) -> None:
    good = json.dumps({"tool": "read", "path": "a.py", "line": 1})
    server.add(Reply(json=completion('{"tool": "read"}')), Reply(json=completion(good)))
    async with make(server.url) as client:
        action = await client.action(MSGS, Action, format_retries=1)
    assert action.line == 1
    second = server.requests[1].body["messages"]
    assert second[-2] == {"role": "assistant", "content": '{"tool": "read"}'}
    assert "'path'" in second[-1]["content"]


async def test_action_via_native_tool_call(server: ScriptedServer) -> None:
    args = json.dumps({"tool": "edit", "path": "b.py", "line": 9})
    call = {"id": "call_1", "type": "function", "function": {"name": "Action", "arguments": args}}
    server.add(Reply(json=completion(None, tool_calls=[call])))
    ep = Endpoint(base_url=server.url, model="coder", kind="vllm", action_mode="tools")
    async with ModelClient([ep], backoff=TINY) as client:
        action = await client.action(MSGS, Action)
    assert action.tool == "edit"
    body = server.requests[0].body
    assert body["tool_choice"] == {"type": "function", "function": {"name": "Action"}}
    assert body["tools"][0]["function"]["parameters"] == Action.model_json_schema()
    assert "response_format" not in body


async def test_dead_primary_falls_back_and_breaker_opens_then_half_opens(
    server: ScriptedServer,
) -> None:
    port = dead_port()
    primary = f"http://127.0.0.1:{port}/v1"
    server.add(Reply(json=completion("from secondary")))
    clock = FakeClock()
    client = make(primary, server.url, max_retries=1, breaker_threshold=2, breaker_cooldown=30.0,
                  clock=clock)  # fmt: skip
    async with client:
        result = await client.chat(MSGS)
        assert result.text == "from secondary"
        assert result.endpoint.base_url == server.url
        assert client.breakers[0].state == "open"
        assert client.breakers[0].failures == 2

        await client.chat(MSGS)  # primary skipped while open
        assert client.breakers[0].failures == 2
        assert len(server.requests) == 2

        clock.now += 31
        half_open: str = client.breakers[0].state
        assert half_open == "half_open"
        await client.chat(MSGS)  # one trial on the still-dead primary, then fallback
        assert client.breakers[0].failures == 3
        assert client.breakers[0].state == "open"

        clock.now += 31
        with ScriptedServer([Reply(json=completion("primary back"))], port=port) as revived:
            result = await client.chat(MSGS)
            assert result.text == "primary back"
            assert len(revived.requests) == 1
        closed: str = client.breakers[0].state
        assert closed == "closed"


async def test_all_endpoints_dead_raises_model_unavailable() -> None:
    async with make(f"http://127.0.0.1:{dead_port()}/v1", max_retries=0) as client:
        with pytest.raises(ModelUnavailable, match="ConnectError"):
            await client.chat(MSGS)


def test_breaker_allows_a_single_half_open_trial() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(threshold=2, cooldown=5, clock=clock)
    breaker.record_failure()
    assert breaker.allow()
    breaker.record_failure()
    assert not breaker.allow()
    clock.now += 5
    assert breaker.allow()
    assert not breaker.allow()  # the trial is in flight
    breaker.record_success()
    assert breaker.state == "closed"
    assert breaker.allow()


async def test_400_not_retried_with_server_message(server: ScriptedServer) -> None:
    msg = "This model's maximum context length is 8192 tokens."
    server.add(Reply(400, error_body(msg)))
    sleeps = Sleeps()
    async with make(server.url, server.url, sleeps=sleeps) as client:
        with pytest.raises(ModelRequestError, match="maximum context length") as info:
            await client.chat(MSGS)
    assert info.value.status == 400
    assert sleeps.delays == []
    assert len(server.requests) == 1


async def test_cancellation_mid_stream_closes_connection(server: ScriptedServer) -> None:
    server.add(Reply(sse=chunks(["first"], usage=False)[:2], hold=10.0))
    got = asyncio.Event()

    async with make(server.url) as client:

        async def consume() -> None:
            async for _ in client.stream(MSGS):
                got.set()

        task = asyncio.create_task(consume())
        await asyncio.wait_for(got.wait(), 5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        disconnected = await asyncio.to_thread(server.requests[0].disconnected.wait, 5)
        assert disconnected
        assert client.breakers[0].state == "closed"


async def test_cancellation_while_waiting_for_chat_closes_connection(
    server: ScriptedServer,
) -> None:
    server.add(Reply(json=completion("never"), delay=10.0))
    async with make(server.url) as client:
        task = asyncio.create_task(client.chat(MSGS))
        await asyncio.to_thread(_wait_for_request, server)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await asyncio.to_thread(server.requests[0].disconnected.wait, 5)


async def test_usage_accumulated_per_task(server: ScriptedServer) -> None:
    server.add(
        Reply(json=completion("a", prompt_tokens=100, completion_tokens=10)),
        Reply(json=completion("b", prompt_tokens=200, completion_tokens=20)),
        Reply(json=completion("c", prompt_tokens=1, completion_tokens=1)),
    )
    async with make(server.url) as client:
        first = await client.chat(MSGS, task_id="task-1")
        await client.chat(MSGS, task_id="task-1")
        await client.chat(MSGS, task_id="task-2")
    assert first.usage.prompt_tokens == 100
    assert client.usage_for("task-1").as_dict() == {
        "prompt_tokens": 300,
        "completion_tokens": 30,
        "total_tokens": 330,
    }
    assert client.usage["task-2"].total_tokens == 2
    assert client.usage_for("unknown").total_tokens == 0


async def test_embed(server: ScriptedServer) -> None:
    server.add(
        Reply(
            json={
                "object": "list",
                "data": [
                    {"object": "embedding", "index": 1, "embedding": [0.0, 1.0]},
                    {"object": "embedding", "index": 0, "embedding": [1.0, 0.5]},
                ],
                "model": "embedder",
                "usage": {"prompt_tokens": 6, "total_tokens": 6},
            }
        )
    )
    async with make(server.url) as client:
        vectors = await client.embed(["a", "b"], task_id="t")
    assert vectors == [[1.0, 0.5], [0.0, 1.0]]
    assert server.requests[0].path == "/v1/embeddings"
    assert server.requests[0].body == {"model": "coder", "input": ["a", "b"]}
    assert client.usage_for("t").prompt_tokens == 6


async def test_count_tokens_via_vllm_tokenize(server: ScriptedServer) -> None:
    server.add(Reply(json={"count": 4, "tokens": [1, 2, 3, 4], "max_model_len": 8192}))
    async with make(server.url, kind="vllm") as client:
        assert await client.count_tokens("def f(): pass") == 4
    assert server.requests[0].path == "/tokenize"
    assert server.requests[0].body == {"model": "coder", "prompt": "def f(): pass"}


async def test_count_tokens_via_llamacpp_tokenize(server: ScriptedServer) -> None:
    server.add(Reply(json={"tokens": [5, 6, 7]}))
    async with make(server.url, kind="llamacpp") as client:
        assert await client.count_tokens("abc def") == 3
        assert await client.budget(MSGS) == 8192 - 3 - 4
    assert server.requests[0].body == {"content": "abc def"}


async def test_count_tokens_falls_back_when_tokenize_is_404(server: ScriptedServer) -> None:
    server.add(Reply(404, {"detail": "Not Found"}))
    async with make(server.url) as client:
        assert await client.count_tokens("x" * 10) == 4
    assert estimate_tokens("x" * 9) == 3
    assert len(server.requests) == 1


async def test_api_key_not_in_repr_or_logs(
    server: ScriptedServer, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "sk-very-secret-key"
    server.add(Reply(500, error_body("boom", code=500)), Reply(json=completion("ok")))
    ep = Endpoint(base_url=server.url, model="coder", kind="vllm", api_key=secret)
    caplog.set_level(logging.DEBUG)
    async with ModelClient([ep], backoff=TINY) as client:
        await client.chat(MSGS)
        assert secret not in repr(ep)
        assert secret not in str(ep)
        assert secret not in repr(client)
    assert server.requests[0].headers["Authorization"] == f"Bearer {secret}"
    assert caplog.records  # the retry was logged
    assert secret not in caplog.text
