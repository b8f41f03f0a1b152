"""Structured logs: one JSON object per line, carrying the `job_id` and lab `host` a line is about.

The importer logs the same two fields, so a log collector can follow one import across the lab host and
every backend replica. Both travel in context variables: a callback or a dispatch sets them once and every
line logged while handling it (verification, ingest, announce, errors) carries them. A `replica` field
names the process, so lines of two replicas behind one proxy can be told apart.
"""

from __future__ import annotations

import contextvars
import logging
import os
import socket
from typing import Any

current_job: contextvars.ContextVar[str | None] = contextvars.ContextVar("ferry_job", default=None)
current_host: contextvars.ContextVar[str | None] = contextvars.ContextVar("ferry_host", default=None)

JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(message)s %(job_id)s %(host)s %(replica)s"


def bind(job_id: str | None = None, host: str | None = None) -> None:
    """Name the job and/or host the current task works on, for every line it logs from here on."""
    if job_id is not None:
        current_job.set(job_id)
    if host is not None:
        current_host.set(host)


class JobContext(logging.Filter):
    """Adds `job_id`, `host` (from the context, unless the call passed them as `extra`) and `replica`."""

    def __init__(self, replica: str) -> None:
        super().__init__()
        self.replica = replica

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "job_id", None) is None:
            record.job_id = current_job.get()
        if getattr(record, "host", None) is None:
            record.host = current_host.get()
        record.replica = self.replica
        return True


def default_replica() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def log_config(level: str = "info", fmt: str = "json", replica: str | None = None) -> dict[str, Any]:
    """A logging.dictConfig for uvicorn and ferry's loggers: JSON lines, or plain text for a terminal."""
    if fmt == "json":
        formatter = {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": JSON_FIELDS,
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
            "timestamp": False,
        }
    else:
        formatter = {"format": "%(asctime)s %(levelname)s %(name)s [%(host)s %(job_id)s] %(message)s"}
    handler = {"class": "logging.StreamHandler", "formatter": "default", "filters": ["job"]}
    level = level.upper()
    inherit = {"handlers": [], "level": level, "propagate": True}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"job": {"()": JobContext, "replica": replica or default_replica()}},
        "formatters": {"default": formatter},
        "handlers": {"default": handler},
        "loggers": {
            "": {"handlers": ["default"], "level": level},
            "uvicorn": inherit, "uvicorn.error": dict(inherit), "uvicorn.access": dict(inherit),
            # httpx logs every request URL at INFO: dispatched source links carry tokens.
            "httpx": {"level": "WARNING"},
            "httpcore": {"level": "WARNING"},
            # python-socketio/engineio are chatty at INFO (every connect and packet when enabled).
            "socketio": {"level": "WARNING"},
            "engineio": {"level": "WARNING"},
        },
    }
