"""Watch the model endpoints: are they serving, how fast, how loaded — for the UI and API.

Every ``interval`` seconds each endpoint is probed: ``GET /health`` (vLLM and llama.cpp) and
``GET /v1/models`` (every kind), timed; for vLLM, ``GET /metrics`` too, reduced by
:func:`models.vllm.parse_metrics` (running/waiting requests, KV-cache usage, mean time to
first token). A probe never raises: what failed goes into :attr:`EndpointStatus.problem`.
The latest status per endpoint is kept in memory; :meth:`EndpointMonitor.snapshot` returns it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from models.endpoint import Endpoint
from models.vllm import parse_metrics

log = logging.getLogger(__name__)


@dataclass
class EndpointStatus:
    base_url: str
    model: str
    kind: str
    demo: bool  # the CPU demonstration model: proves the path, not a coding model
    ready: bool = False
    problem: str | None = "not probed yet"
    latency_ms: float | None = None
    served_models: list[str] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    checked_at: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class EndpointMonitor:
    def __init__(
        self,
        endpoints: Sequence[Endpoint],
        *,
        demo_urls: Sequence[str] = (),
        interval: float = 15.0,
        timeout: float = 5.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.endpoints = list(endpoints)
        self.interval = interval
        self._http = httpx.AsyncClient(transport=transport, timeout=timeout, trust_env=False)
        self._status = [
            EndpointStatus(ep.base_url, ep.model, ep.kind, demo=ep.base_url in demo_urls)
            for ep in self.endpoints
        ]

    def snapshot(self) -> list[EndpointStatus]:
        return [EndpointStatus(**s.as_dict()) for s in self._status]

    async def poll_once(self) -> list[EndpointStatus]:
        await asyncio.gather(*(self._probe(i) for i in range(len(self.endpoints))))
        return self.snapshot()

    async def run(self) -> None:
        """Probe forever (cancel the task to stop)."""
        while True:
            await self.poll_once()
            await asyncio.sleep(self.interval)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _probe(self, index: int) -> None:
        ep, status = self.endpoints[index], self._status[index]
        headers = {"Authorization": f"Bearer {ep.api_key}"} if ep.api_key else {}
        status.checked_at = datetime.now(UTC).isoformat(timespec="seconds")
        began = time.perf_counter()
        try:
            if ep.kind in ("vllm", "llamacpp"):  # /health alone does not prove the model loaded
                health = await self._http.get(f"{ep.root}/health", headers=headers)
                if health.status_code != 200:
                    raise _Problem(f"GET /health answered {health.status_code}")
            listed = await self._http.get(f"{ep.base_url}/models", headers=headers)
            status.latency_ms = round((time.perf_counter() - began) * 1000, 1)
            if listed.status_code != 200:
                raise _Problem(f"GET /v1/models answered {listed.status_code}")
            status.served_models = [str(m.get("id")) for m in listed.json().get("data", [])]
            if ep.model and ep.model not in status.served_models:
                raise _Problem(
                    f"the server does not serve {ep.model!r} "
                    f"(it lists {', '.join(status.served_models) or 'nothing'})"
                )
            if ep.kind == "vllm":
                metrics = await self._http.get(f"{ep.root}/metrics", headers=headers)
                if metrics.status_code == 200:
                    status.metrics = parse_metrics(metrics.text)
        except _Problem as exc:
            self._mark(status, str(exc))
        except httpx.HTTPError as exc:
            self._mark(status, f"not reachable ({type(exc).__name__})")
        except (ValueError, AttributeError, TypeError) as exc:
            self._mark(status, f"answered something that is not OpenAI's model list ({exc})")
        else:
            if not status.ready:
                log.info("model endpoint %s is serving %s", ep.label, status.served_models)
            status.ready, status.problem = True, None

    @staticmethod
    def _mark(status: EndpointStatus, problem: str) -> None:
        if status.ready or status.problem != problem:
            log.warning("model endpoint %s: %s", status.base_url, problem)
        status.ready, status.problem = False, problem


class _Problem(Exception):
    pass
