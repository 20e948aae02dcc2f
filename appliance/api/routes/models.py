"""Model endpoints as the monitor last saw them: serving or not, latency, load."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from appliance.api.deps import ApplianceDep, Viewer

router = APIRouter(prefix="/models", tags=["models"])


@router.get("")
def list_models(appliance: ApplianceDep, _principal: Viewer) -> dict[str, Any]:
    """Each endpoint's last probe. ``demo`` marks the CPU demonstration model, which proves
    the path but is not a coding model."""
    monitor = appliance.model_monitor
    endpoints = [s.as_dict() for s in monitor.snapshot()] if monitor is not None else []
    note = None
    if not endpoints:
        note = "no model endpoint: configure models.endpoints (a vLLM server) to run tasks"
    elif any(e["demo"] for e in endpoints):
        note = (
            "serving the CPU demonstration model (SmolLM2-135M): it proves the path, "
            "it is not a coding model"
        )
    return {"endpoints": endpoints, "note": note}
