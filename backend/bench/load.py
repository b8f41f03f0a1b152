"""Load for the realtime benchmark: signed callbacks as an importer sends them, and socket watchers that time them.

Everything is prepared before the clock starts (bodies signed up front), so the measured time is the
server's, not the generator's. Times are `time.monotonic()`, which is one clock for every process of
this machine (CLOCK_MONOTONIC), so a sender and a watcher in different processes can be compared.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

import aiohttp
from standardwebhooks import Webhook


@dataclass(frozen=True)
class Signed:
    job_id: str
    seq: int
    body: bytes
    headers: dict


def progress_body(job_id: str, host: str, seq: int, total: int) -> bytes:
    """A realistic import.progress body (the size and shape a real importer sends)."""
    done = min(total, seq * (total // 1000 or 1))
    data = {
        "job_id": job_id,
        "host": host,
        "seq": seq,
        "state": "running",
        "phase": "importing",
        "percent": round(100.0 * done / total, 3),
        "bytes_done": done,
        "bytes_total": total,
        "rate_bps": 52_428_800.0,
        "eta_s": 12.5,
        "phase_elapsed_s": round(seq / 10, 1),
        "queue_position": None,
        "image": None,
        "error": None,
    }
    return json.dumps({"type": "import.progress", "timestamp": datetime.now(UTC).isoformat(), "data": data}).encode()


def sign_all(secret: str, host: str, jobs: list[str], events_per_job: int, first_seq: int = 1) -> list[Signed]:
    """Every job's callbacks in send order (round robin over jobs, seq increasing per job), signed now."""
    webhook = Webhook(secret)
    now = datetime.now(UTC)
    out = []
    for seq in range(first_seq, first_seq + events_per_job):
        for job_id in jobs:
            body = progress_body(job_id, host, seq, 2_600_000_000)
            msg_id = "msg_" + uuid.uuid4().hex
            headers = {
                "webhook-id": msg_id,
                "webhook-timestamp": str(int(now.timestamp())),
                "webhook-signature": webhook.sign(msg_id, now, body.decode()),
                "content-type": "application/json",
            }
            out.append(Signed(job_id, seq, body, headers))
    return out


@dataclass
class PostResult:
    sent: int = 0
    ok: int = 0
    statuses: dict = field(default_factory=dict)
    latencies: list = field(default_factory=list)
    elapsed: float = 0.0
    send_times: dict = field(default_factory=dict)  # (job_id, seq) -> monotonic time the POST started
    verdicts: dict = field(default_factory=dict)  # (job_id, seq) -> the receiver's verdict

    @property
    def rate(self) -> float:
        return self.ok / self.elapsed if self.elapsed else 0.0


def _session(concurrency: int) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    return aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30))


async def _post(session, url: str, item: Signed, result: PostResult) -> None:
    started = time.monotonic()
    result.send_times[(item.job_id, item.seq)] = started
    try:
        async with session.post(url, data=item.body, headers=item.headers) as response:
            body = await response.read()
            status = response.status
        if status == 200:
            result.verdicts[(item.job_id, item.seq)] = json.loads(body).get("verdict")
    except (TimeoutError, aiohttp.ClientError) as exc:
        status = type(exc).__name__
    result.latencies.append(time.monotonic() - started)
    result.sent += 1
    result.statuses[status] = result.statuses.get(status, 0) + 1
    if status == 200:
        result.ok += 1


async def closed_loop(url: str, items: list[Signed], concurrency: int, duration_s: float) -> PostResult:
    """As fast as the server answers: `concurrency` requests in flight until time or items run out."""
    result = PostResult()
    queue = iter(items)
    async with _session(concurrency) as session:
        deadline = time.monotonic() + duration_s

        async def worker() -> None:
            for item in queue:
                if time.monotonic() >= deadline:
                    return
                await _post(session, url, item, result)

        started = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        result.elapsed = time.monotonic() - started
    return result


async def open_loop(url: str, items: list[Signed], rate: float, concurrency: int = 64) -> PostResult:
    """At a fixed pace (`rate` per second) whatever the answers, as importers do; `concurrency` caps requests in flight."""
    result = PostResult()
    limit = asyncio.Semaphore(concurrency)
    async with _session(concurrency) as session:
        started = time.monotonic()
        tasks = []

        async def one(item: Signed) -> None:
            async with limit:
                await _post(session, url, item, result)

        for index, item in enumerate(items):
            delay = started + index / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.ensure_future(one(item)))
        await asyncio.gather(*tasks)
        result.elapsed = time.monotonic() - started
    return result


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]
