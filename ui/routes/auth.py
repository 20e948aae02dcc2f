"""Sign in (local users, then LDAP when configured) and sign out."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from sqlmodel import select
from starlette.responses import RedirectResponse, Response

from appliance.errors import InvalidInput
from appliance.store import audit
from appliance.store import users as user_store
from appliance.store.models import Role, User
from ui import userops
from ui.auth import CsrfChecked, LoginLimiter, load_user
from ui.deps import ApplianceDep
from ui.forms import read_form
from ui.ldap import LdapError, authenticate
from ui.render import render
from ui.sessions import clear_cookie, current_session, set_cookie, signer

router = APIRouter()


def _safe_next(value: str) -> str:
    """Only a path on this site (no //host, no scheme) is a place to go after sign-in."""
    if value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/"


@router.get("/login")
def login_page(request: Request, appliance: ApplianceDep, next: str = "/") -> Response:
    if load_user(request) is not None:
        return RedirectResponse(_safe_next(next), status_code=303)
    return render(
        request,
        "login.html",
        next=_safe_next(next),
        error="",
        username="",
        ldap=bool(appliance.settings.ui.ldap.url),
    )


def _local(appliance: ApplianceDep, username: str, password: str) -> tuple[bool, bool]:
    """(known as a local user with a password, password correct)."""
    with appliance.db.session() as session:
        user = session.exec(select(User).where(User.username == username)).first()
    if user is None or user.password_hash is None:
        return False, False
    return True, user_store.verify_password(user, password)


def _ldap_user(appliance: ApplianceDep, username: str, role: Role) -> None:
    """An LDAP user gets a local row (no password) with the role its groups map to."""
    with appliance.db.write() as session:
        user = session.exec(select(User).where(User.username == username)).first()
        if user is None:
            user_store.create_user(
                session, username=username, role=role, password=None, actor="ldap"
            )
        elif user.role != role:
            userops.set_role(session, username=username, role=role, actor="ldap")


@router.post("/login")
async def login(request: Request, appliance: ApplianceDep, _csrf: CsrfChecked) -> Response:
    form = await read_form(request)
    username = form.get("username").strip()
    password = form.get("password")
    target = _safe_next(form.get("next") or "/")
    limiter: LoginLimiter = request.app.state.ui_login_limiter
    address = request.client.host if request.client else "?"
    limiter.check(address, username)
    known, ok = await asyncio.to_thread(_local, appliance, username, password)
    error = "Wrong username or password."
    ldap_cfg = appliance.settings.ui.ldap
    how = "local"
    if not ok and not known and ldap_cfg.url and username:
        try:
            role = await asyncio.to_thread(authenticate, ldap_cfg, username, password)
            if role is not None:
                await asyncio.to_thread(_ldap_user, appliance, username, role)
                ok, how = True, "ldap"
        except (LdapError, InvalidInput) as exc:
            error = exc.message
    if ok:
        with appliance.db.session() as session:
            user = session.exec(select(User).where(User.username == username)).first()
        if user is None or user.disabled:
            ok, error = False, "This account is disabled; ask an admin."
    if not ok:
        limiter.failed(address, username)
        return render(
            request,
            "login.html",
            status_code=401,
            next=target,
            error=error,
            username=username,
            ldap=bool(ldap_cfg.url),
        )
    limiter.succeeded(address, username)

    def record() -> None:
        with appliance.db.write() as session:
            audit.append(
                session,
                actor=username,
                action="ui.login",
                subject=f"user:{username}",
                details={"via": how, "address": address},
            )

    await asyncio.to_thread(record)
    sessions = signer(request)
    sessions.revoke(current_session(request))
    response = RedirectResponse(target, status_code=303)
    set_cookie(request, response, sessions.new(username))
    return response


@router.post("/logout")
async def logout(request: Request, _csrf: CsrfChecked) -> Response:
    signer(request).revoke(current_session(request))
    response = RedirectResponse("/login", status_code=303)
    clear_cookie(request, response)
    return response
