"""Request bodies that stall: an idle deadline and a bound on how many may be open at once (both services).

A client that sends its headers and then trickles (or stops) the body holds a connection and memory before
any authentication can run. Each wait for more body is limited to `idle_s`, answered 408; and at most
`max_open` requests may be in the middle of their body at once, the next is answered 503 at once. Once a
body is complete nothing is timed any more (a streamed answer may take long). Paths under `exempt` (uploads,
with their own idle rule) pass untouched.
"""

from __future__ import annotations

import asyncio
import json
import logging

log = logging.getLogger("ferry.bodies")


class BodyDeadline:
    """ASGI middleware; `open_bodies` is how many requests are in the middle of their body now."""

    def __init__(self, app, idle_s: float, max_open: int, exempt: tuple[str, ...] = ()):
        self.app = app
        self.idle_s = idle_s
        self.max_open = max_open
        self.exempt = exempt
        self.open_bodies = 0

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(self.exempt):
            await self.app(scope, receive, send)
            return
        state = {"open": False, "done": False, "started": False, "answered": False}

        async def answer(status: int, code: str, message: str, headers: list | None = None) -> dict:
            state["answered"] = True
            if not state["started"]:
                body = json.dumps({"error": {"code": code, "message": message}}).encode()
                await send(
                    {
                        "type": "http.response.start",
                        "status": status,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close"),
                            *(headers or []),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
            return {"type": "http.disconnect"}

        def close_body() -> None:
            if state["open"]:
                state["open"] = False
                self.open_bodies -= 1

        async def guarded_receive():
            if state["answered"]:
                return {"type": "http.disconnect"}
            if state["done"]:
                return await receive()
            if not state["open"]:
                if self.open_bodies >= self.max_open:
                    log.warning(
                        "%d request bodies open: refusing %s %s", self.open_bodies, scope["method"], scope["path"]
                    )
                    return await answer(
                        503, "too_many_requests", "too many request bodies in progress; retry", [(b"retry-after", b"1")]
                    )
                state["open"] = True
                self.open_bodies += 1
            try:
                message = await asyncio.wait_for(receive(), self.idle_s)
            except TimeoutError:
                close_body()
                return await answer(408, "request_timeout", f"no request body bytes for {self.idle_s:g} s")
            if message["type"] != "http.request" or not message.get("more_body"):
                state["done"] = True
                close_body()
            return message

        async def guarded_send(message) -> None:
            if state["answered"]:
                return  # the app's own answer after ours: the connection is closing
            if message["type"] == "http.response.start":
                state["started"] = True
            await send(message)

        try:
            await self.app(scope, guarded_receive, guarded_send)
        finally:
            close_body()
