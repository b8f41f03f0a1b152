"""One batch of verified callbacks in one transaction: what each delivery does, written in bulk statements.

Synchronous Core code (Store.write_sync runs it on a connection): a few bulk reads, the pure
decisions (jobs.apply_event, the webhook-id rule of dedupe.py) in arrival order, then one bulk
statement per table — about eight round trips to the database per batch, whatever its size.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import cast

from sqlalchemy import Connection, Table, bindparam, insert, select, update

from . import answers
from . import store as st
from .dedupe import Deliveries, DeliveryRow
from .job_rules import UNNAMED, Snapshot, Verdict, apply_event
from .models import Event, Host, Job
from .realtime import LiveEvent
from .views import iso

log = logging.getLogger("ferry.ingest")


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

    @property
    def job_id(self) -> str:
        return self.data["job_id"]

    @property
    def seq(self) -> int:
        return self.data["seq"]


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


@dataclass(frozen=True)
class EventRow:
    """An events row: one seq of a job's log."""

    job_id: str
    seq: int
    type: str
    timestamp: datetime
    data: dict
    webhook_id: str | None
    received_at: datetime

    @classmethod
    def of(cls, arrival: Arrival) -> EventRow:
        return cls(
            arrival.job_id,
            arrival.seq,
            arrival.type,
            arrival.timestamp,
            arrival.data,
            arrival.webhook_id,
            arrival.received_at,
        )


@dataclass
class JobState:
    """A job as this batch moves it: read from its row, or first seen in this batch (`new`)."""

    host: str
    image: str
    snap: Snapshot
    last_contact_at: datetime
    created_at: datetime | None = None  # None for a job first seen in this batch (no dispatch to time from)
    first_seen: datetime | None = None  # a new job: when its first delivery arrived
    touched: bool = False

    @property
    def new(self) -> bool:
        return self.first_seen is not None

    def row(self, job_id: str) -> dict:
        """The jobs columns this batch writes (all of them for a job the backend never dispatched)."""
        values = dict(st.snapshot_values(self.snap), image=self.image, last_contact_at=self.last_contact_at)
        if not self.new:
            return dict(values, b_id=job_id, silent_since=None)
        # A job the backend never dispatched (a replayed capture): recorded from what the importer says.
        return dict(
            values,
            id=job_id,
            host=self.host,
            upload_id=None,
            source_url=None,
            format="auto",
            changes=[],
            force=False,
            created_at=self.first_seen,
            silent_since=None,
        )


JOBS, EVENTS, HOSTS = (cast(Table, m.__table__) for m in (Job, Event, Host))
# Built once: a batch runs a handful of these, and building statements costs more than running them.
_JOBS = (
    select(JOBS).where(JOBS.c.id.in_(bindparam("ids", expanding=True))).order_by(JOBS.c.id).with_for_update()
)  # Postgres row locks
_LOGGED_AS = select(EVENTS.c.job_id, EVENTS.c.seq, EVENTS.c.webhook_id, EVENTS.c.received_at).where(
    EVENTS.c.job_id.in_(bindparam("jobs", expanding=True)), EVENTS.c.seq.in_(bindparam("seqs", expanding=True))
)
_LOGGED = select(EVENTS.c.job_id, EVENTS.c.seq).where(
    EVENTS.c.job_id.in_(bindparam("jobs", expanding=True)), EVENTS.c.seq.in_(bindparam("seqs", expanding=True))
)
_INSERT_JOBS = insert(JOBS)
_UPDATE_JOB = update(JOBS).where(JOBS.c.id == bindparam("b_id"))
_INSERT_EVENTS = insert(EVENTS)
_TOUCH_HOST = update(HOSTS).where(HOSTS.c.name == bindparam("b_name")).values(last_seen=bindparam("b_seen"))


def _live(arrival: Arrival) -> LiveEvent:
    return LiveEvent(
        arrival.job_id,
        arrival.seq,
        arrival.type,
        arrival.data,
        iso(arrival.received_at),
        received_ts=arrival.received_at.timestamp(),
    )


def _new_job(arrival: Arrival) -> JobState:
    image = (arrival.data.get("image") or {}).get("ref") or UNNAMED
    return JobState(arrival.host, image, Snapshot(), arrival.received_at, first_seen=arrival.received_at)


def write_batch(conn: Connection, arrivals: list[Arrival], touch: dict[str, datetime]) -> list[Outcome]:
    """Store the deliveries, log their events and move the snapshots, in arrival order, in one transaction.

    `touch` maps hosts to a last_seen to record.
    """
    deliveries = Deliveries()
    for host in {a.host for a in arrivals}:  # one lookup per host
        deliveries.load(conn, host, (a.webhook_id for a in arrivals if a.host == host))
    jobs = {
        row.id: JobState(row.host, row.image, st.snapshot_of(cast(Job, row)), row.last_contact_at, row.created_at)
        for row in conn.execute(_JOBS, {"ids": sorted({a.job_id for a in arrivals})})
    }
    outcomes: list[Outcome] = []
    events: list[EventRow] = []
    unlogged: list[tuple[Arrival, Outcome]] = []  # not applied: logged only if the log lacks that seq
    repeated: list[tuple[Arrival, Outcome]] = []  # a webhook-id seen before: announced again if it is in the log
    for arrival in arrivals:
        first = deliveries.first(arrival.host, arrival.webhook_id)
        if first is not None:  # a retry or a replay of a stored webhook-id: keep it raw, change nothing else
            deliveries.repeat(
                first, arrival.host, arrival.webhook_id, arrival.headers, arrival.body, arrival.received_at
            )
            outcomes.append(Outcome("duplicate", first.job_id, first.seq))
            repeated.append((arrival, outcomes[-1]))
            continue
        delivery = DeliveryRow(
            arrival.host,
            arrival.webhook_id,
            arrival.job_id,
            arrival.seq,
            arrival.type,
            arrival.headers,
            arrival.body,
            "pending",
            arrival.received_at,
        )
        deliveries.add(delivery)
        outcome = _apply(jobs, arrival, delivery, events, unlogged)
        outcomes.append(outcome)
    if unlogged:
        events += _missing_from_log(conn, unlogged, {(e.job_id, e.seq) for e in events})
    if repeated:
        _announce_again(conn, repeated)
    _flush(conn, jobs, deliveries, events, touch)
    return outcomes


def _apply(
    jobs: dict[str, JobState],
    arrival: Arrival,
    delivery: DeliveryRow,
    events: list[EventRow],
    unlogged: list[tuple[Arrival, Outcome]],
) -> Outcome:
    """The first arrival of a delivery: its verdict on the job's snapshot, and what goes to the log."""
    job_id, seq = arrival.job_id, arrival.seq
    job = jobs.get(job_id)
    if job is None:
        job = jobs[job_id] = _new_job(arrival)
    elif job.host != arrival.host:
        delivery.verdict = "wrong_host"
        delivery.answered(answers.accepted("wrong_host", job_id, seq))
        return Outcome("wrong_host", job_id, seq)
    job.touched, job.last_contact_at = True, arrival.received_at
    verdict, job.snap = apply_event(job.snap, arrival.type, arrival.data, arrival.received_at)
    delivery.verdict = verdict.value
    delivery.answered(answers.accepted(verdict.value, job_id, seq))
    outcome = Outcome(verdict.value, job_id, seq)
    if verdict is Verdict.APPLIED:
        # Every logged seq of an unfinished job is <= its snapshot seq: this one is new to the log.
        if job.image == UNNAMED and arrival.data.get("image"):
            job.image = arrival.data["image"].get("ref") or job.image
        events.append(EventRow.of(arrival))
        outcome.event = _live(arrival)
        if job.snap.terminal and job.created_at is not None:
            outcome.finished = (job.snap.state, job.host, (arrival.received_at - job.created_at).total_seconds())
        return outcome
    log.info("job %s: %s seq %s is %s (snapshot at seq %s)", job_id, arrival.type, seq, verdict.value, job.snap.seq)
    if verdict is Verdict.STALE or seq < job.snap.seq:
        # An event after a job's end stays a delivery only: the log (and the wire) never
        # carries anything after a terminal event.
        unlogged.append((arrival, outcome))
    return outcome


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


def _missing_from_log(conn: Connection, unlogged: list[tuple[Arrival, Outcome]], batch: set) -> list[EventRow]:
    """Stale and after-terminal events enter the log when their seq is not there yet (the log keeps the first)."""
    params = {"jobs": list({o.job_id for _, o in unlogged}), "seqs": list({o.seq for _, o in unlogged})}
    logged = {(row.job_id, row.seq) for row in conn.execute(_LOGGED, params)} | batch
    rows = []
    for arrival, outcome in unlogged:
        if (arrival.job_id, arrival.seq) not in logged:
            logged.add((arrival.job_id, arrival.seq))
            rows.append(EventRow.of(arrival))
            outcome.event = _live(arrival)
    return rows


def _flush(
    conn: Connection,
    jobs: dict[str, JobState],
    deliveries: Deliveries,
    events: list[EventRow],
    touch: dict[str, datetime],
) -> None:
    """One bulk statement per table: jobs first (deliveries and events name them)."""
    new = [job.row(job_id) for job_id, job in jobs.items() if job.new]
    if new:
        conn.execute(_INSERT_JOBS, new)
    changed = [job.row(job_id) for job_id, job in jobs.items() if job.touched and not job.new]
    if changed:
        conn.execute(_UPDATE_JOB, changed)
    deliveries.flush(conn)
    if events:
        conn.execute(_INSERT_EVENTS, [vars(row) for row in events])
    if touch:
        conn.execute(_TOUCH_HOST, [{"b_name": host, "b_seen": seen} for host, seen in touch.items()])
