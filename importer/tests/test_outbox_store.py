"""The outbox table on a real SQLite file: order, coalescing, 410, expiry, resend, retention, durability."""

from __future__ import annotations

import pytest

from ferry_importer import database
from ferry_importer.callbacks import outbox
from ferry_importer.callbacks.retry import DeliveryVerdict
from ferry_importer.callbacks.signing import new_message_id

pytestmark = pytest.mark.timeout(60)

URL = "http://127.0.0.1:9/cb"


@pytest.fixture
def conn(tmp_path):
    connection = database.connect(tmp_path / "importer.db")
    yield connection
    connection.close()


def put(conn, job="j1", seq=1, type="import.progress", droppable=True, now=0.0):
    return database.transaction(
        conn,
        lambda c: outbox.enqueue(
            c,
            msg_id=new_message_id(),
            job_id=job,
            seq=seq,
            type=type,
            body=f'{{"seq":{seq}}}',
            url=URL,
            droppable=droppable,
            now=now,
        ),
    )


def fail(conn, message, now=1.0, status=None, next_at=2.0, expires_at=1e9):
    attempt = outbox.Attempt(
        started_at=now, duration_ms=1.0, status_code=status, error="ConnectError", response=None, trigger="scheduled"
    )
    verdict = DeliveryVerdict.GONE if status == 410 else DeliveryVerdict.RETRY
    return database.transaction(
        conn,
        lambda c: outbox.record_attempt(
            c, message.id, attempt, verdict, next_at=next_at, expires_at=expires_at, now=now
        ),
    )


def deliver(conn, message, now=1.0):
    attempt = outbox.Attempt(
        started_at=now, duration_ms=1.0, status_code=204, error=None, response="", trigger="scheduled"
    )
    return database.transaction(
        conn,
        lambda c: outbox.record_attempt(
            c, message.id, attempt, DeliveryVerdict.DELIVERED, next_at=now, expires_at=1e9, now=now
        ),
    )


def statuses(conn, job="j1"):
    return [(m.seq, m.status.value) for m in outbox.list_messages(conn, job_id=job)]


def test_only_each_jobs_lowest_pending_seq_is_a_head(conn):
    a1 = put(conn, "a", 1, "import.queued", False)
    put(conn, "a", 2)
    put(conn, "b", 1, "import.queued", False)
    assert sorted((h.job_id, h.seq) for h in outbox.heads(conn)) == [("a", 1), ("b", 1)]
    deliver(conn, a1)
    assert sorted((h.job_id, h.seq) for h in outbox.heads(conn)) == [("a", 2), ("b", 1)]


def test_no_coalescing_while_the_head_has_not_failed(conn):
    put(conn, seq=1, type="import.queued", droppable=False)
    for seq in range(2, 6):
        put(conn, seq=seq)
    assert [s for _, s in statuses(conn)] == ["pending"] * 5


def test_progress_behind_a_failing_head_is_coalesced_to_the_newest(conn):
    head = put(conn, seq=1, type="import.queued", droppable=False)
    fail(conn, head)
    for seq in range(2, 7):
        put(conn, seq=seq)
    assert statuses(conn) == [
        (1, "pending"),
        (2, "coalesced"),
        (3, "coalesced"),
        (4, "coalesced"),
        (5, "coalesced"),
        (6, "pending"),
    ]


def test_phase_changes_and_terminal_events_are_never_coalesced(conn):
    head = put(conn, seq=1, type="import.queued", droppable=False)
    fail(conn, head)
    put(conn, seq=2, droppable=False)  # first event of the importing phase
    put(conn, seq=3)
    put(conn, seq=4)
    put(conn, seq=5, droppable=False)  # finalizing starts
    put(conn, seq=6)
    put(conn, seq=7)
    put(conn, seq=8, type="import.completed", droppable=False)
    assert statuses(conn) == [
        (1, "pending"),
        (2, "pending"),
        (3, "coalesced"),
        (4, "pending"),
        (5, "pending"),
        (6, "coalesced"),
        (7, "pending"),
        (8, "pending"),
    ]


def test_a_failing_droppable_head_is_kept_because_it_may_be_in_flight(conn):
    put(conn, seq=1, type="import.queued", droppable=False)
    deliver(conn, outbox.heads(conn)[0])
    head = put(conn, seq=2)
    fail(conn, head)
    put(conn, seq=3)
    put(conn, seq=4)
    assert statuses(conn) == [(1, "delivered"), (2, "pending"), (3, "coalesced"), (4, "pending")]


def test_coalescing_is_per_job(conn):
    fail(conn, put(conn, "a", 1, "import.queued", False))
    put(conn, "b", 1, "import.queued", False)
    put(conn, "b", 2)
    put(conn, "b", 3)
    put(conn, "a", 2)
    put(conn, "a", 3)
    assert statuses(conn, "b") == [(1, "pending"), (2, "pending"), (3, "pending")]
    assert statuses(conn, "a") == [(1, "pending"), (2, "coalesced"), (3, "pending")]


def test_410_stops_the_job_now_and_later(conn):
    head = put(conn, seq=1, type="import.queued", droppable=False)
    put(conn, seq=2)
    put(conn, "other", 1, "import.queued", False)
    assert fail(conn, head, status=410) is outbox.Status.GONE
    late = put(conn, seq=3, type="import.completed", droppable=False)
    assert late.status is outbox.Status.GONE
    assert statuses(conn) == [(1, "gone"), (2, "gone"), (3, "gone")]
    assert [(h.job_id, h.seq) for h in outbox.heads(conn)] == [("other", 1)]


def test_a_retry_past_the_expiry_window_expires_the_message(conn):
    head = put(conn, seq=1, type="import.queued", droppable=False)
    assert fail(conn, head, next_at=50.0, expires_at=100.0) is outbox.Status.PENDING
    assert fail(conn, outbox.get(conn, head.id), next_at=150.0, expires_at=100.0) is outbox.Status.EXPIRED
    message = outbox.get(conn, head.id)
    assert message.attempts == 2 and message.finished_at is not None
    assert len(outbox.attempts_of(conn, head.id)) == 2


def test_every_attempt_is_recorded_with_its_outcome(conn):
    head = put(conn, seq=1, type="import.queued", droppable=False)
    fail(conn, head, now=1.0, status=503)
    deliver(conn, outbox.get(conn, head.id), now=3.0)
    attempts = outbox.attempts_of(conn, head.id)
    assert [(a.started_at, a.status_code) for a in attempts] == [(1.0, 503), (3.0, 204)]
    message = outbox.get(conn, head.id)
    assert message.status is outbox.Status.DELIVERED and message.attempts == 2 and message.last_status == 204


def test_operator_resend_makes_expired_and_gone_pending_again_with_the_same_id(conn):
    head = put(conn, seq=1, type="import.queued", droppable=False)
    fail(conn, head, status=410)
    n = database.transaction(conn, lambda c: outbox.requeue(c, now=10.0, job_id="j1"))
    assert n == 1
    message = outbox.get(conn, head.id)
    assert message.status is outbox.Status.PENDING and message.requeued and message.msg_id == head.msg_id
    assert outbox.heads(conn)[0].id == head.id
    assert put(conn, seq=2, type="import.completed", droppable=False).status is outbox.Status.PENDING


def test_retention_purges_only_finished_messages(conn):
    old = put(conn, seq=1, type="import.queued", droppable=False)
    deliver(conn, old, now=5.0)
    put(conn, seq=2, now=6.0)
    assert database.transaction(conn, lambda c: outbox.purge(c, before=100.0)) == 1
    assert statuses(conn) == [(2, "pending")]


def test_committed_events_survive_reopening_the_database(tmp_path):
    path = tmp_path / "importer.db"
    conn = database.connect(path)
    put(conn, seq=1, type="import.queued", droppable=False)
    conn.close()
    again = database.connect(path)
    assert statuses(again) == [(1, "pending")]
    assert again.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    again.close()
