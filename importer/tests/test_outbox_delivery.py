"""The delivery worker against a real HTTP receiver that verifies signatures with the standardwebhooks library."""

from __future__ import annotations

import asyncio
import io
import json
import time

import pytest

from ferry_importer.callbacks import outbox
from ferry_importer.callbacks.delivery import DeliveryWorker
from ferry_importer.callbacks.retry import RetryPolicy
from ferry_importer.callbacks.signing import Signer, new_message_id
from ferry_importer.database import Database
from importer.tests.service_support import SECRET, WebhookReceiver

pytestmark = pytest.mark.timeout(60)

FAST = RetryPolicy(base_s=0.05, factor=2.0, max_s=0.2, jitter=0.2, expire_s=60)


@pytest.fixture
def receiver():
    r = WebhookReceiver().start()
    yield r
    r.stop()


@pytest.fixture
async def db(tmp_path):
    database = Database(tmp_path / "importer.db")
    await database.open()
    yield database
    await database.close()


class Running:
    def __init__(self, db, policy=FAST, timeout_s=2.0):
        self.worker = DeliveryWorker(db, Signer(SECRET), policy, timeout_s=timeout_s, poll_s=0.2)
        self.task: asyncio.Task | None = None

    async def __aenter__(self):
        self.task = asyncio.create_task(self.worker.run())
        return self.worker

    async def __aexit__(self, *exc):
        self.task.cancel()
        try:
            await asyncio.wait_for(asyncio.gather(self.task, return_exceptions=True), 10)
        except TimeoutError:
            state = f"done={self.task.done()} cancelled={self.task.cancelled()}"
            raise AssertionError(f"the worker did not stop ({state}); tasks:\n{_tasks()}") from None


async def put(db, url, job="j1", seq=1, type="import.progress", droppable=True, phase="importing"):
    body = json.dumps(
        {"type": type, "timestamp": "2026-01-01T00:00:00Z", "data": {"job_id": job, "seq": seq, "phase": phase}}
    )
    return await db.call(
        lambda c: outbox.enqueue(
            c,
            msg_id=new_message_id(),
            job_id=job,
            seq=seq,
            type=type,
            body=body,
            url=url,
            droppable=droppable,
            now=time.time(),
        )
    )


async def eventually(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if await asyncio.wait_for(predicate(), timeout):
                return
        except TimeoutError:
            raise AssertionError(f"a check did not return in {timeout}s; tasks:\n{_tasks()}") from None
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached")


def _tasks() -> str:
    """Where every task of the loop is waiting, to tell a hung await from a slow receiver."""
    out = io.StringIO()
    for task in asyncio.all_tasks():
        task.print_stack(file=out)
    return out.getvalue()


def seqs(receiver, job="j1"):
    return [e["data"]["seq"] for e in receiver.events(job)]


async def pending(db):
    return (await db.call(outbox.counts))["pending"]


async def no_pending(db):
    return await pending(db) == 0


async def test_events_arrive_signed_once_and_in_seq_order(db, receiver):
    for seq in range(1, 6):
        await put(db, receiver.url(), seq=seq, type="import.queued" if seq == 1 else "import.progress")
    async with Running(db):
        await eventually(lambda: no_pending(db))
    assert seqs(receiver) == [1, 2, 3, 4, 5]
    assert all(d.verified for d in receiver.deliveries)
    assert len({d.webhook_id for d in receiver.deliveries}) == 5


async def test_receiver_down_then_up_delivers_everything_kept_in_order(db, receiver):
    receiver.stop()
    async with Running(db) as worker:
        await put(db, receiver.url(), seq=1, type="import.queued", droppable=False, phase="queued")
        worker.wake()
        await eventually(lambda: db.call(lambda c: outbox.list_messages(c)[0].attempts >= 2))
        for seq in range(2, 12):
            await put(db, receiver.url(), seq=seq, droppable=(seq != 2))
        await put(db, receiver.url(), seq=12, type="import.completed", droppable=False, phase="done")
        receiver.start()
        await eventually(lambda: no_pending(db))
    got = seqs(receiver)
    assert got == sorted(got) and got[0] == 1 and got[-1] == 12
    assert 2 in got  # the phase change survived coalescing
    assert 11 in got  # the newest progress survived
    assert len(got) < 12  # progress in between was coalesced while the receiver was down
    counts = await db.call(outbox.counts)
    assert counts["delivered"] == len(got) and counts["coalesced"] == 12 - len(got)
    first = (await db.call(lambda c: outbox.list_messages(c, job_id="j1")))[0]
    attempts = await db.call(outbox.attempts_of, first.id)
    assert len(attempts) >= 3 and attempts[-1].status_code == 204
    assert all(a.error and a.status_code is None for a in attempts[:-1])


async def test_retry_after_is_honoured(db, receiver):
    calls = []

    def answer(body):
        calls.append(time.monotonic())
        return (503, {"retry-after": "1"}) if len(calls) == 1 else (204, {})

    receiver.answer = answer
    await put(db, receiver.url(), type="import.queued", droppable=False)
    async with Running(db):
        await eventually(lambda: no_pending(db))
    assert len(calls) == 2
    assert calls[1] - calls[0] >= 0.95  # not the 0.05 s backoff


async def test_410_stops_one_job_and_the_others_carry_on(db, receiver):
    receiver.answer = lambda body: (410, {}) if body["data"]["job_id"] == "dead" else (204, {})
    await put(db, receiver.url(), job="dead", seq=1, type="import.queued", droppable=False)
    await put(db, receiver.url(), job="dead", seq=2)
    await put(db, receiver.url(), job="live", seq=1, type="import.queued", droppable=False)
    await put(db, receiver.url(), job="live", seq=2)
    async with Running(db):
        await eventually(lambda: no_pending(db))
        await put(db, receiver.url(), job="dead", seq=3, type="import.completed", droppable=False)
        await asyncio.sleep(0.5)
    assert seqs(receiver, "live") == [1, 2]
    dead = [d for d in receiver.deliveries if json.loads(d.body)["data"]["job_id"] == "dead"]
    assert len(dead) == 1  # one attempt, answered 410, nothing after it
    states = [m.status.value for m in await db.call(lambda c: outbox.list_messages(c, job_id="dead"))]
    assert states == ["gone", "gone", "gone"]


async def test_undeliverable_events_expire_and_are_kept_as_expired(db, receiver):
    receiver.stop()
    offset = [0.0]
    policy = RetryPolicy(base_s=0.05, max_s=0.1, jitter=0.0, expire_s=60)
    await put(db, receiver.url(), type="import.queued", droppable=False)
    running = Running(db, policy=policy)
    running.worker._clock = lambda: time.time() + offset[0]
    async with running:
        await eventually(lambda: db.call(lambda c: outbox.list_messages(c)[0].attempts >= 2))
        offset[0] = 61.0  # a day passes on the worker's clock
        await eventually(lambda: no_pending(db), timeout=5)
    [message] = await db.call(lambda c: outbox.list_messages(c))
    assert message.status is outbox.Status.EXPIRED
    assert message.attempts >= 2 and message.finished_at is not None


async def test_a_resent_callback_gets_a_real_attempt_even_when_the_worker_reaches_it_after_the_expiry(db, receiver):
    policy = RetryPolicy(base_s=0.05, max_s=0.1, jitter=0.0, expire_s=1)
    await put(db, receiver.url(), type="import.completed", droppable=False, phase="done")
    await db.call(lambda c: c.execute("UPDATE outbox SET status = 'expired', finished_at = ?", (time.time(),)))
    await db.call(lambda c: outbox.requeue(c, now=time.time(), job_id="j1"))
    running = Running(db, policy=policy)
    running.worker._clock = lambda: time.time() + 5.0  # a busy host: the worker gets to it seconds late
    async with running:
        await eventually(lambda: no_pending(db), timeout=5)
    [message] = await db.call(lambda c: outbox.list_messages(c))
    assert message.status is outbox.Status.DELIVERED and seqs(receiver) == [1]


async def test_a_slow_receiver_times_out_and_is_retried(db, receiver):
    receiver.delay_s = 1.0
    await put(db, receiver.url(), type="import.queued", droppable=False)
    async with Running(db, timeout_s=0.3):
        await eventually(lambda: db.call(lambda c: outbox.list_messages(c)[0].attempts >= 1))
        receiver.delay_s = 0.0
        await eventually(lambda: no_pending(db))
    [message] = await db.call(lambda c: outbox.list_messages(c))
    attempts = await db.call(outbox.attempts_of, message.id)
    assert attempts[0].error.startswith("timeout") and attempts[-1].status_code == 204
    # The receiver may have seen the timed-out attempt too; both carry the same id, so dedupe leaves one.
    assert len(receiver.events("j1")) == 1


async def test_pending_events_survive_a_worker_restart(tmp_path, receiver):
    receiver.stop()
    first = Database(tmp_path / "importer.db")
    await first.open()
    await put(first, receiver.url(), type="import.queued", droppable=False)
    async with Running(first):
        await asyncio.sleep(0.3)
    await first.close()
    receiver.start()
    second = Database(tmp_path / "importer.db")
    await second.open()
    async with Running(second):
        await eventually(lambda: no_pending(second))
    await second.close()
    assert seqs(receiver) == [1]


class _Facts:
    async def facts(self) -> dict:
        return {"disk_free_bytes": None, "spool_free_bytes": None, "engine_version": None}


@pytest.mark.fault
async def test_a_heartbeat_accepted_by_the_receiver_wakes_callbacks_waiting_out_their_backoff(db, receiver):
    from ferry_importer.callbacks.heartbeat import HeartbeatSender

    receiver.stop()
    slow = RetryPolicy(base_s=600.0, factor=2.0, max_s=600.0, jitter=0.0, expire_s=3600)
    async with Running(db, policy=slow) as worker:
        await put(db, receiver.url(), seq=1, type="import.completed", droppable=False, phase="done")
        await put(db, receiver.url("/other/receiver"), job="j2", seq=1, type="import.queued", droppable=False)
        worker.wake()
        await eventually(lambda: db.call(lambda c: all(m.attempts == 1 for m in outbox.list_messages(c))))
        [waiting, _] = await db.call(lambda c: outbox.list_messages(c))
        assert waiting.next_attempt_at - time.time() > 500  # the backoff: ten minutes
        receiver.start()
        heartbeat = HeartbeatSender(
            host="lab",
            interval_s=10,
            url=receiver.url(),
            signer=Signer(SECRET),
            db=db,
            status=_Facts(),
            jobs_now=lambda: ([], []),
            timeout_s=2,
            on_accepted=worker.receiver_answered,
        )
        assert await heartbeat.beat() == 1
        await eventually(lambda: no_pending(db))  # both: same receiver (scheme, host and port), another path
    [beat] = receiver.events(type_prefix="importer.heartbeat")
    assert beat["data"]["running"] == ["j1", "j2"]  # their ends were still on the way: not over for the receiver
    assert sorted((e["data"]["job_id"], e["type"]) for e in receiver.events()) == [
        ("j1", "import.completed"),
        ("j2", "import.queued"),
    ]


@pytest.mark.fault
async def test_a_receiver_that_answers_again_wakes_only_its_own_queued_callbacks(db, receiver):
    other = WebhookReceiver()  # never started: refuses connections
    receiver.stop()
    slow = RetryPolicy(base_s=600.0, factor=2.0, max_s=600.0, jitter=0.0, expire_s=3600)
    async with Running(db, policy=slow) as worker:
        await put(db, receiver.url(), seq=1, type="import.queued", droppable=False)
        await put(db, other.url(), job="elsewhere", seq=1, type="import.queued", droppable=False)
        worker.wake()
        await eventually(lambda: db.call(lambda c: all(m.attempts == 1 for m in outbox.list_messages(c))))
        receiver.start()
        assert await worker.receiver_answered(receiver.url("/api/callbacks/lab")) == 1
        await eventually(
            lambda: db.call(lambda c: outbox.list_messages(c, job_id="j1")[0].status is outbox.Status.DELIVERED)
        )
        [elsewhere] = await db.call(lambda c: outbox.list_messages(c, job_id="elsewhere"))
    assert elsewhere.status is outbox.Status.PENDING and elsewhere.next_attempt_at - time.time() > 500
