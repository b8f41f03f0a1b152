"""What the CLI knows about one followed job: pure bookkeeping of snapshots and events by seq.

Socket.IO gives no connection-state recovery, so the follower resubscribes after every reconnect with
the highest seq it handled; anything at or below that seq (a late duplicate, a stale retry) is ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ferry_contract.events import SNAPSHOT_FIELDS

from .formatting import is_terminal

VIEW_FIELDS = (*SNAPSHOT_FIELDS, "error", "doubt", "presumed")


def view_of_snapshot(snapshot: dict) -> dict:
    """A backend Job snapshot in the shape of an event's data (`result` is the completed event's `image`)."""
    view = {name: snapshot.get(name) for name in VIEW_FIELDS}
    view.update(
        job_id=snapshot.get("id"), host=snapshot.get("host"), seq=snapshot.get("seq", 0), image=snapshot.get("result")
    )
    return view


@dataclass
class JobTrack:
    job_id: str
    host: str | None = None
    seen_seq: int = 0  # highest event seq handled: resubscribe with after_seq = seen_seq
    view: dict = field(default_factory=dict)  # the newest known state, event-data shaped
    view_seq: int = -1
    view_at: float = 0.0  # when `view` last changed (monotonic seconds), to run a finalizing clock
    events: int = 0
    clock_phase: str | None = None  # the phase whose running clock was last shown, and its value
    clock_shown: float = 0.0

    def apply_snapshot(self, snapshot: dict, now: float) -> bool:
        """Take a subscribe ack's snapshot unless what we show is already as new."""
        self.host = self.host or snapshot.get("host")
        seq = int(snapshot.get("seq") or 0)
        if seq <= self.view_seq:
            return False
        self.view, self.view_seq, self.view_at = view_of_snapshot(snapshot), seq, now
        return True

    def apply_notice(self, snapshot: dict, now: float) -> bool:
        """The backend's own word (`job.snapshot`: its host silent, a presumed failure): shown unless older than
        what we show or the job already ended for good. Never counted as an event."""
        seq = int(snapshot.get("seq") or 0)
        if seq < self.view_seq or (self.terminal and not self.view.get("presumed")):
            return False
        self.view, self.view_seq, self.view_at = view_of_snapshot(snapshot), seq, now
        return True

    def apply_event(self, data: dict, now: float) -> bool:
        """Handle one event; False (and no change) for a seq already handled."""
        seq = int(data.get("seq") or 0)
        if seq <= self.seen_seq:
            return False
        self.seen_seq = seq
        self.events += 1
        self.host = self.host or data.get("host")
        if seq > self.view_seq:
            self.view, self.view_seq, self.view_at = dict(data), seq, now
        return True

    @property
    def terminal(self) -> bool:
        return is_terminal(self.view)

    @property
    def caught_up(self) -> bool:
        """Every event up to the newest known state was handled (the final one included)."""
        return self.seen_seq >= self.view_seq

    @property
    def succeeded(self) -> bool:
        return self.view.get("state") == "succeeded"

    def phase_clock(self, now: float) -> float | None:
        """Seconds in the current phase, running on between events (a finalizing engine sends no bytes),
        never moving back when a late event carries a smaller count."""
        elapsed = self.view.get("phase_elapsed_s")
        if elapsed is None or self.terminal:
            return elapsed
        value = elapsed + max(0.0, now - self.view_at)
        phase = self.view.get("phase")
        if phase != self.clock_phase:
            self.clock_phase, self.clock_shown = phase, value
        else:
            self.clock_shown = max(self.clock_shown, value)
        return self.clock_shown
