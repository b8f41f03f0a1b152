"""A stand-in Docker engine on a unix socket, for what the real engine cannot be made to do on demand:
stop reading mid-upload (a stall), or think for seconds after the last byte (a long finalize).

It is a real HTTP server (uvicorn), so the importer's real httpx transport, flow control and
timeouts are exercised; only the engine's behaviour is scripted.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from pathlib import Path

import uvicorn


class StubEngine:
    def __init__(
        self,
        socket_path: Path,
        *,
        mode: str,
        finalize_seconds: float = 0.0,
        stored_size: int | None = None,
        version: str = "20.10.99",
    ) -> None:
        self.socket_path = socket_path
        self.version = version  # what /version reports: decisions that depend on it can be tested on any engine
        self.mode = mode  # "stall": never read the import body; "slow": read it, then think
        self.finalize_seconds = finalize_seconds
        self.stored_size = stored_size  # report this image size instead of the bytes received (a stub image)
        self.images: dict[str, dict] = {}
        self.deleted: list[str] = []
        self.received = 0
        config = uvicorn.Config(
            self.app,
            uds=str(socket_path),
            log_level="warning",
            lifespan="off",
            interface="asgi3",
            timeout_graceful_shutdown=1,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def host(self) -> str:
        return f"unix://{self.socket_path}"

    def __enter__(self) -> StubEngine:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=5)

    async def app(self, scope, receive, send) -> None:
        path, method = scope["path"], scope["method"]
        if path == "/version":
            return await _json(send, 200, {"Version": self.version, "ApiVersion": "1.41"})
        if path == "/info":
            return await _json(send, 200, {"DockerRootDir": "/nonexistent/stub"})
        if path in ("/images/create", "/images/load"):
            return await self._create(receive, send)
        if path.startswith("/images/") and path.endswith("/json"):
            image = self.images.get(path[len("/images/") : -len("/json")])
            return await _json(send, 200 if image else 404, image or {"message": "No such image"})
        if path.startswith("/images/") and path.endswith("/tag") and method == "POST":
            query = dict(pair.split("=", 1) for pair in scope["query_string"].decode().split("&"))
            ref = f"{query['repo'].replace('%2F', '/')}:{query['tag']}"
            image = self.images[path[len("/images/") : -len("/tag")]]
            image["RepoTags"].append(ref)
            self.images[ref] = image
            return await _json(send, 201, {})
        if path.startswith("/images/") and method == "DELETE":
            ref = path[len("/images/") :]
            self.deleted.append(ref)
            self.images.pop(ref, None)
            return await _json(send, 200, [{"Deleted": ref}])
        return await _json(send, 404, {"message": "not here"})

    async def _create(self, receive, send) -> None:
        if self.mode == "stall":
            await asyncio.sleep(3600)  # never reads: the client's writes block once the buffers are full
            return
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client aborted the upload: like the engine, create nothing
            self.received += len(message.get("body", b""))
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await asyncio.sleep(self.finalize_seconds)
        image_id = f"sha256:{uuid.uuid4().hex * 2}"
        size = self.received if self.stored_size is None else self.stored_size
        self.images[image_id] = {"Id": image_id, "Size": size, "RepoTags": []}
        body = json.dumps({"status": image_id}).encode() + b"\r\n"
        await send({"type": "http.response.body", "body": body})


async def _json(send, status: int, payload) -> None:
    body = json.dumps(payload).encode()
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})
