"""Bearer tokens over HTTP (admin): the same as `ferry-backend token create`, for tools and the web page."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from ... import store as st
from ...security import Role
from ..deps import Admin, ServicesDep

router = APIRouter(prefix="/api/tokens")


class TokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["viewer", "operator", "admin"]
    name: str = Field(default="", max_length=200)


@router.post("", status_code=201)
async def create(body: TokenCreate, _: Admin, services: ServicesDep) -> dict:
    """The token is shown once; only its hash is stored."""
    async with services.store.write() as session:
        row, secret = await st.create_token(session, Role.parse(body.role), body.name or body.role)
    return {"id": row.id, "name": row.name, "role": row.role, "token": secret}
