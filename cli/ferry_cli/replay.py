"""Replay a capture: re-sign each delivery with a fresh timestamp and POST it in captured order,
keeping the original gaps scaled by the speed. Pure scheduling here, I/O through a `Sender`."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from . import errors
from .capture import rewrite
from .formatting import parse_time
from .signing import SIGNATURE_REFUSALS, Result, Sender


def parse_speed(value: str) -> float:
    """`1`, `10`, any positive number, or `max` (no waiting at all)."""
    if value.strip().lower() == "max":
        return math.inf
    try:
        speed = float(value)
    except ValueError:
        speed = 0.0
    if not speed > 0 or math.isinf(speed) or math.isnan(speed):
        raise errors.BadInput(f"--speed must be a positive number or 'max', got {value!r}", code="invalid_speed")
    return speed


def select(records: list[dict], from_seq: int | None) -> list[dict]:
    """The records to replay: from seq N on when asked (records without a seq have none to compare)."""
    if from_seq is None:
        return list(records)
    return [r for r in records if isinstance(r.get("seq"), int) and r["seq"] >= from_seq]


def schedule(records: list[dict], speed: float) -> list[float]:
    """Seconds after the start at which each record goes out: the captured gaps divided by speed.

    Unknown or backwards times count as no gap, so a bad clock never makes a replay wait.
    """
    offsets, total, previous = [], 0.0, None
    for record in records:
        at = parse_time(record.get("received_at"))
        if at is not None and previous is not None and not math.isinf(speed):
            total += max(0.0, (at - previous).total_seconds()) / speed
        previous = at or previous
        offsets.append(total)
    return offsets


@dataclass
class Sent:
    record: dict
    webhook_id: str
    result: Result


@dataclass
class ReplayReport:
    sent: list[Sent] = field(default_factory=list)
    not_sent: int = 0  # left out after the target refused the signature
    stopped_by: Result | None = None

    @property
    def results(self) -> list[Result]:
        return [s.result for s in self.sent]

    @property
    def refused(self) -> int:
        return sum(1 for s in self.sent if not s.result.accepted)


def run_replay(
    records: list[dict],
    sender: Sender,
    *,
    speed: float,
    job_id: str | None = None,
    as_host: str | None = None,
    keep_going: bool = False,
    on_sent: Callable[[Sent], None] = lambda s: None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> ReplayReport:
    """Send every record its captured gap (divided by speed) after the one before went out. A send that took
    longer than the gap delays the rest instead of making the next one early: the target sees each gap at
    least as long as captured. A refused signature stops the run unless `keep_going`: every later delivery
    would be refused the same way."""
    report = ReplayReport()
    offsets = schedule(records, speed)
    previous_at, previous_offset = None, 0.0
    for index, (record, offset) in enumerate(zip(records, offsets)):
        if previous_at is not None:
            wait = previous_at + (offset - previous_offset) - clock()
            if wait > 0:
                sleep(wait)
        previous_at, previous_offset = clock(), offset
        body, webhook_id = rewrite(record, job_id=job_id, host=as_host)
        try:
            result = sender.send(as_host or record["host"], webhook_id, body)
        except errors.Unreachable as exc:
            raise errors.Unreachable(f"{exc.message} (after {index} of {len(records)} deliveries)") from None
        sent = Sent(record, webhook_id, result)
        report.sent.append(sent)
        on_sent(sent)
        if not result.accepted and result.code in SIGNATURE_REFUSALS and not keep_going:
            report.stopped_by = result
            report.not_sent = len(records) - index - 1
            break
    return report
