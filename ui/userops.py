"""User changes the users store does not offer yet: role, disabled flag, token revocation,
listing. Each writes an audit record in the same transaction, as the store's own
functions do. (To move into ``appliance/store/users.py``; the UI would then call those.)
"""

from __future__ import annotations

from sqlmodel import Session, col, select

from appliance.errors import Conflict, NotFound
from appliance.store import audit
from appliance.store.models import ApiToken, Role, User
from appliance.store.users import get_user


def list_users(session: Session) -> list[User]:
    return list(session.exec(select(User).order_by(col(User.username))))


def list_tokens(session: Session) -> list[tuple[ApiToken, str]]:
    rows = session.exec(
        select(ApiToken, User.username).join(User, col(ApiToken.owner_id) == col(User.id))
    )
    return [(token, name) for token, name in rows]


def _admins_left(session: Session, *, without: str) -> int:
    query = select(User.id).where(
        User.role == Role.admin, col(User.disabled).is_(False), User.username != without
    )
    return len(session.exec(query).all())


def set_role(session: Session, *, username: str, role: Role, actor: str) -> User:
    user = get_user(session, username)
    if user.role == role:
        return user
    if user.role == Role.admin and _admins_left(session, without=username) == 0:
        raise Conflict(f"{username} is the last admin; make someone else admin first.")
    before = user.role
    user.role = role
    session.add(user)
    session.flush()
    audit.append(
        session,
        actor=actor,
        action="user.role",
        subject=f"user:{username}",
        details={"from": before.value, "to": role.value},
    )
    return user


def set_disabled(session: Session, *, username: str, disabled: bool, actor: str) -> User:
    user = get_user(session, username)
    if disabled and user.role == Role.admin and _admins_left(session, without=username) == 0:
        raise Conflict(f"{username} is the last admin; it cannot be disabled.")
    user.disabled = disabled
    session.add(user)
    session.flush()
    audit.append(
        session,
        actor=actor,
        action="user.disable" if disabled else "user.enable",
        subject=f"user:{username}",
    )
    return user


def revoke_token(session: Session, *, token_id: int, actor: str) -> None:
    token = session.get(ApiToken, token_id)
    if token is None:
        raise NotFound(f"No API token has id {token_id}.")
    owner = session.get(User, token.owner_id)
    session.delete(token)
    session.flush()
    audit.append(
        session,
        actor=actor,
        action="token.revoke",
        subject=f"user:{owner.username if owner else token.owner_id}",
        details={"token_id": token_id, "name": token.name},
    )
