"""Request bodies of the HTTP API (responses are built in views.py)."""

from __future__ import annotations

import base64

from pydantic import BaseModel, ConfigDict, Field, field_validator
from standardwebhooks import Webhook

from ferry_contract import ArchiveFormat, InvalidReference, parse_reference
from ferry_contract.jobs import change_problem

MIN_REPLAY_SPEED = 0.1  # slower would hold the job's replays for hours (a 30 s gap at 0.1 already lasts 5 min)
HOST_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"


class HostCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=HOST_NAME)
    url: str = Field(min_length=1, max_length=2000, description="The importer's base URL, http(s).")
    token: str = Field(min_length=1, max_length=500, description="Bearer token the importer expects.")
    webhook_secret: str = Field(min_length=1, max_length=500, description="whsec_… shared with the importer.")

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL")
        return value.rstrip("/")

    @field_validator("webhook_secret")
    @classmethod
    def _secret(cls, value: str) -> str:
        problem = "must be a Standard Webhooks secret: whsec_ followed by base64 of at least 16 bytes"
        if not value.startswith("whsec_"):
            raise ValueError(problem)
        try:
            if len(base64.b64decode(value.removeprefix("whsec_"), validate=True)) < 16:
                raise ValueError(problem)
            Webhook(value)
        except Exception:
            raise ValueError(problem) from None
        return value


class ImportCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    upload_id: str | None = None
    source_url: str | None = Field(default=None, max_length=2000)
    hosts: list[str] = Field(min_length=1, max_length=100)
    image: str | None = Field(
        default=None,
        description="REPO[:TAG]. Needed for filesystem archives; a docker-save archive keeps its own tags without one.",
    )
    format: ArchiveFormat = ArchiveFormat.AUTO
    changes: list[str] = Field(default_factory=list, max_length=50)
    force: bool = False

    @field_validator("changes")
    @classmethod
    def _changes(cls, value: list[str]) -> list[str]:
        for line in value:
            if (problem := change_problem(line)) is not None:
                raise ValueError(problem)
        return value

    @field_validator("image")
    @classmethod
    def _reference(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            parse_reference(value)
        except InvalidReference as exc:
            raise ValueError(str(exc)) from None
        return value


class ReplayCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    speed: float | str = Field(
        default=1.0,
        description='1 = original pace, 10 = ten times faster, "max" = no waiting; '
        "at least 0.1 (a gap of 30 s lasts at most 5 min).",
    )

    @field_validator("speed", mode="before")
    @classmethod
    def _speed(cls, value):
        if value == "max":
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool) and MIN_REPLAY_SPEED <= value <= 1000:
            return float(value)
        raise ValueError(f'must be a number in [{MIN_REPLAY_SPEED}, 1000] or "max"')

    @property
    def factor(self) -> float | None:
        return None if self.speed == "max" else float(self.speed)
