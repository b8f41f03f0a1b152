"""The durable outbox: every callback is a row committed before anyone tries to send it.

Functions here take a sqlite3 connection and run inside the caller's transaction, so a job's
snapshot update and its outbox row commit together (see jobs.py and service.py). Delivery order is
per job: only a job's lowest pending seq (its *head*) is ever sent, so a receiver sees seq rise.
While a job's head keeps failing, newer progress events of the same phase replace older ones
(coalescing); queued, phase-change and terminal events are never replaced. Nothing is deleted
silently: coalesced, expired and gone rows stay with their status until retention purges them.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from enum import StrEnum

from ferry_importer.callbacks.retry import DeliveryVerdict


class Status(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    COALESCED = "coalesced"
    EXPIRED = "expired"
    GONE = "gone"


FINISHED = (Status.DELIVERED, Status.COALESCED, Status.EXPIRED, Status.GONE)
RESENDABLE = (Status.EXPIRED, Status.GONE)


@dataclass(frozen=True)
class Message:
    id: int
    msg_id: str
    job_id: str
    seq: int
    type: str
    droppable: bool
    url: str
    body: str
    status: Status
    created_at: float
    next_attempt_at: float
    attempts: int
    requeued: bool
    last_status: int | None
    last_error: str | None
    finished_at: float | None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Message:
        values = dict(row)
        values["droppable"] = bool(values["droppable"])
        values["requeued"] = bool(values["requeued"])
        values["status"] = Status(values["status"])
        return cls(**values)


@dataclass(frozen=True)
class Attempt:
    started_at: float
    duration_ms: float
    status_code: int | None
    error: str | None
    response: str | None
    trigger: str


def enqueue(
    conn: sqlite3.Connection,
    *,
    msg_id: str,
    job_id: str,
    seq: int,
    type: str,
    body: str,
    url: str,
    droppable: bool,
    now: float,
) -> Message:
    """Commit one event for delivery. After a 410 for this job, it is recorded as gone and never sent."""
    stopped = conn.execute(
        "SELECT 1 FROM outbox WHERE job_id = ? AND status = ? LIMIT 1", (job_id, Status.GONE)
    ).fetchone()
    if droppable and not stopped:
        coalesce(conn, job_id, now)
    status = Status.GONE if stopped else Status.PENDING
    cursor = conn.execute(
        "INSERT INTO outbox (msg_id, job_id, seq, type, droppable, url, body, status, created_at,"
        " next_attempt_at, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (msg_id, job_id, seq, type, int(droppable), url, body, status, now, now, now if stopped else None),
    )
    assert cursor.lastrowid is not None  # an INSERT always has one
    return get(conn, cursor.lastrowid)


def coalesce(conn: sqlite3.Connection, job_id: str, now: float) -> int:
    """While the job's head is failing, drop the pending progress rows behind it that a newer one supersedes.

    Only droppable rows after the last pending non-droppable row are touched (a run of "consecutive"
    progress events), and never the head itself (it may be in flight).
    """
    head = conn.execute(
        "SELECT seq, attempts FROM outbox WHERE job_id = ? AND status = ? ORDER BY seq LIMIT 1",
        (job_id, Status.PENDING),
    ).fetchone()
    if head is None or head["attempts"] == 0:
        return 0
    barrier = conn.execute(
        "SELECT MAX(seq) FROM outbox WHERE job_id = ? AND status = ? AND droppable = 0",
        (job_id, Status.PENDING),
    ).fetchone()[0]
    floor = max(head["seq"], barrier or 0)
    cursor = conn.execute(
        "UPDATE outbox SET status = ?, finished_at = ? WHERE job_id = ? AND status = ? AND droppable = 1 AND seq > ?",
        (Status.COALESCED, now, job_id, Status.PENDING, floor),
    )
    return cursor.rowcount


def get(conn: sqlite3.Connection, message_id: int) -> Message:
    return Message.from_row(conn.execute("SELECT * FROM outbox WHERE id = ?", (message_id,)).fetchone())


def find(conn: sqlite3.Connection, msg_id: str) -> Message | None:
    row = conn.execute("SELECT * FROM outbox WHERE msg_id = ?", (msg_id,)).fetchone()
    return Message.from_row(row) if row else None


def heads(conn: sqlite3.Connection, limit: int = 1000) -> list[Message]:
    """Each job's lowest pending message, soonest first: the only messages that may be sent now."""
    rows = conn.execute(
        "SELECT o.* FROM outbox o WHERE o.status = ? AND o.seq ="
        " (SELECT MIN(i.seq) FROM outbox i WHERE i.job_id = o.job_id AND i.status = ?)"
        " ORDER BY o.next_attempt_at LIMIT ?",
        (Status.PENDING, Status.PENDING, limit),
    ).fetchall()
    return [Message.from_row(row) for row in rows]


def record_attempt(
    conn: sqlite3.Connection,
    message_id: int,
    attempt: Attempt,
    verdict: DeliveryVerdict,
    *,
    next_at: float,
    expires_at: float,
    now: float,
) -> Status:
    """Log the attempt and move the message on: delivered, gone (with the job's rest), retry or expired."""
    conn.execute(
        "INSERT INTO attempts (message_id, started_at, duration_ms, status_code, error, response, trigger)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            message_id,
            attempt.started_at,
            attempt.duration_ms,
            attempt.status_code,
            attempt.error,
            attempt.response,
            attempt.trigger,
        ),
    )
    message = get(conn, message_id)
    common = (message.attempts + 1, attempt.status_code, attempt.error)
    if verdict is DeliveryVerdict.DELIVERED:
        status = Status.DELIVERED
    elif verdict is DeliveryVerdict.GONE:
        conn.execute(
            "UPDATE outbox SET status = ?, finished_at = ? WHERE job_id = ? AND status = ?",
            (Status.GONE, now, message.job_id, Status.PENDING),
        )
        status = Status.GONE
    elif next_at > expires_at:
        status = Status.EXPIRED
    else:
        conn.execute(
            "UPDATE outbox SET attempts = ?, last_status = ?, last_error = ?, next_attempt_at = ?, requeued = 0"
            " WHERE id = ?",
            (*common, next_at, message_id),
        )
        return Status.PENDING
    conn.execute(
        "UPDATE outbox SET attempts = ?, last_status = ?, last_error = ?, status = ?, finished_at = ?, requeued = 0"
        " WHERE id = ?",
        (*common, status, now, message_id),
    )
    return status


def reporting_jobs(conn: sqlite3.Connection) -> list[str]:
    """Jobs with a callback still waiting to be delivered: for the receiver they are not over yet."""
    rows = conn.execute(
        "SELECT DISTINCT job_id FROM outbox WHERE status = ? ORDER BY job_id", (Status.PENDING,)
    ).fetchall()
    return [row["job_id"] for row in rows]


def wake_receiver(conn: sqlite3.Connection, origin: str, now: float) -> int:
    """The receiver at `origin` (scheme://host:port) answered: its pending callbacks waiting out a backoff are due now.

    The failure count stays: if the receiver fails again the next delay grows as before.
    """
    prefix = origin.rstrip("/") + "/"
    cursor = conn.execute(
        "UPDATE outbox SET next_attempt_at = ? WHERE status = ? AND next_attempt_at > ? AND substr(url, 1, ?) = ?",
        (now, Status.PENDING, now, len(prefix), prefix),
    )
    return cursor.rowcount


def mark_expired(conn: sqlite3.Connection, message_id: int, now: float) -> None:
    conn.execute(
        "UPDATE outbox SET status = ?, finished_at = ? WHERE id = ? AND status = ?",
        (Status.EXPIRED, now, message_id, Status.PENDING),
    )


def requeue(
    conn: sqlite3.Connection,
    *,
    now: float,
    msg_id: str | None = None,
    job_id: str | None = None,
    since: float | None = None,
    delivered_too: bool = False,
) -> int:
    """Operator resend: expired or gone messages (and, on request, delivered ones) become pending again.

    Their webhook-id is kept, so a receiver that already has one treats the copy as the duplicate it is.
    """
    statuses = (*RESENDABLE, Status.DELIVERED) if delivered_too else RESENDABLE
    where = [f"status IN ({', '.join('?' for _ in statuses)})"]
    params: list[object] = [*statuses]
    if msg_id is not None:
        where.append("msg_id = ?")
        params.append(msg_id)
    if job_id is not None:
        where.append("job_id = ?")
        params.append(job_id)
    if since is not None:
        where.append("created_at >= ?")
        params.append(since)
    cursor = conn.execute(
        f"UPDATE outbox SET status = ?, next_attempt_at = ?, finished_at = NULL, created_at = ?, requeued = 1"
        f" WHERE {' AND '.join(where)}",
        (Status.PENDING, now, now, *params),
    )
    return cursor.rowcount


def list_messages(
    conn: sqlite3.Connection,
    *,
    job_id: str | None = None,
    status: str | None = None,
    limit: int = 100,
    failed: bool = False,
) -> list[Message]:
    """Newest `limit` messages, oldest first. `failed`: given up (expired, gone) or still failing (pending, tried)."""
    where: list[str] = []
    params: list[object] = []
    if failed:
        where.append("(status IN (?, ?) OR (status = ? AND attempts > 0))")
        params.extend([*RESENDABLE, Status.PENDING])
    if job_id is not None:
        where.append("job_id = ?")
        params.append(job_id)
    if status is not None:
        where.append("status = ?")
        params.append(status)
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    rows = conn.execute(f"SELECT * FROM outbox {clause} ORDER BY id DESC LIMIT ?", (*params, limit)).fetchall()
    return [Message.from_row(row) for row in reversed(rows)]


def attempts_of(conn: sqlite3.Connection, message_id: int) -> list[Attempt]:
    rows = conn.execute(
        "SELECT started_at, duration_ms, status_code, error, response, trigger FROM attempts"
        " WHERE message_id = ? ORDER BY id",
        (message_id,),
    ).fetchall()
    return [Attempt(**dict(row)) for row in rows]


def counts(conn: sqlite3.Connection) -> dict[str, int]:
    rows = conn.execute("SELECT status, COUNT(*) AS n FROM outbox GROUP BY status").fetchall()
    return {status.value: 0 for status in Status} | {row["status"]: row["n"] for row in rows}


def purge(conn: sqlite3.Connection, before: float) -> int:
    """Retention: forget finished messages (and their attempts) older than `before`."""
    placeholders = ", ".join("?" for _ in FINISHED)
    cursor = conn.execute(
        f"DELETE FROM outbox WHERE status IN ({placeholders}) AND finished_at < ?", (*FINISHED, before)
    )
    return cursor.rowcount
