"""Truthful progress: pure maths (percent, rate, ETA, when to emit) plus a small driver that feeds a reporter.

Percent comes from real bytes consumed of the known size, never moves back, stops at 99 until the image
is verified. A docker-save archive has a second stage the engine measures: it loads the layers after it
has every byte; then percent is a weighted sum of both stages (see `load_share`). The driver emits a
snapshot at least every `heartbeat` seconds in every phase (so a bar never freezes while the engine
finalizes) and at most every `min_interval` seconds otherwise; phase changes and terminal events always pass.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from ferry_contract import ErrorInfo, ImageInfo, Phase
from ferry_importer.engine.loading import LayerTracker
from ferry_importer.load_share import PERCENT_CAP, LoadShare

MIN_INTERVAL = 0.1
HEARTBEAT = 0.5
RATE_WINDOW = 5.0


@dataclass(frozen=True)
class Snapshot:
    phase: Phase
    bytes_done: int
    bytes_total: int | None
    percent: float
    rate_bps: float | None = None
    eta_s: float | None = None
    phase_elapsed_s: float | None = None
    layers_done: int | None = None
    layers_total: int | None = None
    layer_bytes_done: int | None = None
    layer_bytes_total: int | None = None
    bytes_available: int | None = None


def percent_of(done: int, total: int | None) -> float:
    """Share of the archive consumed, capped below 100 (100 is only for a verified image)."""
    if not total:
        return 0.0
    return round(min(PERCENT_CAP, 100.0 * done / total), 1)


def eta_seconds(done: int, total: int | None, rate: float | None) -> float | None:
    if not total or not rate or rate <= 0:
        return None
    return round(max(0.0, (total - done) / rate), 1)


class RateMeter:
    """Bytes per second over a sliding window of samples (what the bar shows as the rate), and over the
    whole stage (what the ETA divides by: a few slow seconds — a busy host, a network hiccup — move the
    window's rate a lot and the stage's end hardly at all; measured on the bench's 1 GB archive on a busy
    machine, the window's rate made the ETA at half time 175 % too long, the stage's 10 %)."""

    def __init__(self, window: float = RATE_WINDOW) -> None:
        self.window = window
        self._samples: deque[tuple[float, int]] = deque()
        self._first: tuple[float, int] | None = None

    def add(self, now: float, done: int) -> None:
        if self._first is None:
            self._first = (now, done)
        self._samples.append((now, done))
        while len(self._samples) > 2 and now - self._samples[1][0] >= self.window:
            self._samples.popleft()

    def overall(self) -> float | None:
        """Bytes per second since the first sample; None until a second of samples is there."""
        if self._first is None or not self._samples:
            return None
        (t0, b0), (t1, b1) = self._first, self._samples[-1]
        if t1 - t0 < 1.0:
            return self.rate()
        return round((b1 - b0) / (t1 - t0), 1)

    def elapsed(self) -> float:
        """Seconds from the first sample to the last."""
        if self._first is None or not self._samples:
            return 0.0
        return self._samples[-1][0] - self._first[0]

    def rate(self) -> float | None:
        if len(self._samples) < 2:
            return None
        (t0, b0), (t1, b1) = self._samples[0], self._samples[-1]
        if t1 - t0 < 0.05:
            return None
        return round((b1 - b0) / (t1 - t0), 1)


def emit_due(
    now: float,
    last_emit: float | None,
    changed: bool,
    *,
    min_interval: float = MIN_INTERVAL,
    heartbeat: float = HEARTBEAT,
) -> bool:
    """Whether a progress snapshot should go out now."""
    if last_emit is None:
        return True
    elapsed = now - last_emit
    return elapsed >= heartbeat or (changed and elapsed >= min_interval)


class ProgressDriver:
    """Holds the live counters of one import and turns them into snapshots for a reporter."""

    def __init__(
        self,
        reporter,
        total: int | None,
        *,
        clock: Callable[[], float] = time.monotonic,
        min_interval: float = MIN_INTERVAL,
        heartbeat: float = HEARTBEAT,
    ) -> None:
        self.reporter = reporter
        self.total = total
        self.clock = clock
        self.min_interval = min_interval
        self.heartbeat = heartbeat
        self.phase = Phase.PREPARING
        self.done = 0
        self._phase_started = clock()
        self._last_emit: float | None = None
        self._emitted_key: tuple[int, int, int] = (-1, 0, 0)
        self._percent = 0.0
        self._meter = RateMeter()
        self._lock = asyncio.Lock()
        self.layers: LayerTracker | None = None  # set for loads: the engine's loading stage
        self.share: LoadShare | None = None
        self._presence: Callable[[], int] | None = None
        self._load_meter = RateMeter()
        self.available: int | None = None  # an upload still arriving: its bytes landed so far, when last asked

    def advance(self, done: int, content: int = 0) -> None:
        """Record archive bytes consumed so far, and `content` more uncompressed bytes the engine took."""
        if self.share is not None:
            self.share.content_sent += content
        if done > self.done:
            self.done = done
            self._meter.add(self.clock(), done)

    async def upload_arrival(self, available: int, waiting: bool) -> None:
        """An upload read while it arrives: `available` bytes of it have landed; `waiting` = the import has
        caught up with it (phase `waiting_for_upload`), else it is `importing` at its own pace."""
        self.available = available
        if waiting and self.phase == Phase.IMPORTING:
            await self.set_phase(Phase.WAITING_FOR_UPLOAD)
        elif not waiting and self.phase == Phase.WAITING_FOR_UPLOAD:
            await self.set_phase(Phase.IMPORTING)

    def expect_load(self, share: LoadShare, presence: Callable[[], int] | None = None) -> None:
        """This archive is loaded: percent also covers the layers the engine loads after the last byte.
        `presence` says how many layer bytes streamed so far the engine already has."""
        self.layers = LayerTracker()
        self.share = share
        self._presence = presence

    async def layer_line(self, layer_id: str, current: int, total: int) -> None:
        """The engine reported loading a layer: the `loading` phase runs from its first such line."""
        if self.layers is None:
            self.expect_load(LoadShare(0.0))
        assert self.layers is not None
        self.layers.layer(layer_id, current, total)
        self._load_meter.add(self.clock(), self.layers.new_bytes_done)
        if self.phase in (Phase.IMPORTING, Phase.FINALIZING):
            await self.set_phase(Phase.LOADING)

    def image_loaded(self, ref: str) -> None:
        if self.layers is not None:
            self.layers.loaded(ref)

    def load_finished(self) -> None:
        if self.layers is not None:
            self.layers.finish()

    def _progress_key(self) -> tuple[int, int, int]:
        layers = self.layers
        return (self.done, layers.bytes_done, layers.layers_done) if layers else (self.done, 0, 0)

    def _sync_share(self) -> None:
        """Tell a load's split what is known now of the layers the engine has: from the archive's names while
        it streams, from the layer plan once the manifest is in. Percent and ETA both read it."""
        share, layers = self.share, self.layers
        if share is None or layers is None:
            return
        share.planned_share = layers.new_share()
        if self._presence is not None and share.planned_share is None:
            share.present_bytes = self._presence()

    def _measured_percent(self) -> float:
        if self.layers is None or self.share is None:
            return percent_of(self.done, self.total)
        return self.share.percent(self.done, self.total, self.layers.fraction())

    def snapshot(self, *, percent: float | None = None) -> Snapshot:
        now = self.clock()
        self._sync_share()
        if percent is None:
            percent = max(self._percent, self._measured_percent())
        self._percent = percent
        streaming = self.phase in (Phase.IMPORTING, Phase.DOWNLOADING)
        layers = self.layers
        rate = eta = None
        if streaming:
            rate, pace = self._meter.rate(), self._meter.overall()
            if self.share is not None:
                self.share.settle(self._meter.elapsed(), self.done, self.total, pace)
                eta = self.share.stream_eta(self.done, self.total, pace)
            else:
                eta = eta_seconds(self.done, self.total, pace)
        elif self.phase == Phase.LOADING and layers is not None:
            rate = self._load_meter.rate()
            total = layers.new_bytes_total if layers.planned else None
            eta = eta_seconds(layers.new_bytes_done, total, self._load_meter.overall())
        shown = layers is not None and (layers.planned or layers.layers_done > 0)
        return Snapshot(
            phase=self.phase,
            bytes_done=self.done,
            bytes_total=self.total,
            percent=percent,
            rate_bps=rate,
            eta_s=eta,
            phase_elapsed_s=round(now - self._phase_started, 1),
            layers_done=layers.layers_done if shown and layers else None,
            layers_total=layers.layers_total if shown and layers else None,
            layer_bytes_done=layers.bytes_done if shown and layers and layers.planned else None,
            layer_bytes_total=layers.bytes_total if shown and layers else None,
            bytes_available=self.available,
        )

    async def set_phase(self, phase: Phase) -> None:
        if phase == self.phase:
            return
        self.phase = phase
        self._phase_started = self.clock()
        await self._emit()

    async def tick(self) -> None:
        """Emit if due; called by `run()` every few tens of milliseconds."""
        if emit_due(
            self.clock(),
            self._last_emit,
            self._progress_key() != self._emitted_key,
            min_interval=self.min_interval,
            heartbeat=self.heartbeat,
        ):
            await self._emit()

    async def run(self, interval: float = 0.05) -> None:
        while True:
            await asyncio.sleep(interval)
            await self.tick()

    async def _emit(self) -> None:
        async with self._lock:
            self._last_emit = self.clock()
            self._emitted_key = self._progress_key()
            await self.reporter.progress(self.snapshot())

    async def completed(self, image: ImageInfo) -> None:
        self.phase = Phase.DONE
        async with self._lock:
            await self.reporter.completed(self.snapshot(percent=100.0), image)

    async def failed(self, error: ErrorInfo) -> None:
        async with self._lock:
            await self.reporter.failed(self.snapshot(), error)
