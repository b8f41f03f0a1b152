"""ferry's shared contract: callback events, the importer job API and image reference rules."""

from .events import (
    CALLBACK_ADAPTER,
    TERMINAL_EVENT_TYPES,
    TERMINAL_STATES,
    Callback,
    ErrorCode,
    ErrorInfo,
    EventType,
    HeartbeatData,
    ImageInfo,
    ImportCanceled,
    ImportCompleted,
    ImporterHeartbeat,
    ImportEvent,
    ImportEventData,
    ImportFailed,
    ImportProgress,
    ImportQueued,
    JobState,
    Phase,
    is_terminal,
    make_import_event,
    parse_callback,
)
from .jobs import ArchiveFormat, ImportJobRequest, ImportJobView, PathSource, UrlSource
from .reference import ImageReference, InvalidReference, parse_reference

__all__ = [name for name in dir() if not name.startswith("_")]
