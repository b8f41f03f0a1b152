"""The job store: every accepted job and its latest snapshot, in the importer's SQLite database.

A job row is written when the job is accepted (so a restart knows about it) and updated by every
event in the same transaction that commits the event to the outbox. `ord` fixes the queue order.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime

from ferry_contract import ImportEventData, ImportJobRequest, ImportJobView, JobState, Phase
from ferry_contract.events import TERMINAL_STATES

ACTIVE_STATES = (JobState.QUEUED, JobState.RUNNING)


@dataclass(frozen=True)
class JobRecord:
    job_id: str
    ord: int
    request: ImportJobRequest
    state: JobState
    phase: Phase
    seq: int
    snapshot: ImportEventData | None
    callback_url: str | None
    created_at: float
    updated_at: float
    finished_at: float | None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> JobRecord:
        snapshot = row["snapshot"]
        return cls(
            job_id=row["job_id"],
            ord=row["ord"],
            request=ImportJobRequest.model_validate_json(row["request"]),
            state=JobState(row["state"]),
            phase=Phase(row["phase"]),
            seq=row["seq"],
            snapshot=ImportEventData.model_validate_json(snapshot) if snapshot else None,
            callback_url=row["callback_url"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            finished_at=row["finished_at"],
        )

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL_STATES

    def view(self, queue_position: int | None = None) -> ImportJobView:
        snap = self.snapshot
        return ImportJobView(
            job_id=self.job_id,
            image=self.request.image,
            state=self.state,
            phase=self.phase,
            seq=self.seq,
            percent=snap.percent if snap else 0.0,
            bytes_done=snap.bytes_done if snap else 0,
            bytes_total=snap.bytes_total if snap else None,
            rate_bps=snap.rate_bps if snap else None,
            eta_s=snap.eta_s if snap else None,
            queue_position=queue_position if self.state == JobState.QUEUED else None,
            image_info=snap.image if snap else None,
            error=snap.error if snap else None,
            created_at=_utc(self.created_at),
            updated_at=_utc(self.updated_at),
        )


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)


def same_request(a: ImportJobRequest, b: ImportJobRequest) -> bool:
    """A repeated POST is the same job when everything but the callback URL matches."""
    return a.model_dump(exclude={"callback_url"}) == b.model_dump(exclude={"callback_url"})


def insert(conn: sqlite3.Connection, request: ImportJobRequest, now: float) -> tuple[JobRecord, bool]:
    """Accept a job once: returns (record, created). An existing job_id returns the stored job untouched."""
    existing = get(conn, request.job_id)
    if existing is not None:
        return existing, False
    next_ord = conn.execute("SELECT COALESCE(MAX(ord), 0) + 1 FROM jobs").fetchone()[0]
    conn.execute(
        "INSERT INTO jobs (job_id, ord, request, image, state, phase, seq, callback_url, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?, ?)",
        (
            request.job_id,
            next_ord,
            request.model_dump_json(),
            request.image,
            JobState.QUEUED,
            Phase.QUEUED,
            request.callback_url,
            now,
            now,
        ),
    )
    return get(conn, request.job_id), True  # type: ignore[return-value]


def get(conn: sqlite3.Connection, job_id: str) -> JobRecord | None:
    row = conn.execute("SELECT * FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
    return JobRecord.from_row(row) if row else None


def apply_event(conn: sqlite3.Connection, data: ImportEventData, now: float) -> bool:
    """Move the snapshot to this event when it is newer; a terminal job never changes again."""
    terminal = [state.value for state in TERMINAL_STATES]
    cursor = conn.execute(
        "UPDATE jobs SET state = ?, phase = ?, seq = ?, snapshot = ?, updated_at = ?,"
        " finished_at = CASE WHEN ? THEN ? ELSE finished_at END"
        f" WHERE job_id = ? AND seq < ? AND state NOT IN ({', '.join('?' for _ in terminal)})",
        (
            data.state,
            data.phase,
            data.seq,
            data.model_dump_json(),
            now,
            data.state in terminal,
            now,
            data.job_id,
            data.seq,
            *terminal,
        ),
    )
    return cursor.rowcount == 1


def in_states(conn: sqlite3.Connection, states: tuple[JobState, ...]) -> list[JobRecord]:
    rows = conn.execute(
        f"SELECT * FROM jobs WHERE state IN ({', '.join('?' for _ in states)}) ORDER BY ord",
        tuple(s.value for s in states),
    ).fetchall()
    return [JobRecord.from_row(row) for row in rows]


def recent(conn: sqlite3.Connection, *, limit: int = 50, state: JobState | None = None) -> list[JobRecord]:
    """Newest first."""
    if state is None:
        rows = conn.execute("SELECT * FROM jobs ORDER BY ord DESC LIMIT ?", (limit,)).fetchall()
    else:
        rows = conn.execute(
            "SELECT * FROM jobs WHERE state = ? ORDER BY ord DESC LIMIT ?", (state.value, limit)
        ).fetchall()
    return [JobRecord.from_row(row) for row in rows]


def recent_callback_urls(conn: sqlite3.Connection, *, since: float, limit: int = 4) -> list[str]:
    """Where heartbeats go when no heartbeat URL is configured: the receivers of recent jobs."""
    rows = conn.execute(
        "SELECT callback_url, MAX(updated_at) AS last FROM jobs WHERE callback_url IS NOT NULL AND"
        " (updated_at >= ? OR state IN (?, ?)) GROUP BY callback_url ORDER BY last DESC LIMIT ?",
        (since, JobState.QUEUED, JobState.RUNNING, limit),
    ).fetchall()
    return [row["callback_url"] for row in rows]


def purge(conn: sqlite3.Connection, before: float) -> int:
    """Retention: forget finished jobs older than `before` (their outbox rows are purged separately)."""
    cursor = conn.execute("DELETE FROM jobs WHERE finished_at IS NOT NULL AND finished_at < ?", (before,))
    return cursor.rowcount
