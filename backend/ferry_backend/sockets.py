"""The Socket.IO server: connect auth and the subscribe / subscribe_all / unsubscribe handlers."""

from __future__ import annotations

import asyncio
import logging

import socketio
from socketio.exceptions import ConnectionRefusedError

from . import store as st
from .errors import FerryError
from .models import Job
from .realtime import ALL, Hub, LiveEvent, Subscriber
from .views import FiniteJSON, iso, job_view

log = logging.getLogger("ferry.sockets")
JOB_STATES = ("queued", "running", "succeeded", "failed", "canceled")


def _error(code: str, message: str) -> dict:
    return {"ok": False, "error": {"code": code, "message": message}}


def create_sio(redis_url: str | None) -> socketio.AsyncServer:
    manager = None
    if redis_url:
        manager = socketio.AsyncRedisManager(redis_url, redis_options={"socket_timeout": None})
    return socketio.AsyncServer(async_mode="asgi", client_manager=manager, json=FiniteJSON)


def register(sio: socketio.AsyncServer, store: st.Store, hub: Hub) -> None:
    async def emit_to(sid: str, name: str, data: dict, meta: dict) -> None:
        await sio.emit(name, (data, meta), to=sid, ignore_queue=True)

    async def emit_many(name: str, data: dict, meta: dict, sids: list[str]) -> None:
        await sio.emit(name, (data, meta), to=sids, ignore_queue=True)

    hub.emit_many = emit_many

    def overflow(sid: str) -> None:
        asyncio.get_running_loop().create_task(sio.disconnect(sid, ignore_queue=True))

    @sio.event
    async def connect(sid, environ, auth):
        token = auth.get("token") if isinstance(auth, dict) else None
        if not token or not isinstance(token, str):
            raise ConnectionRefusedError("connect with auth: {token}", {"code": "unauthorized"})
        try:
            async with store.read() as session:
                row = await st.find_token(session, token)
        except FerryError as exc:
            raise ConnectionRefusedError(exc.message, {"code": exc.code}) from None
        if row is None:
            raise ConnectionRefusedError("unknown token", {"code": "unauthorized"})
        await sio.save_session(sid, {"token_id": row.id, "role": row.role})
        hub.add(Subscriber(sid, lambda n, d, m, _sid=sid: emit_to(_sid, n, d, m), overflow))

    @sio.event
    async def disconnect(sid, *args):
        hub.remove(sid)

    @sio.event
    async def subscribe(sid, payload=None):
        subscriber = hub.subscribers.get(sid)
        if subscriber is None:
            return _error("unauthorized", "not connected")
        if not isinstance(payload, dict) or not isinstance(payload.get("job_id"), str):
            return _error("invalid_request", "subscribe needs {job_id, after_seq}")
        job_id = payload["job_id"]
        after_seq = payload.get("after_seq", 0) or 0
        if not isinstance(after_seq, int) or isinstance(after_seq, bool) or after_seq < 0:
            return _error("invalid_request", "after_seq must be a non-negative integer")
        subscriber.hold()
        subscriber.begin(job_id)
        try:
            try:
                async with store.read() as session:
                    job = await session.get(Job, job_id)
                    events = await st.events_after(session, job_id, after_seq) if job else []
            except FerryError as exc:
                subscriber.abort(job_id)
                return _error(exc.code, exc.message)
            if job is None:
                subscriber.abort(job_id)
                return _error("not_found", f"no job {job_id!r}")
            catchup = [LiveEvent(job_id, e.seq, e.type, e.data, iso(e.received_at)) for e in events]
            subscriber.finish_job(job_id, catchup, after_seq)
            return {"ok": True, "snapshot": job_view(job)}
        finally:
            # The ack is queued when this handler returns, before the loop runs this callback.
            asyncio.get_running_loop().call_soon(subscriber.release)

    @sio.event
    async def unsubscribe(sid, payload=None):
        subscriber = hub.subscribers.get(sid)
        if subscriber is None:
            return _error("unauthorized", "not connected")
        if not isinstance(payload, dict) or not isinstance(payload.get("job_id"), str):
            return _error("invalid_request", "unsubscribe needs {job_id}")
        subscriber.drop_job(payload["job_id"])
        return {"ok": True}

    @sio.event
    async def subscribe_all(sid, payload=None):
        subscriber = hub.subscribers.get(sid)
        if subscriber is None:
            return _error("unauthorized", "not connected")
        payload = payload if isinstance(payload, dict) else {}
        host, state = payload.get("host"), payload.get("state")
        if not isinstance(host, (str, type(None))) or state not in (None, *JOB_STATES):
            return _error("invalid_request", "subscribe_all takes {host?, state?}")
        subscriber.hold()
        subscriber.begin(ALL)
        try:
            try:
                async with store.read() as session:
                    jobs = await st.list_jobs(session, state=state, host=host)
            except FerryError as exc:
                subscriber.abort(ALL)
                return _error(exc.code, exc.message)
            subscriber.finish_all({job.id: job.seq for job in jobs}, host=host)
            return {"ok": True, "jobs": [job_view(job) for job in jobs]}
        finally:
            asyncio.get_running_loop().call_soon(subscriber.release)

    @sio.event
    async def unsubscribe_all(sid, payload=None):
        subscriber = hub.subscribers.get(sid)
        if subscriber is None:
            return _error("unauthorized", "not connected")
        subscriber.drop_all()
        return {"ok": True}
