"""Jinja2 rendering: one environment, pages and HTMX fragments, the HTMX dependency.

A page template extends ``base.html``; a fragment is a ``_partials/_name.html`` template.
:data:`Htmx` tells an HTMX request (``HX-Request: true``, not a history restore) from a
full page load, so one route can answer with the page or just the fragment.
"""

from __future__ import annotations

import functools
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request
from jinja2 import ChainableUndefined, Environment, FileSystemLoader, select_autoescape
from starlette.responses import HTMLResponse

from appliance.store.models import Role
from ui.sessions import current_session, set_cookie, signer

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"
ASSETS = {
    "htmx": "htmx-2.0.11.min.js",
    "sse": "htmx-ext-sse-2.2.4.min.js",
    "css": "appliance-1.0.css",
    "pygments": "pygments-2.21.css",
    "js": "appliance-1.0.js",
}


def is_htmx(request: Request) -> bool:
    headers = request.headers
    return headers.get("hx-request") == "true" and headers.get("hx-history-restore-request") != (
        "true"
    )


Htmx = Annotated[bool, Depends(is_htmx)]


def _when(value: datetime | str | None) -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _ago(value: datetime | None) -> str:
    if value is None:
        return "—"
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    seconds = int((datetime.now(UTC) - value).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return f"{max(seconds, 0)} s ago"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


@functools.cache
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"]),
        # payloads are free-form dicts: a missing field renders empty, never a 500
        undefined=ChainableUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = _when
    env.filters["ago"] = _ago
    env.filters["duration"] = _duration
    env.filters["tojson_pretty"] = lambda v: json.dumps(v, indent=2, sort_keys=True, default=str)
    env.globals["assets"] = ASSETS
    env.globals["Role"] = Role
    return env


def context(request: Request, **values: Any) -> dict[str, Any]:
    from ui.auth import load_user

    session = current_session(request)
    return {
        "request": request,
        "user": load_user(request),
        "csrf": signer(request).csrf_token(session),
        "active": "",
        **values,
    }


def render(request: Request, name: str, *, status_code: int = 200, **values: Any) -> HTMLResponse:
    """Render a page or fragment; a session new to this request gets its cookie."""
    html = environment().get_template(name).render(context(request, **values))
    response = HTMLResponse(html, status_code=status_code)
    session = current_session(request)
    if session.fresh:
        set_cookie(request, response, session)
    return response


def render_error(
    request: Request, status: int, title: str, message: str, *, fragment: bool
) -> HTMLResponse:
    name = "_partials/_error.html" if fragment else "error.html"
    try:
        response = render(request, name, status_code=status, title=title, message=message)
    except Exception:  # the error page itself must not fail (a broken store, say)
        response = HTMLResponse(f"<h1>{title}</h1><p>{_escape(message)}</p>", status_code=status)
    if fragment:
        response.headers["HX-Retarget"] = "#flash"
        response.headers["HX-Reswap"] = "innerHTML"
    return response


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
