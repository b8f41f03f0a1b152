"""Follow jobs live over Socket.IO: subscribe with after_seq, resubscribe after any reconnect.

The backend replays every stored event after `after_seq` before live ones, so a follower that lost
its connection resubscribes with the last seq it handled and misses nothing. python-socketio runs
event handlers inside its read loop, so handlers only record; subscribing happens in our own task.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Protocol
from urllib.parse import urlsplit

import socketio

from . import errors
from .tracking import JobTrack

EVENT_TYPES = ("import.queued", "import.progress", "import.completed", "import.failed", "import.canceled")
ACK_TIMEOUT_S = 15.0
CATCH_UP_GRACE_S = 5.0  # after a terminal snapshot, wait this long at most for its events to arrive


class Display(Protocol):
    def event(self, track: JobTrack, event_type: str | None, data: dict | None) -> None: ...

    def status(self, message: str) -> None: ...


def socket_target(url: str) -> tuple[str, str]:
    """(server URL, socketio_path) for a backend URL; a path prefix (a proxy's /ferry) moves the endpoint too."""
    parts = urlsplit(url)
    prefix = parts.path.strip("/")
    return f"{parts.scheme}://{parts.netloc}", f"{prefix}/socket.io" if prefix else "socket.io"


def backoff(attempt: int) -> float:
    """Seconds before reconnect attempt `attempt` (1, 2, …): 0.5, 1, 2, 4, then 5."""
    return min(5.0, 0.5 * 2 ** max(0, attempt - 1))


class Follower:
    """Keeps every given job subscribed until each one has ended (or `timeout_s` passes)."""

    def __init__(
        self,
        url: str,
        token: str,
        tracks: list[JobTrack],
        display: Display,
        *,
        give_up_after_s: float = 60.0,
        timeout_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.url = url
        self.token = token
        self.tracks = {t.job_id: t for t in tracks}
        self.display = display
        self.give_up_after_s = give_up_after_s
        self.timeout_s = timeout_s
        self.clock = clock
        self._changed = asyncio.Event()
        self._lost = asyncio.Event()
        self._refusal: dict | None = None

    def finished(self) -> bool:
        return all(t.terminal and t.caught_up for t in self.tracks.values())

    def _nearly_finished(self) -> bool:
        return all(t.terminal for t in self.tracks.values())

    def _client(self) -> socketio.AsyncClient:
        sio = socketio.AsyncClient(reconnection=False, handle_sigint=False)  # Ctrl-C ends the command, not the socket
        for name in EVENT_TYPES:
            sio.on(name, self._handler(name))

        async def on_notice(snapshot, *_rest) -> None:
            track = self.tracks.get(str(snapshot.get("id"))) if isinstance(snapshot, dict) else None
            if track is not None and track.apply_notice(snapshot, self.clock()):
                self.display.event(track, None, None)
                self._changed.set()

        sio.on("job.snapshot", on_notice)

        async def on_disconnect(*_args) -> None:
            self._lost.set()
            self._changed.set()

        async def on_connect_error(data=None, *_args) -> None:
            self._refusal = data if isinstance(data, dict) else {"message": str(data)}

        sio.on("disconnect", on_disconnect)
        sio.on("connect_error", on_connect_error)
        return sio

    def _handler(self, name: str):
        async def handle(data, meta=None, *_rest) -> None:
            if isinstance(meta, dict) and meta.get("replay"):  # an operator replay: old seqs, already counted
                return
            track = self.tracks.get(str(data.get("job_id"))) if isinstance(data, dict) else None
            if track is not None and track.apply_event(data, self.clock()):
                self.display.event(track, name, data)
                self._changed.set()

        return handle

    async def run(self) -> list[JobTrack]:
        started = self.clock()
        last_ok = started
        attempt = 0
        while True:
            sio = self._client()
            self._lost.clear()
            self._refusal = None
            try:
                server, path = socket_target(self.url)
                await sio.connect(server, auth={"token": self.token}, socketio_path=path, wait_timeout=10)
            except socketio.exceptions.ConnectionError as exc:
                self._raise_if_refused()
                attempt += 1
                if self.clock() - last_ok > self.give_up_after_s:
                    raise errors.Unreachable(
                        f"lost the live connection to {self.url} for over {self.give_up_after_s:.0f} s ({exc})"
                    ) from None
                self.display.status(f"cannot connect to {self.url} ({exc}); retrying")
                await asyncio.sleep(backoff(attempt))
                continue
            try:
                attempt = 0
                outcome = await self._wait(started) if await self._subscribe_all(sio) else "lost"
            finally:
                if sio.connected:
                    await sio.disconnect()
            if outcome == "done":
                return list(self.tracks.values())
            last_ok = self.clock()
            self.display.status("live connection lost; reconnecting and resuming after the last event seen")

    def _raise_if_refused(self) -> None:
        refusal = self._refusal or {}
        code = (refusal.get("data") or {}).get("code") if isinstance(refusal.get("data"), dict) else None
        if code == "unauthorized":
            raise errors.Unauthorized(f"the backend refused the live connection: {refusal.get('message')}")

    async def _subscribe_all(self, sio: socketio.AsyncClient) -> bool:
        """Subscribe every unfinished job after its last seen seq; False when the connection went meanwhile."""
        for track in self.tracks.values():
            if track.terminal and track.caught_up:
                continue
            try:
                ack = await sio.call(
                    "subscribe", {"job_id": track.job_id, "after_seq": track.seen_seq}, timeout=ACK_TIMEOUT_S
                )
            except (socketio.exceptions.TimeoutError, socketio.exceptions.BadNamespaceError):
                return False
            if not isinstance(ack, dict) or not ack.get("ok"):
                error = (ack or {}).get("error") or {} if isinstance(ack, dict) else {}
                code, message = error.get("code") or "refused", error.get("message") or "subscribe refused"
                if code == "not_found":
                    raise errors.NotFound(message, code="job_not_found")
                raise errors.Refused(message, code=code)
            if track.apply_snapshot(ack["snapshot"], self.clock()):
                self.display.event(track, None, None)
        return True

    async def _wait(self, started: float) -> str:
        """Until every job ended and its events arrived ("done") or the connection dropped ("lost")."""
        terminal_since: float | None = None
        while True:
            if self.finished():
                return "done"
            if self._lost.is_set():
                return "lost"
            now = self.clock()
            if self._nearly_finished():
                terminal_since = terminal_since or now
                if now - terminal_since > CATCH_UP_GRACE_S:
                    return "done"
            if self.timeout_s is not None and now - started > self.timeout_s:
                running = [t.job_id for t in self.tracks.values() if not t.terminal]
                raise errors.Failed(
                    f"gave up after {self.timeout_s:.0f} s; still running: {', '.join(running)}", code="timeout"
                )
            self._changed.clear()
            try:  # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a Ctrl-C's cancellation
                async with asyncio.timeout(0.5):
                    await self._changed.wait()
            except TimeoutError:
                pass
