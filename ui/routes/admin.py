"""Admin: users, roles, API tokens (admins only)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from appliance.errors import InvalidInput
from appliance.store import users as user_store
from appliance.store.models import Role
from ui import userops
from ui.auth import AdminUser, CsrfChecked
from ui.deps import ApplianceDep, redirect
from ui.forms import read_form
from ui.render import render

router = APIRouter()


def _page(request: Request, appliance: ApplianceDep, **extra: object) -> Response:
    with appliance.db.session() as session:
        users = userops.list_users(session)
        tokens = userops.list_tokens(session)
    values: dict[str, Any] = {"new_token": None, "error": "", **extra}
    return render(
        request,
        "admin.html",
        active="admin",
        users=users,
        tokens=tokens,
        roles=[r.value for r in Role],
        **values,
    )


def _role(value: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        raise InvalidInput(f"Pick a role: viewer, developer or admin (not {value!r}).") from None


@router.get("/admin")
def admin_page(request: Request, appliance: ApplianceDep, _user: AdminUser) -> Response:
    return _page(request, appliance)


@router.post("/admin/users")
async def create_user(
    request: Request, appliance: ApplianceDep, user: AdminUser, _csrf: CsrfChecked
) -> Response:
    form = await read_form(request)
    password = form.get("password") or None
    role = _role(form.get("role"))

    def write() -> None:
        with appliance.db.write() as session:
            user_store.create_user(
                session,
                username=form.get("username").strip(),
                role=role,
                password=password,
                actor=user.username,
            )

    await asyncio.to_thread(write)
    return redirect(request, "/admin")


@router.post("/admin/users/{username}/role")
async def change_role(
    username: str, request: Request, appliance: ApplianceDep, user: AdminUser, _csrf: CsrfChecked
) -> Response:
    role = _role((await read_form(request)).get("role"))

    def write() -> None:
        with appliance.db.write() as session:
            userops.set_role(session, username=username, role=role, actor=user.username)

    await asyncio.to_thread(write)
    return redirect(request, "/admin")


@router.post("/admin/users/{username}/disabled")
async def set_disabled(
    username: str, request: Request, appliance: ApplianceDep, user: AdminUser, _csrf: CsrfChecked
) -> Response:
    disabled = (await read_form(request)).get("disabled") == "1"

    def write() -> None:
        with appliance.db.write() as session:
            userops.set_disabled(session, username=username, disabled=disabled, actor=user.username)

    await asyncio.to_thread(write)
    return redirect(request, "/admin")


@router.post("/admin/tokens")
async def create_token(
    request: Request, appliance: ApplianceDep, user: AdminUser, _csrf: CsrfChecked
) -> Response:
    """The clear token is shown once, on the page this answers with."""
    form = await read_form(request)
    days = form.get("days").strip()
    if days and not days.isdigit():
        raise InvalidInput("Expires in: a whole number of days, or empty for no expiry.")
    role = _role(form.get("role")) if form.get("role") else None

    def write() -> str:
        with appliance.db.write() as session:
            clear, _ = user_store.create_token(
                session,
                username=form.get("username").strip(),
                name=form.get("name") or "ui",
                role=role,
                expires_in=timedelta(days=int(days)) if days else None,
                actor=user.username,
            )
            return clear

    clear = await asyncio.to_thread(write)
    return _page(request, appliance, new_token=clear)


@router.post("/admin/tokens/{token_id}/revoke")
async def revoke_token(
    token_id: int, request: Request, appliance: ApplianceDep, user: AdminUser, _csrf: CsrfChecked
) -> Response:
    def write() -> None:
        with appliance.db.write() as session:
            userops.revoke_token(session, token_id=token_id, actor=user.username)

    await asyncio.to_thread(write)
    return redirect(request, "/admin")
