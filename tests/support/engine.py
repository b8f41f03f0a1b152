"""The Docker engine for a test run: the one at DOCKER_HOST if it answers, else a private one we start and stop."""

from __future__ import annotations

import importlib.util
from pathlib import Path

_SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "engine.py"
_spec = importlib.util.spec_from_file_location("ferry_engine_script", _SCRIPT)
engine_script = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(engine_script)  # type: ignore[union-attr]

EngineUnavailable = engine_script.EngineUnavailable
up = engine_script.up
down = engine_script.down
ping = engine_script.ping
