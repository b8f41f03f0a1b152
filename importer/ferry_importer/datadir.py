"""The importer's data directory when none is given: one rule for `serve`, `import` and `outbox`, so the
service and the commands run beside it on a lab host find the same outbox and fast-path index; and how much
room a place has."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

ENV_VAR = "FERRY_IMPORTER_DATA_DIR"


def default_data_dir(environ: Mapping[str, str] | None = None) -> Path:
    """FERRY_IMPORTER_DATA_DIR when set; else $XDG_DATA_HOME/ferry-importer; else ~/.local/share/ferry-importer.

    A relative XDG_DATA_HOME is ignored, as the XDG base directory specification asks.
    """
    env = os.environ if environ is None else environ
    if env.get(ENV_VAR):
        return Path(env[ENV_VAR])
    xdg = env.get("XDG_DATA_HOME")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".local" / "share"
    return base / "ferry-importer"


def free_bytes(path: str | os.PathLike[str]) -> int | None:
    """Free bytes for an unprivileged writer on the filesystem holding `path`; None when it is not visible here."""
    try:
        stats = os.statvfs(path)
    except OSError:
        return None
    return stats.f_bavail * stats.f_frsize
