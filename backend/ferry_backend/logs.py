"""The backend's logs: the shared log-line contract, plus `replica` naming the process.

A callback or a dispatch binds its job and lab host once (`bind`); every line logged while handling it
carries them. `replica` tells apart the lines of two replicas behind one proxy.
"""

from __future__ import annotations

import os
import socket
from typing import Any

from ferry_contract.logs import bind
from ferry_contract.logs import log_config as _shared_config

__all__ = ["bind", "log_config"]


def log_config(level: str = "info", fmt: str = "json", replica: str | None = None) -> dict[str, Any]:
    # python-socketio and engineio log every connection at INFO.
    return _shared_config(
        level, fmt, quiet=("socketio", "engineio"), replica=replica or f"{socket.gethostname()}:{os.getpid()}"
    )
