"""The importer service's settings: one object, read from `FERRY_IMPORTER_*` environment variables.

Every knob of `ferry-importer serve` lives here so `--help`, the README and the code cannot drift
apart: the field descriptions are the documentation.
"""

from __future__ import annotations

import base64
import binascii
import os
import socket
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from ferry_contract.urls import UrlPrefix, parse_prefix
from ferry_importer.datadir import default_data_dir

ENV_PREFIX = "FERRY_IMPORTER_"
MIN_TOKEN_LENGTH = 16


def _split_list(value: Any) -> Any:
    """Environment lists are comma-separated (`/srv/a,/srv/b`); blanks are ignored."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class ImporterSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", populate_by_name=True)

    token: SecretStr = Field(description="Bearer token callers (the backend) must send on every API request.")
    webhook_secret: SecretStr = Field(
        description="Standard Webhooks secret (`whsec_` + base64) that signs every callback."
    )
    name: str = Field(
        default_factory=socket.gethostname,
        min_length=1,
        max_length=200,
        description="This host's name in events (`data.host`).",
    )
    data_dir: Path = Field(
        default_factory=default_data_dir,
        description="Job store, outbox database, per-job spool and fast-path index "
        "(default: $XDG_DATA_HOME/ferry-importer, else ~/.local/share/ferry-importer).",
    )
    allowed_roots: Annotated[list[Path], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated directories a `path` source may come from (symlinks are resolved first).",
    )
    allowed_url_prefixes: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated URL prefixes a `url` source may come from (redirects must stay inside).",
    )
    callback_url_prefixes: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated URL prefixes a job's `callback_url` must start with (empty: any http(s) URL).",
    )
    max_concurrent: int = Field(default=1, ge=1, le=64, description="Imports running at once; more wait queued.")
    stall_timeout_s: float = Field(
        default=120.0, gt=0, description="Fail a job when the engine takes no bytes and says nothing this long."
    )
    heartbeat_s: float = Field(default=10.0, gt=0, description="Seconds between `importer.heartbeat` callbacks.")
    heartbeat_url: str | None = Field(
        default=None,
        description="Where heartbeats go; unset: to the callback URLs of recent jobs.",
    )
    docker_host: str | None = Field(
        default=None,
        validation_alias=AliasChoices("FERRY_IMPORTER_DOCKER_HOST", "DOCKER_HOST", "docker_host"),
        description="Engine address (unix:///… or tcp://…); default DOCKER_HOST, else the local socket.",
    )
    delivery_timeout_s: float = Field(default=10.0, gt=0, description="Timeout of one callback attempt.")
    retry_base_s: float = Field(default=1.0, gt=0, description="First retry delay; doubles per failed attempt.")
    retry_max_s: float = Field(default=600.0, gt=0, description="Longest delay between two attempts.")
    outbox_expire_s: float = Field(
        default=86400.0, gt=0, description="Give up on an undelivered callback after this many seconds (24 h)."
    )
    outbox_keep_s: float = Field(
        default=7 * 86400.0, gt=0, description="Delivered callbacks and finished jobs are kept this long."
    )
    source_timeout_s: float = Field(default=60.0, gt=0, description="Connect/read timeout of a URL source.")
    body_idle_s: float = Field(
        default=10.0, gt=0, description="A request body that sends nothing for this long is answered 408."
    )
    max_open_bodies: int = Field(
        default=64, gt=0, description="Requests in the middle of their body at once; the next is answered 503."
    )
    log_format: Literal["json", "text"] = Field(
        default="json", description="Service logs: one JSON object per line (with job_id and host), or text."
    )
    source_max_resumes: int = Field(
        default=16,
        ge=0,
        description="Range resumes of a URL source in a row without progress before failing (about a minute).",
    )

    @field_validator("allowed_roots", "allowed_url_prefixes", "callback_url_prefixes", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        return _split_list(value)

    @field_validator("allowed_roots")
    @classmethod
    def _absolute_roots(cls, roots: list[Path]) -> list[Path]:
        for root in roots:
            if not root.is_absolute():
                raise ValueError(f"allowed root {str(root)!r} must be an absolute path")
        return [Path(os.path.realpath(root)) for root in roots]

    @field_validator("allowed_url_prefixes", "callback_url_prefixes", "heartbeat_url")
    @classmethod
    def _valid_prefixes(cls, value: Any) -> Any:
        for prefix in [value] if isinstance(value, str) else value or []:
            parse_prefix(prefix)
        return value

    @field_validator("token")
    @classmethod
    def _strong_token(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < MIN_TOKEN_LENGTH:
            raise ValueError(f"must be at least {MIN_TOKEN_LENGTH} characters")
        return value

    @field_validator("webhook_secret")
    @classmethod
    def _whsec(cls, value: SecretStr) -> SecretStr:
        secret = value.get_secret_value()
        if not secret.startswith("whsec_"):
            raise ValueError("must look like whsec_<base64>")
        try:
            raw = base64.b64decode(secret[len("whsec_") :] + "==", validate=False)
        except (binascii.Error, ValueError):
            raise ValueError("is not valid base64 after whsec_") from None
        if len(raw) < 16:
            raise ValueError("must decode to at least 16 bytes")
        return value

    @property
    def url_prefixes(self) -> list[UrlPrefix]:
        return [parse_prefix(prefix) for prefix in self.allowed_url_prefixes]

    @property
    def callback_prefixes(self) -> list[UrlPrefix]:
        return [parse_prefix(prefix) for prefix in self.callback_url_prefixes]

    @property
    def engine_host(self) -> str:
        return self.docker_host or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"

    @property
    def database_path(self) -> Path:
        return self.data_dir / "importer.db"

    @property
    def spool_dir(self) -> Path:
        return self.data_dir / "spool"

    @property
    def rollback_dir(self) -> Path:
        """Each running job's journal of what to undo in the engine (read again after a crash)."""
        return self.data_dir / "rollback"


class SettingsError(Exception):
    """The environment does not make a usable configuration; the message says which variable to fix."""


def load_settings(**overrides: Any) -> ImporterSettings:
    """Read the environment; turn pydantic's report into one line per bad variable."""
    try:
        return ImporterSettings(**overrides)
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else "?"
            env = ENV_PREFIX + field.upper()
            reason = "is required" if error["type"] == "missing" else error["msg"].removeprefix("Value error, ")
            lines.append(f"{env} {reason}")
        raise SettingsError("; ".join(lines)) from None


def settings_help() -> str:
    """The variables and their meaning, for `ferry-importer serve --help`."""
    rows = []
    for name, field in ImporterSettings.model_fields.items():
        default = "" if field.is_required() else _default_text(field)
        rows.append(f"{ENV_PREFIX}{name.upper()}: {field.description}{default}")
    return "\n\n".join(rows)


def _default_text(field: Any) -> str:
    if field.default_factory is not None:
        return ""
    if field.default is None:
        return ""
    return f" (default: {field.default})"
