"""The backend's logs: the shared log-line contract, plus `replica` naming the process.

A callback or a dispatch binds its job and lab host once (`bind`); every line logged while handling it
carries them. `replica` tells apart the lines of two replicas behind one proxy. An upload's content stream that
ends on purpose (the upload was abandoned or removed while an importer pulled it) is one WARNING line, not the
ERROR traceback uvicorn writes for any response broken off mid-body.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import Any

from ferry_contract.logs import bind
from ferry_contract.logs import log_config as _shared_config

from .content import UploadAbandoned, UploadGone

__all__ = ["StreamEndedOnPurpose", "bind", "log_config"]

ON_PURPOSE = (UploadAbandoned, UploadGone)


def _on_purpose(exc: BaseException | None) -> BaseException | None:
    """The deliberate end inside `exc` (Starlette may wrap it in an exception group), if that is all it holds."""
    if isinstance(exc, ON_PURPOSE):
        return exc
    if isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        return _on_purpose(exc.exceptions[0])
    return None


class StreamEndedOnPurpose(logging.Filter):
    """uvicorn's "Exception in ASGI application" for a content stream the backend broke off on purpose becomes
    one WARNING line naming the upload; every other error passes as it is."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        ended = _on_purpose(exc)
        if ended is not None:
            what = "was abandoned" if isinstance(ended, UploadAbandoned) else "was removed"
            record.msg, record.args = "the content stream of upload %s ended: the upload %s", (ended, what)
            record.exc_info, record.exc_text = None, None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def log_config(level: str = "info", fmt: str = "json", replica: str | None = None) -> dict[str, Any]:
    # python-socketio and engineio log every connection at INFO.
    config = _shared_config(
        level, fmt, quiet=("socketio", "engineio"), replica=replica or f"{socket.gethostname()}:{os.getpid()}"
    )
    config["filters"]["stream_end"] = {"()": StreamEndedOnPurpose}
    config["loggers"]["uvicorn.error"]["filters"] = ["stream_end"]
    return config
