"""`make bench-realtime`: the backend's callback ingest, callback→socket latency and upload memory, with yardsticks.

In one run, on this machine:
1. ingest: signed callbacks as fast as the server answers (C in flight), into the backend and into a
   bare FastAPI POST handler — the sustained rate of each and the ratio;
2. latency: N jobs × M events/s of signed callbacks for T seconds while K sockets watch (each one job),
   into the backend and into a bare python-socketio server that only emits — callback→socket p50/p99,
   for each rate M given (the sender, the sockets and the server share this machine's cores: their CPU
   is printed, so a run whose apparatus saturated the machine can be told from a slow server);
3. memory: the backend's peak RSS (VmHWM) while it receives a 1 GiB tus upload.

Targets: callback→socket p99 ≤ 2 × the bare python-socketio server's at each rate (and ≤ 20 ms at 100 jobs ×
10 events/s with 500 sockets); ingest ≥ half the bare POST rate; RSS ≤ 150 MB. Numbers from a busy machine are
not worth much: the load average is printed.

    python backend/bench/bench_realtime.py [--jobs 100 --rates 2,10 --sockets 500 --seconds 10] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from backend.bench import load  # noqa: E402
from backend.bench.processes import BareServer, BenchBackend, Watchers, cpu_seconds  # noqa: E402
from backend.tests.support import new_secret  # noqa: E402

HOST = "bench"


async def ingest(url: str, secret: str, proc: psutil.Process, concurrencies: list[int], seconds: float) -> dict:
    return {str(c): await ingest_at(url, secret, proc, c, seconds) for c in concurrencies}


async def ingest_at(url: str, secret: str, proc: psutil.Process, concurrency: int, seconds: float) -> dict:
    jobs = [f"job_ingest_{os.getpid()}_{concurrency}_{i:03d}" for i in range(50)]
    items = load.sign_all(secret, HOST, jobs, int(seconds * 4000 / len(jobs)) + 10)
    cpu0 = cpu_seconds(proc)
    result = await load.closed_loop(f"{url}/api/callbacks/{HOST}", items, concurrency, seconds)
    cpu = cpu_seconds(proc) - cpu0
    return {
        "rate": round(result.rate, 1),
        "ok": result.ok,
        "statuses": {str(k): v for k, v in result.statuses.items()},
        "p50_ms": ms(load.percentile(result.latencies, 50)),
        "p99_ms": ms(load.percentile(result.latencies, 99)),
        "server_cpu_ms_per_request": round(cpu / max(1, result.ok) * 1000, 3),
        "server_cpu_percent": round(100 * cpu / result.elapsed, 1),
    }


def ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


def bucket_quantile(before: dict[float, float], after: dict[float, float], q: float) -> float | None:
    """The upper bound (ms) of the histogram bucket holding quantile q of what was observed in between."""
    delta = {bound: after[bound] - before.get(bound, 0.0) for bound in sorted(after)}
    total = delta.get(float("inf"), 0.0)
    if not total:
        return None
    return next(round(bound * 1000, 1) for bound, count in delta.items() if count >= q * total)


async def latency(
    url: str, secret: str, proc: psutil.Process, watchers: Watchers, jobs: list[str], args, buckets=None
) -> dict:
    """One phase per rate (events/s per job), same sockets throughout; the machine's CPU per process is recorded too."""
    me, watching, phases, first = psutil.Process(), watchers.process, [], 2
    for rate in args.rates:
        count = int(rate * args.seconds)
        items = load.sign_all(secret, HOST, jobs, count, first_seq=first)
        first += count
        cpu0 = [cpu_seconds(p) for p in (proc, me, watching)]
        histogram0 = buckets() if buckets else None
        sent = await load.open_loop(f"{url}/api/callbacks/{HOST}", items, rate=len(jobs) * rate)
        await asyncio.sleep(2)  # stragglers
        cpu = [cpu_seconds(p) - c for p, c in zip((proc, me, watching), cpu0)]
        inside = None
        if buckets:
            histogram = buckets()
            inside = [bucket_quantile(histogram0, histogram, q) for q in (0.5, 0.99)]
        phases.append((rate, items, sent, [round(100 * c / (sent.elapsed + 2), 1) for c in cpu], inside))
    arrived = {}
    for job, seq, at in watchers.finish():
        arrived.setdefault((job, seq), []).append(at)
    results = {}
    for rate, items, sent, cpu, inside in phases:
        delays = [t - sent.send_times[key] for key in sent.send_times for t in arrived.get(key, ())]
        # A live event older than one a socket already got is not sent to it (per job, live seqs only
        # increase), so each socket is owed the events the receiver applied (the bare server applies all).
        verdicts = list(sent.verdicts.values())
        expected = sum(watchers.per_job(i.job_id) for i in items if sent.verdicts.get((i.job_id, i.seq)) == "applied")
        results[f"{rate:g}/s per job"] = {
            "offered_rate": len(jobs) * rate,
            "send_rate": round(sent.sent / sent.elapsed, 1),
            "statuses": {str(k): v for k, v in sent.statuses.items()},
            "verdicts": {v: verdicts.count(v) for v in set(verdicts)},
            "socket_deliveries": len(delays),
            "expected_deliveries": expected,
            "p50_ms": ms(load.percentile(delays, 50)),
            "p99_ms": ms(load.percentile(delays, 99)),
            "max_ms": ms(max(delays, default=0)),
            "post_p50_ms": ms(load.percentile(sent.latencies, 50)),
            "post_p99_ms": ms(load.percentile(sent.latencies, 99)),
            "server_cpu_percent": cpu[0],
            "sender_cpu_percent": cpu[1],
            "sockets_cpu_percent": cpu[2],
            "server_emit_p50_ms_at_most": inside[0] if inside else None,
            "server_emit_p99_ms_at_most": inside[1] if inside else None,
        }
    return results


async def run_latency(target: str, backend: BenchBackend | None, bare: BareServer | None, args, workdir: Path) -> dict:
    jobs = [f"job_lat_{target}_{os.getpid()}_{i:03d}" for i in range(args.jobs)]
    if backend is not None:
        url, token, proc = backend.url, backend.admin_token, backend.process
        for item in load.sign_all(backend.secret, HOST, jobs, 1):  # the jobs exist (seq 1) before anyone subscribes
            response = httpx.post(f"{url}/api/callbacks/{HOST}", content=item.body, headers=item.headers, timeout=30)
            response.raise_for_status()
        secret = backend.secret
    else:
        url, token, proc, secret = bare.url, "", bare.process, new_secret()
    watchers = Watchers(url, token, jobs, args.sockets, workdir / f"seen-{target}.json", bare=backend is None).start()
    try:
        return await latency(url, secret, proc, watchers, jobs, args, backend.emit_buckets if backend else None)
    finally:
        watchers.stop()


def upload_rss(backend: BenchBackend, size: int) -> dict:
    """A tus upload of `size` bytes in 64 MiB PATCHes; the backend's VmHWM before and after."""
    before = backend.peak_rss()
    headers = {"Authorization": f"Bearer {backend.admin_token}", "Tus-Resumable": "1.0.0"}
    block = os.urandom(1 << 20)
    started = time.monotonic()
    with httpx.Client(base_url=backend.url, headers=headers, timeout=120) as http:
        location = http.post("/api/uploads/", headers={"Upload-Length": str(size)}).headers["location"]
        offset, patch = 0, 64 << 20
        while offset < size:
            length = min(patch, size - offset)
            body = (block for _ in range(length >> 20))
            response = http.patch(
                location,
                content=body,
                headers={
                    "Upload-Offset": str(offset),
                    "Content-Type": "application/offset+octet-stream",
                    "Content-Length": str(length),
                },
            )
            assert response.status_code == 204, response.text
            offset = int(response.headers["upload-offset"])
        http.delete(location)
    elapsed = time.monotonic() - started
    return {
        "bytes": size,
        "seconds": round(elapsed, 1),
        "mb_per_s": round(size / elapsed / 1e6, 1),
        "rss_before_mb": round(before / 1e6, 1),
        "peak_rss_mb": round(backend.peak_rss() / 1e6, 1),
    }


def report(results: dict, args) -> None:
    ingest_rows, latency_rows, up = results["ingest"], results["latency"], results["upload"]
    print(
        f"\nferry backend realtime bench — load average before: {results['load_before']:.2f}, after: {results['load_after']:.2f}"
    )
    print(f"\n1. ingest: signed callbacks as fast as answered, {args.ingest_seconds:g} s per concurrency")
    print(f"   {'':26}{'in flight':>10}{'rate/s':>9}{'vs bare':>9}{'p50 ms':>9}{'p99 ms':>9}{'server CPU ms/req':>19}")
    for name, rows in ingest_rows.items():
        for concurrency, r in rows.items():
            ratio = f"{r['ratio']:.2f}" if "ratio" in r else ""
            print(
                f"   {name:26}{concurrency:>10}{r['rate']:>9}{ratio:>9}{r['p50_ms']:>9}{r['p99_ms']:>9}"
                f"{r['server_cpu_ms_per_request']:>19}"
            )
    print("   target: backend ≥ 0.5 × bare")
    print(
        f"\n2. callback → socket: {args.jobs} jobs, {args.sockets} sockets (each watching one job), {args.seconds:g} s per rate"
    )
    print(
        f"   {'':24}{'rate':>14}{'sent/s':>8}{'delivered':>14}{'p50 ms':>8}{'p99 ms':>8}{'vs bare':>8}{'max ms':>8}"
        f"{'in server p50/p99 ≤':>21}{'CPU % server/sender/sockets':>29}"
    )
    bare = latency_rows.get("bare_socketio", {})
    for name, phases in latency_rows.items():
        for rate, r in phases.items():
            ratio = f"{r['p99_ms'] / bare[rate]['p99_ms']:.1f}" if rate in bare and bare[rate]["p99_ms"] else ""
            delivered = f"{r['socket_deliveries']}/{r['expected_deliveries']}"
            cpu = f"{r['server_cpu_percent']:.0f}/{r['sender_cpu_percent']:.0f}/{r['sockets_cpu_percent']:.0f}"
            inside = (
                "–"
                if r["server_emit_p50_ms_at_most"] is None
                else f"{r['server_emit_p50_ms_at_most']:g}/{r['server_emit_p99_ms_at_most']:g}"
            )
            print(
                f"   {name:24}{rate:>14}{r['send_rate']:>8}{delivered:>14}{r['p50_ms']:>8}{r['p99_ms']:>8}{ratio:>8}"
                f"{r['max_ms']:>8}"
                f"{inside:>21}{cpu:>29}"
            )
    print("   p50/p99/max: from the sender's POST to the socket client's handler (apparatus included); in server:")
    print("   from the callback's arrival to the event handed to the socket (ferry_callback_to_emit_seconds buckets).")
    print("   target: backend p99 ≤ 2 × bare at each rate (and ≤ 20 ms at 10/s per job)")
    print(
        f"\n3. {up['bytes'] >> 20} MiB tus upload at {up['mb_per_s']} MB/s: backend RSS {up['rss_before_mb']} MB before, "
        f"peak {up['peak_rss_mb']} MB (target ≤ 150 MB)"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument(
        "--rates",
        type=lambda v: [float(x) for x in v.split(",")],
        default=[2.0, 10.0],
        help="events per second per job, one latency phase each (comma-separated)",
    )
    parser.add_argument("--sockets", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each latency phase")
    parser.add_argument(
        "--concurrency",
        type=lambda v: [int(x) for x in v.split(",")],
        default=[1, 16, 64],
        help="callbacks in flight in the ingest runs (comma-separated)",
    )
    parser.add_argument("--ingest-seconds", type=float, default=5.0)
    parser.add_argument("--upload-mib", type=int, default=1024)
    parser.add_argument(
        "--modes",
        type=lambda v: v.split(","),
        default=["full", "normal"],
        help="FERRY_SQLITE_SYNCHRONOUS values to measure the backend with (comma-separated)",
    )
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args()
    results: dict = {"load_before": os.getloadavg()[0], "args": vars(args) | {"json": str(args.json)}}
    with tempfile.TemporaryDirectory(prefix="ferry-bench-") as tmp:
        workdir = Path(tmp)
        results["ingest"], results["latency"] = {}, {}
        with BareServer("post") as bare_post, BareServer("sio") as bare_sio:
            results["ingest"]["bare_post"] = await ingest(
                bare_post.url, new_secret(), bare_post.process, args.concurrency, args.ingest_seconds
            )
            results["latency"]["bare_socketio"] = await run_latency("bare", None, bare_sio, args, workdir)
        for mode in args.modes:
            name = f"backend_sqlite_{mode}"
            with BenchBackend(workdir / name, HOST, sqlite_synchronous=mode) as backend:
                results["ingest"][name] = await ingest(
                    backend.url, backend.secret, backend.process, args.concurrency, args.ingest_seconds
                )
                for c, row in results["ingest"][name].items():
                    row["ratio"] = round(row["rate"] / results["ingest"]["bare_post"][c]["rate"], 3)
                results["latency"][name] = await run_latency(name, backend, None, args, workdir)
        with BenchBackend(workdir / "upload", HOST) as fresh:  # a fresh process: its peak is the upload's
            results["upload"] = upload_rss(fresh, args.upload_mib << 20)
    results["load_after"] = os.getloadavg()[0]
    report(results, args)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
