"""The one OpenAI-compatible model client the pipeline talks to (vLLM, llama.cpp, others).

One :class:`ModelClient` is configured with an ordered list of :class:`Endpoint` (primary
first, e.g. a vLLM server, then a llama.cpp fallback). Every call:

* goes to the first endpoint whose circuit breaker lets it through;
* retries transient failures (HTTP 5xx and 429, connection errors, timeouts, SSE streams cut
  before ``[DONE]``, unparseable bodies) with backoff delays ``backoff[attempt]`` (default
  1, 2, 4, 8 s; at most ``max_retries`` = 3 retries per endpoint), waiting at least what a
  ``Retry-After`` header asks (capped by ``max_retry_after``);
* falls over to the next endpoint when one has exhausted its retries or its breaker is open;
* raises :class:`ModelRequestError` at once, without retry or fallback, on any other 4xx
  (the request itself is wrong; the server's message is in the error);
* raises :class:`ModelUnavailable` when no endpoint answered.

Circuit breaker (one per endpoint): ``breaker_threshold`` consecutive failed attempts open it;
after ``breaker_cooldown`` seconds it half-opens and lets exactly one trial request through;
success closes it, failure opens it again for another cooldown.

Cancellation: cancelling the asyncio task awaiting :meth:`ModelClient.chat` or iterating
:meth:`ModelClient.stream` closes the HTTP response and its connection, so the server sees the
disconnect and stops generating. Consumers that stop iterating a stream early should close it
(``contextlib.aclosing``) rather than abandon it.

Streams are retried only while nothing has been yielded: once text has reached the caller a
cut stream raises :class:`StreamInterrupted` (re-running it would repeat text).

Structured actions (:meth:`ModelClient.action`) send ``response_format`` ``json_schema``
(``strict``) or, for endpoints with ``action_mode="tools"``, one forced native tool call; the
reply is validated with pydantic and a bad one raises :class:`FormatError` whose message says
what was wrong, written to be fed back to the model (``format_retries`` does that here).

The API key never appears in ``repr``, ``str`` or logs.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx
from pydantic import BaseModel

from models.actions import CHARS_PER_TOKEN, estimate_tokens, parse_action, schema_name
from models.breaker import BreakerState, CircuitBreaker
from models.endpoint import ActionMode, Endpoint, Kind
from models.errors import (
    FormatError,
    ModelRequestError,
    ModelUnavailable,
    StreamInterrupted,
)
from models.server_info import aserved_context_length, quote
from models.wire import (
    ChatResult,
    ToolCall,
    Usage,
    retry_after_seconds,
    server_message,
    usage_of,
)

__all__ = [
    "CHARS_PER_TOKEN",
    "ActionMode",
    "BreakerState",
    "ChatResult",
    "CircuitBreaker",
    "Endpoint",
    "FormatError",
    "Kind",
    "ModelClient",
    "ModelRequestError",
    "ModelUnavailable",
    "StreamInterrupted",
    "ToolCall",
    "Usage",
    "estimate_tokens",
    "parse_action",
    "schema_name",
]

log = logging.getLogger(__name__)

Message = Mapping[str, Any]
M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")

#: tokens of chat-template overhead counted per message by :meth:`ModelClient.prompt_tokens`
TOKENS_PER_MESSAGE = 4


# --------------------------------------------------------------------------- errors


class _Transient(Exception):
    """A failure worth retrying (internal)."""

    def __init__(self, reason: str, *, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


# --------------------------------------------------------------------------- client


class ModelClient:
    """Async client over an ordered list of endpoints (primary first). See the module doc."""

    def __init__(
        self,
        endpoints: Sequence[Endpoint],
        *,
        timeout: float = 120.0,
        backoff: Sequence[float] = (1.0, 2.0, 4.0, 8.0),
        max_retries: int = 3,
        max_retry_after: float = 60.0,
        breaker_threshold: int = 5,
        breaker_cooldown: float = 30.0,
        tokenize_timeout: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not endpoints:
            raise ValueError("ModelClient needs at least one endpoint")
        if max_retries < 0 or not backoff:
            raise ValueError("max_retries must be >= 0 and backoff non-empty")
        self.endpoints: tuple[Endpoint, ...] = tuple(endpoints)
        self.timeout = timeout
        self.backoff = tuple(backoff)
        self.max_retries = max_retries
        self.max_retry_after = max_retry_after
        self.tokenize_timeout = tokenize_timeout
        self._sleep = sleep
        self.breakers = [
            CircuitBreaker(breaker_threshold, breaker_cooldown, clock) for _ in self.endpoints
        ]
        self._usage: dict[str, Usage] = {}
        self._http = httpx.AsyncClient(transport=transport, timeout=timeout)

    def __repr__(self) -> str:
        return f"ModelClient(endpoints={list(self.endpoints)!r})"

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # ---------------------------------------------------------------- usage / budget

    @property
    def usage(self) -> dict[str, Usage]:
        """Prompt/completion tokens per task id (a copy)."""
        return {k: Usage(v.prompt_tokens, v.completion_tokens) for k, v in self._usage.items()}

    def usage_for(self, task_id: str) -> Usage:
        u = self._usage.get(task_id)
        return Usage(u.prompt_tokens, u.completion_tokens) if u else Usage()

    def _account(self, task_id: str | None, usage: Usage | None) -> None:
        if task_id is not None and usage is not None:
            self._usage.setdefault(task_id, Usage()).add(usage)

    @property
    def context_length(self) -> int:
        """The smallest context of all endpoints: a prompt that fits it fits any fallback."""
        return min(ep.context_length for ep in self.endpoints)

    async def count_tokens(self, text: str) -> int:
        """Tokens in ``text`` by the first available server's ``/tokenize`` (vLLM, llama.cpp);
        the :func:`estimate_tokens` estimate when it cannot say."""
        ep = next(
            (e for e, b in zip(self.endpoints, self.breakers, strict=True) if b.state == "closed"),
            None,
        )
        if ep is None or ep.kind == "openai":
            return estimate_tokens(text)
        body: dict[str, Any] = (
            {"model": ep.model, "prompt": text} if ep.kind == "vllm" else {"content": text}
        )
        try:
            resp = await self._http.post(
                f"{ep.root}/tokenize",
                json=body,
                headers=self._headers(ep),
                timeout=self.tokenize_timeout,
            )
            resp.raise_for_status()
            data = resp.json()
            if isinstance(data.get("count"), int):
                return int(data["count"])
            tokens = data["tokens"]
            if not isinstance(tokens, list):
                raise TypeError("tokens is not a list")
            return len(tokens)
        except (httpx.HTTPError, ValueError, KeyError, TypeError, AttributeError) as exc:
            log.debug("tokenize on %s failed (%s); estimating", ep.label, type(exc).__name__)
            return estimate_tokens(text)

    async def served_context_length(self, ep: Endpoint | None = None) -> int | None:
        """The context length ``ep``'s server (default: the primary) really serves: vLLM's
        ``max_model_len``, llama.cpp's ``n_ctx``; None when the server does not say.
        Compare it with :attr:`Endpoint.context_length` (see :mod:`models.server_info`)."""
        ep = self.endpoints[0] if ep is None else ep
        return await aserved_context_length(self._http, ep)

    async def prompt_tokens(self, messages: Sequence[Message]) -> int:
        """Tokens of a chat prompt: its contents plus a per-message template allowance."""
        text = "\n".join(str(m.get("content") or "") for m in messages)
        return await self.count_tokens(text) + TOKENS_PER_MESSAGE * len(messages)

    async def budget(self, messages: Sequence[Message]) -> int:
        """Tokens left for the reply (negative when the prompt alone is too long)."""
        return self.context_length - await self.prompt_tokens(messages)

    # ---------------------------------------------------------------- chat

    async def chat(
        self,
        messages: Sequence[Message],
        *,
        task_id: str | None = None,
        max_tokens: int | None = None,
        temperature: float = 0.0,
        timeout: float | None = None,  # noqa: ASYNC109 - per-request HTTP timeout, retried
        tools: Sequence[Mapping[str, Any]] | None = None,
        tool_choice: str | Mapping[str, Any] | None = None,
    ) -> ChatResult:
        """One chat completion (not streamed). ``tools`` enables native tool calls."""
        extra: dict[str, Any] = {}
        if tools:
            extra["tools"] = list(tools)
            if tool_choice is not None:
                extra["tool_choice"] = tool_choice
        return await self._chat(
            messages, lambda _ep: extra, task_id, max_tokens, temperature, timeout
        )

    async def _chat(
        self,
        messages: Sequence[Message],
        extra: Callable[[Endpoint], Mapping[str, Any]],
        task_id: str | None,
        max_tokens: int | None,
        temperature: float,
        http_timeout: float | None,
    ) -> ChatResult:
        async def once(ep: Endpoint) -> ChatResult:
            body = self._chat_body(ep, messages, max_tokens, temperature, stream=False)
            body.update(extra(ep))
            data = await self._post_json(ep, "/chat/completions", body, http_timeout)
            return self._chat_result(ep, data)

        result = await self._with_retries(once)
        self._account(task_id, result.usage)
        return result

    def _chat_body(
        self,
        ep: Endpoint,
        messages: Sequence[Message],
        max_tokens: int | None,
        temperature: float,
        *,
        stream: bool,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": ep.model,
            "messages": [dict(m) for m in messages],
            "temperature": temperature,
            "stream": stream,
        }
        if max_tokens is not None:
            body["max_tokens"] = max_tokens
        if stream:
            body["stream_options"] = {"include_usage": True}
        return body

    @staticmethod
    def _chat_result(ep: Endpoint, data: Mapping[str, Any]) -> ChatResult:
        try:
            choice = data["choices"][0]
            message = choice["message"]
            calls = tuple(
                ToolCall(
                    id=str(c.get("id", "")),
                    name=str(c["function"]["name"]),
                    arguments=str(c["function"].get("arguments") or ""),
                )
                for c in message.get("tool_calls") or []
            )
            text = message.get("content") or ""
        except (KeyError, IndexError, TypeError, AttributeError) as exc:
            raise _Transient(f"malformed chat completion ({type(exc).__name__}: {exc})") from exc
        return ChatResult(
            text=str(text),
            usage=usage_of(data) or Usage(),
            endpoint=ep,
            finish_reason=choice.get("finish_reason"),
            tool_calls=calls,
        )

    # ---------------------------------------------------------------- stream

    async def stream(
        self,
        messages: Sequence[Message],
        *,
        task_id: str | None = None,
        max_tokens: int | None = None,
        temperature: float = 0.0,
        timeout: float | None = None,  # noqa: ASYNC109 - per-request HTTP timeout, retried
    ) -> AsyncIterator[str]:
        """Yield the reply's text pieces as the server streams them (SSE)."""
        failures: list[str] = []
        yielded = False
        for idx, ep in enumerate(self.endpoints):
            breaker = self.breakers[idx]
            for attempt in range(self.max_retries + 1):
                if not breaker.allow():
                    failures.append(f"{ep.label}: circuit open")
                    break
                body = self._chat_body(ep, messages, max_tokens, temperature, stream=True)
                try:
                    async for piece in self._stream_once(ep, body, timeout, task_id):
                        yielded = True
                        yield piece
                except _Transient as exc:
                    breaker.record_failure()
                    if yielded:
                        raise StreamInterrupted(
                            f"stream from {ep.label} broke after partial output: {exc.reason}"
                        ) from exc
                    if await self._retry_same(ep, breaker, attempt, exc, failures):
                        continue
                    break
                except ModelRequestError:
                    breaker.record_success()
                    raise
                except BaseException:
                    breaker.release()
                    raise
                breaker.record_success()
                return
        raise self._unavailable(failures)

    async def _stream_once(
        self, ep: Endpoint, body: dict[str, Any], http_timeout: float | None, task_id: str | None
    ) -> AsyncIterator[str]:
        url = f"{ep.base_url}/chat/completions"
        try:
            async with self._http.stream(
                "POST",
                url,
                json=body,
                headers=self._headers(ep),
                timeout=self._timeout(http_timeout),
            ) as resp:
                if resp.status_code >= 400:
                    await resp.aread()
                    self._check_status(ep, resp)
                done = False
                async for line in resp.aiter_lines():
                    line = line.strip()
                    if not line.startswith("data:"):
                        continue
                    payload = line[5:].strip()
                    if payload == "[DONE]":
                        done = True
                        break
                    try:
                        chunk = json.loads(payload)
                    except ValueError as exc:
                        raise _Transient(f"invalid SSE chunk {payload[:80]!r}") from exc
                    if not isinstance(chunk, dict):
                        raise _Transient(f"invalid SSE chunk {payload[:80]!r}")
                    if "error" in chunk:
                        raise _Transient(f"server error mid-stream: {chunk['error']}")
                    self._account(task_id, usage_of(chunk))
                    for choice in chunk.get("choices") or []:
                        delta = choice.get("delta") or {}
                        content = delta.get("content")
                        if content:
                            yield str(content)
                if not done:
                    raise _Transient("stream ended before [DONE]")
        except httpx.TimeoutException as exc:
            raise _Transient(f"timed out ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            raise _Transient(f"{type(exc).__name__}: {exc}") from exc

    # ---------------------------------------------------------------- action

    async def action(
        self,
        messages: Sequence[Message],
        schema_model: type[M],
        *,
        task_id: str | None = None,
        max_tokens: int | None = None,
        temperature: float = 0.0,
        timeout: float | None = None,  # noqa: ASYNC109 - per-request HTTP timeout, retried
        format_retries: int = 0,
    ) -> M:
        """Ask for one structured action matching ``schema_model``; validated with pydantic.

        A bad reply raises :class:`FormatError` (message meant for the model). With
        ``format_retries`` > 0 the client itself feeds the message back that many times.
        """
        name = schema_name(schema_model)
        schema = schema_model.model_json_schema()

        def extra(ep: Endpoint) -> dict[str, Any]:
            if ep.action_mode == "tools":
                return {
                    "tools": [
                        {
                            "type": "function",
                            "function": {
                                "name": name,
                                "description": (schema_model.__doc__ or name).strip(),
                                "parameters": schema,
                            },
                        }
                    ],
                    "tool_choice": {"type": "function", "function": {"name": name}},
                }
            return {
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": name, "schema": schema, "strict": True},
                }
            }

        convo = [dict(m) for m in messages]
        for round_ in range(format_retries + 1):
            result = await self._chat(convo, extra, task_id, max_tokens, temperature, timeout)
            raw = result.text
            try:
                if result.endpoint.action_mode == "tools":
                    if not result.tool_calls:
                        raise FormatError(
                            f"Your reply made no call to the {name} tool; call it with "
                            "arguments matching its schema.",
                            raw=raw,
                        )
                    raw = result.tool_calls[0].arguments
                return parse_action(raw, schema_model)
            except FormatError as exc:
                if round_ >= format_retries:
                    raise
                log.info("action reply rejected (%s); asking again", exc.message[:200])
                convo += [
                    {"role": "assistant", "content": raw},
                    {"role": "user", "content": exc.message},
                ]
        raise AssertionError("unreachable")  # pragma: no cover

    # ---------------------------------------------------------------- embed

    async def embed(
        self,
        texts: Sequence[str],
        *,
        task_id: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - per-request HTTP timeout, retried
    ) -> list[list[float]]:
        """Embeddings from ``/v1/embeddings`` (configure a client with embedding endpoints)."""
        if not texts:
            return []

        async def once(ep: Endpoint) -> tuple[list[list[float]], Usage | None]:
            data = await self._post_json(
                ep, "/embeddings", {"model": ep.model, "input": list(texts)}, timeout
            )
            try:
                rows = sorted(data["data"], key=lambda d: int(d.get("index", 0)))
                vectors = [[float(x) for x in row["embedding"]] for row in rows]
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                raise _Transient(f"malformed embeddings response ({exc})") from exc
            if len(vectors) != len(texts):
                raise _Transient(f"{len(vectors)} embeddings for {len(texts)} inputs")
            return vectors, usage_of(data)

        vectors, usage = await self._with_retries(once)
        self._account(task_id, usage)
        return vectors

    # ---------------------------------------------------------------- plumbing

    def _headers(self, ep: Endpoint) -> dict[str, str]:
        return {"Authorization": f"Bearer {ep.api_key}"} if ep.api_key else {}

    def _timeout(self, timeout: float | None) -> float:
        return self.timeout if timeout is None else timeout

    def _check_status(self, ep: Endpoint, resp: httpx.Response) -> None:
        status = resp.status_code
        if status < 400:
            return
        message = server_message(resp)
        if status == 429 or status >= 500:
            retry_after = retry_after_seconds(resp.headers.get("retry-after"))
            raise _Transient(f"HTTP {status}: {message}", retry_after=retry_after)
        raise ModelRequestError(
            f"{ep.label} rejected the request (HTTP {status}): {message}",
            status=status,
            endpoint=ep.base_url,
        )

    async def _post_json(
        self, ep: Endpoint, path: str, body: Mapping[str, Any], http_timeout: float | None
    ) -> dict[str, Any]:
        try:
            resp = await self._http.post(
                f"{ep.base_url}{path}",
                json=body,
                headers=self._headers(ep),
                timeout=self._timeout(http_timeout),
            )
        except httpx.TimeoutException as exc:
            raise _Transient(f"timed out ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            raise _Transient(f"{type(exc).__name__}: {exc}") from exc
        self._check_status(ep, resp)
        try:
            data = resp.json()
        except ValueError as exc:
            raise _Transient(f"response body is not JSON: {quote(resp.text)!r}") from exc
        if not isinstance(data, dict):
            raise _Transient(f"response body is not a JSON object: {quote(resp.text)!r}")
        return data

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        delay = self.backoff[min(attempt, len(self.backoff) - 1)]
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.max_retry_after))
        return delay

    async def _retry_same(
        self,
        ep: Endpoint,
        breaker: CircuitBreaker,
        attempt: int,
        exc: _Transient,
        failures: list[str],
    ) -> bool:
        """Record a transient failure; sleep and return True when the endpoint gets another
        attempt, False to fall over to the next one."""
        failures.append(f"{ep.label}: {exc.reason}")
        if attempt >= self.max_retries or breaker.state != "closed":
            log.warning("%s failed (%s); giving up on this endpoint", ep.label, exc.reason)
            return False
        delay = self._delay(attempt, exc.retry_after)
        log.warning("%s failed (%s); retrying in %.3gs", ep.label, exc.reason, delay)
        await self._sleep(delay)
        return True

    def _unavailable(self, failures: Sequence[str]) -> ModelUnavailable:
        detail = "; ".join(failures[-6:]) or "no endpoint"
        return ModelUnavailable(f"no model endpoint answered: {detail}", failures=failures)

    async def _with_retries(self, once: Callable[[Endpoint], Awaitable[T]]) -> T:
        failures: list[str] = []
        for idx, ep in enumerate(self.endpoints):
            breaker = self.breakers[idx]
            for attempt in range(self.max_retries + 1):
                if not breaker.allow():
                    failures.append(f"{ep.label}: circuit open")
                    break
                try:
                    result = await once(ep)
                except _Transient as exc:
                    breaker.record_failure()
                    if await self._retry_same(ep, breaker, attempt, exc, failures):
                        continue
                    break
                except ModelRequestError:
                    breaker.record_success()  # the server is up; the request is wrong
                    raise
                except BaseException:
                    breaker.release()
                    raise
                breaker.record_success()
                return result
        raise self._unavailable(failures)
