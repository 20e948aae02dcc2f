"""Who is signed in, what their role allows, CSRF checks and sign-in rate limiting.

Every UI route takes one of :data:`ViewerUser`, :data:`DeveloperUser`, :data:`AdminUser`;
the role is read from the users table on every request, so a disabled user or a
changed role takes effect at once. Every POST route also takes :data:`CsrfChecked`.
"""

from __future__ import annotations

import hmac
import time
from collections import defaultdict, deque
from collections.abc import Callable
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, Request

from appliance.api.deps import Principal
from appliance.core import Appliance
from appliance.errors import Forbidden
from appliance.store.models import Role, User
from ui.errors import CsrfRefused, LoginRequired, UiError
from ui.forms import read_form
from ui.sessions import CSRF_FIELD, CSRF_HEADER, current_session, signer


def _appliance(request: Request) -> Appliance:
    found: Appliance = request.app.state.appliance
    return found


def load_user(request: Request) -> Principal | None:
    """The signed-in user (re-read from the store), or None."""
    if hasattr(request.state, "ui_user"):
        cached: Principal | None = request.state.ui_user
        return cached
    session = current_session(request)
    principal = None
    if session.user:
        with _appliance(request).db.session() as db:
            from sqlmodel import select

            user = db.exec(select(User).where(User.username == session.user)).first()
        if user is not None and not user.disabled:
            principal = Principal(username=user.username, role=user.role, token_id=None)
    request.state.ui_user = principal
    return principal


def require_role(role: Role) -> Callable[[Request], Principal]:
    def check(request: Request) -> Principal:
        principal = load_user(request)
        if principal is None:
            raise LoginRequired()
        if not principal.can(role):
            raise Forbidden(
                f"This needs the {role.value} role; you are signed in as "
                f"{principal.username} ({principal.role.value}). Ask an admin for access."
            )
        return principal

    return check


ViewerUser = Annotated[Principal, Depends(require_role(Role.viewer))]
DeveloperUser = Annotated[Principal, Depends(require_role(Role.developer))]
AdminUser = Annotated[Principal, Depends(require_role(Role.admin))]


async def check_csrf(request: Request) -> None:
    """Refuse a state-changing request that lacks this session's CSRF token or comes
    from another origin."""
    origin = request.headers.get("origin")
    if origin and origin != "null":
        host = request.headers.get("host", "")
        if urlsplit(origin).netloc != host:
            raise CsrfRefused(f"The request came from another site ({origin}); refused.")
    session = current_session(request)
    sent = request.headers.get(CSRF_HEADER)
    if not sent:
        sent = (await read_form(request)).get(CSRF_FIELD)
    expected = signer(request).csrf_token(session)
    if not sent or session.fresh or not hmac.compare_digest(sent, expected):
        raise CsrfRefused()


CsrfChecked = Annotated[None, Depends(check_csrf)]


class LoginLimiter:
    """At most ``attempts`` failed sign-ins per (address, username) and per address in
    ``window_s``; then sign-in is refused until the oldest failure ages out."""

    def __init__(self, attempts: int, window_s: float) -> None:
        self.attempts = attempts
        self.window_s = window_s
        self._failures: defaultdict[str, deque[float]] = defaultdict(deque)

    def _recent(self, key: str, now: float) -> deque[float]:
        failures = self._failures[key]
        while failures and failures[0] <= now - self.window_s:
            failures.popleft()
        return failures

    def check(self, address: str, username: str) -> None:
        now = time.monotonic()
        for key, limit in ((f"{address}|{username}", self.attempts), (address, self.attempts * 4)):
            failures = self._recent(key, now)
            if len(failures) >= limit:
                wait = int(failures[0] + self.window_s - now) + 1
                raise UiError(
                    429,
                    f"Too many failed sign-ins; wait {wait} seconds and try again, or ask an "
                    "admin to check the account.",
                )

    def failed(self, address: str, username: str) -> None:
        now = time.monotonic()
        self._failures[f"{address}|{username}"].append(now)
        self._failures[address].append(now)

    def succeeded(self, address: str, username: str) -> None:
        self._failures.pop(f"{address}|{username}", None)
