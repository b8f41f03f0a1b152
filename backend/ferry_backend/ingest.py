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
from datetime import datetime

from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError

from . import store as st
from .errors import StoreUnavailable
from .ingest_batch import Arrival, Outcome, write_batch
from .metrics import INGEST_BATCH

log = logging.getLogger("ferry.ingest")
MAX_BATCH = 256


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

    async def store_and_wait(self, arrival: Arrival) -> Outcome:
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
