"""Reporters turn pipeline snapshots into contract events. The pipeline does not care where they go.

`EventReporter` owns what the contract needs beyond the snapshot: the job id, the host and the per-job
sequence number. Subclasses only implement `emit(event)`: the CLI prints JSON lines, the service writes
a durable outbox.
"""

from __future__ import annotations

import json
import socket
import sys
import uuid
from typing import IO, Protocol

from ferry_contract import ErrorInfo, EventType, ImageInfo, ImportEventData, JobState, make_import_event
from ferry_importer.progress import Snapshot


class Reporter(Protocol):
    async def progress(self, snapshot: Snapshot) -> None: ...

    async def completed(self, snapshot: Snapshot, image: ImageInfo) -> None: ...

    async def failed(self, snapshot: Snapshot, error: ErrorInfo) -> None: ...


class EventReporter:
    """Numbers events 1, 2, 3… for one job and builds them with the contract's `make_import_event`."""

    def __init__(self, job_id: str | None = None, host: str | None = None) -> None:
        self.job_id = job_id or f"cli-{uuid.uuid4().hex[:12]}"
        self.host = host or socket.gethostname() or "localhost"
        self.seq = 0
        self.last_snapshot: Snapshot | None = None
        self.terminal_sent = False

    async def emit(self, event) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    async def progress(self, snapshot: Snapshot) -> None:
        await self._send(EventType.PROGRESS, JobState.RUNNING, snapshot)

    async def completed(self, snapshot: Snapshot, image: ImageInfo) -> None:
        await self._send(EventType.COMPLETED, JobState.SUCCEEDED, snapshot, image=image)

    async def failed(self, snapshot: Snapshot, error: ErrorInfo) -> None:
        await self._send(EventType.FAILED, JobState.FAILED, snapshot, error=error)

    async def canceled(self, error: ErrorInfo | None = None, snapshot: Snapshot | None = None) -> None:
        """Called by whoever cancelled the import task (the pipeline only sees CancelledError)."""
        await self._send(EventType.CANCELED, JobState.CANCELED, snapshot or self.last_snapshot, error=error)

    async def _send(self, kind: EventType, state: JobState, snapshot: Snapshot | None, **extra) -> None:
        if self.terminal_sent:
            return
        snapshot = snapshot or Snapshot(phase="preparing", bytes_done=0, bytes_total=None, percent=0.0)
        self.last_snapshot = snapshot
        self.seq += 1
        data = ImportEventData(
            job_id=self.job_id,
            host=self.host,
            seq=self.seq,
            state=state,
            phase=snapshot.phase,
            percent=snapshot.percent,
            bytes_done=snapshot.bytes_done,
            bytes_total=snapshot.bytes_total,
            rate_bps=snapshot.rate_bps,
            eta_s=snapshot.eta_s,
            phase_elapsed_s=snapshot.phase_elapsed_s,
            layers_done=snapshot.layers_done,
            layers_total=snapshot.layers_total,
            layer_bytes_done=snapshot.layer_bytes_done,
            layer_bytes_total=snapshot.layer_bytes_total,
            bytes_available=snapshot.bytes_available,
            **extra,
        )
        if kind is not EventType.PROGRESS:
            self.terminal_sent = True
        await self.emit(make_import_event(kind, data))


class JsonLinesReporter(EventReporter):
    """One JSON object per line: the contract event as it would be POSTed as a callback."""

    def __init__(self, stream: IO[str] | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.stream = stream or sys.stdout

    async def emit(self, event) -> None:
        self.stream.write(json.dumps(event.model_dump(mode="json"), separators=(",", ":")) + "\n")
        self.stream.flush()


class CollectingReporter(EventReporter):
    """Keeps every event in memory; for embedding and for tests."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.events: list = []

    async def emit(self, event) -> None:
        self.events.append(event)
