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
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from .metrics import EMIT_LATENCY

log = logging.getLogger("ferry.realtime")

ALL = object()  # key of the all-jobs feed in a subscriber's pending buffers
MAX_OUTBOX = 20_000  # a client this far behind is disconnected; it resubscribes with its last seq


@dataclass(frozen=True)
class LiveEvent:
    """One logged event on its way to sockets. `replay_id` is set when an operator replays it."""

    job_id: str
    seq: int
    type: str
    data: dict
    received_at: str | None = None  # ISO-8601: when the backend received (or made) the event
    replay_id: str | None = None
    received_ts: float | None = None  # the same instant in Unix seconds, for the callback→emit latency metric
    notice: bool = (
        False  # the backend's own word on a job (a doubt, a presumption): outside the seq order, never counted
    )


def event_meta(event: LiveEvent, catchup: bool = False) -> dict:
    """The second argument of every socket event: how this client gets it, and when the backend got it.

    live: sent as it arrives; catch-up: from the log after a subscribe; replay: an operator asked
    for the job's story again (old seqs, already counted by the client).
    """
    meta = {"replay": event.replay_id is not None, "catchup": catchup, "timestamp": event.received_at}
    if event.replay_id is not None:
        meta["replay_id"] = event.replay_id
    if event.notice:
        meta["notice"] = True
    return meta


Emit = Callable[[str, dict, dict], Awaitable[None]]
EmitMany = Callable[[str, dict, dict, list[str]], Awaitable[None]]
Interest = Callable[["Subscriber", object], None]


def _no_index(_subscriber: Subscriber, _key: object) -> None:
    """A subscriber outside any Hub: nobody indexes what it watches."""


class Subscriber:
    """One connected client: what it watches, what it has been sent, and its ordered outbox.

    `on_interest(subscriber, key)` is told every time what the client watches (a job id, or ALL) may
    have changed: the Hub passes its index here, so a delivery only visits the job's watchers.
    """

    def __init__(
        self, sid: str, emit: Emit, on_overflow: Callable[[str], None], on_interest: Interest = _no_index
    ) -> None:
        self.sid = sid
        self.jobs: set[str] = set()
        self.all = False
        self.all_host: str | None = None  # the all-jobs feed may be narrowed to one host
        self.sent: dict[str, int] = {}
        self.pending: dict[object, list[LiveEvent]] = {}
        self._emit = emit
        self._on_overflow = on_overflow
        self._on_interest = on_interest
        self._queue: asyncio.Queue[tuple[str, dict, dict, float | None]] = asyncio.Queue()
        self._inflight = 0  # messages in the outbox not yet handed to the transport
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

    def offer(self, event: LiveEvent, direct: list[str] | None = None) -> None:
        """A live event (or an operator replay) for a job this client may watch.

        `direct` (from the Hub): where to add this client's sid when the event may skip its outbox.
        """
        if event.replay_id is not None:
            self._offer_replay(event)
        elif event.notice:
            self._offer_notice(event)
        elif event.job_id in self.pending:
            self.pending[event.job_id].append(event)
        elif event.job_id in self.jobs:
            self._send_live(event, direct)
        elif ALL in self.pending:
            self.pending[ALL].append(event)
        elif self.all and self._in_feed(event):
            self._send_live(event, direct)

    def _offer_replay(self, event: LiveEvent) -> None:
        """Replays go to settled watchers only, in the order they come, and never count as seen."""
        if event.job_id in self.pending:
            return  # the client is being caught up from the log: it gets the same story there
        if event.job_id in self.jobs or (self.all and ALL not in self.pending and self._in_feed(event)):
            self._put(event.type, event.data, event_meta(event))

    def _offer_notice(self, event: LiveEvent) -> None:
        """A job's snapshot as the backend sees it now: to every watcher, in outbox order, never counted.

        A client being caught up gets it after its ack (the outbox is held), which is what it needs:
        the snapshot it read may predate the notice."""
        if event.job_id in self.jobs or event.job_id in self.pending or (self.all and self._in_feed(event)):
            self._put(event.type, event.data, event_meta(event))

    def _send_live(self, event: LiveEvent, direct: list[str] | None = None) -> None:
        if event.seq <= self.sent.get(event.job_id, 0):
            return
        self.sent[event.job_id] = event.seq
        if direct is not None and self._holds == 0 and self._inflight == 0 and not self._overflowed:
            direct.append(self.sid)  # nothing of ours is waiting: one emit to every such client keeps the order
            return
        self._put(event.type, event.data, event_meta(event), event.received_ts)

    def _put(self, name: str, data: dict, meta: dict, received_ts: float | None = None) -> None:
        if self._overflowed:
            return
        if self._queue.qsize() >= MAX_OUTBOX:
            log.warning("socket %s is %d events behind: disconnecting it", self.sid, MAX_OUTBOX)
            self._overflowed = True
            self._on_overflow(self.sid)
            return
        self._queue.put_nowait((name, data, meta, received_ts))
        self._inflight += 1

    def begin(self, key) -> None:
        """Start buffering live events for a job (or ALL) before its state is read."""
        self.pending.setdefault(key, [])
        self._on_interest(self, key)

    def abort(self, key) -> None:
        self.pending.pop(key, None)
        self._on_interest(self, key)

    def finish_job(self, job_id: str, catchup: list[LiveEvent], after_seq: int = 0) -> None:
        """Send the catch-up from the log, then every buffered live event newer than it; from now on send live.

        The client said it holds every seq up to `after_seq`: nothing at or below it is sent again.
        """
        buffered = self.pending.pop(job_id, [])
        self.sent[job_id] = max(self.sent.get(job_id, 0), after_seq)
        for event in catchup:
            self._put(event.type, event.data, event_meta(event, catchup=True))
            self.sent[job_id] = max(self.sent.get(job_id, 0), event.seq)
        self.jobs.add(job_id)
        self._on_interest(self, job_id)
        for event in sorted(buffered, key=lambda e: e.seq):
            self._send_live(event)

    def finish_all(self, seqs: dict[str, int], host: str | None = None) -> None:
        """The client holds these snapshots: send only what is newer, then follow every job (of `host`, if given)."""
        buffered = self.pending.pop(ALL, [])
        for job_id, seq in seqs.items():
            self.sent[job_id] = max(self.sent.get(job_id, 0), seq)
        self.all = True
        self.all_host = host
        self._on_interest(self, ALL)
        for event in sorted(buffered, key=lambda e: (e.job_id, e.seq)):
            if event.job_id not in self.jobs and event.job_id not in self.pending and self._in_feed(event):
                self._send_live(event)

    def drop_job(self, job_id: str) -> None:
        self.jobs.discard(job_id)
        self.pending.pop(job_id, None)
        if not self.all:
            self.sent.pop(job_id, None)
        self._on_interest(self, job_id)

    def drop_all(self) -> None:
        self.all = False
        self.all_host = None
        self.pending.pop(ALL, None)
        self._on_interest(self, ALL)

    def keys(self) -> set:
        """Every job id (and ALL) this client watches or is about to."""
        keys: set = set(self.jobs) | set(self.pending)
        if self.all:
            keys.add(ALL)
        return keys

    def interested(self, key) -> bool:
        if key is ALL:
            return self.all or ALL in self.pending
        return key in self.jobs or key in self.pending

    # -- the outbox --

    def hold(self) -> None:
        """Pause sending while an ack is being prepared, so the ack goes out before the catch-up."""
        self._holds += 1
        self._open.clear()

    def release(self) -> None:
        self._holds = max(0, self._holds - 1)
        if self._holds == 0:
            self._open.set()

    async def _pump(self) -> None:
        while True:
            name, data, meta, received_ts = await self._queue.get()
            await self._open.wait()
            try:
                await self._emit(name, data, meta)
            except Exception:  # the client is gone; disconnect cleans up
                log.debug("emit to %s failed", self.sid, exc_info=True)
                continue
            finally:
                self._inflight -= 1
            if received_ts is not None:
                EMIT_LATENCY.observe(time.time() - received_ts)

    def close(self) -> None:
        self._task.cancel()
