"""ferry's importer: stream image archives into the local Docker engine with truthful progress.

The public names load on first use, so `ferry-importer` starts without importing what a command
does not need.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

_EXPORTS = {
    "CollectingReporter": "reporting",
    "Engine": "engine.client",
    "EventReporter": "reporting",
    "ImportSpec": "pipeline",
    "ImporterError": "errors",
    "JsonLinesReporter": "reporting",
    "LocalFileSource": "sources.base",
    "Options": "pipeline",
    "Reporter": "reporting",
    "Snapshot": "progress",
    "Source": "sources.base",
    "run_import": "pipeline",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:  # pragma: no cover
    from ferry_importer.engine.client import Engine
    from ferry_importer.errors import ImporterError
    from ferry_importer.pipeline import ImportSpec, Options, run_import
    from ferry_importer.progress import Snapshot
    from ferry_importer.reporting import CollectingReporter, EventReporter, JsonLinesReporter, Reporter
    from ferry_importer.sources.base import LocalFileSource, Source


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'ferry_importer' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value
