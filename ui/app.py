"""Mounting the UI on the FastAPI application: routers, static files, HTML errors."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles

from ui import errors
from ui.auth import LoginLimiter
from ui.render import STATIC
from ui.routes import (
    admin,
    analytics,
    audit,
    auth,
    dashboard,
    jobs,
    models,
    repositories,
    review,
    tasks,
)
from ui.sessions import SessionSigner


def install(app: FastAPI) -> None:
    """Add the web UI to ``app`` (built by ``appliance.api.create_app``)."""
    settings = app.state.appliance.settings
    app.state.ui_sessions = SessionSigner(
        settings.security.secret_key.get_secret_value(),
        lifetime_s=settings.ui.session_hours * 3600,
    )
    app.state.ui_login_limiter = LoginLimiter(
        settings.ui.login_attempts, settings.ui.login_window_seconds
    )
    errors.install(app)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    for module in (
        auth,
        dashboard,
        tasks,
        review,
        repositories,
        models,
        audit,
        admin,
        jobs,
        analytics,
    ):
        app.include_router(module.router, include_in_schema=False)
