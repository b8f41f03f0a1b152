"""Group commit of verified callbacks: one writer task stores many deliveries in one transaction.

A request waits until the transaction that holds its delivery has committed, so a 2xx still means
"stored". Under load, every delivery that arrives while one transaction commits joins the next one:
the cost of a transaction (round trips to the database, the commit) is shared instead of paid per
callback, and throughput grows with load instead of collapsing on a lock.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import cast

from sqlalchemy import Connection, Table, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError

from . import answers
from . import store as st
from .errors import StoreUnavailable
from .jobs import UNNAMED, Verdict, apply_event
from .metrics import INGEST_BATCH
from .models import Delivery, DeliveryRepeat, Event, Host, Job
from .realtime import LiveEvent
from .views import iso

log = logging.getLogger("ferry.ingest")
MAX_BATCH = 256


@dataclass(frozen=True)
class Arrival:
    """One verified delivery of an import event, parsed, waiting for the writer."""

    host: str
    webhook_id: str
    headers: dict
    body: str  # the raw body as received
    type: str
    timestamp: datetime
    data: dict  # the importer's data exactly as signed
    received_at: datetime


@dataclass
class Outcome:
    verdict: str
    job_id: str | None = None
    seq: int | None = None
    event: LiveEvent | None = field(
        default=None, repr=False
    )  # set when the event is (or, for a retry, was) logged: announce it
    finished: tuple[str, str, float] | None = (
        None  # (state, host, seconds since created) when this event ended a dispatched job
    )
    notices: list[dict] = field(default_factory=list, repr=False)  # heartbeat: job views whose doubt it ended
    lost: list[str] = field(default_factory=list)  # heartbeat: jobs the host no longer has (it proved it lost them)


JOBS, DELIVERIES, REPEATS, EVENTS, HOSTS = (
    cast(Table, m.__table__) for m in (Job, Delivery, DeliveryRepeat, Event, Host)
)
# Built once: a batch runs a handful of these, and building statements costs more than running them.
_STORED = select(
    DELIVERIES.c.id, DELIVERIES.c.host, DELIVERIES.c.webhook_id, DELIVERIES.c.job_id, DELIVERIES.c.seq
).where(DELIVERIES.c.host == bindparam("host"), DELIVERIES.c.webhook_id.in_(bindparam("ids", expanding=True)))
_JOBS = (
    select(JOBS).where(JOBS.c.id.in_(bindparam("ids", expanding=True))).order_by(JOBS.c.id).with_for_update()
)  # Postgres row locks
_LOGGED_AS = select(EVENTS.c.job_id, EVENTS.c.seq, EVENTS.c.webhook_id, EVENTS.c.received_at).where(
    EVENTS.c.job_id.in_(bindparam("jobs", expanding=True)), EVENTS.c.seq.in_(bindparam("seqs", expanding=True))
)
_LOGGED = select(EVENTS.c.job_id, EVENTS.c.seq).where(
    EVENTS.c.job_id.in_(bindparam("jobs", expanding=True)), EVENTS.c.seq.in_(bindparam("seqs", expanding=True))
)
_UPDATE_JOB = update(JOBS).where(JOBS.c.id == bindparam("b_id"))
_COUNT_REPEATS = (
    update(DELIVERIES)
    .where(DELIVERIES.c.id == bindparam("b_id"))
    .values(duplicates=DELIVERIES.c.duplicates + bindparam("b_n"), last_received_at=bindparam("b_last"))
)
_TOUCH_HOST = update(HOSTS).where(HOSTS.c.name == bindparam("b_name")).values(last_seen=bindparam("b_seen"))
_INSERT = {table.name: insert(table) for table in (JOBS, DELIVERIES, REPEATS, EVENTS)}


def new_job_values(host: str, data: dict, now: datetime) -> dict:
    """A job the backend never dispatched (a replayed capture): recorded from what the importer says."""
    image = (data.get("image") or {}).get("ref") or UNNAMED
    return dict(
        id=data["job_id"],
        host=host,
        image=image,
        upload_id=None,
        source_url=None,
        format="auto",
        changes=[],
        force=False,
        state="queued",
        phase="queued",
        seq=0,
        percent=0.0,
        bytes_done=0,
        bytes_total=None,
        rate_bps=None,
        eta_s=None,
        phase_elapsed_s=None,
        queue_position=None,
        result=None,
        error=None,
        created_at=now,
        updated_at=now,
        finished_at=None,
        last_contact_at=now,
        silent_since=None,
        presumed_at=None,
    )


@dataclass
class _JobState:
    host: str
    image: str
    snap: st.Snapshot
    last_contact_at: datetime
    created_at: datetime | None = None  # None for a job first seen in this batch (no dispatch to time from)
    new: bool = False
    touched: bool = False


def _live(job_id: str, arrival: Arrival) -> LiveEvent:
    return LiveEvent(
        job_id,
        arrival.data["seq"],
        arrival.type,
        arrival.data,
        iso(arrival.received_at),
        received_ts=arrival.received_at.timestamp(),
    )


def _event_row(job_id: str, arrival: Arrival) -> dict:
    return dict(
        job_id=job_id,
        seq=arrival.data["seq"],
        type=arrival.type,
        timestamp=arrival.timestamp,
        data=arrival.data,
        webhook_id=arrival.webhook_id,
        received_at=arrival.received_at,
    )


def write_batch(conn: Connection, arrivals: list[Arrival], touch: dict[str, datetime]) -> list[Outcome]:
    """Store the deliveries, log their events and move the snapshots, in arrival order, in one transaction.

    Synchronous (Store.write_sync runs it on a connection) and made of bulk statements: about eight
    round trips to the database per batch, whatever its size. `touch` maps hosts to a last_seen to record.
    """
    stored: dict[tuple[str, str], dict] = {}  # key -> the first arrival's row (id None while new in this batch)
    for host in {a.host for a in arrivals}:  # (host, webhook_id) is the unique index: one lookup per host
        ids = list({a.webhook_id for a in arrivals if a.host == host})
        for row in conn.execute(_STORED, {"host": host, "ids": ids}):
            stored[(row.host, row.webhook_id)] = {"id": row.id, "job_id": row.job_id, "seq": row.seq, "duplicates": 0}
    job_ids = sorted({a.data["job_id"] for a in arrivals})
    jobs = {
        row.id: _JobState(row.host, row.image, st.snapshot_of(cast(Job, row)), row.last_contact_at, row.created_at)
        for row in conn.execute(_JOBS, {"ids": job_ids})
    }
    outcomes: list[Outcome] = []
    deliveries, repeats, events, new_jobs = [], [], [], {}
    unlogged: list[tuple[Arrival, Outcome]] = []  # not applied: logged only if the log lacks that seq
    repeated: list[tuple[Arrival, Outcome]] = []  # a webhook-id seen before: announced again if it is in the log
    for arrival in arrivals:
        key, data = (arrival.host, arrival.webhook_id), arrival.data
        first = stored.get(key)
        if first is not None:  # a retry or a replay of a stored webhook-id: keep it raw, change nothing else
            first["duplicates"] += 1
            first["last_received_at"] = arrival.received_at
            repeats.append(
                dict(
                    host=arrival.host,
                    webhook_id=arrival.webhook_id,
                    job_id=first["job_id"],
                    headers=arrival.headers,
                    body=arrival.body,
                    received_at=arrival.received_at,
                    **answers.stored(answers.accepted("duplicate", first["job_id"], first["seq"])),
                )
            )
            outcomes.append(Outcome("duplicate", first["job_id"], first["seq"]))
            repeated.append((arrival, outcomes[-1]))
            continue
        delivery = dict(
            host=arrival.host,
            webhook_id=arrival.webhook_id,
            job_id=data["job_id"],
            seq=data["seq"],
            event_type=arrival.type,
            headers=arrival.headers,
            body=arrival.body,
            verdict="pending",
            received_at=arrival.received_at,
            duplicates=0,
            last_received_at=None,
            answer_status=None,
            answer=None,
        )
        deliveries.append(delivery)
        stored[key] = {"id": None, "job_id": data["job_id"], "seq": data["seq"], "duplicates": 0, "row": delivery}
        job = jobs.get(data["job_id"])
        if job is None:
            new_jobs[data["job_id"]] = new_job_values(arrival.host, data, arrival.received_at)
            job = jobs[data["job_id"]] = _JobState(
                arrival.host, new_jobs[data["job_id"]]["image"], st.Snapshot(), arrival.received_at, new=True
            )
        elif job.host != arrival.host:
            delivery["verdict"] = "wrong_host"
            delivery.update(answers.stored(answers.accepted("wrong_host", data["job_id"], data["seq"])))
            outcomes.append(Outcome("wrong_host", data["job_id"], data["seq"]))
            continue
        job.touched, job.last_contact_at = True, arrival.received_at
        verdict, job.snap = apply_event(job.snap, arrival.type, data, arrival.received_at)
        delivery["verdict"] = verdict.value
        delivery.update(answers.stored(answers.accepted(verdict.value, data["job_id"], data["seq"])))
        outcome = Outcome(verdict.value, data["job_id"], data["seq"])
        outcomes.append(outcome)
        if verdict is Verdict.APPLIED:
            # Every logged seq of an unfinished job is <= its snapshot seq: this one is new to the log.
            if job.image == UNNAMED and data.get("image"):
                job.image = data["image"].get("ref") or job.image
            events.append(_event_row(data["job_id"], arrival))
            outcome.event = _live(data["job_id"], arrival)
            if job.snap.terminal and job.created_at is not None:
                outcome.finished = (job.snap.state, job.host, (arrival.received_at - job.created_at).total_seconds())
        else:
            log.info(
                "job %s: %s seq %s is %s (snapshot at seq %s)",
                data["job_id"],
                arrival.type,
                data["seq"],
                verdict.value,
                job.snap.seq,
            )
            if verdict is Verdict.STALE or data["seq"] < job.snap.seq:
                # An event after a job's end stays a delivery only: the log (and the wire) never
                # carries anything after a terminal event.
                unlogged.append((arrival, outcome))
    if unlogged:
        events += _missing_from_log(conn, unlogged, {(e["job_id"], e["seq"]) for e in events})
    if repeated:
        _announce_again(conn, repeated)
    _flush(conn, jobs, new_jobs, deliveries, stored, repeats, events, touch)
    return outcomes


def _announce_again(conn: Connection, repeated: list[tuple[Arrival, Outcome]]) -> None:
    """A retry of a logged event is announced again: the first announcement may have died with a replica
    (or a Redis publish) after the commit. Sockets drop seqs they already have, so this costs nothing."""
    keyed = [
        (arrival, outcome, outcome.job_id, outcome.seq)
        for arrival, outcome in repeated
        if outcome.job_id is not None and outcome.seq is not None
    ]
    logged = {
        (row.job_id, row.seq): row
        for row in conn.execute(
            _LOGGED_AS,
            {"jobs": sorted({job for _, _, job, _ in keyed}), "seqs": sorted({seq for _, _, _, seq in keyed})},
        )
    }
    for arrival, outcome, job_id, seq in keyed:
        row = logged.get((job_id, seq))
        if row is not None and row.webhook_id == arrival.webhook_id:
            outcome.event = LiveEvent(job_id, seq, arrival.type, arrival.data, iso(row.received_at))


def _missing_from_log(conn: Connection, unlogged: list[tuple[Arrival, Outcome]], batch: set) -> list[dict]:
    """Stale and after-terminal events enter the log when their seq is not there yet (the log keeps the first)."""
    params = {"jobs": list({o.job_id for _, o in unlogged}), "seqs": list({o.seq for _, o in unlogged})}
    logged = {(row.job_id, row.seq) for row in conn.execute(_LOGGED, params)} | batch
    rows = []
    for arrival, outcome in unlogged:
        job_id = outcome.job_id
        if job_id is not None and (job_id, outcome.seq) not in logged:
            logged.add((job_id, outcome.seq))
            rows.append(_event_row(job_id, arrival))
            outcome.event = _live(job_id, arrival)
    return rows


def _flush(conn: Connection, jobs, new_jobs, deliveries, stored, repeats, events, touch) -> None:
    """One bulk statement per table."""
    for job_id, values in new_jobs.items():
        job = jobs[job_id]
        values.update(st.snapshot_values(job.snap), image=job.image, last_contact_at=job.last_contact_at)
    if new_jobs:
        conn.execute(_INSERT["jobs"], list(new_jobs.values()))
    changed = [
        dict(
            st.snapshot_values(j.snap), b_id=job_id, image=j.image, last_contact_at=j.last_contact_at, silent_since=None
        )
        for job_id, j in jobs.items()
        if j.touched and not j.new
    ]
    if changed:
        conn.execute(_UPDATE_JOB, changed)
    for first in stored.values():  # repeats of a first arrival in this batch are counted on its row
        if first["id"] is None and first["duplicates"]:
            first["row"].update(duplicates=first["duplicates"], last_received_at=first["last_received_at"])
    if deliveries:
        conn.execute(_INSERT["deliveries"], deliveries)
    counted = [
        {"b_id": f["id"], "b_n": f["duplicates"], "b_last": f["last_received_at"]}
        for f in stored.values()
        if f["id"] is not None and f["duplicates"]
    ]
    if counted:
        conn.execute(_COUNT_REPEATS, counted)
    if repeats:
        conn.execute(_INSERT["delivery_repeats"], repeats)
    if events:
        conn.execute(_INSERT["events"], events)
    if touch:
        conn.execute(_TOUCH_HOST, [{"b_name": host, "b_seen": seen} for host, seen in touch.items()])


def is_outage(result: object) -> bool:
    """The database is gone or busy (not one row it refuses): every other write would fail the same way."""
    cause = result.__cause__ if isinstance(result, StoreUnavailable) else result
    return isinstance(cause, (OperationalError, InterfaceError))


def _cause(exc: BaseException) -> str:
    return (exc.__cause__ or exc).__class__.__name__


class IngestWriter:
    """The single writer: takes arrivals from a queue and commits them in batches."""

    LAST_SEEN_EVERY_S = 1.0  # a busy host's last_seen is written at most this often

    def __init__(self, store: st.Store):
        self.store = store
        self._queue: asyncio.Queue[tuple[Arrival, asyncio.Future]] = asyncio.Queue()
        self._task: asyncio.Task | None = None
        self._last_seen_written: dict[str, float] = {}

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="callback-writer")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        while not self._queue.empty():
            _, future = self._queue.get_nowait()
            future.cancel()

    async def submit(self, arrival: Arrival) -> Outcome:
        """Queue one arrival; return its outcome once the transaction holding it has committed."""
        future = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((arrival, future))
        return await asyncio.shield(future)  # a client that hangs up does not unqueue a delivery

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            for _ in range(3):  # let requests that are ready to submit join this batch (no timed wait)
                size = self._queue.qsize()
                await asyncio.sleep(0)
                if self._queue.qsize() == size:
                    break
            while len(batch) < MAX_BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            INGEST_BATCH.observe(len(batch))
            try:
                await self._commit(batch)
            except Exception:  # never lose the writer: every future is answered in _commit
                log.exception("callback writer failed a batch of %d", len(batch))

    def _touch(self, arrivals: list[Arrival]) -> dict[str, datetime]:
        now = time.monotonic()
        latest: dict[str, datetime] = {}
        for arrival in arrivals:
            latest[arrival.host] = max(latest.get(arrival.host, arrival.received_at), arrival.received_at)
        due = {h: t for h, t in latest.items() if now - self._last_seen_written.get(h, 0.0) >= self.LAST_SEEN_EVERY_S}
        for host in due:
            self._last_seen_written[host] = now
        return due

    async def _write(self, arrivals: list[Arrival]) -> list[Outcome]:
        return await self.store.write_sync(write_batch, arrivals, self._touch(arrivals))

    async def _commit(self, batch: list[tuple[Arrival, asyncio.Future]]) -> None:
        arrivals = [arrival for arrival, _ in batch]
        try:
            results: list = await self._write(arrivals)
        except Exception as exc:
            # A concurrent replica stored one of them first, or one delivery the database refuses: take them one
            # by one, so only that one fails. An outage fails the rest at once instead of once per delivery.
            if len(arrivals) == 1 and not isinstance(exc, IntegrityError):
                results = [exc]
            else:
                log.warning("a batch of %d deliveries failed (%s): writing them one by one", len(arrivals), _cause(exc))
                results = []
                for arrival in arrivals:
                    result = await self._write_alone(arrival)
                    results.append(result)
                    if is_outage(result):
                        results += [result] * (len(arrivals) - len(results))
                        break
        for (_, future), result in zip(batch, results):
            if future.done():
                continue
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)

    async def _write_alone(self, arrival: Arrival) -> Outcome | Exception:
        for _ in range(2):  # the second try sees the row that conflicted, and answers duplicate
            try:
                return (await self._write([arrival]))[0]
            except IntegrityError:
                continue
            except Exception as exc:
                return exc
        return Outcome("duplicate", arrival.data["job_id"], arrival.data["seq"])
