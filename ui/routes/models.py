"""Model endpoints: health, served model, context length, GPUs, live vLLM figures."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from ui.auth import ViewerUser
from ui.deps import ApplianceDep
from ui.render import render

router = APIRouter()


def gpu_inventory() -> tuple[list[dict[str, str]], str]:
    """GPUs as nvidia-smi lists them, or why there are none to show."""
    if shutil.which("nvidia-smi") is None:
        return [], "No NVIDIA driver on this machine (nvidia-smi is missing): no GPU inventory."
    fields = "index,name,memory.total,memory.used,utilization.gpu"
    try:
        out = subprocess.run(
            ["nvidia-smi", f"--query-gpu={fields}", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout
    except (subprocess.SubprocessError, OSError) as exc:
        return [], f"nvidia-smi failed: {exc}"
    gpus = []
    for line in out.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 5:
            gpus.append(dict(zip(("index", "name", "total", "used", "util"), parts, strict=True)))
    return gpus, ""


#: vLLM's figures (keys of :func:`models.vllm.parse_metrics`) as the page shows them, in order
_FIGURES: tuple[tuple[str, str], ...] = (
    ("num_requests_running", "Requests running"),
    ("num_requests_waiting", "Requests waiting"),
    ("kv_cache_usage_perc", "KV-cache use"),
    ("ttft_mean_seconds", "Time to first token (mean)"),
    ("ttft_count", "Requests timed"),
)


def figures(metrics: dict[str, float]) -> list[tuple[str, str]]:
    """(label, value in words) for each figure the endpoint reported."""
    out = []
    for key, label in _FIGURES:
        value = metrics.get(key)
        if value is None:
            continue
        if key == "kv_cache_usage_perc":
            text = f"{value * 100:.1f} %"
        elif key == "ttft_mean_seconds":
            text = f"{value * 1000:.0f} ms"
        else:
            text = f"{value:,.0f}"
        out.append((label, text))
    return out


def _statuses(appliance: ApplianceDep) -> list[dict[str, Any]]:
    monitor = appliance.model_monitor
    statuses: list[dict[str, Any]] = (
        [s.as_dict() for s in monitor.snapshot()] if monitor is not None else []
    )
    contexts = {ep.base_url: ep.context_length for ep in appliance.model_endpoints}
    for s in statuses:
        s["context_length"] = contexts.get(s["base_url"])
        s["figures"] = figures(s.get("metrics") or {})
    return statuses


@router.get("/models")
async def models_page(request: Request, appliance: ApplianceDep, _user: ViewerUser) -> Response:
    gpus, gpu_note = await asyncio.to_thread(gpu_inventory)
    configured = [
        {
            "base_url": ep.base_url,
            "model": ep.model,
            "kind": ep.kind,
            "context_length": ep.context_length,
        }
        for ep in appliance.model_endpoints
    ]
    return render(
        request,
        "models.html",
        active="models",
        statuses=_statuses(appliance),
        configured=configured,
        gpus=gpus,
        gpu_note=gpu_note,
    )


@router.get("/fragments/model-status")
def model_status(request: Request, appliance: ApplianceDep, _user: ViewerUser) -> Response:
    """Polled by the models page every few seconds: each endpoint's health and figures."""
    return render(request, "_partials/_model_status.html", statuses=_statuses(appliance))
