"""The delivery worker: sends outbox heads as signed POSTs, records every attempt, schedules retries.

At most one attempt per job is in flight and only the job's head is sent, so the receiver sees a
job's seq increase even across retries and restarts. Jobs are independent: one slow receiver does
not hold up the others. A cancelled attempt (shutdown) is not recorded, so it is simply sent again
after the next start; receivers dedupe by `webhook-id`.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import httpx

from ferry_importer import metrics
from ferry_importer.callbacks import outbox
from ferry_importer.callbacks.retry import (
    DeliveryVerdict,
    RetryPolicy,
    classify,
    is_expired,
    next_attempt_at,
    parse_retry_after,
)
from ferry_importer.callbacks.signing import Signer
from ferry_importer.database import Database
from ferry_importer.logs import current_job

log = logging.getLogger("ferry_importer.callbacks.delivery")

RESPONSE_EXCERPT = 512
USER_AGENT = "ferry-importer"


class DeliveryWorker:
    def __init__(
        self,
        db: Database,
        signer: Signer,
        policy: RetryPolicy,
        *,
        timeout_s: float,
        client: httpx.AsyncClient | None = None,
        max_parallel: int = 8,
        poll_s: float = 1.0,
        clock: Callable[[], float] = time.time,
        rand: Callable[[], float] = random.random,
    ):
        self._db = db
        self._signer = signer
        self._policy = policy
        self._timeout = timeout_s
        self._client = client or httpx.AsyncClient(follow_redirects=False, headers={"user-agent": USER_AGENT})
        self._owns_client = client is None
        self._max_parallel = max_parallel
        self._poll_s = poll_s
        self._clock = clock
        self._rand = rand
        self._wakeup = asyncio.Event()
        self._in_flight: dict[str, asyncio.Task[None]] = {}

    def wake(self) -> None:
        """New work (an enqueue, an operator requeue): look now instead of at the next poll."""
        self._wakeup.set()

    async def receiver_answered(self, url: str) -> int:
        """A success to a receiver (a callback or a heartbeat accepted): it is back, so the callbacks queued
        for it stop waiting out their backoff. Returns how many were woken."""
        origin = receiver_origin(url)
        if origin is None:
            return 0
        woken = await self._db.call(outbox.wake_receiver, origin, self._clock())
        if woken:
            log.info("%s answered: %d queued callback(s) to it sent now", origin, woken)
            self._wakeup.set()
        return woken

    async def run(self) -> None:
        try:
            while True:
                try:
                    delay = await self._dispatch_due()
                except asyncio.CancelledError:
                    raise
                except Exception:  # the worker must outlive any single bad row or disk hiccup
                    log.exception("outbox dispatch failed; retrying")
                    delay = self._poll_s
                await self._sleep(max(delay, 0.005))
                self._wakeup.clear()
        finally:
            await self._stop_in_flight()

    async def _sleep(self, timeout: float) -> None:
        """Until woken or `timeout`. Not asyncio.wait_for: on Python 3.11 it can swallow a cancellation that
        arrives as the wait ends, and a worker that ignores its cancel hangs the shutdown."""
        waiter = asyncio.ensure_future(self._wakeup.wait())
        try:
            await asyncio.wait({waiter}, timeout=timeout)
        finally:
            waiter.cancel()

    async def _dispatch_due(self) -> float:
        """Start due heads; return how long to sleep before the next one is due (at most poll_s)."""
        now = self._clock()
        heads = await self._db.call(outbox.heads)
        soonest = now + self._poll_s
        for message in heads:
            if message.job_id in self._in_flight:
                continue
            if message.next_attempt_at > now:
                soonest = min(soonest, message.next_attempt_at)
                continue
            if len(self._in_flight) >= self._max_parallel:
                break
            task = asyncio.create_task(self._guarded(message), name=f"deliver-{message.msg_id}")
            self._in_flight[message.job_id] = task
            task.add_done_callback(functools.partial(self._finished_task, message.job_id))
        return soonest - now

    def _finished_task(self, job_id: str, _task: asyncio.Task) -> None:
        self._finished(job_id)

    def _finished(self, job_id: str) -> None:
        self._in_flight.pop(job_id, None)
        self._wakeup.set()

    async def _guarded(self, message: outbox.Message) -> None:
        """A bug or disk error in one attempt must neither kill the worker nor spin on the same row."""
        current_job.set(message.job_id)
        try:
            await self._deliver(message)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("delivering callback %s failed unexpectedly", message.msg_id)
            await asyncio.sleep(self._poll_s)

    async def _deliver(self, message: outbox.Message) -> None:
        now = self._clock()
        # An operator's resend always gets one real attempt, however long the worker took to reach it.
        if not message.requeued and is_expired(message.created_at, now, self._policy):
            await self._db.call(outbox.mark_expired, message.id, now)
            log.warning("callback %s (job %s seq %s) expired undelivered", message.msg_id, message.job_id, message.seq)
            return
        attempt, retry_after = await self._post(message)
        verdict = classify(attempt.status_code)
        metrics.CALLBACK_ATTEMPTS.labels(verdict.value).inc()
        metrics.CALLBACK_SECONDS.observe(attempt.duration_ms / 1000)
        finished = self._clock()
        next_at = next_attempt_at(
            failures=message.attempts + 1,
            now=finished,
            retry_after=retry_after,
            policy=self._policy,
            rand=self._rand(),
        )
        status = await self._db.call(
            outbox.record_attempt,
            message.id,
            attempt,
            verdict,
            next_at=next_at,
            expires_at=message.created_at + self._policy.expire_s,
            now=finished,
        )
        if verdict is DeliveryVerdict.DELIVERED and message.attempts > 0:  # it was failing: others may wait on it too
            await self.receiver_answered(message.url)
        if verdict is DeliveryVerdict.GONE:
            log.warning("receiver answered 410 for job %s: no more callbacks for it", message.job_id)
        elif status is outbox.Status.EXPIRED:
            log.warning("callback %s (job %s seq %s) expired undelivered", message.msg_id, message.job_id, message.seq)
        elif verdict is DeliveryVerdict.RETRY:
            log.info(
                "callback %s (job %s seq %s) failed (%s); retry in %.1fs",
                message.msg_id,
                message.job_id,
                message.seq,
                attempt.error or attempt.status_code,
                next_at - finished,
            )

    async def _post(self, message: outbox.Message) -> tuple[outbox.Attempt, float | None]:
        started = self._clock()
        t0 = time.monotonic()
        status: int | None = None
        error: str | None = None
        excerpt: str | None = None
        retry_after: float | None = None
        headers = self._signer.headers(message.msg_id, message.body, started)
        try:
            async with self._client.stream(
                "POST", message.url, content=message.body.encode(), headers=headers, timeout=self._timeout
            ) as response:
                status = response.status_code
                excerpt = await _read_excerpt(response)
                retry_after = parse_retry_after(response.headers.get("retry-after"), self._clock())
        except httpx.TimeoutException:
            error = f"timeout after {self._timeout:g}s"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:300]
        attempt = outbox.Attempt(
            started_at=started,
            duration_ms=round((time.monotonic() - t0) * 1000, 2),
            status_code=status,
            error=error if status is None else (None if 200 <= status < 300 else f"HTTP {status}"),
            response=excerpt,
            trigger="manual" if message.requeued else "scheduled",
        )
        return attempt, retry_after

    async def _stop_in_flight(self) -> None:
        tasks = list(self._in_flight.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._owns_client:
            await self._client.aclose()


def receiver_origin(url: str) -> str | None:
    """scheme://host:port of a callback URL: callbacks to one origin share one receiver's fate."""
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}"


async def _read_excerpt(response: httpx.Response) -> str:
    """The first bytes of the receiver's answer, for operators; never the whole body."""
    collected = bytearray()
    async for chunk in response.aiter_raw():
        collected.extend(chunk[: RESPONSE_EXCERPT - len(collected)])
        if len(collected) >= RESPONSE_EXCERPT:
            break
    return collected.decode("utf-8", "replace")
