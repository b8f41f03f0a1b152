"""Helpers of the hostile suite: raw signed bodies (exactly the bytes a hostile sender chooses) and a strict
JSON module for Socket.IO clients (it refuses what a browser's JSON.parse refuses)."""

from __future__ import annotations

import json
import sqlite3
import uuid
from contextlib import contextmanager
from datetime import UTC, datetime

import httpx
import socketio
from socketio import packet

from backend.tests.support import Backend, Importer, event_data


def unique(stem: str) -> str:
    return f"{stem}-{uuid.uuid4().hex[:8]}"


def body_text(event_type: str, data: dict, **raw_fields: str) -> str:
    """A callback body; each of `raw_fields` is written into `data` as raw JSON text (e.g. rate_bps="1e999")."""
    marked = dict(data, **{name: f"@{name}@" for name in raw_fields})
    text = json.dumps({"type": event_type, "timestamp": datetime.now(UTC).isoformat(), "data": marked})
    for name, raw in raw_fields.items():
        text = text.replace(f'"@{name}@"', raw)
    return text


async def post_signed(
    importer: Importer, text: str, msg_id: str | None = None, host: str | None = None
) -> httpx.Response:
    body = text.encode()
    return await importer.post(body, importer.sign(body, msg_id), host=host)


async def queued(importer: Importer, job_id: str) -> httpx.Response:
    """A good first event of a job."""
    return await importer.send(
        "import.queued", event_data(job_id, importer.name, 1, state="queued", phase="queued", percent=0.0)
    )


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not JSON")


class StrictJSON:
    """Decodes like a browser's JSON.parse: Infinity, -Infinity and NaN are errors."""

    dumps = staticmethod(json.dumps)

    @staticmethod
    def loads(text, **kwargs):
        return json.loads(text, parse_constant=_refuse_constant, **kwargs)


@contextmanager
def strict_socket_json():
    """python-socketio keeps its JSON module on the Packet class: set it for one test, then put it back."""
    previous = packet.Packet.json
    packet.Packet.json = StrictJSON
    try:
        yield
    finally:
        packet.Packet.json = previous


async def subscribe_all_reply(backend: Backend) -> dict:
    """Connect a real Socket.IO client, subscribe to every job and return the parsed acknowledgement."""
    sio = socketio.AsyncClient(reconnection=False)
    await sio.connect(backend.url, auth={"token": backend.admin_token}, transports=["websocket"], wait_timeout=10)
    try:
        return await sio.call("subscribe_all", {}, timeout=10)
    finally:
        await sio.disconnect()


@contextmanager
def database(backend: Backend):
    """The backend's own SQLite file, for what only an older version or a failing disk could have written."""
    conn = sqlite3.connect(backend.data_dir / "ferry.db", timeout=30, isolation_level=None)
    try:
        yield conn
    finally:
        conn.close()
