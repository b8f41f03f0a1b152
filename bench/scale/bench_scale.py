"""Scale-out benchmark: one backend replica vs two, both on Postgres + Redis behind nginx, in the same run.

For each setup it measures
  - callback -> socket latency (p50, p99, max) at a paced load: JOBS jobs, RATE signed callbacks/s in
    total through nginx, SOCKETS Socket.IO clients connected through nginx, each watching one job;
  - the ingest rate: as many signed callbacks as CONCURRENCY senders can push (each sender keeps its own
    job's seqs in order, as an importer's outbox does), with the same sockets watching, and whether every
    event reached every watcher.
Bodies are signed before the clock starts; watchers run in a separate process. time.monotonic() is
CLOCK_MONOTONIC, one clock for every process of the machine, so send and receive times compare.

    .venv/bin/python bench/scale/bench_scale.py [--jobs 20 --rate 200 --seconds 10 --sockets 50 ...]
    .venv/bin/python bench/scale/bench_scale.py --via direct    # the same without nginx: what the proxy costs
Run it on a quiet machine (see `uptime`): the replicas, nginx, Postgres, Redis and the load share the cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

import aiohttp  # noqa: E402

from backend.tests.support import Importer, callback_body, event_data, new_secret  # noqa: E402
from tests.scale.cluster import Cluster  # noqa: E402
from tests.scale.servers import PostgresServer, RedisServer  # noqa: E402


def _watch(targets: list[str], token: str, jobs: list[str], sockets: int, conn) -> None:
    """Child process: SOCKETS clients, socket i on targets[i % n] watching job i % len(jobs); records arrivals."""
    import socketio

    async def main():
        arrivals: list[tuple[str, int, float]] = []
        clients = []
        for index in range(sockets):
            client = socketio.AsyncClient(reconnection=False)

            async def on_event(data, meta=None):
                if not (meta or {}).get("catchup"):
                    arrivals.append((data["job_id"], data["seq"], time.monotonic()))

            for name in ("import.queued", "import.progress", "import.completed"):
                client.on(name, on_event)
            await client.connect(
                targets[index % len(targets)], auth={"token": token}, transports=["websocket"], wait_timeout=20
            )
            ack = await client.call("subscribe", {"job_id": jobs[index % len(jobs)], "after_seq": 1}, timeout=20)
            assert ack["ok"], ack
            clients.append(client)
        conn.send("ready")
        while not conn.poll(0.05):
            await asyncio.sleep(0.05)
        conn.recv()
        await asyncio.sleep(1.0)  # let the last events arrive
        conn.send(arrivals)
        arrivals = []
        while not conn.poll(0.05):
            await asyncio.sleep(0.05)
        conn.recv()
        await asyncio.sleep(1.0)
        conn.send(arrivals)
        for client in clients:
            await client.disconnect()

    asyncio.run(main())


def _signed(importer: Importer, job: str, seq: int) -> tuple[str, bytes, dict]:
    body = callback_body("import.progress", event_data(job, importer.name, seq))
    return job, body, importer.sign(body)


ERRORS: list[str] = []  # callbacks not answered 200 (an importer would retry them; here they are counted)


async def _post(session: aiohttp.ClientSession, url: str, body: bytes, headers: dict) -> None:
    async with session.post(url, data=body, headers=headers) as response:
        text = await response.text()
        if response.status != 200:
            ERRORS.append(f"{response.status}: {text[:200]}")


async def _create_jobs(cluster: Cluster, importer: Importer, jobs: list[str]) -> None:
    async with aiohttp.ClientSession() as session:
        for job in jobs:
            body = callback_body(
                "import.queued", event_data(job, importer.name, 1, state="queued", phase="queued", percent=0.0)
            )
            await _post(session, f"{cluster.url}/api/callbacks/{importer.name}", body, importer.sign(body))


def _callback_urls(targets: list[str], importer: Importer, jobs: list[str]) -> dict[str, str]:
    """Job i's callbacks go to targets[i % n]: one job's seqs keep their order whatever the route."""
    return {job: f"{targets[i % len(targets)]}/api/callbacks/{importer.name}" for i, job in enumerate(jobs)}


async def _paced(targets, importer, jobs, rate: float, seconds: float) -> dict[tuple[str, int], float]:
    total = int(rate * seconds)
    plan = [_signed(importer, jobs[i % len(jobs)], 2 + i // len(jobs)) for i in range(total)]
    sent: dict[tuple[str, int], float] = {}
    urls = _callback_urls(targets, importer, jobs)
    per_job: dict[str, asyncio.Lock] = {job: asyncio.Lock() for job in jobs}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) as session:
        start = time.monotonic()
        tasks = []

        async def one(job, seq, body, headers):
            async with per_job[job]:  # keep one job's seqs in order, like an importer's outbox
                sent[(job, seq)] = time.monotonic()
                await _post(session, urls[job], body, headers)

        for index, (job, body, headers) in enumerate(plan):
            delay = start + index / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(job, 2 + index // len(jobs), body, headers)))
        await asyncio.gather(*tasks)
    return sent


async def _ingest(targets, importer, jobs, per_job_events: int, first_seq: int, concurrency: int) -> tuple[float, int]:
    urls = _callback_urls(targets, importer, jobs)
    plans = [[_signed(importer, job, first_seq + n) for n in range(per_job_events)] for job in jobs]
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:
        queue: asyncio.Queue = asyncio.Queue()
        for plan in plans:
            queue.put_nowait(plan)

        async def sender():
            while not queue.empty():
                for job, body, headers in queue.get_nowait():
                    await _post(session, urls[job], body, headers)

        start = time.monotonic()
        await asyncio.gather(*(sender() for _ in range(concurrency)))
        elapsed = time.monotonic() - start
    return elapsed, sum(len(p) for p in plans)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def run_setup(replicas: int, postgres: PostgresServer, redis_url: str, base: Path, args) -> dict:
    cluster = Cluster(
        base / f"r{replicas}",
        postgres.create_database(f"bench_r{replicas}_{uuid.uuid4().hex[:6]}"),
        redis_url,
        replicas=replicas,
        env_extra={"FERRY_LOG_LEVEL": "warning"},
    )
    watcher = None
    try:
        cluster.launch().wait_ready()
        host = "bench-" + uuid.uuid4().hex[:6]
        secret = new_secret()
        importer = Importer(cluster.backends[0], host, secret)

        async def prepare():
            async with cluster.client() as http:
                response = await http.post(
                    "/api/hosts",
                    json={
                        "name": host,
                        "url": "http://127.0.0.1:9",
                        "token": "bench-token-0123456789",
                        "webhook_secret": secret,
                    },
                )
                assert response.status_code == 201, response.text
            return await cluster.token("viewer")

        viewer = asyncio.run(prepare())
        jobs = [f"job_bench_{uuid.uuid4().hex[:10]}" for _ in range(args.jobs)]
        asyncio.run(_create_jobs(cluster, importer, jobs))
        parent, child = mp.Pipe()
        targets = [cluster.url] if args.via == "nginx" else [b.url for b in cluster.backends]
        watcher = mp.get_context("spawn").Process(
            target=_watch, args=(targets, viewer, jobs, args.sockets, child), daemon=True
        )
        watcher.start()
        assert parent.poll(180) and parent.recv() == "ready", "watchers did not connect"
        ERRORS.clear()
        spread = asyncio.run(cluster.socket_clients())

        sent = asyncio.run(_paced(targets, importer, jobs, args.rate, args.seconds))
        paced_errors = len(ERRORS)
        parent.send("next")
        arrivals = parent.recv()
        latencies = [(at - sent[(job, seq)]) * 1000 for job, seq, at in arrivals if (job, seq) in sent]
        watchers_per_job = {
            job: sum(1 for i in range(args.sockets) if i % len(jobs) == index) for index, job in enumerate(jobs)
        }
        expected = sum(watchers_per_job[job] for job, _ in sent)

        first_seq = 2 + (int(args.rate * args.seconds) + len(jobs) - 1) // len(jobs)
        elapsed, count = asyncio.run(
            _ingest(targets, importer, jobs, args.ingest // len(jobs), first_seq, args.concurrency)
        )
        parent.send("done")
        ingest_arrivals = parent.recv()
        ingest_expected = sum(watchers_per_job[job] for job in jobs) * (args.ingest // len(jobs))
        watcher.join(30)
        if ERRORS:
            print(f"{replicas} replica(s): {len(ERRORS)} callbacks not answered 200, e.g. {ERRORS[0]}", file=sys.stderr)
        return {
            "replicas": replicas,
            "sockets_per_replica": spread,
            "paced_events": len(sent),
            "deliveries": len(latencies),
            "expected_deliveries": expected,
            "p50_ms": round(statistics.median(latencies), 2) if latencies else None,
            "p99_ms": round(_percentile(latencies, 0.99), 2) if latencies else None,
            "max_ms": round(max(latencies), 2) if latencies else None,
            "ingest_per_s": round(count / elapsed, 1),
            "ingest_events": count,
            "ingest_deliveries": len(ingest_arrivals),
            "ingest_expected": ingest_expected,
            "paced_errors": paced_errors,
            "ingest_errors": len(ERRORS) - paced_errors,
        }
    finally:
        if watcher is not None and watcher.is_alive():
            watcher.terminate()
        cluster.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--rate", type=float, default=200.0, help="paced callbacks per second, all jobs together")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--sockets", type=int, default=50)
    parser.add_argument("--ingest", type=int, default=2000, help="callbacks in the ingest phase")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=1, help="repeat both setups, alternating, and print medians")
    parser.add_argument(
        "--via",
        choices=["nginx", "direct"],
        default="nginx",
        help="nginx: everything through the proxy; direct: job i's callbacks and socket i go to replica i %% n",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON line per setup instead of a table")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    if load > 1.5:
        print(f"warning: load average {load:.1f} on {os.cpu_count()} cores: numbers will be noisy", file=sys.stderr)
    base = Path(tempfile.mkdtemp(prefix="ferry-bench-scale-"))
    postgres = PostgresServer().start()
    redis = RedisServer(base / "redis").start()
    try:
        # Rounds alternate the setups (1, 2, 1, 2, …) so a load change on a shared machine hits both alike.
        results = [
            run_setup(replicas, postgres, redis.url, base, args) for _ in range(args.rounds) for replicas in (1, 2)
        ]
    finally:
        redis.stop()
        postgres.stop()
        shutil.rmtree(base, ignore_errors=True)
    if args.json:
        for result in results:
            print(json.dumps(result))
        return
    print(
        f"{args.jobs} jobs, {args.rate:.0f} callbacks/s for {args.seconds:.0f} s, {args.sockets} sockets; "
        f"ingest {args.ingest} callbacks by {args.concurrency} senders; "
        f"{'all through nginx' if args.via == 'nginx' else 'straight to the replicas'}, Postgres + Redis"
    )
    print(
        f"{'replicas':>8} {'sockets/replica':>16} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'delivered':>12} {'errors':>6} "
        f"{'ingest/s':>9} {'delivered':>12} {'errors':>6}"
    )
    for r in results:
        print(
            f"{r['replicas']:>8} {str(r['sockets_per_replica']):>16} {r['p50_ms']:>8} {r['p99_ms']:>8} {r['max_ms']:>8} "
            f"{r['deliveries']:>5}/{r['expected_deliveries']:<6} {r['paced_errors']:>6} {r['ingest_per_s']:>9} "
            f"{r['ingest_deliveries']:>5}/{r['ingest_expected']:<6} {r['ingest_errors']:>6}"
        )
    if args.rounds > 1:
        print(f"median of {args.rounds} rounds:")
        for replicas in (1, 2):
            mine = [r for r in results if r["replicas"] == replicas]
            med = {
                key: round(statistics.median(r[key] for r in mine), 1) for key in ("p50_ms", "p99_ms", "ingest_per_s")
            }
            print(
                f"{replicas:>8} {'':>16} {med['p50_ms']:>8} {med['p99_ms']:>8} {'':>8} {'':>12} {'':>6} {med['ingest_per_s']:>9}"
            )


if __name__ == "__main__":
    main()
