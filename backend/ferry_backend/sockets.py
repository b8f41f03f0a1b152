"""The Socket.IO server: connect auth and the subscribe / subscribe_all / unsubscribe handlers.

The server has no client manager of python-socketio's (no AsyncRedisManager): every emit goes to a
socket connected to this process, through its Subscriber's ordered outbox, so there is nothing for
a manager's queue to carry. Replicas share committed events one level up, where each replica's Hub
applies its own clients' catch-up and seq rules to them (broadcast.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import socketio
from socketio.exceptions import ConnectionRefusedError
from sqlalchemy.ext.asyncio import AsyncSession

from . import store as st
from .errors import FerryError, NotFound
from .hub import Hub
from .models import Job
from .realtime import ALL, EmitMany, LiveEvent, Subscriber
from .views import FiniteJSON, iso, job_view

log = logging.getLogger("ferry.sockets")
JOB_STATES = ("queued", "running", "succeeded", "failed", "canceled")

# A subscribe reads the store, then returns how to finish: send the catch-up and build the ack.
Finish = Callable[[], dict]
Read = Callable[[AsyncSession], Awaitable[Finish]]


def _error(code: str, message: str) -> dict:
    return {"ok": False, "error": {"code": code, "message": message}}


def create_sio() -> socketio.AsyncServer:
    return socketio.AsyncServer(async_mode="asgi", json=FiniteJSON)


def fan_out(sio: socketio.AsyncServer) -> EmitMany:
    """One emit of an event to many sockets of this process (encoded once): the Hub's direct path."""

    async def emit_many(name: str, data: dict, meta: dict, sids: list[str]) -> None:
        await sio.emit(name, (data, meta), to=sids)

    return emit_many


def _after_seq(payload: dict) -> int | None:
    after_seq = payload.get("after_seq", 0) or 0
    if not isinstance(after_seq, int) or isinstance(after_seq, bool) or after_seq < 0:
        return None
    return after_seq


class RealtimeNamespace(socketio.AsyncNamespace):
    """The default namespace: each connection is a Subscriber of `hub`; subscribes read `store`."""

    def __init__(self, store: st.Store, hub: Hub) -> None:
        super().__init__("/")
        self.store = store
        self.hub = hub
        self._disconnecting: set[asyncio.Task] = set()

    async def on_connect(self, sid: str, environ: dict, auth: Any) -> None:
        token = auth.get("token") if isinstance(auth, dict) else None
        if not token or not isinstance(token, str):
            raise ConnectionRefusedError("connect with auth: {token}", {"code": "unauthorized"})
        try:
            async with self.store.read() as session:
                row = await st.find_token(session, token)
        except FerryError as exc:
            raise ConnectionRefusedError(exc.message, {"code": exc.code}) from None
        if row is None:
            raise ConnectionRefusedError("unknown token", {"code": "unauthorized"})
        await self.save_session(sid, {"token_id": row.id, "role": row.role})

        async def emit(name: str, data: dict, meta: dict) -> None:
            await self.emit(name, (data, meta), to=sid)

        self.hub.connect(sid, emit, self._overflow)

    async def on_disconnect(self, sid: str, *args: Any) -> None:
        self.hub.remove(sid)

    def _overflow(self, sid: str) -> None:
        task = asyncio.get_running_loop().create_task(self.disconnect(sid))
        self._disconnecting.add(task)
        task.add_done_callback(self._disconnecting.discard)

    async def on_subscribe(self, sid: str, payload: Any = None) -> dict:
        subscriber = self.hub.subscribers.get(sid)
        if subscriber is None:
            return _error("unauthorized", "not connected")
        if not isinstance(payload, dict) or not isinstance(payload.get("job_id"), str):
            return _error("invalid_request", "subscribe needs {job_id, after_seq}")
        job_id = payload["job_id"]
        after_seq = _after_seq(payload)
        if after_seq is None:
            return _error("invalid_request", "after_seq must be a non-negative integer")

        async def read(session: AsyncSession) -> Finish:
            job = await session.get(Job, job_id)
            if job is None:
                raise NotFound(f"no job {job_id!r}")
            events = await st.events_after(session, job_id, after_seq)
            catchup = [LiveEvent(job_id, e.seq, e.type, e.data, iso(e.received_at)) for e in events]

            def finish() -> dict:
                subscriber.finish_job(job_id, catchup, after_seq)
                return {"ok": True, "snapshot": job_view(job)}

            return finish

        return await self._subscribe(subscriber, job_id, read)

    async def on_unsubscribe(self, sid: str, payload: Any = None) -> dict:
        subscriber = self.hub.subscribers.get(sid)
        if subscriber is None:
            return _error("unauthorized", "not connected")
        if not isinstance(payload, dict) or not isinstance(payload.get("job_id"), str):
            return _error("invalid_request", "unsubscribe needs {job_id}")
        subscriber.drop_job(payload["job_id"])
        return {"ok": True}

    async def on_subscribe_all(self, sid: str, payload: Any = None) -> dict:
        subscriber = self.hub.subscribers.get(sid)
        if subscriber is None:
            return _error("unauthorized", "not connected")
        payload = payload if isinstance(payload, dict) else {}
        host, state = payload.get("host"), payload.get("state")
        if not isinstance(host, (str, type(None))) or state not in (None, *JOB_STATES):
            return _error("invalid_request", "subscribe_all takes {host?, state?}")

        async def read(session: AsyncSession) -> Finish:
            jobs = await st.list_jobs(session, state=state, host=host)

            def finish() -> dict:
                subscriber.finish_all({job.id: job.seq for job in jobs}, host=host)
                return {"ok": True, "jobs": [job_view(job) for job in jobs]}

            return finish

        return await self._subscribe(subscriber, ALL, read)

    async def on_unsubscribe_all(self, sid: str, payload: Any = None) -> dict:
        subscriber = self.hub.subscribers.get(sid)
        if subscriber is None:
            return _error("unauthorized", "not connected")
        subscriber.drop_all()
        return {"ok": True}

    async def _subscribe(self, subscriber: Subscriber, key: object, read: Read) -> dict:
        """Buffer live events for `key`, read the store, then send the catch-up behind the ack.

        The outbox is held from before the read until the ack is queued, so the ack is the first thing
        the client gets; live events that arrive meanwhile wait in the buffer and go out after the
        catch-up, unless the catch-up already had them. A failed read stops the buffering.
        """
        subscriber.hold()
        subscriber.begin(key)
        try:
            try:
                async with self.store.read() as session:
                    finish = await read(session)
            except FerryError as exc:
                subscriber.abort(key)
                return _error(str(exc.code), exc.message)
            return finish()
        finally:
            # The ack is queued when the handler returns, before the loop runs this callback.
            asyncio.get_running_loop().call_soon(subscriber.release)
