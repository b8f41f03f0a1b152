"""The yardsticks the backend is measured against, served like the backend (uvicorn, same loop and HTTP parser).

`post`: FastAPI that reads a callback's body and answers 200 — no verification, no storage.
`sio`: python-socketio whose POST /emit/{room} emits the body to a room at once — the bare fan-out a
browser would see, without ferry's log, ordering or catch-up. Clients `subscribe` {job_id} to join a room.

    python backend/bench/bare_servers.py post|sio --port 8123
"""

from __future__ import annotations

import argparse
import json

import socketio
import uvicorn
from fastapi import FastAPI, Request


def post_app() -> FastAPI:
    app = FastAPI()

    @app.post("/api/callbacks/{host}")
    async def callback(host: str, request: Request) -> dict:
        await request.body()
        return {"verdict": "applied", "job_id": None, "seq": None}

    @app.get("/healthz")
    async def healthz() -> dict:
        return {"status": "ok"}

    return app


def sio_app() -> socketio.ASGIApp:
    sio = socketio.AsyncServer(async_mode="asgi")
    app = FastAPI()

    @sio.event
    async def subscribe(sid, payload):
        await sio.enter_room(sid, payload["job_id"])
        return {"ok": True}

    @app.post("/api/callbacks/{host}")
    async def emit(host: str, request: Request) -> dict:
        body = json.loads(await request.body())
        data = body["data"]
        await sio.emit(body["type"], (data, {"replay": False}), to=data["job_id"])
        return {"verdict": "applied", "job_id": data["job_id"], "seq": data["seq"]}

    @app.get("/healthz")
    async def healthz() -> dict:
        return {"status": "ok"}

    return socketio.ASGIApp(sio, other_asgi_app=app)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=["post", "sio"])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    app = post_app() if args.kind == "post" else sio_app()
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
