"""A TCP relay in front of the backend that plays two networks the tests need, with real sockets:

- a slow lab link (`rate_bps`): the backend's answers, i.e. the archive an importer pulls, pass at a
  set rate, callbacks the other way at full speed. On a laptop-sized archive the real import is over
  before anyone sees the bar move; real lab hosts pull through WAN links of a few MB/s.
- a proxy that breaks websocket upgrades (`refuse_websocket`): a connection whose first request asks
  for `Upgrade: websocket` gets `502 Bad Gateway`, everything else passes. This is the failure ferry
  was built to survive; the browser sees exactly what it sees behind such a proxy.

It runs an asyncio loop in a thread. While the backend is down, a new connection is closed at once
(`hold_s=0`, as on a plain network) or held until the backend answers again (`hold_s>0`, as a load
balancer queues requests during a restart): the importer's next attempt then goes through the moment
the backend is back instead of after its own, growing, back-off.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time

from backend.tests.support import free_port

CHUNK = 16 * 1024
MAX_HEAD = 64 * 1024
UPGRADE = re.compile(rb"^upgrade:\s*websocket\s*$", re.IGNORECASE | re.MULTILINE)
REFUSAL = b"HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain\r\nContent-Length: 30\r\nConnection: close\r\n\r\nwebsocket upgrades not allowed"


class Relay:
    def __init__(
        self, upstream_port: int, *, rate_bps: float | None = None, refuse_websocket: bool = False, hold_s: float = 0.0
    ):
        self.upstream_port = upstream_port
        self.hold_s = hold_s
        self.port = free_port()
        self.rate_bps = rate_bps  # upstream → client; None: no limit
        self.refuse_websocket = refuse_websocket
        self.refused = 0  # upgrade requests answered 502
        self._next_free = 0.0  # one shared bucket: the link's capacity, not each connection's
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.base_events.Server | None = None
        self._thread: threading.Thread | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Relay:
        ready = threading.Event()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            self._server = self._loop.run_until_complete(asyncio.start_server(self._accept, "127.0.0.1", self.port))
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name=f"relay-{self.port}", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the relay did not start")
        return self

    def stop(self) -> None:
        if self._loop is None:
            return

        async def close() -> None:
            self._server.close()
            for writer in list(self._writers):
                writer.close()
            await self._server.wait_closed()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
        self._loop = None

    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        self._writers.add(client_writer)
        try:
            head = await self._first_head(client_reader) if self.refuse_websocket else b""
            if self.refuse_websocket and UPGRADE.search(head):
                self.refused += 1
                client_writer.write(REFUSAL)
                await client_writer.drain()
                return
            upstream = await self._connect_upstream()
            if upstream is None:
                return  # the backend is down: the client sees its connection closed
            upstream_reader, upstream_writer = upstream
            self._writers.add(upstream_writer)
            upstream_writer.write(head)
            up = asyncio.create_task(self._pipe(client_reader, upstream_writer, throttled=False))
            down = asyncio.create_task(self._pipe(upstream_reader, client_writer, throttled=True))
            await asyncio.wait({up, down}, return_when=asyncio.FIRST_COMPLETED)
            for task in (up, down):
                task.cancel()
            upstream_writer.close()
            self._writers.discard(upstream_writer)
        except (ConnectionError, OSError):
            pass
        finally:
            client_writer.close()
            self._writers.discard(client_writer)

    async def _connect_upstream(self):
        deadline = time.monotonic() + self.hold_s
        while True:
            try:
                return await asyncio.open_connection("127.0.0.1", self.upstream_port)
            except OSError:
                if time.monotonic() >= deadline:
                    return None
                await asyncio.sleep(0.2)

    @staticmethod
    async def _first_head(reader: asyncio.StreamReader) -> bytes:
        """The bytes up to the end of the first request's headers (or whatever came before EOF)."""
        head = b""
        while b"\r\n\r\n" not in head and len(head) < MAX_HEAD:
            chunk = await reader.read(CHUNK)
            if not chunk:
                break
            head += chunk
        return head

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, throttled: bool) -> None:
        try:
            while chunk := await reader.read(CHUNK):
                if throttled:
                    await self._take(len(chunk))
                writer.write(chunk)
                await writer.drain()
        except (ConnectionError, OSError):
            pass

    async def _take(self, size: int) -> None:
        rate = self.rate_bps
        if not rate:
            return
        now = time.monotonic()
        start = max(now, self._next_free)
        self._next_free = start + size / rate
        if start > now:
            await asyncio.sleep(start - now)
