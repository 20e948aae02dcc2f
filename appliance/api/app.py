"""The FastAPI application: JSON API v1, probes, metrics."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi_offline import FastAPIOffline

from appliance.api import errors
from appliance.api.metrics import Metrics, RequestMiddleware
from appliance.api.routes import health, jobs, models, repositories, tasks, webhooks
from appliance.config import Settings
from appliance.core import Appliance
from appliance.runner import Graph


def create_app(
    settings: Settings,
    *,
    graph: Graph | None = None,
    services: Mapping[str, Any] | None = None,
) -> FastAPI:
    appliance = Appliance(settings, graph=graph, services=services)
    metrics = Metrics(appliance.db)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await appliance.start()
        try:
            yield
        finally:
            await appliance.stop()

    # Docs served from packaged files: the appliance runs on networks without a CDN.
    app = FastAPIOffline(
        docs_url="/api/v1/docs",
        redoc_url=None,
        static_url="/api/v1/docs-static",
        title="Coding Agent Appliance",
        version="0.1.0",
        openapi_url="/api/v1/openapi.json",
        lifespan=lifespan,
    )
    app.state.appliance = appliance
    app.state.metrics = metrics
    errors.install(app)

    api = APIRouter(prefix="/api/v1")
    api.include_router(tasks.router)
    api.include_router(repositories.router)
    api.include_router(models.router)
    api.include_router(jobs.router)
    api.include_router(webhooks.router)
    app.include_router(api)
    app.include_router(health.router)
    app.add_middleware(RequestMiddleware, metrics=metrics)

    # --- web UI: pages at /, assets at /static (the one place appliance meets ui/) ---
    from ui.app import install as install_ui

    install_ui(app)
    # --- end web UI ---

    return app
