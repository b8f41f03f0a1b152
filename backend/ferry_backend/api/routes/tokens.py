"""Bearer tokens over HTTP (admin): the same as `ferry-backend token create|list|revoke`, for tools and the web page."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from ferry_contract.api_errors import COMMON, error_responses

from ... import store as st
from ...models import Token, utcnow
from ...security import Role
from ...views import iso
from ..deps import Admin, ServicesDep

router = APIRouter(prefix="/api/tokens", responses=error_responses(*COMMON))
MAX_LIFETIME_S = 10 * 366 * 86400


class TokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["viewer", "operator", "admin"]
    name: str = Field(default="", max_length=200)
    expires_in_s: int | None = Field(default=None, gt=0, le=MAX_LIFETIME_S, description="Unset: never expires.")


def token_view(row: Token) -> dict:
    """What anyone may know of a token: never its secret (which is not stored) nor its hash."""
    return {
        "id": row.id,
        "name": row.name,
        "role": row.role,
        "created_at": iso(row.created_at),
        "expires_at": iso(row.expires_at),
        "revoked_at": iso(row.revoked_at),
        "usable": st.token_usable(row.revoked_at, row.expires_at, utcnow()),
    }


@router.post("", status_code=201)
async def create(body: TokenCreate, _: Admin, services: ServicesDep) -> dict:
    """The token is shown once; only its hash is stored."""
    expires_at = utcnow() + timedelta(seconds=body.expires_in_s) if body.expires_in_s else None
    async with services.store.write() as session:
        row, secret = await st.create_token(session, Role.parse(body.role), body.name or body.role, expires_at)
    return {**token_view(row), "token": secret}


@router.get("")
async def list_tokens(_: Admin, services: ServicesDep) -> list[dict]:
    async with services.store.read() as session:
        return [token_view(row) for row in await st.list_tokens(session)]


@router.delete("/{token_id}")
async def revoke(token_id: str, _: Admin, services: ServicesDep) -> dict:
    """From now on the token is refused; the sockets it opened are disconnected (here at once, elsewhere soon)."""
    async with services.store.write() as session:
        row = await st.revoke_token(session, token_id)
        view = token_view(row)
    await services.drop_sockets_of({token_id})
    return view
