"""Everything a running backend holds: settings, store, Socket.IO hub and bus, importer client, tasks."""

from __future__ import annotations

import asyncio
import gc
import logging
import weakref
from collections.abc import Coroutine
from typing import Any

import socketio
from sqlalchemy.exc import IntegrityError

from . import store as st
from .broadcast import Bus, LocalBus, RedisBus
from .content import UploadSignals
from .dispatch import ImporterClient
from .hub import Hub
from .models import utcnow
from .realtime import LiveEvent
from .receiver import Receiver
from .settings import Settings
from .sockets import RealtimeNamespace, create_sio, fan_out
from .tus import PartFiles

log = logging.getLogger("ferry")
CONTENT_KEY = "content_link_key"


class KeyedLocks:
    """One asyncio.Lock per key, kept only while a request holds or waits on it.

    Weakly referenced: HEAD or PATCH requests for ids that never existed (or uploads long gone) leave
    nothing behind, however many arrive.
    """

    def __init__(self) -> None:
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    def __call__(self, key: str) -> asyncio.Lock:
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        return lock

    def __len__(self) -> int:
        return len(self._locks)


class Services:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.started_at = utcnow()
        self.store = st.Store.from_url(settings.resolved_database_url, settings.sqlite_synchronous)
        self.sio: socketio.AsyncServer = create_sio()
        self.hub = Hub(emit_many=fan_out(self.sio))
        self.sio.register_namespace(RealtimeNamespace(self.store, self.hub))
        self.bus: Bus = RedisBus(self.hub, settings.redis_url) if settings.redis_url else LocalBus(self.hub)
        self.importers = ImporterClient(settings.dispatch_timeout_s)
        self.receiver = Receiver(self.store)
        self.parts = PartFiles(settings.uploads_dir)
        self.upload_lock = KeyedLocks()
        self.upload_signals = UploadSignals()
        self.replays: dict[str, str] = {}  # job id -> id of the operator replay running for it
        self.replay_tasks: dict[str, asyncio.Task] = {}  # job id -> the task sending that replay (to cancel it)
        self.content_key = b""
        self._tasks: set[asyncio.Task] = set()

    async def start(self) -> None:
        self.started_at = utcnow()  # host silence is never counted from before this process was up
        self.settings.ensure_dirs()
        await self.store.migrate()
        await self._bootstrap()
        await self.bus.start()
        self.receiver.writer.start()
        self.spawn(self._drop_sockets_of_unusable_tokens(), name="socket-tokens")
        self._tune_collector()

    @staticmethod
    def _tune_collector() -> None:
        """Keep the cyclic garbage collector's pauses off the callback→socket path.

        What start-up made (modules, the ORM's, schema's and framework's objects, about 170 000) lives as long as
        the process: frozen, so no full collection walks it again. And a young collection only every 50 000 new
        objects instead of 700: objects of requests in flight no longer survive into the old generations, whose
        collections paused the event loop for 100 ms and more several times a minute under socket load.
        """
        gc.collect()
        gc.freeze()
        gc.set_threshold(50_000, 20, 10)

    async def _socket_tokens(self) -> dict[str, str]:
        """sid -> the id of the token each of this replica's sockets connected with."""
        tokens = {}
        for sid in list(self.hub.subscribers):
            try:
                tokens[sid] = (await self.sio.get_session(sid)).get("token_id")
            except KeyError:  # disconnected meanwhile
                continue
        return tokens

    async def drop_sockets_of(self, token_ids: set[str]) -> int:
        """Disconnect this replica's sockets opened with these tokens; returns how many."""
        doomed = [sid for sid, token_id in (await self._socket_tokens()).items() if token_id in token_ids]
        for sid in doomed:
            await self.sio.disconnect(sid)
        if doomed:
            log.info("disconnected %d socket(s) of revoked or expired tokens", len(doomed))
        return len(doomed)

    async def _drop_sockets_of_unusable_tokens(self) -> None:
        """A token revoked on another replica, or expired since its sockets connected: they go within an interval."""
        while True:
            await asyncio.sleep(self.settings.liveness_interval_s)
            try:
                ids = sorted({tid for tid in (await self._socket_tokens()).values() if tid})
                if ids:
                    async with self.store.read() as session:
                        unusable = await st.unusable_tokens(session, ids)
                    if unusable:
                        await self.drop_sockets_of(unusable)
            except Exception:  # a database hiccup: try again next interval
                log.exception("checking the tokens of open sockets failed")

    async def _bootstrap(self) -> None:
        """The admin token and the shared content key. Replicas starting together on an empty database race
        to insert the same rows: the loser's transaction fails on the unique key and simply reads them."""
        for attempt in range(3):
            try:
                async with self.store.write() as session:
                    if self.settings.admin_token:
                        await st.set_bootstrap_admin(session, self.settings.admin_token)
                    self.content_key = (await st.shared_secret(session, CONTENT_KEY)).encode()
                return
            except IntegrityError:
                if attempt == 2:
                    raise
                log.info("another replica bootstrapped at the same time; reading its rows")

    async def stop(self) -> None:
        for sid in list(self.hub.subscribers):
            self.hub.remove(sid)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.receiver.writer.stop()
        await self.bus.close()
        await self.importers.close()
        await self.store.close()

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str | None = None) -> asyncio.Task:
        """A background task that is awaited (cancelled) on shutdown and whose failure is logged."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)

        def _done(t: asyncio.Task) -> None:
            self._tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                log.error("background task %s failed", t.get_name(), exc_info=t.exception())

        task.add_done_callback(_done)
        return task

    async def announce(self, event: LiveEvent | None) -> None:
        """Send a committed log entry to every watching socket, on every replica."""
        if event is not None:
            await self.bus.publish(event)
