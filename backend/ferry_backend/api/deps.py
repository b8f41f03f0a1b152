"""Request dependencies: the running services and the caller's identity (bearer token → role)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from .. import store as st
from ..errors import Forbidden, Unauthorized
from ..security import Role
from ..services import Services


async def get_services(request: Request) -> Services:
    """Async on purpose: FastAPI runs a plain `def` dependency on a worker thread, one hop per request."""
    return request.app.state.services


ServicesDep = Annotated[Services, Depends(get_services)]


@dataclass(frozen=True)
class Principal:
    token_id: str
    role: Role
    name: str = ""  # the token's name: who a job was started by


def bearer(request: Request) -> str:  # called directly, never as a dependency
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("send Authorization: Bearer <token>", headers={"WWW-Authenticate": "Bearer"})
    return token.strip()


async def authenticate(request: Request, services: ServicesDep) -> Principal:
    token = bearer(request)
    async with services.store.read() as session:
        row = await st.find_token(session, token)
    if row is None:
        raise Unauthorized("unknown token", headers={"WWW-Authenticate": "Bearer"})
    return Principal(row.id, Role.parse(row.role), row.name)


def require(role: Role):
    async def _check(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
        if principal.role < role:
            raise Forbidden(f"this needs the {role.name} role; your token is {principal.role.name}")
        return principal

    return _check


Viewer = Annotated[Principal, Depends(require(Role.viewer))]
Operator = Annotated[Principal, Depends(require(Role.operator))]
Admin = Annotated[Principal, Depends(require(Role.admin))]
