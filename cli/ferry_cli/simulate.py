"""A realistic synthetic import, as the contract's events, for UI work without Docker or a lab host.

queued → preparing → importing (the rate wanders, as on a shared host) → with `layers`, loading (a
docker-save archive: the engine loads its layers, counts and layer bytes rise) → finalizing (every byte sent,
the engine still working: elapsed seconds rise, percent holds) → verifying → completed; or a
failure with a given code in the phase where that code really happens. Never silent for more than
half a second of simulated time, percent never moves back, seq rises from 1.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import random
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from ferry_contract import (
    ErrorCode,
    ErrorInfo,
    EventType,
    ImageInfo,
    ImportEventData,
    JobState,
    Phase,
    make_import_event,
)

from . import errors
from .signing import SIGNATURE_REFUSALS, Result, Sender

TICK_S = 0.5
MB = 1_000_000
MIN_RATE, MAX_RATE = 15 * MB, 140 * MB
UNPACK_FACTOR = 4.3  # a cEOS-lab .tar.xz of 600 MB unpacks to about 2.6 GB
LOAD_SHARE = 0.3  # the loading stage's share of the bar for an xz docker-save archive (as the importer weighs it)

FAILURES: dict[str, tuple[Phase, float, str]] = {  # code: (phase, share of that phase done, message)
    ErrorCode.SOURCE_NOT_FOUND: (Phase.PREPARING, 0.5, "the archive is not at the source URL (404)"),
    ErrorCode.SOURCE_UNAVAILABLE: (Phase.IMPORTING, 0.3, "the source stopped answering mid-transfer"),
    ErrorCode.NOT_AN_ARCHIVE: (Phase.PREPARING, 0.9, "the file is neither a tar archive nor a compressed one"),
    ErrorCode.ENGINE_UNREACHABLE: (Phase.PREPARING, 0.5, "the Docker engine does not answer"),
    ErrorCode.IMAGE_EXISTS: (Phase.PREPARING, 0.9, "the tag already exists on this host (use --force to replace)"),
    ErrorCode.CORRUPT_COMPRESSION: (Phase.IMPORTING, 0.6, "xz data is corrupt"),
    ErrorCode.TRUNCATED_COMPRESSION: (Phase.IMPORTING, 1.0, "the archive ends before its xz stream does"),
    ErrorCode.CORRUPT_TAR: (Phase.IMPORTING, 0.4, "a tar header is corrupt"),
    ErrorCode.TRUNCATED_TAR: (Phase.IMPORTING, 1.0, "the tar archive ends mid-member"),
    ErrorCode.INSUFFICIENT_DISK: (Phase.IMPORTING, 0.7, "no space left under the engine's data root"),
    ErrorCode.ENGINE_ERROR: (Phase.FINALIZING, 0.6, "the engine reported an error while applying the image"),
    ErrorCode.ENGINE_STALLED: (Phase.FINALIZING, 1.0, "the engine made no progress for too long"),
    ErrorCode.MISSING_MANIFEST: (Phase.FINALIZING, 0.3, "the archive has no manifest.json"),
    ErrorCode.VERIFICATION_FAILED: (Phase.VERIFYING, 1.0, "the tag is missing after the engine reported success"),
}
DEFAULT_FAILURE = (Phase.IMPORTING, 0.6, "simulated failure")


@dataclass(frozen=True)
class Step:
    at: float  # seconds after the start, on the simulated clock
    type: EventType
    data: ImportEventData


def image_id(job_id: str, ref: str) -> str:
    return "sha256:" + hashlib.sha256(f"{job_id}\0{ref}".encode()).hexdigest()


class _Builder:
    """Accumulates steps while walking through the phases; stops at the first failure."""

    def __init__(self, job_id: str, host: str, size: int, fail: str | None):
        self.job_id, self.host, self.size = job_id, host, size
        self.fail = fail
        self.fail_phase, self.fail_share, self.fail_message = (
            FAILURES.get(fail, DEFAULT_FAILURE) if fail else (None, 0, "")
        )
        self.steps: list[Step] = []
        self.now = 0.0
        self.done = 0
        self.percent = 0.0
        self.failed = False

    def emit(self, event_type: EventType, state: JobState, phase: Phase, **fields) -> None:
        data = ImportEventData(
            job_id=self.job_id,
            host=self.host,
            seq=len(self.steps) + 1,
            state=state,
            phase=phase,
            percent=self.percent,
            bytes_done=self.done,
            bytes_total=self.size,
            **fields,
        )
        self.steps.append(Step(round(self.now, 3), event_type, data))

    def maybe_fail(self, phase: Phase, share: float) -> bool:
        """Emit the failure when this phase is the failing one and far enough along."""
        if self.fail is None or self.failed or phase != self.fail_phase or share < self.fail_share:
            return False
        error = ErrorInfo(code=self.fail, message=self.fail_message, detail="simulated by ferry simulate")
        self.emit(EventType.FAILED, JobState.FAILED, phase, error=error)
        self.failed = True
        return True

    def timed_phase(self, phase: Phase, seconds: float) -> bool:
        """A phase without byte progress: elapsed seconds tick up. True when the job failed in it."""
        ticks = max(1, round(seconds / TICK_S))
        for tick in range(ticks + 1):
            elapsed = round(tick * TICK_S, 1)
            if self.maybe_fail(phase, tick / ticks):
                return True
            self.emit(EventType.PROGRESS, JobState.RUNNING, phase, phase_elapsed_s=elapsed)
            self.now += TICK_S
        return False


def scenario(
    *,
    job_id: str,
    host: str,
    image: str,
    size: int,
    seed: int | None = None,
    fail: str | None = None,
    finalizing_s: float | None = None,
    layers: int = 0,
) -> list[Step]:
    """Every event of one simulated import, with its time on the simulated clock; `layers` > 0 makes it the
    load of a docker-save archive with that many layers."""
    rng = random.Random(seed)
    b = _Builder(job_id, host, size, fail)
    b.emit(EventType.QUEUED, JobState.QUEUED, Phase.QUEUED, queue_position=1)
    b.now += TICK_S
    if b.timed_phase(Phase.PREPARING, 1.0):
        return b.steps
    rate, elapsed = rng.uniform(40, 90) * MB, 0.0
    window: list[float] = []
    share = LOAD_SHARE if layers else 0.0
    target = rate
    while b.done < size:
        if rng.random() < 0.25:  # the host gets busier or quieter now and then
            target = rng.uniform(MIN_RATE, MAX_RATE)
        rate = min(MAX_RATE, max(MIN_RATE, (rate + 0.5 * (target - rate)) * rng.uniform(0.95, 1.05)))
        b.done = min(size, b.done + int(rate * TICK_S))
        window = (window + [rate])[-2:]
        elapsed += TICK_S
        b.percent = max(b.percent, min(99.0, round(100.0 * (1 - share) * b.done / size, 1)))
        if b.maybe_fail(Phase.IMPORTING, b.done / size):
            return b.steps
        shown = round(sum(window) / len(window), 1)
        b.emit(
            EventType.PROGRESS,
            JobState.RUNNING,
            Phase.IMPORTING,
            rate_bps=shown,
            eta_s=round((size - b.done) / shown, 1),
            phase_elapsed_s=round(elapsed, 1),
        )
        b.now += TICK_S
    if layers and load_layers(b, layers, share, rng):
        return b.steps
    b.percent = 99.0
    stretch = finalizing_s if finalizing_s is not None else rng.uniform(6.0, 10.0) if not layers else 0.5
    if b.timed_phase(Phase.FINALIZING, stretch) or b.timed_phase(Phase.VERIFYING, 1.0):
        return b.steps
    b.percent = 100.0
    info = ImageInfo(ref=image, id=image_id(job_id, image), size=int(size * UNPACK_FACTOR), tags=[image])
    b.emit(EventType.COMPLETED, JobState.SUCCEEDED, Phase.DONE, image=info, eta_s=0.0)
    return b.steps


def load_layers(b: _Builder, layers: int, share: float, rng: random.Random) -> bool:
    """The engine loading the layers after the last byte. True when the job failed in it."""
    weights = [rng.randint(1, 10) for _ in range(layers)]
    sizes = [max(1, int(b.size * UNPACK_FACTOR) * w // sum(weights)) for w in weights]
    total, rate, done, elapsed = sum(sizes), rng.uniform(60, 120) * MB, 0, 0.0
    base = b.percent
    while done < total:
        done = min(total, done + int(rate * TICK_S))
        elapsed += TICK_S
        finished = sum(1 for end in itertools.accumulate(sizes) if end <= done)
        b.percent = max(b.percent, min(99.0, round(base + 100.0 * share * done / total, 1)))
        if b.maybe_fail(Phase.LOADING, done / total):
            return True
        b.emit(
            EventType.PROGRESS,
            JobState.RUNNING,
            Phase.LOADING,
            rate_bps=round(rate, 1),
            eta_s=round((total - done) / rate, 1),
            phase_elapsed_s=round(elapsed, 1),
            layers_done=finished,
            layers_total=layers,
            layer_bytes_done=done,
            layer_bytes_total=total,
        )
        b.now += TICK_S
    return False


def new_webhook_id() -> str:
    return f"msg_{time.time_ns():x}{secrets.token_hex(8)}"


@dataclass
class SimulationReport:
    results: list[Result]
    not_sent: int = 0


def run_simulation(
    steps: list[Step],
    sender: Sender,
    *,
    speed: float,
    on_sent: Callable[[Step, Result], None] = lambda step, result: None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> SimulationReport:
    """POST each step as a signed callback at its simulated time divided by speed (now-stamped).

    A refused signature stops the run: every later callback would be refused the same way.
    """
    report = SimulationReport(results=[])
    start = clock()
    for index, step in enumerate(steps):
        if not math.isinf(speed):
            wait = start + step.at / speed - clock()
            if wait > 0:
                sleep(wait)
        body = make_import_event(step.type, step.data).model_dump_json()
        try:
            result = sender.send(step.data.host, new_webhook_id(), body)
        except errors.Unreachable as exc:
            raise errors.Unreachable(f"{exc.message} (after {index} of {len(steps)} callbacks)") from None
        report.results.append(result)
        on_sent(step, result)
        if not result.accepted and result.code in SIGNATURE_REFUSALS:
            report.not_sent = len(steps) - index - 1
            break
    return report
