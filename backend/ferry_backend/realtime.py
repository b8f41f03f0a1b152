"""Socket.IO: authenticated connections, per-job subscriptions with seq replay, the all-jobs feed.

python-socketio forgets what it sent to a client that went away; ferry does not. Each client has a
`Subscriber` with its own ordered outbox and the last seq it got per job. A subscribe first starts
buffering live events for the job, then reads the snapshot and the log, then sends the replay, then
the buffered live events it has not seen: nothing is lost between the read and the join, nothing is
sent twice, and no live event overtakes the replay.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Awaitable, Callable

log = logging.getLogger("ferry.realtime")

ALL = object()  # key of the all-jobs feed in a subscriber's pending buffers
MAX_OUTBOX = 20_000  # a client this far behind is disconnected; it resubscribes with its last seq


@dataclass(frozen=True)
class LiveEvent:
    job_id: str
    seq: int
    type: str
    data: dict


Emit = Callable[[str, dict, dict], Awaitable[None]]


class Subscriber:
    """One connected client: what it watches, what it has been sent, and its ordered outbox."""

    def __init__(self, sid: str, emit: Emit, on_overflow: Callable[[str], None]):
        self.sid = sid
        self.jobs: set[str] = set()
        self.all = False
        self.all_host: str | None = None  # the all-jobs feed may be narrowed to one host
        self.sent: dict[str, int] = {}
        self.pending: dict[object, list[LiveEvent]] = {}
        self._emit = emit
        self._on_overflow = on_overflow
        self._queue: asyncio.Queue[tuple[str, dict, dict]] = asyncio.Queue()
        self._holds = 0
        self._overflowed = False
        self._open = asyncio.Event()
        self._open.set()
        self._task = asyncio.get_running_loop().create_task(self._pump(), name=f"socket-outbox-{sid}")

    # -- decisions (synchronous: no await between reading and updating `sent`) --

    def watches(self, job_id: str) -> bool:
        return self.all or job_id in self.jobs

    def _in_feed(self, event: LiveEvent) -> bool:
        return self.all_host is None or event.data.get("host") == self.all_host

    def offer(self, event: LiveEvent) -> None:
        """A live event for a job this client may watch."""
        if event.job_id in self.pending:
            self.pending[event.job_id].append(event)
        elif event.job_id in self.jobs:
            self._send_live(event)
        elif ALL in self.pending:
            self.pending[ALL].append(event)
        elif self.all and self._in_feed(event):
            self._send_live(event)

    def _send_live(self, event: LiveEvent) -> None:
        if event.seq <= self.sent.get(event.job_id, 0):
            return
        self.sent[event.job_id] = event.seq
        self._put(event.type, event.data, {"replay": False})

    def _put(self, name: str, data: dict, meta: dict) -> None:
        if self._overflowed:
            return
        if self._queue.qsize() >= MAX_OUTBOX:
            log.warning("socket %s is %d events behind: disconnecting it", self.sid, MAX_OUTBOX)
            self._overflowed = True
            self._on_overflow(self.sid)
            return
        self._queue.put_nowait((name, data, meta))

    def begin(self, key) -> None:
        """Start buffering live events for a job (or ALL) before its state is read."""
        self.pending.setdefault(key, [])

    def abort(self, key) -> None:
        self.pending.pop(key, None)

    def finish_job(self, job_id: str, replay: list[LiveEvent]) -> None:
        """Send the replay, then every buffered live event newer than it; from now on send live."""
        buffered = self.pending.pop(job_id, [])
        for event in replay:
            self._put(event.type, event.data, {"replay": True})
            self.sent[job_id] = max(self.sent.get(job_id, 0), event.seq)
        self.jobs.add(job_id)
        for event in sorted(buffered, key=lambda e: e.seq):
            self._send_live(event)

    def finish_all(self, seqs: dict[str, int], host: str | None = None) -> None:
        """The client holds these snapshots: send only what is newer, then follow every job (of `host`, if given)."""
        buffered = self.pending.pop(ALL, [])
        for job_id, seq in seqs.items():
            self.sent[job_id] = max(self.sent.get(job_id, 0), seq)
        self.all = True
        self.all_host = host
        for event in sorted(buffered, key=lambda e: (e.job_id, e.seq)):
            if event.job_id not in self.jobs and event.job_id not in self.pending and self._in_feed(event):
                self._send_live(event)

    def drop_job(self, job_id: str) -> None:
        self.jobs.discard(job_id)
        self.pending.pop(job_id, None)
        if not self.all:
            self.sent.pop(job_id, None)

    def drop_all(self) -> None:
        self.all = False
        self.all_host = None
        self.pending.pop(ALL, None)

    # -- the outbox --

    def hold(self) -> None:
        """Pause sending while an ack is being prepared, so the ack goes out before the replay."""
        self._holds += 1
        self._open.clear()

    def release(self) -> None:
        self._holds = max(0, self._holds - 1)
        if self._holds == 0:
            self._open.set()

    async def _pump(self) -> None:
        while True:
            name, data, meta = await self._queue.get()
            await self._open.wait()
            try:
                await self._emit(name, data, meta)
            except Exception:  # the client is gone; disconnect cleans up
                log.debug("emit to %s failed", self.sid, exc_info=True)

    def close(self) -> None:
        self._task.cancel()


class Hub:
    """Every subscriber of this process, and the fan-out of live events to them."""

    def __init__(self):
        self.subscribers: dict[str, Subscriber] = {}

    def add(self, subscriber: Subscriber) -> None:
        self.subscribers[subscriber.sid] = subscriber

    def remove(self, sid: str) -> None:
        subscriber = self.subscribers.pop(sid, None)
        if subscriber is not None:
            subscriber.close()

    def deliver(self, event: LiveEvent) -> None:
        for subscriber in list(self.subscribers.values()):
            if subscriber.watches(event.job_id) or event.job_id in subscriber.pending or ALL in subscriber.pending:
                subscriber.offer(event)
