"""Carries committed events to every replica's Hub: in-process by default, Redis pub/sub when configured."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import random
from typing import Protocol

from .backoff import Backoff, backoff_delay
from .hub import Hub
from .realtime import LiveEvent

log = logging.getLogger("ferry.broadcast")
CHANNEL = "ferry:events"
RECONNECT = Backoff()  # 0.5 s, doubling up to 15 s, ±20 %


class Bus(Protocol):
    """Carries a committed event to the Hub of every replica (this one included)."""

    async def start(self) -> None: ...

    async def publish(self, event: LiveEvent) -> None: ...

    async def close(self) -> None: ...


class LocalBus:
    """One replica: the event goes straight to this process's Hub."""

    def __init__(self, hub: Hub):
        self.hub = hub

    async def start(self) -> None:
        pass

    async def publish(self, event: LiveEvent) -> None:
        self.hub.deliver(event)

    async def close(self) -> None:
        pass


class RedisBus:
    """Every replica publishes what it committed and delivers what any replica published.

    A lost subscription is taken up again after a backoff that grows with each failure in a row
    (with jitter), and starts over once a subscription holds.
    """

    def __init__(self, hub: Hub, url: str, backoff: Backoff = RECONNECT):
        import redis.asyncio as redis

        self.hub = hub
        self.backoff = backoff
        # socket_timeout=None: an idle subscriber must not time out (redis-py 8 defaults to 5 s).
        self.redis = redis.Redis.from_url(url, socket_timeout=None, socket_connect_timeout=5)
        # Publishing must never hang a callback on a Redis that stopped answering: its own client, short timeouts.
        self.publisher = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self._task: asyncio.Task | None = None
        self._ready = asyncio.Event()

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._listen(), name="redis-event-bus")
        await asyncio.wait_for(self._ready.wait(), timeout=10)

    async def publish(self, event: LiveEvent) -> None:
        """To every replica through Redis; when Redis fails, to this replica's sockets at least.

        The event is already in the log: other replicas' clients get it when they resubscribe (after_seq),
        and the importer's next retry of it is announced again.
        """
        message = json.dumps(dataclasses.asdict(event))
        try:
            await self.publisher.publish(CHANNEL, message)
        except Exception as exc:  # redis-py raises ConnectionError, TimeoutError and friends
            log.warning(
                "redis publish of %s seq %s failed (%s); delivered on this replica only", event.job_id, event.seq, exc
            )
            self.hub.deliver(event)

    async def _listen(self) -> None:
        failures = 0
        while True:
            try:
                async with self.redis.pubsub() as pubsub:
                    await pubsub.subscribe(CHANNEL)
                    failures = 0
                    self._ready.set()
                    async for message in pubsub.listen():
                        if message.get("type") != "message":
                            continue
                        self.hub.deliver(LiveEvent(**json.loads(message["data"])))
            except asyncio.CancelledError:
                raise
            except Exception:
                failures += 1
                delay = backoff_delay(failures, self.backoff, random.random())
                log.warning(
                    "redis event bus lost its connection (failure %d in a row); reconnecting in %.1f s",
                    failures,
                    delay,
                    exc_info=True,
                )
                await asyncio.sleep(delay)

    async def close(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.redis.aclose()
        await self.publisher.aclose()
