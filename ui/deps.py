"""Small helpers the UI routes share: the appliance, redirects after a POST, flashes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from starlette.responses import RedirectResponse, Response

from appliance.core import Appliance
from ui.render import is_htmx


def get_appliance(request: Request) -> Appliance:
    found: Appliance = request.app.state.appliance
    return found


ApplianceDep = Annotated[Appliance, Depends(get_appliance)]


def redirect(request: Request, url: str) -> Response:
    """After a POST: a full load gets 303 See Other; HTMX is told where to go."""
    if is_htmx(request):
        return Response(status_code=204, headers={"HX-Location": url})
    return RedirectResponse(url, status_code=303)
