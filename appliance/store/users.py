"""Users (argon2 password hashes) and API tokens (stored as SHA-256 of the token)."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlmodel import Session, select

from appliance.errors import Conflict, InvalidInput, NotFound, Unauthenticated
from appliance.store import audit
from appliance.store.models import ApiToken, Role, User, as_utc, utcnow

TOKEN_PREFIX = "apl_"  # noqa: S105 - a prefix, makes leaked tokens easy to spot and redact
_hasher = PasswordHasher()


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_user(
    session: Session, *, username: str, role: Role, password: str | None, actor: str
) -> User:
    if (
        not username
        or len(username) > 100
        or not username.replace("-", "").replace("_", "").replace(".", "").isalnum()
    ):
        raise InvalidInput(
            "A username is 1-100 letters, digits, '.', '-' or '_'.", field="username"
        )
    if session.exec(select(User.id).where(User.username == username)).first():
        raise Conflict(f"User {username!r} exists already.")
    if password is not None and len(password) < 8:
        raise InvalidInput("A password needs at least 8 characters.", field="password")
    user = User(
        username=username,
        role=role,
        password_hash=_hasher.hash(password) if password is not None else None,
    )
    session.add(user)
    session.flush()
    audit.append(
        session,
        actor=actor,
        action="user.create",
        subject=f"user:{username}",
        details={"role": role.value},
    )
    return user


def get_user(session: Session, username: str) -> User:
    user = session.exec(select(User).where(User.username == username)).first()
    if user is None:
        raise NotFound(f"No user is named {username!r}; create one with `appliance user create`.")
    return user


def count_users(session: Session) -> int:
    return len(session.exec(select(User.id)).all())


def verify_password(user: User, password: str) -> bool:
    if user.password_hash is None or user.disabled:
        return False
    try:
        return _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def create_token(
    session: Session,
    *,
    username: str,
    name: str,
    role: Role | None,
    expires_in: timedelta | None,
    actor: str,
) -> tuple[str, ApiToken]:
    """Return the clear token (shown once, never stored) and its row."""
    user = get_user(session, username)
    role = role or user.role
    if not user.role.allows(role):
        raise InvalidInput(
            f"User {username!r} is {user.role.value}; a token cannot carry more ({role.value}).",
            field="role",
        )
    clear = TOKEN_PREFIX + secrets.token_urlsafe(32)
    expires_at: datetime | None = utcnow() + expires_in if expires_in else None
    assert user.id is not None
    token = ApiToken(
        name=name, token_hash=hash_token(clear), role=role, owner_id=user.id, expires_at=expires_at
    )
    session.add(token)
    session.flush()
    audit.append(
        session,
        actor=actor,
        action="token.create",
        subject=f"user:{username}",
        details={"token_id": token.id, "name": name, "role": role.value},
    )
    return clear, token


def authenticate_token(session: Session, clear: str) -> tuple[User, ApiToken]:
    token = session.exec(select(ApiToken).where(ApiToken.token_hash == hash_token(clear))).first()
    if token is None:
        raise Unauthenticated(
            "The bearer token is not known; create one with `appliance token create`."
        )
    if token.expires_at is not None and as_utc(token.expires_at) <= utcnow():
        raise Unauthenticated("The bearer token has expired; create a new one.")
    user = session.get(User, token.owner_id)
    if user is None or user.disabled:
        raise Unauthenticated("The token's owner is disabled or gone.")
    return user, token
