"""K Socket.IO clients, each subscribed to one job, recording when every live event reaches them.

Run as its own process by bench_realtime.py (so the clients do not share an event loop with the load
generator): prints `ready` once every client is subscribed, then records until a line arrives on
stdin, then writes `[job_id, seq, monotonic_time]` per received event as JSON to --out.

    python backend/bench/watchers.py --url URL --token T --jobs j1,j2 --clients 500 --out FILE [--bare]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

import socketio

EVENTS = ("import.queued", "import.progress", "import.completed", "import.failed", "import.canceled")


async def one_client(url: str, token: str, job_id: str, bare: bool, seen: list) -> socketio.AsyncClient:
    client = socketio.AsyncClient(reconnection=False)

    async def record(data, meta=None):
        if meta and (meta.get("replay") or meta.get("catchup")):
            return
        seen.append((data["job_id"], data["seq"], time.monotonic()))

    for name in EVENTS:
        client.on(name, record)
    await client.connect(url, auth={"token": token}, transports=["websocket"], wait_timeout=60)
    payload = (
        {"job_id": job_id} if bare else {"job_id": job_id, "after_seq": 1}
    )  # the bench created each job with seq 1
    ack = await client.call("subscribe", payload, timeout=60)
    if not ack.get("ok"):
        raise RuntimeError(f"subscribe to {job_id} refused: {ack}")
    return client


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--token", default="")
    parser.add_argument("--jobs", required=True, help="comma-separated; client i watches job i mod len(jobs)")
    parser.add_argument("--clients", type=int, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--bare", action="store_true", help="the bare python-socketio server (subscribe {job_id})")
    args = parser.parse_args()
    jobs = args.jobs.split(",")
    seen: list = []
    clients = []
    for start in range(0, args.clients, 25):  # connect in waves: a realistic ramp, not a thundering herd
        wave = range(start, min(args.clients, start + 25))
        clients += await asyncio.gather(
            *(one_client(args.url, args.token, jobs[i % len(jobs)], args.bare, seen) for i in wave)
        )
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    with open(args.out, "w") as out:
        json.dump(seen, out)
    await asyncio.gather(*(c.disconnect() for c in clients), return_exceptions=True)


if __name__ == "__main__":
    asyncio.run(main())
