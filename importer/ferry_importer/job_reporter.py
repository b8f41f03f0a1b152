"""The service's reporter: each event of a job is committed (snapshot + outbox row, one transaction)
before anything tries to send it, then the delivery worker is woken.

It plugs into the pipeline's `EventReporter` (which numbers events and builds them from snapshots) and
adds what only the service knows: queue positions, and whether an event may be coalesced while the
receiver is down (a progress event in the same state and phase as the one before it).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ferry_contract import ErrorInfo, EventType, ImportEventData, JobState, Phase, is_terminal, make_import_event
from ferry_importer import job_store, metrics
from ferry_importer.callbacks import outbox
from ferry_importer.callbacks.signing import new_message_id
from ferry_importer.database import Database
from ferry_importer.progress import Snapshot
from ferry_importer.reporting import EventReporter

PREPARING = Snapshot(phase=Phase.PREPARING, bytes_done=0, bytes_total=None, percent=0.0)


class EventRecorder:
    """Commits events durably and nudges the delivery worker."""

    def __init__(self, db: Database, wake: Callable[[], None], clock: Callable[[], float] = time.time):
        self._db = db
        self._wake = wake
        self._clock = clock

    async def record(self, event, callback_url: str | None, droppable: bool) -> None:
        data: ImportEventData = event.data
        body = event.model_dump_json()
        now = self._clock()

        def commit(conn) -> float | None:
            """The job's age when this event ended it (for the duration histogram), else None."""
            ended = job_store.apply_event(conn, data, now) and is_terminal(event.type)
            if callback_url:
                outbox.enqueue(
                    conn,
                    msg_id=new_message_id(),
                    job_id=data.job_id,
                    seq=data.seq,
                    type=event.type,
                    body=body,
                    url=callback_url,
                    droppable=droppable,
                    now=now,
                )
            if ended:
                row = conn.execute("SELECT created_at FROM jobs WHERE job_id = ?", (data.job_id,)).fetchone()
                return now - row["created_at"] if row else None
            return None

        age = await self._db.call(commit)
        if is_terminal(event.type):
            metrics.JOBS_FINISHED.labels(data.state).inc()
        if age is not None:
            metrics.observe_finished(data.state, age, data.bytes_done)
        if callback_url:
            self._wake()


def snapshot_of(record: job_store.JobRecord) -> Snapshot:
    """The last reported numbers of a stored job, to carry into its next event."""
    snap = record.snapshot
    if snap is None:
        return PREPARING
    return Snapshot(
        phase=Phase(snap.phase),
        bytes_done=snap.bytes_done,
        bytes_total=snap.bytes_total,
        percent=snap.percent,
        phase_elapsed_s=snap.phase_elapsed_s,
        layers_done=snap.layers_done,
        layers_total=snap.layers_total,
        layer_bytes_done=snap.layer_bytes_done,
        layer_bytes_total=snap.layer_bytes_total,
    )


class OutboxReporter(EventReporter):
    """Events of one job, continuing its stored seq (a job's events span restarts and several reporters)."""

    def __init__(self, recorder: EventRecorder, record: job_store.JobRecord, host: str):
        super().__init__(job_id=record.job_id, host=host)
        self.seq = record.seq
        self.callback_url = record.callback_url
        self._recorder = recorder
        snap = record.snapshot
        self._last = (snap.state, snap.phase) if snap else None
        self.last_snapshot = snapshot_of(record) if snap else None

    async def emit(self, event) -> None:
        data = event.data
        key = (data.state, data.phase)
        droppable = event.type == EventType.PROGRESS and key == self._last
        self._last = key
        await self._recorder.record(event, self.callback_url, droppable)

    async def queued(self, position: int, *, first: bool) -> None:
        """`import.queued` when the job is accepted; later position changes travel as queued progress."""
        self.seq += 1
        data = ImportEventData(
            job_id=self.job_id,
            host=self.host,
            seq=self.seq,
            state=JobState.QUEUED,
            phase=Phase.QUEUED,
            percent=0.0,
            bytes_done=0,
            queue_position=position,
        )
        await self.emit(make_import_event(EventType.QUEUED if first else EventType.PROGRESS, data))

    async def fail(self, error: ErrorInfo) -> None:
        """A failure outside the pipeline (before it started, or found on restart): one terminal event."""
        if not self.terminal_sent:
            await self.failed(self.last_snapshot or PREPARING, error)
