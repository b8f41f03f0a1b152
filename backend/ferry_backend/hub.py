"""The subscribers of this process, indexed by the jobs they watch, and the fan-out of live events to them."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from .metrics import EMIT_LATENCY
from .realtime import ALL, Emit, EmitMany, LiveEvent, Subscriber, event_meta

log = logging.getLogger("ferry.realtime")


class Hub:
    """Every subscriber of this process, indexed by the jobs they watch, and the fan-out to them.

    The index keeps a delivery proportional to the job's watchers, not to every connected client.
    Clients with nothing waiting in their outbox get a live event by one emit for all of them
    (`emit_many`: encoded once); the others get it through their own ordered outbox.
    """

    def __init__(self, emit_many: EmitMany | None = None) -> None:
        self.subscribers: dict[str, Subscriber] = {}
        self._emit_many = emit_many
        self._by_job: dict[str, set[str]] = {}
        self._feed: set[str] = set()
        self._sending: set[asyncio.Task] = set()

    def connect(self, sid: str, emit: Emit, on_overflow: Callable[[str], None]) -> Subscriber:
        """A new client of this process, indexed by this Hub from the start."""
        subscriber = Subscriber(sid, emit, on_overflow, self._reindex)
        self.subscribers[sid] = subscriber
        return subscriber

    def remove(self, sid: str) -> None:
        subscriber = self.subscribers.pop(sid, None)
        if subscriber is None:
            return
        for key in subscriber.keys():
            self._unindex(sid, key)
        subscriber.close()

    def _reindex(self, subscriber: Subscriber, key) -> None:
        if self.subscribers.get(subscriber.sid) is not subscriber:  # removed: it no longer counts
            return
        if not subscriber.interested(key):
            self._unindex(subscriber.sid, key)
        elif key is ALL:
            self._feed.add(subscriber.sid)
        else:
            self._by_job.setdefault(key, set()).add(subscriber.sid)

    def _unindex(self, sid: str, key) -> None:
        if key is ALL:
            self._feed.discard(sid)
            return
        watchers = self._by_job.get(key)
        if watchers is not None:
            watchers.discard(sid)
            if not watchers:
                del self._by_job[key]

    def watchers(self, job_id: str) -> int:
        return len(self._by_job.get(job_id, ()))

    def deliver(self, event: LiveEvent) -> None:
        targets = self._by_job.get(event.job_id)
        sids = (targets | self._feed) if targets else self._feed
        direct: list[str] | None = (
            [] if self._emit_many is not None and event.replay_id is None and not event.notice else None
        )
        for sid in list(sids):
            subscriber = self.subscribers.get(sid)
            if subscriber is not None:
                subscriber.offer(event, direct)
        if direct:
            # Scheduled now: any later message for these clients (direct or from an outbox) runs after it.
            task = asyncio.get_running_loop().create_task(self._send_direct(event, direct))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def _send_direct(self, event: LiveEvent, sids: list[str]) -> None:
        assert self._emit_many is not None  # only called when there is a direct path
        try:
            await self._emit_many(event.type, event.data, event_meta(event), sids)
        except Exception:
            log.debug("emit of %s seq %s failed", event.job_id, event.seq, exc_info=True)
            return
        if event.received_ts is not None:
            elapsed = time.time() - event.received_ts
            for _ in sids:
                EMIT_LATENCY.observe(elapsed)
