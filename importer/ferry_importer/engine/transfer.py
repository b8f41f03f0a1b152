"""Moving the stream into the engine: the request body, the two endpoints, and the stall watchdog."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from ferry_importer.archive.reader import Channel, End, Failed, Held, Piece
from ferry_importer.engine.client import Engine
from ferry_importer.errors import EngineError, EngineStalled


class Activity:
    """When the engine last took bytes or said something, and whether we are waiting on it right now."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.last = clock()
        self.waiting = False

    def touch(self) -> None:
        self.last = self.clock()

    def stalled_for(self) -> float:
        return self.clock() - self.last if self.waiting else 0.0


@dataclass
class LoadOutcome:
    image_ids: list[str] = field(default_factory=list)
    refs: list[str] = field(default_factory=list)


async def body_stream(
    channel: Channel,
    activity: Activity,
    on_sent: Callable[[int, int], None],
    on_end: Callable[[End], Awaitable[None]],
    on_all_sent: Callable[[], Awaitable[None]],
) -> AsyncIterator[bytes]:
    """The request body: pieces from the reader, always one behind, so the last piece and the
    end-of-archive marker leave only after `on_end` has accepted the whole stream (digest, layout).
    Raising from `on_end` breaks the request before the engine could commit anything."""
    previous: Piece | None = None
    held = b""

    async def send(data: bytes) -> AsyncIterator[bytes]:
        activity.waiting = True
        activity.touch()
        yield data
        activity.touch()
        activity.waiting = False

    while True:
        item = await channel.get()
        if isinstance(item, Failed):
            raise item.error
        if isinstance(item, Piece):
            if previous is not None:
                async for data in send(previous.data):
                    yield data
                on_sent(previous.consumed, len(previous.data))
            previous = item
        elif isinstance(item, Held):
            held = item.data
        elif isinstance(item, End):
            await on_end(item)
            last = previous.data if previous else b""
            for data in (last, held):
                if data:
                    async for out in send(data):
                        yield out
            on_sent(item.consumed, len(last) + len(held))
            activity.waiting = True
            activity.touch()
            await on_all_sent()
            return


async def import_rootfs(
    engine: Engine,
    body: AsyncIterator[bytes],
    changes: list[str],
    activity: Activity,
    comment: str = "imported by ferry-importer",
) -> str:
    """POST /images/create?fromSrc=- (untagged: the tag is added only after verification); `comment` becomes
    the image's Comment."""
    params: list[tuple[str, str | int | float | bool | None]] = [("fromSrc", "-"), ("message", comment)]
    params += [("changes", c) for c in changes]
    image_id = None
    async with engine.post_stream("/images/create", params, body) as messages:
        async for message in messages:
            activity.touch()
            status = str(message.get("status", ""))
            if status.startswith("sha256:"):
                image_id = status.strip()
    if not image_id:
        raise EngineError("the engine finished the import without naming the image it created")
    return image_id


class LoadWatcher(Protocol):
    """Told what the engine reports while it loads (the progress driver)."""

    async def layer_line(self, layer_id: str, current: int, total: int) -> None: ...

    def image_loaded(self, ref: str) -> None: ...


def layer_progress(message: dict) -> tuple[str, int, int] | None:
    """(id, current, total) of a `{"status":"Loading layer","progressDetail":{…},"id":…}` line, else None."""
    if message.get("status") != "Loading layer":
        return None
    detail = message.get("progressDetail")
    if not isinstance(detail, dict):
        return None
    current, total = detail.get("current"), detail.get("total")
    if not isinstance(current, int) or not isinstance(total, int) or current < 0 or total < 0:
        return None
    return str(message.get("id", ""))[:80], current, total


async def load_archive(
    engine: Engine, body: AsyncIterator[bytes], activity: Activity, watcher: LoadWatcher | None = None
) -> LoadOutcome:
    """POST /images/load?quiet=0, collect what the engine says it loaded, and pass its layer progress on."""
    outcome = LoadOutcome()
    async with engine.post_stream("/images/load", {"quiet": "0"}, body) as messages:
        async for message in messages:
            activity.touch()
            layer = layer_progress(message)
            if layer is not None:
                if watcher is not None:
                    await watcher.layer_line(*layer)
                continue
            text = str(message.get("stream", "")).strip()
            if text.startswith("Loaded image ID:"):
                loaded = text.split(":", 1)[1].strip()
                outcome.image_ids.append(loaded)
            elif text.startswith("Loaded image:"):
                loaded = text.split(":", 1)[1].strip()
                outcome.refs.append(loaded)
            else:
                continue
            if watcher is not None:
                watcher.image_loaded(loaded)
    return outcome


async def supervise(task: asyncio.Task, activity: Activity, stall_timeout: float, poll: float = 0.25):
    """Wait for the engine request; abort it with EngineStalled when the engine neither takes bytes nor
    answers for `stall_timeout` seconds. Waiting this way does not cancel `task` if we are cancelled."""
    while True:
        done, _ = await asyncio.wait({task}, timeout=poll)
        if done:
            return task.result()
        stalled = activity.stalled_for()
        if stalled >= stall_timeout:
            await cancel_and_wait(task)
            raise EngineStalled(
                f"the engine took no bytes and sent no output for {stalled:.0f} s; the import was aborted",
                f"stall timeout {stall_timeout:g} s",
            )


async def cancel_and_wait(task: asyncio.Task) -> None:
    """Cancel `task` and wait until it has finished; its own outcome is superseded by the reason we cancelled."""
    task.cancel()
    await asyncio.wait({task})
    if not task.cancelled():
        task.exception()  # mark as retrieved
