"""The callback contract: every event an importer emits, in one definition.

The importer's CLI prints these objects (`--json`), the importer service POSTs them as signed
webhooks, the backend stores and rebroadcasts them, and the browser validates them against the
JSON Schema exported from these models. Change them here and nowhere else.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter


class EventType(StrEnum):
    QUEUED = "import.queued"
    PROGRESS = "import.progress"
    COMPLETED = "import.completed"
    FAILED = "import.failed"
    CANCELED = "import.canceled"
    HEARTBEAT = "importer.heartbeat"


TERMINAL_EVENT_TYPES = frozenset({EventType.COMPLETED, EventType.FAILED, EventType.CANCELED})


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"


TERMINAL_STATES = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELED})

LOAD_FIELDS = ("layers_done", "layers_total", "layer_bytes_done", "layer_bytes_total")  # a load's layer counts
UPLOAD_FIELDS = ("bytes_available",)  # an import of an upload still arriving: how much of it has arrived
# The fields of an event's data that a job's snapshot keeps: the backend stores them, the CLI and the page show
# them. The one list every part derives its own from.
SNAPSHOT_FIELDS = (
    "state",
    "phase",
    "percent",
    "bytes_done",
    "bytes_total",
    "rate_bps",
    "eta_s",
    "phase_elapsed_s",
    "queue_position",
    *LOAD_FIELDS,
    *UPLOAD_FIELDS,
)


class Phase(StrEnum):
    """Where a job is. `waiting_for_upload` = the import has caught up with an upload still arriving and waits
    for its next bytes (`bytes_available` of `bytes_total` have arrived); `loading` = the engine has every byte
    of a docker-save archive and reports the layers it loads; `finalizing` = the engine has every byte and is
    still working without saying how far it is."""

    QUEUED = "queued"
    PREPARING = "preparing"
    DOWNLOADING = "downloading"
    IMPORTING = "importing"
    WAITING_FOR_UPLOAD = "waiting_for_upload"
    LOADING = "loading"
    FINALIZING = "finalizing"
    VERIFYING = "verifying"
    DONE = "done"


class ErrorCode(StrEnum):
    """Stable error codes. Clients match on these; messages may be reworded, codes may not."""

    INVALID_REFERENCE = "invalid_reference"
    INVALID_CHANGE = "invalid_change"
    EMPTY_ARCHIVE = "empty_archive"
    NOT_AN_ARCHIVE = "not_an_archive"
    CORRUPT_COMPRESSION = "corrupt_compression"
    TRUNCATED_COMPRESSION = "truncated_compression"
    COMPRESSION_MEMORY_LIMIT = "compression_memory_limit"
    TRUNCATED_TAR = "truncated_tar"
    CORRUPT_TAR = "corrupt_tar"
    MISSING_MANIFEST = "missing_manifest"
    UNSUPPORTED_LAYOUT = "unsupported_layout"
    ENGINE_UNREACHABLE = "engine_unreachable"
    ENGINE_ERROR = "engine_error"
    ENGINE_STALLED = "engine_stalled"
    INSUFFICIENT_DISK = "insufficient_disk"
    VERIFICATION_FAILED = "verification_failed"
    IMAGE_EXISTS = "image_exists"
    INTERRUPTED = "interrupted"
    SOURCE_NOT_FOUND = "source_not_found"
    SOURCE_NOT_ALLOWED = "source_not_allowed"
    SOURCE_UNAVAILABLE = "source_unavailable"
    SOURCE_MISMATCH = "source_mismatch"
    UPLOAD_ABANDONED = "upload_abandoned"
    IMPORTER_RESTARTED = "importer_restarted"
    HOST_UNREACHABLE = "host_unreachable"
    DISPATCH_FAILED = "dispatch_failed"
    INTERNAL = "internal_error"


ERROR_CODE_PATTERN = r"^[a-z][a-z0-9_]*$"

# Bounds: what the backend's columns hold (Integer, BigInteger, VARCHAR(n)), so no valid event can fail a write.
INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1
NAME_MAX_LEN = 200  # job ids, host names, webhook-ids
REF_MAX_LEN = 384  # a repository of 255 characters, ':' and a tag of 128
LIST_MAX = 1000
ERROR_MESSAGE_MAX = 2000
ERROR_DETAIL_MAX = 8000
ENGINE_VERSION_MAX = 100

# Job ids: letters, digits and `_ . : -`, as the importer's job API takes them (no control characters, which a
# terminal would execute and Postgres cannot store).
JOB_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,199}$"
JobId = Annotated[str, Field(min_length=1, max_length=NAME_MAX_LEN, pattern=JOB_ID_PATTERN)]
NO_CONTROL_PATTERN = r"^[^\x00-\x1f\x7f-\x9f]*$"  # text a column and a terminal take as it is
Ref = Annotated[str, Field(min_length=1, max_length=REF_MAX_LEN, pattern=NO_CONTROL_PATTERN)]


MAX_LAYERS = 100_000  # a docker archive with more layers than this is not an image archive


class _Model(BaseModel):
    # No Infinity or NaN: JSON has no such numbers, and one stored would break every browser that reads it.
    model_config = ConfigDict(extra="forbid", use_enum_values=True, allow_inf_nan=False)


class LoadedImage(_Model):
    id: str = Field(max_length=NAME_MAX_LEN, pattern=NO_CONTROL_PATTERN, description="The engine's image id, sha256:…")
    tags: list[Ref] = Field(default_factory=list, max_length=LIST_MAX, description="Its tags after the load.")


class ImageInfo(_Model):
    ref: str = Field(
        min_length=1,
        max_length=REF_MAX_LEN,
        pattern=NO_CONTROL_PATTERN,
        description="The reference the user asked for (or the first archive tag for loads).",
    )
    id: str = Field(max_length=NAME_MAX_LEN, pattern=NO_CONTROL_PATTERN, description="The engine's image id, sha256:…")
    size: int = Field(ge=0, le=INT64_MAX, description="Image size in bytes as the engine reports it.")
    tags: list[Ref] = Field(
        default_factory=list, max_length=LIST_MAX, description="Every tag the image carries after the job."
    )
    already_present: bool | None = Field(
        default=None, description="True when the image was already imported from the same archive and nothing was sent."
    )
    images: list[LoadedImage] | None = Field(
        default=None,
        max_length=LIST_MAX,
        description="Loads: every image the archive brought, with its tags (a docker save may hold several).",
    )


class ErrorInfo(_Model):
    code: str = Field(pattern=ERROR_CODE_PATTERN, max_length=100, description="Stable code, see ErrorCode.")
    message: str = Field(max_length=ERROR_MESSAGE_MAX, description="One line a person can act on.")
    detail: str | None = Field(
        default=None, max_length=ERROR_DETAIL_MAX, description="Underlying cause, for operators."
    )


class ImportEventData(_Model):
    """The `data` of every import.* event. Snapshot fields are always present."""

    job_id: str = Field(min_length=1, max_length=NAME_MAX_LEN, pattern=JOB_ID_PATTERN)
    host: str = Field(min_length=1, max_length=NAME_MAX_LEN)
    seq: int = Field(ge=1, le=INT32_MAX, description="Per job, strictly increasing from 1.")
    state: JobState
    phase: Phase
    percent: float = Field(ge=0, le=100)
    bytes_done: int = Field(ge=0, le=INT64_MAX)
    bytes_total: int | None = Field(default=None, ge=0, le=INT64_MAX)
    rate_bps: float | None = Field(default=None, ge=0)
    eta_s: float | None = Field(default=None, ge=0)
    phase_elapsed_s: float | None = Field(default=None, ge=0, description="Seconds spent in the current phase.")
    queue_position: int | None = Field(
        default=None, ge=1, le=INT32_MAX, description="Set while queued: 1 = next to run."
    )
    layers_done: int | None = Field(
        default=None,
        ge=0,
        le=MAX_LAYERS,
        description="Loads: layers the engine has loaded or skipped (already present).",
    )
    layers_total: int | None = Field(
        default=None, ge=0, le=MAX_LAYERS, description="Loads: layers the archive's manifest asks the engine to load."
    )
    layer_bytes_done: int | None = Field(
        default=None, ge=0, le=INT64_MAX, description="Loads: layer bytes loaded or skipped."
    )
    layer_bytes_total: int | None = Field(
        default=None, ge=0, le=INT64_MAX, description="Loads: bytes of every layer to load."
    )
    bytes_available: int | None = Field(
        default=None,
        ge=0,
        le=INT64_MAX,
        description="An upload still arriving: bytes of it the backend has so far (of bytes_total declared).",
    )
    image: ImageInfo | None = None
    error: ErrorInfo | None = None


class HeartbeatData(_Model):
    host: str = Field(min_length=1, max_length=NAME_MAX_LEN)
    seq: int = Field(ge=1, le=INT64_MAX, description="Per importer process, increasing.")
    running: list[JobId] = Field(default_factory=list, max_length=LIST_MAX, description="job_ids running now")
    queued: list[JobId] = Field(default_factory=list, max_length=LIST_MAX, description="job_ids waiting, in order")
    disk_free_bytes: int | None = Field(
        default=None, ge=0, le=INT64_MAX, description="Free bytes under the engine's data root."
    )
    spool_free_bytes: int | None = Field(default=None, ge=0, le=INT64_MAX)
    engine_version: str | None = Field(default=None, max_length=ENGINE_VERSION_MAX)


def _now() -> datetime:
    return datetime.now(UTC)


class _ImportEvent(_Model):
    timestamp: datetime = Field(default_factory=_now)
    data: ImportEventData


class ImportQueued(_ImportEvent):
    type: Literal["import.queued"] = "import.queued"


class ImportProgress(_ImportEvent):
    type: Literal["import.progress"] = "import.progress"


class ImportCompleted(_ImportEvent):
    type: Literal["import.completed"] = "import.completed"


class ImportFailed(_ImportEvent):
    type: Literal["import.failed"] = "import.failed"


class ImportCanceled(_ImportEvent):
    type: Literal["import.canceled"] = "import.canceled"


class ImporterHeartbeat(_Model):
    type: Literal["importer.heartbeat"] = "importer.heartbeat"
    timestamp: datetime = Field(default_factory=_now)
    data: HeartbeatData


ImportEvent = Annotated[
    ImportQueued | ImportProgress | ImportCompleted | ImportFailed | ImportCanceled,
    Field(discriminator="type"),
]
Callback = Annotated[
    ImportQueued | ImportProgress | ImportCompleted | ImportFailed | ImportCanceled | ImporterHeartbeat,
    Field(discriminator="type"),
]

CALLBACK_ADAPTER: TypeAdapter[Callback] = TypeAdapter(Callback)

_EVENT_CLASSES: dict[str, type[_ImportEvent]] = {
    EventType.QUEUED: ImportQueued,
    EventType.PROGRESS: ImportProgress,
    EventType.COMPLETED: ImportCompleted,
    EventType.FAILED: ImportFailed,
    EventType.CANCELED: ImportCanceled,
}

_STATE_FOR_TYPE = {
    EventType.QUEUED: {JobState.QUEUED},
    EventType.PROGRESS: {JobState.RUNNING, JobState.QUEUED},
    EventType.COMPLETED: {JobState.SUCCEEDED},
    EventType.FAILED: {JobState.FAILED},
    EventType.CANCELED: {JobState.CANCELED},
}


def make_import_event(event_type: EventType | str, data: ImportEventData, timestamp: datetime | None = None):
    """Build the right event class for a type, checking that type and state agree."""
    event_type = EventType(event_type)
    state = JobState(data.state)
    if state not in _STATE_FOR_TYPE[event_type]:
        raise ValueError(f"{event_type.value} cannot carry state {state.value}")
    if event_type is EventType.COMPLETED and data.image is None:
        raise ValueError("import.completed needs image")
    if event_type is EventType.FAILED and data.error is None:
        raise ValueError("import.failed needs error")
    cls = _EVENT_CLASSES[event_type]
    return cls(data=data, timestamp=timestamp or _now())


def parse_callback(body: bytes | str):
    """Parse and validate a raw callback body (after its signature was verified).

    Strict: a receiver keeps the body's own `data`, so "2", 2.0 or true must not pass for a seq of 2.
    """
    return CALLBACK_ADAPTER.validate_json(body, strict=True)


def is_terminal(event_type: EventType | str) -> bool:
    return event_type in TERMINAL_EVENT_TYPES
