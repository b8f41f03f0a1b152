"""Operator replays: a job's logged events sent again to its watchers, with the original gaps scaled by speed.

A replay reads the log and publishes; it never writes. Sockets get the events marked `replay: true`
(see realtime.event_meta), so a page shows them without counting them again.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from . import store as st
from .errors import Conflict, NotFound
from .models import Job
from .realtime import LiveEvent
from .security import new_id
from .services import Services
from .views import iso

log = logging.getLogger("ferry.replays")
MAX_GAP_S = 30.0  # a longer original gap (a job waiting in a queue) is shortened to this before scaling


def replay_offsets(received: list[datetime], speed: float | None, max_gap_s: float = MAX_GAP_S) -> list[float]:
    """Seconds from the start of the replay at which each event is sent.

    Gaps are measured between consecutive receipt times (a negative one counts as none), capped at
    `max_gap_s`, then divided by `speed`; `speed=None` ("max") sends everything at once.
    """
    offsets: list[float] = []
    elapsed = 0.0
    for index, at in enumerate(received):
        if index and speed is not None:
            gap = (at - received[index - 1]).total_seconds()
            elapsed += min(max(gap, 0.0), max_gap_s) / speed
        offsets.append(elapsed)
    return offsets


async def start_replay(services: Services, job_id: str, speed: float | None) -> dict:
    """Read the job's log, answer at once, and publish the events in the background."""
    async with services.store.read() as session:
        if await session.get(Job, job_id) is None:
            raise NotFound(f"no job {job_id!r}", code="job_not_found")
        events = await st.events_after(session, job_id, 0)
    if job_id in services.replays:
        raise Conflict(
            f"a replay of job {job_id!r} is still running ({services.replays[job_id]})", code="replay_running"
        )
    replay_id = new_id("rpl_")
    offsets = replay_offsets([e.received_at for e in events], speed)
    live = [LiveEvent(job_id, e.seq, e.type, e.data, iso(e.received_at), replay_id) for e in events]
    services.replays[job_id] = replay_id
    services.replay_tasks[job_id] = services.spawn(
        _publish(services, job_id, replay_id, live, offsets), name=f"replay-{job_id}"
    )
    return {
        "replay_id": replay_id,
        "job_id": job_id,
        "events": len(live),
        "speed": "max" if speed is None else speed,
        "duration_s": round(offsets[-1], 3) if offsets else 0.0,
    }


def cancel_replay(services: Services, job_id: str) -> dict:
    """Stop the replay of a job that this process is sending; the events already sent stay sent."""
    replay_id, task = services.replays.get(job_id), services.replay_tasks.get(job_id)
    if replay_id is None or task is None or task.done():
        raise NotFound(f"no replay of job {job_id!r} is running here", code="replay_not_running")
    task.cancel()
    del services.replays[job_id]  # a new replay may start at once; the canceled task cleans up only its own entry
    del services.replay_tasks[job_id]
    log.info("replay %s of job %s canceled", replay_id, job_id)
    return {"replay_id": replay_id, "job_id": job_id, "canceled": True}


async def _publish(
    services: Services, job_id: str, replay_id: str, events: list[LiveEvent], offsets: list[float]
) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        for event, offset in zip(events, offsets):
            delay = started + offset - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            await services.announce(event)
        log.info("replay %s of job %s: %d events sent", replay_id, job_id, len(events))
    finally:
        if services.replays.get(job_id) == replay_id:
            del services.replays[job_id]
            services.replay_tasks.pop(job_id, None)
