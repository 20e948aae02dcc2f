"""Errors of the web UI and the HTML error page.

Hierarchy::

    UiError                 an HTTP status and a message that says what to fix
    ├── LoginRequired (401) no session: a page load is sent to /login, HTMX is told to go
    └── CsrfRefused   (403) a state-changing request without this session's CSRF token

Domain errors (``appliance.errors.ApplianceError``) carry their own status. On UI paths
every error renders as an HTML page (or, for HTMX, a fragment swapped into the flash
area); on ``/api`` the JSON handlers the API installed answer as before.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import cast
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import RedirectResponse, Response

from appliance.errors import ApplianceError

log = logging.getLogger(__name__)
Handler = Callable[[Request, Exception], Awaitable[Response]]
_JSON_PREFIXES = ("/api/", "/healthz", "/readyz", "/livez", "/metrics")


class UiError(Exception):
    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message


class LoginRequired(UiError):
    def __init__(self) -> None:
        super().__init__(401, "Sign in to see this page.")


class CsrfRefused(UiError):
    def __init__(self, message: str | None = None) -> None:
        super().__init__(
            403,
            message
            or "The form was not sent from this site's page (its security token is missing or "
            "stale). Reload the page and try again.",
        )


def is_ui_path(path: str) -> bool:
    return not any(path == p.rstrip("/") or path.startswith(p) for p in _JSON_PREFIXES)


_TITLES = {
    400: "Bad request",
    401: "Sign-in needed",
    403: "Not allowed",
    404: "Not found",
    405: "Not allowed here",
    409: "Not possible now",
    413: "Too large",
    415: "Wrong form type",
    422: "Please check the form",
    429: "Too many attempts",
    500: "Something went wrong",
}


def _message(exc: Exception) -> tuple[int, str]:
    if isinstance(exc, UiError):
        return exc.status_code, exc.message
    if isinstance(exc, ApplianceError):
        return exc.status_code, exc.message
    if isinstance(exc, RequestValidationError):
        parts = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("query", "path"))
            parts.append(f"{where}: {err.get('msg', 'invalid')}")
        return 422, "The address has a wrong value: " + "; ".join(parts)
    if isinstance(exc, StarletteHTTPException):
        detail = str(exc.detail)
        if exc.status_code == 404 and detail == "Not Found":
            detail = "There is no page at this address; use the menu to find your way."
        return exc.status_code, detail
    return 500, "Something went wrong on the server; the server log has the details."


def error_response(request: Request, exc: Exception) -> Response:
    from ui.render import is_htmx, render_error

    status, message = _message(exc)
    htmx = is_htmx(request)
    if isinstance(exc, LoginRequired):
        target = "/login?next=" + quote(request.url.path, safe="/")
        if htmx:
            return Response(status_code=401, headers={"HX-Redirect": target})
        if request.method == "GET":
            return RedirectResponse(target, status_code=303)
    return render_error(request, status, _TITLES.get(status, "Error"), message, fragment=htmx)


def install(app: FastAPI) -> None:
    """Wrap the API's exception handlers: UI paths get HTML, the rest what they had."""
    for exc_class in (
        UiError,
        ApplianceError,
        RequestValidationError,
        StarletteHTTPException,
        Exception,
    ):
        previous = cast(Handler | None, app.exception_handlers.get(exc_class))
        app.add_exception_handler(exc_class, _wrap(previous))


def _wrap(previous: Handler | None) -> Handler:
    async def handle(request: Request, exc: Exception) -> Response:
        if previous is not None and not is_ui_path(request.url.path):
            return await previous(request, exc)
        if not isinstance(
            exc, UiError | ApplianceError | StarletteHTTPException | RequestValidationError
        ):
            log.exception("unhandled error", exc_info=exc)
        return error_response(request, exc)

    return handle
