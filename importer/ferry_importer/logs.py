"""The importer's logs: the shared log-line contract with this host's name as `host` on every line.

The job id travels in a context variable (set where a job's task starts), so every line logged while a
job runs (pipeline, source, delivery) carries it without being passed around.
"""

from __future__ import annotations

from typing import Any

from ferry_contract.logs import current_job
from ferry_contract.logs import log_config as _shared_config

__all__ = ["current_job", "log_config"]


def log_config(host: str, level: str = "info", fmt: str = "json") -> dict[str, Any]:
    return _shared_config(level, fmt, host=host)
