"""Form bodies without a multipart library: browsers and HTMX post url-encoded forms."""

from __future__ import annotations

from urllib.parse import parse_qs

from fastapi import Request

from ui.errors import UiError

_MAX_FORM_BYTES = 2_000_000


class Form:
    """The fields of one url-encoded body; a missing field reads as ''."""

    def __init__(self, fields: dict[str, list[str]]) -> None:
        self.fields = fields

    def get(self, name: str, default: str = "") -> str:
        values = self.fields.get(name)
        return values[0] if values else default

    def getlist(self, name: str) -> list[str]:
        return list(self.fields.get(name, []))

    def __contains__(self, name: str) -> bool:
        return name in self.fields


async def read_form(request: Request) -> Form:
    """Parse (once per request) the url-encoded body of a POST."""
    cached = getattr(request.state, "ui_form", None)
    if isinstance(cached, Form):
        return cached
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await request.body()
    if len(body) > _MAX_FORM_BYTES:
        raise UiError(413, "The form is too large (over 2 MB); shorten the text and send it again.")
    if body and ctype not in ("application/x-www-form-urlencoded", ""):
        raise UiError(415, "This page takes url-encoded forms; send the form from the page itself.")
    form = Form(parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True))
    request.state.ui_form = form
    return form
