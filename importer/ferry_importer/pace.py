"""How fast this host streams and loads docker-save archives, learned from its own finished loads.

A load's percent is split between two stages: the stream (decompressing, the engine untarring what it
receives) and the engine loading the layers after the last byte. How the time splits depends on the host —
the storage driver (vfs copies every layer, overlay2 does not), its disks, its CPU, how busy it is — by
several times. `load_share.LOAD_WEIGHTS` is the split measured on one machine; after its first load a host
uses its own: the stream's content bytes per second for each compression and the engine's layer bytes per
second, each an average that leans on the most recent loads. The weight is then
`stream_bps / (stream_bps + load_bps)` (both stages handle the same bytes), whatever the archive's size.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ferry_importer.datadir import default_data_dir
from ferry_importer.load_share import stage_split

log = logging.getLogger(__name__)

FILE_NAME = "pace.json"
RECENT = 0.5  # the share of a new measurement in the average
MIN_STAGE_S = 0.05  # shorter stages say more about scheduling noise than about the host
MIN_BYTES = 8 << 20


@dataclass
class Pace:
    """Content bytes per second of the stream stage (by compression) and of the engine's loading stage."""

    stream_bps: dict[str, float] = field(default_factory=dict)
    load_bps: float | None = None
    calibrated: bool = False  # load_bps comes from the calibration load only: the first real load replaces it


def learned_weight(pace: Pace, compression: str) -> float | None:
    """The loading stage's share for this host, or None before it has loaded an archive so compressed."""
    stream = pace.stream_bps.get(compression)
    if not stream or not pace.load_bps:
        return None
    return stage_split(1.0 / stream, 1.0 / pace.load_bps)  # seconds per content byte of each stage


def _average(old: float | None, new: float) -> float:
    return new if not old else round(old * (1 - RECENT) + new * RECENT, 1)


def learn(
    pace: Pace, compression: str, content_bytes: int, stream_s: float, load_s: float, load_bytes: int | None = None
) -> Pace:
    """The pace after one load whose engine reported every layer it loaded: the stream took `stream_s` for the
    archive's `content_bytes`, the loading stage `load_s` for `load_bytes` (the layers the engine did not have;
    all of the content when not given). Too short or too small a stage changes nothing of its own."""
    load_bytes = content_bytes if load_bytes is None else load_bytes
    streams = dict(pace.stream_bps)
    if content_bytes >= MIN_BYTES and stream_s >= MIN_STAGE_S:
        streams[compression] = _average(streams.get(compression), content_bytes / stream_s)
    if load_bytes >= MIN_BYTES and load_s >= MIN_STAGE_S:
        measured = load_bytes / load_s
        return Pace(streams, round(measured, 1) if pace.calibrated else _average(pace.load_bps, measured))
    return Pace(streams, pace.load_bps, pace.calibrated)


class PaceFile:
    """The pace, kept as JSON in the importer's data directory; unreadable means unknown, never an error."""

    def __init__(self, data_dir: Path | None) -> None:
        self.path = (data_dir or default_data_dir()) / FILE_NAME

    def read(self) -> Pace:
        try:
            raw = json.loads(self.path.read_text())
            streams = {str(k): float(v) for k, v in raw.get("stream_bps", {}).items() if float(v) > 0}
            load = raw.get("load_bps")
            known = float(load) if load and float(load) > 0 else None
            return Pace(streams, known, bool(raw.get("calibrated")) and known is not None)
        except (OSError, ValueError, TypeError, AttributeError):
            return Pace()

    def write(self, pace: Pace) -> None:
        """Atomically (a temporary file renamed into place): concurrent jobs never leave half a file."""
        tmp: str | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".pace-")
            with os.fdopen(fd, "w") as fh:
                json.dump({"stream_bps": pace.stream_bps, "load_bps": pace.load_bps, "calibrated": pace.calibrated}, fh)
            os.replace(tmp, self.path)
        except OSError as exc:
            log.warning("could not keep this host's load pace in %s: %s", self.path, exc)
            if tmp is not None:
                Path(tmp).unlink(missing_ok=True)
