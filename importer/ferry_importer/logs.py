"""Structured logs for the service: one JSON object per line, each carrying `host` and, inside a job, `job_id`.

A log collector can then follow one import across the importer and the backend by its job id. The job id
travels in a context variable, so every line logged while a job runs (pipeline, source, delivery) has it
without being passed around.
"""

from __future__ import annotations

import contextvars
import logging
from typing import Any

current_job: contextvars.ContextVar[str | None] = contextvars.ContextVar("ferry_importer_job", default=None)

JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(message)s"


class JobContext(logging.Filter):
    """Adds `host` (this importer's name) and `job_id` (the job in progress, if any) to every record."""

    def __init__(self, host: str) -> None:
        super().__init__()
        self.host = host

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "job_id", None) is None:
            record.job_id = current_job.get()
        if getattr(record, "host", None) is None:
            record.host = self.host
        return True


def log_config(host: str, level: str = "info", fmt: str = "json") -> dict[str, Any]:
    """A logging.dictConfig for uvicorn and ferry's own loggers: JSON lines, or plain text for a terminal."""
    if fmt == "json":
        formatter = {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": JSON_FIELDS + " %(job_id)s %(host)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
            "timestamp": False,
        }
    else:
        formatter = {"format": "%(asctime)s %(levelname)s %(name)s [%(host)s %(job_id)s] %(message)s"}
    handler = {"class": "logging.StreamHandler", "formatter": "default", "filters": ["job"]}
    level = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"job": {"()": JobContext, "host": host}},
        "formatters": {"default": formatter},
        "handlers": {"default": handler},
        "loggers": {
            "": {"handlers": ["default"], "level": level},
            "uvicorn": {"handlers": [], "level": level, "propagate": True},
            "uvicorn.error": {"handlers": [], "level": level, "propagate": True},
            "uvicorn.access": {"handlers": [], "level": level, "propagate": True},
            # httpx logs every request URL at INFO: pull links carry tokens, so keep it to warnings.
            "httpx": {"level": "WARNING"},
            "httpcore": {"level": "WARNING"},
        },
    }
