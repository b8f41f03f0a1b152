"""The log-line contract both services share: one JSON object per line carrying `job_id` and `host`.

A log collector follows one import across the lab host's importer and every backend replica by these
two fields. They travel in context variables: whoever starts work on a job binds them once and every
line logged in that task (and the tasks it starts) carries them without passing them around. Fields
that never change in a process (the importer's host name, a backend's replica) are given once.
The JSON formatter is python-json-logger's; this module only names it, so it imports nothing extra.
"""

from __future__ import annotations

import contextvars
import logging
from typing import Any

current_job: contextvars.ContextVar[str | None] = contextvars.ContextVar("ferry_job", default=None)
current_host: contextvars.ContextVar[str | None] = contextvars.ContextVar("ferry_host", default=None)


def bind(job_id: str | None = None, host: str | None = None) -> None:
    """Name the job and/or host the current task works on, for every line it logs from here on."""
    if job_id is not None:
        current_job.set(job_id)
    if host is not None:
        current_host.set(host)


class JobContext(logging.Filter):
    """Adds `job_id` and `host` (from the call's `extra`, else the context, else the process default)
    and the process's fixed fields to every record."""

    def __init__(self, host: str | None = None, text: bool = False, **fixed: str) -> None:
        super().__init__()
        self.host = host
        self.text = text
        self.fixed = fixed

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "job_id", None) is None:
            record.job_id = current_job.get()
        if getattr(record, "host", None) is None:
            record.host = current_host.get() or self.host
        for name, value in self.fixed.items():
            setattr(record, name, value)
        if self.text:  # " [host job]", or nothing when there is neither
            about = " ".join(str(v) for v in (getattr(record, "host", None), getattr(record, "job_id", None)) if v)
            record.about = f" [{about}]" if about else ""
        return True


def redact_query(target: str) -> str:
    """A request target with every query value replaced: a content link's query carries its token."""
    path, sep, query = target.partition("?")
    if not sep:
        return target
    names = (part.partition("=")[0] for part in query.split("&") if part)
    return path + "?" + "&".join(f"{name}=REDACTED" for name in names)


class RedactQueries(logging.Filter):
    """Access-log lines (uvicorn's args: client, method, target, version, status) keep the path, not the query."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "uvicorn.access" and isinstance(record.args, tuple) and len(record.args) == 5:
            args = list(record.args)
            args[2] = redact_query(str(args[2]))
            record.args = tuple(args)
        return True


def log_config(
    level: str = "info", fmt: str = "json", host: str | None = None, quiet: tuple[str, ...] = (), **fixed: str
) -> dict[str, Any]:
    """A logging.dictConfig for uvicorn and ferry's loggers: JSON lines, or plain text for a terminal.

    `quiet` loggers are kept to warnings (httpx logs every request URL at INFO, and links carry tokens).
    """
    fields = " ".join(f"%({name})s" for name in ("job_id", "host", *fixed))
    if fmt == "json":
        formatter = {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s " + fields,
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
            "timestamp": False,
        }
    else:
        formatter = {"format": "%(asctime)s %(levelname)s %(name)s%(about)s %(message)s"}
    level = level.upper()
    loggers: dict[str, Any] = {"": {"handlers": ["default"], "level": level}}
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):  # through the root handler, not their own
        loggers[name] = {"handlers": [], "level": level, "propagate": True}
    for name in ("httpx", "httpcore", *quiet):
        loggers[name] = {"level": "WARNING"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "job": {"()": JobContext, "host": host, "text": fmt != "json", **fixed},
            "redact": {"()": RedactQueries},
        },
        "formatters": {"default": formatter},
        "handlers": {
            "default": {"class": "logging.StreamHandler", "formatter": "default", "filters": ["job", "redact"]}
        },
        "loggers": loggers,
    }
