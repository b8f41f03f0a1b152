"""webhook-id dedupes: the one rule for a delivery whose (host, webhook-id) is already stored.

A repeat (a retry whose answer was lost, or a replay) is kept raw as a delivery_repeats row and
counted on the first delivery's row; it changes nothing else and is answered with the first one's
job and seq. The callback writer applies the rule to a whole batch (ingest_batch.py), the refusal of
a delivery that breaks the contract to one (callbacks.py): both through `Deliveries`.

Synchronous Core code: Store.write_sync runs it inside a write transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import Connection, Table, bindparam, insert, select, update

from . import answers
from .models import Delivery, DeliveryRepeat

DELIVERIES, REPEATS = (cast(Table, m.__table__) for m in (Delivery, DeliveryRepeat))
_STORED = select(
    DELIVERIES.c.id, DELIVERIES.c.host, DELIVERIES.c.webhook_id, DELIVERIES.c.job_id, DELIVERIES.c.seq
).where(DELIVERIES.c.host == bindparam("host"), DELIVERIES.c.webhook_id.in_(bindparam("ids", expanding=True)))
_COUNT_REPEATS = (
    update(DELIVERIES)
    .where(DELIVERIES.c.id == bindparam("b_id"))
    .values(duplicates=DELIVERIES.c.duplicates + bindparam("b_n"), last_received_at=bindparam("b_last"))
)
_INSERT_DELIVERIES = insert(DELIVERIES)
_INSERT_REPEATS = insert(REPEATS)


@dataclass
class DeliveryRow:
    """A deliveries row: the first arrival of a (host, webhook-id), raw, with what the backend made of it."""

    host: str
    webhook_id: str
    job_id: str | None
    seq: int | None
    event_type: str | None
    headers: dict
    body: str
    verdict: str
    received_at: datetime
    duplicates: int = 0
    last_received_at: datetime | None = None
    answer_status: int | None = None  # what the backend answered (answers.py), set with the verdict
    answer: str | None = None

    def answered(self, answer: tuple[int, dict]) -> None:
        stored = answers.stored(answer)
        self.answer_status, self.answer = stored["answer_status"], stored["answer"]


@dataclass(frozen=True)
class RepeatRow:
    """A delivery_repeats row: a later arrival of a stored (host, webhook-id), raw."""

    host: str
    webhook_id: str
    job_id: str | None
    headers: dict
    body: str
    received_at: datetime
    answer_status: int | None = None
    answer: str | None = None


@dataclass
class First:
    """The first delivery of a (host, webhook-id): stored before (`id`) or new in this transaction (`row`)."""

    job_id: str | None
    seq: int | None
    id: int | None = None
    row: DeliveryRow | None = None
    repeats: int = 0  # arrivals of it in this transaction after the first
    last_received_at: datetime | None = None


class Deliveries:
    """The first deliveries one transaction knows of, and the repeats of them it received."""

    def __init__(self) -> None:
        self._firsts: dict[tuple[str, str], First] = {}
        self._new: list[DeliveryRow] = []
        self._repeats: list[RepeatRow] = []

    def load(self, conn: Connection, host: str, webhook_ids: Iterable[str]) -> None:
        """Read which of these webhook-ids of `host` are stored ((host, webhook_id) is the unique index)."""
        for row in conn.execute(_STORED, {"host": host, "ids": sorted(set(webhook_ids))}):
            self._firsts[(row.host, row.webhook_id)] = First(row.job_id, row.seq, id=row.id)

    def first(self, host: str, webhook_id: str) -> First | None:
        return self._firsts.get((host, webhook_id))

    def add(self, row: DeliveryRow) -> None:
        """A first arrival: stored when the transaction flushes (its verdict may still change until then)."""
        self._new.append(row)
        self._firsts[(row.host, row.webhook_id)] = First(row.job_id, row.seq, row=row)

    def repeat(self, first: First, host: str, webhook_id: str, headers: dict, body: str, received_at: datetime) -> None:
        """Another arrival of a known delivery: kept raw and counted, nothing else changes."""
        first.repeats += 1
        first.last_received_at = received_at
        answer = answers.stored(answers.accepted("duplicate", first.job_id, first.seq))
        self._repeats.append(RepeatRow(host, webhook_id, first.job_id, headers, body, received_at, **answer))

    def flush(self, conn: Connection) -> None:
        """One bulk statement each: the new deliveries, the counts of the stored ones, the repeats."""
        counted = []
        for first in self._firsts.values():
            if not first.repeats:
                continue
            if first.row is not None:  # new in this transaction: counted on its own row
                first.row.duplicates, first.row.last_received_at = first.repeats, first.last_received_at
            else:
                counted.append({"b_id": first.id, "b_n": first.repeats, "b_last": first.last_received_at})
        if self._new:
            conn.execute(_INSERT_DELIVERIES, [vars(row) for row in self._new])
        if counted:
            conn.execute(_COUNT_REPEATS, counted)
        if self._repeats:
            conn.execute(_INSERT_REPEATS, [vars(row) for row in self._repeats])


def keep_refused(conn: Connection, row: DeliveryRow) -> First | None:
    """Keep a verified delivery that cannot be applied, once: a repeat of one already stored is only counted.

    Returns the stored first delivery when this one repeats it (answered `duplicate`), None when kept now.
    """
    deliveries = Deliveries()
    deliveries.load(conn, row.host, [row.webhook_id])
    first = deliveries.first(row.host, row.webhook_id)
    if first is None:
        deliveries.add(row)
    else:
        deliveries.repeat(first, row.host, row.webhook_id, row.headers, row.body, row.received_at)
    deliveries.flush(conn)
    return first
