"""ferry's importer: stream image archives into the local Docker engine with truthful progress.

The public names load on first use, so `ferry-importer` starts without importing what a command
does not need.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

_EXPORTS = {
    "CollectingReporter": "reporting",
    "Engine": "engine",
    "EventReporter": "reporting",
    "ImportSpec": "pipeline",
    "ImporterError": "errors",
    "JsonLinesReporter": "reporting",
    "LocalFileSource": "sources",
    "Options": "pipeline",
    "Reporter": "reporting",
    "Snapshot": "progress",
    "Source": "sources",
    "run_import": "pipeline",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:  # pragma: no cover
    from .engine import Engine
    from .errors import ImporterError
    from .pipeline import ImportSpec, Options, run_import
    from .progress import Snapshot
    from .reporting import CollectingReporter, EventReporter, JsonLinesReporter, Reporter
    from .sources import LocalFileSource, Source


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'ferry_importer' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value
