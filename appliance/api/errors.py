"""One JSON shape for every error: ``{"error": code, "message": text, "fields": [...]}``."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from appliance.errors import ApplianceError, InvalidInput

log = logging.getLogger(__name__)


def _body(code: str, message: str, fields: list[dict[str, str]] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"error": code, "message": message}
    if fields:
        body["fields"] = fields
    return body


def _field_name(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


async def _appliance_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApplianceError)
    fields = None
    if isinstance(exc, InvalidInput) and exc.field:
        fields = [{"field": exc.field, "message": exc.message}]
    if exc.status_code >= 500:
        log.error("internal error: %s", exc.message)
    headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
    return JSONResponse(
        _body(exc.code, exc.message, fields), status_code=exc.status_code, headers=headers
    )


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    fields = []
    for err in exc.errors():
        msg = str(err.get("msg", "invalid value"))
        if err.get("type") == "json_invalid":
            msg = "the body is not valid JSON: " + str(err.get("ctx", {}).get("error", msg))
        fields.append({"field": _field_name(tuple(err.get("loc", ()))), "message": msg})
    summary = "; ".join(f"{f['field']}: {f['message']}" for f in fields)
    return JSONResponse(
        _body("validation_error", f"The request is not valid: {summary}", fields),
        status_code=422,
    )


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    message = str(exc.detail)
    if exc.status_code == 404 and message == "Not Found":
        message = "No such endpoint; the API is described at /api/v1/openapi.json."
    return JSONResponse(_body(code, message), status_code=exc.status_code)


async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error", exc_info=exc)
    return JSONResponse(
        _body("internal_error", "Something went wrong on the server; the log has details."),
        status_code=500,
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(ApplianceError, _appliance_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
