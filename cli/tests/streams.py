"""What streams in the CLI tests: a python-socketio client recording what a browser would see, `ferry`
running in the background with its output read line by line, and a TCP proxy whose connections can be cut."""

from __future__ import annotations

import asyncio
import queue
import subprocess
import threading
import time

import socketio

from cli.tests.support import EVENT_TYPES, FERRY, Backend, child_env, free_port


class SocketRecorder:
    """A real python-socketio client in the `jobs` room (or one job's room) recording (type, data, meta)."""

    def __init__(self, backend: Backend):
        self.backend = backend
        self.sio = socketio.AsyncClient(reconnection=False)
        self.received: list[tuple[str, dict, dict]] = []
        for name in EVENT_TYPES:
            self.sio.on(name, self._handler(name))

    def _handler(self, name: str):
        async def handle(data, meta=None):
            self.received.append((name, data, meta))

        return handle

    async def connect(self) -> SocketRecorder:
        await self.sio.connect(
            self.backend.url, auth={"token": self.backend.admin_token}, transports=["websocket"], wait_timeout=10
        )
        return self

    async def subscribe_all(self) -> dict:
        return await self.sio.call("subscribe_all", {}, timeout=10)

    async def subscribe(self, job_id: str, after_seq: int = 0) -> dict:
        return await self.sio.call("subscribe", {"job_id": job_id, "after_seq": after_seq}, timeout=10)

    def of(self, job_id: str) -> list[tuple[str, dict]]:
        return [(name, data) for name, data, _ in self.received if data.get("job_id") == job_id]

    async def wait_terminal(self, job_id: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not any(name in EVENT_TYPES[2:] for name, _ in self.of(job_id)):
            assert time.monotonic() < deadline, f"no terminal event for {job_id}; got {len(self.of(job_id))} events"
            await asyncio.sleep(0.05)

    async def close(self) -> None:
        if self.sio.connected:
            await self.sio.disconnect()


class CuttableProxy:
    """A TCP proxy in a thread. `cut(for_s)` drops every open connection and refuses new ones for a while:
    a real network failure between the CLI and the backend, with the backend itself untouched."""

    def __init__(self, target_port: int):
        self.target_port = target_port
        self.port = free_port()
        self._closed_until = 0.0
        self._writers: set[asyncio.StreamWriter] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> CuttableProxy:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)

    async def _accept(self, reader, writer) -> None:
        if time.monotonic() < self._closed_until:
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        self._writers.update((writer, up_writer))
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def _pipe(self, reader, writer) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    def cut(self, for_s: float) -> None:
        def cut_now() -> None:
            self._closed_until = time.monotonic() + for_s
            for writer in list(self._writers):
                writer.transport.abort()
            self._writers.clear()

        self._loop.call_soon_threadsafe(cut_now)

    def stop(self) -> None:
        async def close() -> None:
            self._server.close()
            for writer in list(self._writers):
                writer.transport.abort()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


class FerryProcess:
    """`ferry` running in the background; its stdout lines arrive in a queue as they are printed."""

    def __init__(self, *args: str, url: str, token: str):
        env = child_env(FERRY_URL=url, FERRY_TOKEN=token)
        self.proc = subprocess.Popen([FERRY, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.stderr = ""
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def next_line(self, timeout: float = 30) -> str | None:
        return self.lines.get(timeout=timeout)

    def finish(self, timeout: float = 60) -> int:
        try:
            self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self.stderr = self.proc.stderr.read()
        return self.proc.returncode
