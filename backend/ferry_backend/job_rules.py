"""Pure decisions about jobs: applying an event to a snapshot, staleness, backend-made events.

No I/O here: the receiver, the liveness checker and the tests call these with plain values.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum

from ferry_contract import TERMINAL_STATES, ErrorCode, EventType, JobState, Phase
from ferry_contract.events import LOAD_FIELDS, UPLOAD_FIELDS
from ferry_contract.events import SNAPSHOT_FIELDS as CONTRACT_SNAPSHOT_FIELDS

# A job whose image name is not known yet: created without one (a docker-save archive keeps its own tags) or
# learned of only from callbacks; it takes the name of what it imported when it completes.
UNNAMED = "unknown"

SNAPSHOT_FIELDS = CONTRACT_SNAPSHOT_FIELDS  # what the jobs table keeps of each event


class Verdict(StrEnum):
    """What an incoming event did to its job."""

    APPLIED = "applied"  # newer seq: the snapshot moved forward
    STALE = "stale"  # seq not newer than the snapshot: logged, snapshot unchanged
    FINAL = "after_terminal"  # the job already ended: logged, snapshot unchanged


@dataclass(frozen=True)
class Snapshot:
    """The part of a job that events change."""

    state: str = JobState.QUEUED.value
    phase: str = Phase.QUEUED.value
    seq: int = 0
    percent: float = 0.0
    bytes_done: int = 0
    bytes_total: int | None = None
    rate_bps: float | None = None
    eta_s: float | None = None
    phase_elapsed_s: float | None = None
    queue_position: int | None = None
    layers_done: int | None = None  # a docker-save load's layer counts, while the engine loads and after
    layers_total: int | None = None
    layer_bytes_done: int | None = None
    layer_bytes_total: int | None = None
    bytes_available: int | None = None  # of an upload still arriving, while the import waits on it
    result: dict | None = None
    error: dict | None = None
    updated_at: datetime | None = None
    finished_at: datetime | None = None
    presumed_at: datetime | None = None  # the end is the backend's presumption: the host's own word replaces it
    extra: dict = field(default_factory=dict, compare=False)

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL_STATES

    @property
    def final(self) -> bool:
        """Ended for good: a terminal the host itself reported (or a job it never had)."""
        return self.terminal and self.presumed_at is None


def apply_event(snapshot: Snapshot, event_type: str, data: dict, now: datetime) -> tuple[Verdict, Snapshot]:
    """Move a snapshot forward by one event, or explain why not.

    Only a strictly newer seq applies; a final state is never left. A presumed failure (the backend's
    guess about a silent host) is not final: the host's next verified event continues the job to its
    real end. Order of arrival does not matter: any interleaving of the same events ends in the
    snapshot of the highest seq.
    """
    if snapshot.final:
        return Verdict.FINAL, snapshot
    if data["seq"] <= snapshot.seq:
        return Verdict.STALE, snapshot
    changes = {name: data.get(name) for name in SNAPSHOT_FIELDS}
    changes["percent"] = float(changes["percent"] or 0.0)
    changes["bytes_done"] = int(changes["bytes_done"] or 0)
    ends = event_type in (EventType.FAILED, EventType.CANCELED)
    new = replace(
        snapshot,
        seq=data["seq"],
        result=data.get("image") if event_type == EventType.COMPLETED else snapshot.result,
        error=data.get("error") if ends else (None if snapshot.presumed_at else snapshot.error),
        updated_at=now,
        finished_at=None,
        presumed_at=None,
        **changes,  # type: ignore[arg-type]  # fields validated by the contract; dataclasses.replace checks names
    )
    if new.state in TERMINAL_STATES:
        new = replace(new, finished_at=now, queue_position=None, eta_s=None)
    return Verdict.APPLIED, new


def backend_failure(
    snapshot: Snapshot, job_id: str, host: str, code: ErrorCode, message: str, detail: str | None = None
) -> dict:
    """The `data` of an import.failed the backend itself announces (dispatch failed, host went silent)."""
    return {
        "job_id": job_id,
        "host": host,
        "seq": snapshot.seq + 1,
        "state": JobState.FAILED.value,
        "phase": snapshot.phase,
        "percent": snapshot.percent,
        "bytes_done": snapshot.bytes_done,
        "bytes_total": snapshot.bytes_total,
        "rate_bps": None,
        "eta_s": None,
        "phase_elapsed_s": None,
        "queue_position": None,
        **{name: getattr(snapshot, name) for name in (*LOAD_FIELDS, *UPLOAD_FIELDS)},
        "image": None,
        "error": {"code": code.value, "message": message, "detail": detail},
    }


def backend_canceled(snapshot: Snapshot, job_id: str, host: str, message: str) -> dict:
    """The `data` of an import.canceled for a job the importer never knew about."""
    data = backend_failure(snapshot, job_id, host, ErrorCode.INTERRUPTED, message)
    data["state"] = JobState.CANCELED.value
    data["error"] = None
    return data


def presumed_failure(
    snapshot: Snapshot, code: ErrorCode, message: str, now: datetime, detail: str | None = None
) -> Snapshot:
    """The backend presumes a job failed (its host went silent for good, or says it lost the job).

    The seq stays the host's last one: a presumption takes no place in the importer's seq space,
    so the host's next real event still applies (apply_event) and ends the job for real.
    """
    return replace(
        snapshot,
        state=JobState.FAILED.value,
        error={"code": code.value, "message": message, "detail": detail},
        rate_bps=None,
        eta_s=None,
        queue_position=None,
        updated_at=now,
        finished_at=now,
        presumed_at=now,
    )


def last_word(host_seen: datetime | None, job_contact: datetime, backend_start: datetime) -> datetime:
    """When the backend last heard from a job's host, as far as silence is concerned.

    Never before this backend process started: time the backend itself was down is no silence of
    the host (its callbacks were waiting in its outbox).
    """
    seen = max(job_contact, host_seen) if host_seen else job_contact
    return max(seen, backend_start)


class Silence(StrEnum):
    SPEAKING = "speaking"
    SILENT = "silent"  # a doubt: shown, the job stays unfinished
    LOST = "lost"  # past the long limit: presumed failed


def silence(last: datetime, now: datetime, stale_s: float, lost_s: float) -> Silence:
    quiet = (now - last).total_seconds()
    if quiet > max(lost_s, stale_s):
        return Silence.LOST
    return Silence.SILENT if quiet > stale_s else Silence.SPEAKING


def lost_by_host(
    job_id: str, seq: int, listed: set[str], last_event_sent: datetime | None, beat_sent: datetime
) -> bool:
    """A heartbeat proves the host lost a job: it no longer lists it (running, queued, or still reporting),
    and it was composed after the job's last event (both times from the importer's own clock)."""
    if job_id in listed or seq == 0 or last_event_sent is None:
        return False
    return beat_sent > last_event_sent


def host_is_stale(last_contact: datetime | None, since: datetime, now: datetime, timeout_s: float) -> bool:
    """A host is silent when neither a heartbeat nor any callback came for `timeout_s` (measured from `since` at the earliest)."""
    reference = max(last_contact, since) if last_contact else since
    return now - reference > timedelta(seconds=timeout_s)


def host_alive(last_seen: datetime | None, now: datetime, timeout_s: float) -> bool:
    return last_seen is not None and now - last_seen <= timedelta(seconds=timeout_s)
