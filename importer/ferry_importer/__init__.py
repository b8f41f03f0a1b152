"""ferry's importer: stream image archives into the local Docker engine with truthful progress."""

from .engine import Engine
from .errors import ImporterError
from .pipeline import ImportSpec, Options, run_import
from .progress import Snapshot
from .reporting import CollectingReporter, EventReporter, JsonLinesReporter, Reporter
from .sources import LocalFileSource, Source

__all__ = [
    "CollectingReporter",
    "Engine",
    "EventReporter",
    "ImportSpec",
    "ImporterError",
    "JsonLinesReporter",
    "LocalFileSource",
    "Options",
    "Reporter",
    "Snapshot",
    "Source",
    "run_import",
]
