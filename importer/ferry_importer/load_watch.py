"""What a docker-save load's bar needs besides the stream: this host's loading pace (measured once, before its
first load), the layers the engine already has (it skips them), and what the finished load teaches the host."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import replace

from ferry_importer.engine.calibration import measure_load_pace
from ferry_importer.engine.client import Engine
from ferry_importer.engine.inventory import KnownLayers, known_layers
from ferry_importer.engine.loading import LayerTracker, NamedPresence, PlannedLayer, mark_present
from ferry_importer.load_share import LoadShare, load_weight
from ferry_importer.pace import PaceFile, learn, learned_weight

log = logging.getLogger(__name__)

CALIBRATION_TIMEOUT_S = 15.0


class LoadWatch:
    def __init__(
        self, engine: Engine, pace: PaceFile, compression: str, calibration_timeout: float = CALIBRATION_TIMEOUT_S
    ) -> None:
        self.engine, self.pace, self.compression = engine, pace, compression
        self.calibration_timeout = calibration_timeout
        self._known: asyncio.Task[KnownLayers] | None = None
        self._presence: NamedPresence | None = None
        self._files: Sequence[tuple[str, int]] = ()

    async def start(self, content_total: int | None, layer_files: Sequence[tuple[str, int]]) -> LoadShare:
        """The split for this load; starts asking the engine which layers it has."""
        pace = self.pace.read()
        if pace.load_bps is None:
            try:  # an engine that hangs must not hold the import: it is then judged by the stall watch
                measured = await asyncio.wait_for(measure_load_pace(self.engine), self.calibration_timeout)
            except TimeoutError:
                log.warning(
                    "the calibration load took over %.0f s: this host's loading pace stays unknown",
                    self.calibration_timeout,
                )
                measured = None
            if measured:
                pace = replace(pace, load_bps=measured, calibrated=True)
                self.pace.write(pace)
        self._files = layer_files
        self._known = asyncio.create_task(known_layers(self.engine), name="known-layers")
        prior = learned_weight(pace, self.compression) or load_weight(self.compression)
        return LoadShare(prior, pace.load_bps, content_total)

    def present_bytes(self) -> int:
        """Layer bytes streamed so far that the engine already has, where the archive's names tell."""
        known = self._known
        if known is None or not known.done() or known.cancelled():
            return 0
        if self._presence is None:
            self._presence = NamedPresence(known.result())
        return self._presence.update(self._files)

    async def mark(self, plan: list[PlannedLayer] | None) -> list[PlannedLayer] | None:
        """The archive's layer plan with the layers the engine has marked (they load in no time)."""
        known = await self._known if self._known is not None else KnownLayers()
        return mark_present(plan, known)

    def learn(self, layers: LayerTracker, content_bytes: int, stream_s: float, load_s: float) -> None:
        """After a load in which the engine reported every layer it loaded, keep how fast this host went."""
        if layers.all_new_reported:
            pace = learn(self.pace.read(), self.compression, content_bytes, stream_s, load_s, layers.new_bytes_total)
            self.pace.write(pace)

    async def close(self) -> None:
        if self._known is not None and not self._known.done():
            self._known.cancel()
            await asyncio.gather(self._known, return_exceptions=True)
