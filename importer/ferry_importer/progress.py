"""Truthful progress: pure maths (percent, rate, ETA, when to emit) plus a small driver that feeds a reporter.

Percent comes from real bytes consumed of the known size, never moves back, stops at 99 until the image
is verified, and the driver emits a snapshot at least every `heartbeat` seconds in every phase (so a bar
never freezes while the engine finalizes) and at most every `min_interval` seconds otherwise; phase
changes and terminal events always pass.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from ferry_contract import ErrorInfo, ImageInfo, Phase

PERCENT_CAP = 99.0
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
    """Bytes per second over a sliding window of samples."""

    def __init__(self, window: float = RATE_WINDOW) -> None:
        self.window = window
        self._samples: deque[tuple[float, int]] = deque()

    def add(self, now: float, done: int) -> None:
        self._samples.append((now, done))
        while len(self._samples) > 2 and now - self._samples[1][0] >= self.window:
            self._samples.popleft()

    def rate(self) -> float | None:
        if len(self._samples) < 2:
            return None
        (t0, b0), (t1, b1) = self._samples[0], self._samples[-1]
        if t1 - t0 < 0.05:
            return None
        return round((b1 - b0) / (t1 - t0), 1)


def emit_due(now: float, last_emit: float | None, changed: bool, *, min_interval: float = MIN_INTERVAL,
             heartbeat: float = HEARTBEAT) -> bool:
    """Whether a progress snapshot should go out now."""
    if last_emit is None:
        return True
    elapsed = now - last_emit
    return elapsed >= heartbeat or (changed and elapsed >= min_interval)


class ProgressDriver:
    """Holds the live counters of one import and turns them into snapshots for a reporter."""

    def __init__(self, reporter, total: int | None, *, clock: Callable[[], float] = time.monotonic,
                 min_interval: float = MIN_INTERVAL, heartbeat: float = HEARTBEAT) -> None:
        self.reporter = reporter
        self.total = total
        self.clock = clock
        self.min_interval = min_interval
        self.heartbeat = heartbeat
        self.phase = Phase.PREPARING
        self.done = 0
        self._phase_started = clock()
        self._last_emit: float | None = None
        self._emitted_done = -1
        self._percent = 0.0
        self._meter = RateMeter()
        self._lock = asyncio.Lock()

    def advance(self, done: int) -> None:
        """Record bytes consumed so far (from the sender, once the engine took them)."""
        if done > self.done:
            self.done = done
            self._meter.add(self.clock(), done)

    def snapshot(self, *, percent: float | None = None) -> Snapshot:
        now = self.clock()
        if percent is None:
            percent = max(self._percent, percent_of(self.done, self.total))
        self._percent = percent
        streaming = self.phase in (Phase.IMPORTING, Phase.DOWNLOADING)
        rate = self._meter.rate() if streaming else None
        return Snapshot(
            phase=self.phase,
            bytes_done=self.done,
            bytes_total=self.total,
            percent=percent,
            rate_bps=rate,
            eta_s=eta_seconds(self.done, self.total, rate) if streaming else None,
            phase_elapsed_s=round(now - self._phase_started, 1),
        )

    async def set_phase(self, phase: Phase) -> None:
        if phase == self.phase:
            return
        self.phase = phase
        self._phase_started = self.clock()
        await self._emit()

    async def tick(self) -> None:
        """Emit if due; called by `run()` every few tens of milliseconds."""
        if emit_due(self.clock(), self._last_emit, self.done != self._emitted_done,
                    min_interval=self.min_interval, heartbeat=self.heartbeat):
            await self._emit()

    async def run(self, interval: float = 0.05) -> None:
        while True:
            await asyncio.sleep(interval)
            await self.tick()

    async def _emit(self) -> None:
        async with self._lock:
            self._last_emit = self.clock()
            self._emitted_done = self.done
            await self.reporter.progress(self.snapshot())

    async def completed(self, image: ImageInfo) -> None:
        self.phase = Phase.DONE
        async with self._lock:
            await self.reporter.completed(self.snapshot(percent=100.0), image)

    async def failed(self, error: ErrorInfo) -> None:
        async with self._lock:
            await self.reporter.failed(self.snapshot(), error)
