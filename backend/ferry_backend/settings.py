"""The backend's settings: one place, read from the environment (prefix FERRY_)."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from ferry_contract.urls import UrlPrefix, parse_prefix

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_WEB_DIR = REPO_ROOT / "frontend-bridge" / "dist"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FERRY_", extra="ignore")

    data_dir: Path = Field(default=Path(".run/backend"), description="Uploads and the SQLite database live here.")
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy async URL; default sqlite+aiosqlite:///DATA_DIR/ferry.db. postgresql+asyncpg://… works too.",
    )
    redis_url: str | None = Field(
        default=None, description="Set to run several replicas behind one Socket.IO room space."
    )
    public_url: str | None = Field(
        default=None,
        description="How importers reach this backend, e.g. http://10.0.0.5:8000 (default: the listen address).",
    )
    admin_token: str | None = Field(default=None, description="Bootstrap admin bearer token (stored hashed).")
    max_upload_bytes: int = Field(default=50 * 1024**3, gt=0, description="Largest upload accepted.")
    upload_expiry_s: int = Field(default=24 * 3600, gt=0, description="An unfinished upload idle this long is removed.")
    upload_idle_s: float = Field(
        default=120.0,
        gt=0,
        description=(
            "A PATCH that receives nothing for this long ends, keeping what arrived (half-open connections); an "
            "unfinished upload that lands nothing for this long is abandoned: imports pulling it fail upload_abandoned."
        ),
    )
    body_idle_s: float = Field(
        default=10.0,
        gt=0,
        description="Any other request body that sends nothing for this long is answered 408 (slow senders).",
    )
    max_open_bodies: int = Field(
        default=256,
        gt=0,
        description="Requests in the middle of their body at once (uploads aside); the next is answered 503.",
    )
    upload_retention_s: int = Field(
        default=7 * 24 * 3600,
        gt=0,
        description="A finished upload no running job needs is removed this long after completion.",
    )
    host_stale_s: float = Field(
        default=60.0,
        gt=0,
        description="No word from a host for this long: its unfinished jobs say so (a doubt, not a failure).",
    )
    host_lost_s: float = Field(
        default=900.0,
        gt=0,
        description="No word from a host for this long: its unfinished jobs are presumed failed host_unreachable "
        "(a later report from the host still ends them for real).",
    )
    liveness_interval_s: float = Field(default=5.0, gt=0, description="How often hosts and uploads are checked.")
    content_token_ttl_s: int = Field(
        default=6 * 3600, gt=0, description="Lifetime of the signed link an importer pulls."
    )
    dispatch_timeout_s: float = Field(default=15.0, gt=0, description="Timeout of one request to an importer.")
    source_url_prefixes: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="If set, a source_url must start with one of these (comma-separated)."
    )
    web_dir: Path | None = Field(
        default=None, description="Static web page served at / (default: frontend-bridge/dist)."
    )
    sqlite_synchronous: Literal["full", "normal"] = Field(
        default="full",
        description="SQLite only. full: a callback is answered once its commit is on disk (survives a power cut); "
        "normal: once the OS has it (survives a crash of the backend, not of the machine; lower latency).",
    )
    log_level: str = Field(default="info", description="uvicorn and ferry log level: debug, info, warning, error.")
    log_format: Literal["json", "text"] = Field(
        default="json", description="Logs: one JSON object per line (with job_id, host and replica), or text."
    )

    @field_validator("source_url_prefixes", mode="before")
    @classmethod
    def _split_csv(cls, value):
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("source_url_prefixes")
    @classmethod
    def _valid_prefixes(cls, prefixes: list[str]) -> list[str]:
        for prefix in prefixes:
            parse_prefix(prefix)  # ValueError names the prefix and why it can never match safely
        return prefixes

    @cached_property
    def url_prefixes(self) -> list[UrlPrefix]:
        return [parse_prefix(prefix) for prefix in self.source_url_prefixes]

    @cached_property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'ferry.db').resolve()}"

    @property
    def uploads_dir(self) -> Path:
        return self.data_dir / "uploads"

    @cached_property
    def resolved_web_dir(self) -> Path | None:
        if self.web_dir is not None:
            return self.web_dir
        return DEFAULT_WEB_DIR if DEFAULT_WEB_DIR.is_dir() else None

    def ensure_dirs(self) -> None:
        self.uploads_dir.mkdir(parents=True, exist_ok=True)
