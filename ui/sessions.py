"""Signed session cookies and the CSRF token bound to them.

The cookie holds ``{sid, user, exp}`` as base64 JSON with an HMAC-SHA256 signature made
with a key derived from ``security.secret_key``; it is HttpOnly, SameSite=Lax and Secure
when the request came over TLS. Every visitor gets a session (anonymous until sign-in),
so the sign-in form has a CSRF token too; signing in rotates the session id. The CSRF
token is an HMAC of the session id: a page may embed it, a request must send it back
(form field ``csrf_token`` or header ``X-CSRF-Token``) to change anything.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass

from fastapi import Request
from starlette.responses import Response

COOKIE = "appliance_session"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
_ANON_SECONDS = 2 * 3600


@dataclass(frozen=True)
class Session:
    sid: str
    user: str | None
    exp: float
    fresh: bool = False  # not from a cookie: the response must set it


class SessionSigner:
    """Signs and reads session cookies; remembers the sessions signed out of."""

    def __init__(self, secret: str, *, lifetime_s: float) -> None:
        self._key = hashlib.sha256(b"appliance-ui-session\x00" + secret.encode()).digest()
        self.lifetime_s = lifetime_s
        self._revoked: dict[str, float] = {}

    def _sign(self, data: bytes) -> str:
        return base64.urlsafe_b64encode(hmac.new(self._key, data, "sha256").digest()).decode()

    def dumps(self, session: Session) -> str:
        body = json.dumps({"sid": session.sid, "u": session.user, "exp": session.exp})
        data = base64.urlsafe_b64encode(body.encode()).decode()
        return f"{data}.{self._sign(data.encode())}"

    def loads(self, cookie: str) -> Session | None:
        data, _, sig = cookie.partition(".")
        if not data or not hmac.compare_digest(sig, self._sign(data.encode())):
            return None
        try:
            raw = json.loads(base64.urlsafe_b64decode(data.encode()))
            session = Session(sid=str(raw["sid"]), user=raw["u"], exp=float(raw["exp"]))
        except (ValueError, KeyError, TypeError):
            return None
        if session.exp <= time.time() or session.sid in self._revoked:
            return None
        return session

    def new(self, user: str | None = None) -> Session:
        lifetime = self.lifetime_s if user else _ANON_SECONDS
        return Session(secrets.token_urlsafe(18), user, time.time() + lifetime, fresh=True)

    def revoke(self, session: Session) -> None:
        now = time.time()
        self._revoked = {sid: exp for sid, exp in self._revoked.items() if exp > now}
        self._revoked[session.sid] = session.exp

    def csrf_token(self, session: Session) -> str:
        return self._sign(b"csrf\x00" + session.sid.encode())


def signer(request: Request) -> SessionSigner:
    found: SessionSigner = request.app.state.ui_sessions
    return found


def current_session(request: Request) -> Session:
    """This request's session: from its cookie, or a new anonymous one."""
    cached = getattr(request.state, "ui_session", None)
    if isinstance(cached, Session):
        return cached
    sessions = signer(request)
    cookie = request.cookies.get(COOKIE)
    session = (sessions.loads(cookie) if cookie else None) or sessions.new()
    request.state.ui_session = session
    return session


def set_cookie(request: Request, response: Response, session: Session) -> None:
    response.set_cookie(
        COOKIE,
        signer(request).dumps(session),
        max_age=max(1, int(session.exp - time.time())),
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )


def clear_cookie(request: Request, response: Response) -> None:
    response.delete_cookie(
        COOKIE, path="/", httponly=True, samesite="lax", secure=request.url.scheme == "https"
    )
