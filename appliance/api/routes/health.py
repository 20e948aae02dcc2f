"""Probes and metrics: /healthz (process up), /readyz (database ready), /metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from appliance.api.deps import ApplianceDep
from appliance.store import migrate

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
def readyz(appliance: ApplianceDep) -> JSONResponse:
    checks: dict[str, str] = {}
    try:
        with appliance.db.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
        current = migrate.current_revision(appliance.db.engine)
        head = migrate.head_revision()
        checks["migrations"] = (
            "ok"
            if current == head
            else f"at {current or 'none'}, expected {head}: run `appliance migrate`"
        )
    except Exception as exc:  # a probe reports, it does not raise
        checks["database"] = f"unreachable: {type(exc).__name__}: {exc}"
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": checks},
        status_code=200 if ready else 503,
    )


@router.get("/metrics")
def metrics(request: Request) -> Response:
    registry = request.app.state.metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
