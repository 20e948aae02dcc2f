"""FastAPI dependencies: the appliance, database sessions, the caller and their role."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlmodel import Session

from appliance.core import Appliance
from appliance.errors import Forbidden, Unauthenticated
from appliance.store import users
from appliance.store.models import Role


def get_appliance(request: Request) -> Appliance:
    appliance: Appliance = request.app.state.appliance
    return appliance


ApplianceDep = Annotated[Appliance, Depends(get_appliance)]


def get_session(appliance: ApplianceDep) -> Iterator[Session]:
    """A read session; writes go through ``appliance.db.write()``."""
    with appliance.db.session() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


@dataclass(frozen=True)
class Principal:
    username: str
    role: Role
    token_id: int | None

    def can(self, needed: Role) -> bool:
        return self.role.allows(needed)


def get_principal(request: Request, appliance: ApplianceDep) -> Principal:
    """Checks the bearer token in a session of its own, closed at once: a long request
    (an event stream) must not hold a pooled connection for its whole life."""
    header = request.headers.get("authorization", "")
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        raise Unauthenticated(
            "Send an API token as 'Authorization: Bearer <token>'; "
            "create one with `appliance token create USERNAME`."
        )
    with appliance.db.session() as session:
        user, token = users.authenticate_token(session, credentials.strip())
    return Principal(username=user.username, role=token.role, token_id=token.id)


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def require(role: Role) -> Callable[[Principal], Principal]:
    def check(principal: PrincipalDep) -> Principal:
        if not principal.can(role):
            raise Forbidden(
                f"This needs the {role.value} role; your token has {principal.role.value}."
            )
        return principal

    return check


Viewer = Annotated[Principal, Depends(require(Role.viewer))]
Developer = Annotated[Principal, Depends(require(Role.developer))]
Admin = Annotated[Principal, Depends(require(Role.admin))]
