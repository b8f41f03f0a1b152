"""POST /api/callbacks/{host}: signed progress from importers (authenticated by signature, not bearer).

The busiest endpoint by far (every importer posts several times a second per job), so it is a plain
ASGI handler in front of FastAPI: routing, dependency injection and the middleware stack cost more
per request than verifying and storing a callback. Errors keep the API's shape and codes.
"""

from __future__ import annotations

import json
import logging
import re

from ferry_contract import ErrorCode
from ferry_contract.api_errors import error_body

from ... import answers
from ...errors import Conflict, FerryError, Unauthorized
from ...import_jobs import announce_snapshot, presume_failed
from ...metrics import CALLBACKS, CALLBACKS_REFUSED, observe_finished
from ...services import Services

log = logging.getLogger("ferry.callbacks")
MAX_CALLBACK_BYTES = 256 * 1024
PATH = re.compile(r"^/api/callbacks/([^/]+)$")


class _Disconnected(Exception):
    pass


async def _read_body(receive) -> bytes:
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Disconnected()
        body += message.get("body", b"")
        if len(body) > MAX_CALLBACK_BYTES:
            raise Conflict("callback body too large", code="callback_too_large", status=413)
        if not message.get("more_body"):
            return bytes(body)


async def _answer(send, status: int, payload: dict, headers: dict | None = None) -> None:
    body = json.dumps(payload).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class CallbackEndpoint:
    """ASGI: POST /api/callbacks/{host} is answered here; everything else goes on to `app`."""

    def __init__(self, app, services: Services):
        self.app = app
        self.services = services

    async def __call__(self, scope, receive, send) -> None:
        match = PATH.match(scope["path"]) if scope["type"] == "http" else None
        if match is None:
            await self.app(scope, receive, send)
            return
        if scope["method"] != "POST":
            await _answer(send, 405, error_body("method_not_allowed", "use POST"), {"Allow": "POST"})
            return
        try:
            status, payload = 200, await self._receive(match.group(1), scope, receive)
            headers = None
        except _Disconnected:
            return
        except FerryError as exc:
            if exc.status >= 500:
                log.error("POST %s: %s (%s)", scope["path"], exc.message, exc.code)
            status, payload, headers = exc.status, exc.to_body(), exc.headers
        except Exception:
            log.exception("POST %s failed", scope["path"])
            status, payload, headers = (
                500,
                error_body("internal_error", "internal error; see the backend log"),
                None,
            )
        await _answer(send, status, payload, headers)

    async def _receive(self, host: str, scope, receive) -> dict:
        body = await _read_body(receive)
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            outcome = await self.services.receiver.receive(host, body, headers)
        except Unauthorized as exc:
            CALLBACKS_REFUSED.labels(exc.code).inc()
            raise
        CALLBACKS.labels(outcome.verdict).inc()
        observe_finished(outcome.finished)
        if outcome.verdict == "wrong_host":
            raise Conflict(f"job {outcome.job_id!r} belongs to another host", code="wrong_host")
        # Announced before the 2xx, on purpose: a replica that dies between the two leaves the importer
        # retrying, and the retry is announced again (ingest.py). Answering first could lose the
        # announcement of a final event for good. Publishing is bounded (broadcast.py), so this stays quick.
        await self.services.announce(outcome.event)
        for view in outcome.notices:
            await announce_snapshot(self.services, view)
        for job_id in outcome.lost:
            await presume_failed(
                self.services,
                job_id,
                ErrorCode.HOST_UNREACHABLE,
                f"{host!r} no longer has this job (its heartbeat lists it neither running, queued nor reporting)",
            )
        return answers.accepted(outcome.verdict, outcome.job_id, outcome.seq)[1]
