"""The importer's job API (`POST /v1/imports` and the job view), shared by importer and backend dispatcher."""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .events import JOB_ID_PATTERN, ErrorInfo, ImageInfo, JobState, Phase
from .reference import InvalidReference, parse_reference

CHANGE_MAX_LEN = 4096
# A newline would smuggle a second instruction into `docker import --change`; escapes reach terminals. Tab is fine.
_CHANGE_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")


def change_problem(line: str) -> str | None:
    """Why a Dockerfile change line cannot be sent to an engine, or None when it can (the instruction aside)."""
    if len(line) > CHANGE_MAX_LEN:
        return f"a change line is longer than {CHANGE_MAX_LEN} characters"
    found = _CHANGE_CONTROL.search(line)
    if found:
        return f"change {line[:80]!r} contains the control character {found.group()!r}: one instruction per line"
    return None


class ArchiveFormat(StrEnum):
    AUTO = "auto"
    LOAD = "load"
    IMPORT = "import"


class PathSource(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str = Field(min_length=1, description="A file on the importer host, inside an allowed root.")


class UrlSource(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(min_length=1, description="http(s) URL starting with an allowed prefix.")
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    size: int | None = Field(default=None, ge=0)


Source = Annotated[PathSource | UrlSource, Field(union_mode="left_to_right")]


class ImportJobRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    job_id: str = Field(pattern=JOB_ID_PATTERN, description="The caller's id; the same id never imports twice.")
    image: str | None = Field(
        default=None,
        description="Target reference REPO[:TAG]. Needed for filesystem archives; a docker-save archive keeps its own "
        "tags and may be loaded without one (like `docker load`).",
    )
    format: ArchiveFormat = ArchiveFormat.AUTO
    changes: list[str] = Field(default_factory=list, description="Dockerfile lines applied on `import`.")
    force: bool = False
    source: Source
    callback_url: str | None = Field(default=None, description="Where signed progress callbacks go.")

    @field_validator("image")
    @classmethod
    def _valid_reference(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            parse_reference(value)
        except InvalidReference as exc:
            raise ValueError(str(exc)) from None
        return value


class ImportJobView(BaseModel):
    """What the importer answers about a job: its latest snapshot."""

    job_id: str
    image: str | None
    state: JobState
    phase: Phase
    seq: int = 0
    percent: float = 0
    bytes_done: int = 0
    bytes_total: int | None = None
    rate_bps: float | None = None
    eta_s: float | None = None
    queue_position: int | None = None
    image_info: ImageInfo | None = None
    error: ErrorInfo | None = None
    created_at: datetime
    updated_at: datetime
