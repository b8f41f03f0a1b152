"""Test helpers for the importer service: a real signed-webhook receiver and a real Range-capable file server.

Both are plain `http.server` servers on 127.0.0.1 in a thread: real sockets, real HTTP, and they can
be stopped (connection refused) and started again on the same port to play an outage.
"""

from __future__ import annotations

import base64
import json
import os
import re
import select
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from standardwebhooks import Webhook, WebhookVerificationError

from tests.support.process import free_port

SECRET = "whsec_" + base64.b64encode(b"ferry-test-secret-0123456789abcd").decode()
TOKEN = "test-token-" + "0123456789abcdef"


def wait_until(predicate: Callable[[], object], timeout: float, interval: float = 0.05, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):  # a client that hangs up mid-answer is normal here
        pass


class _Server:
    """A ThreadingHTTPServer we can stop and restart on the same port."""

    def __init__(self, handler_factory, port: int | None = None):
        self.port = port or free_port()
        self._handler_factory = handler_factory
        self._httpd: _QuietServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        deadline = time.monotonic() + 10
        while True:
            try:
                self._httpd = _QuietServer(("127.0.0.1", self.port), self._handler_factory())
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    @property
    def running(self) -> bool:
        return self._httpd is not None


@dataclass
class Delivery:
    headers: dict[str, str]
    body: bytes
    verified: bool
    status: int
    received_at: float

    @property
    def webhook_id(self) -> str:
        return self.headers.get("webhook-id", "")

    def json(self) -> dict:
        return json.loads(self.body)


@dataclass
class WebhookReceiver:
    """Verifies every POST with the standardwebhooks library; answers 401 to anything unsigned or forged."""

    secret: str = SECRET
    port: int | None = None
    deliveries: list[Delivery] = field(default_factory=list)
    # (status, headers) to answer verified deliveries with; a callable gets the parsed body.
    answer: Callable[[dict], tuple[int, dict[str, str]]] | None = None
    delay_s: float = 0.0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._server = _Server(self._handler, self.port)
        self.port = self._server.port

    def url(self, path: str = "/api/callbacks/lab") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> WebhookReceiver:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def _handler(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output readable
                pass

            def do_POST(self):
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                try:
                    Webhook(receiver.secret).verify(body, headers, json_parse=False)
                    verified = True
                except (WebhookVerificationError, ValueError):
                    verified = False
                status, extra = 401, {}
                if verified:
                    status, extra = receiver.answer(json.loads(body)) if receiver.answer else (204, {})
                if receiver.delay_s:
                    time.sleep(receiver.delay_s)
                with receiver._lock:
                    receiver.deliveries.append(Delivery(headers, body, verified, status, time.time()))
                self.send_response(status)
                for key, value in extra.items():
                    self.send_header(key, value)
                self.send_header("content-length", "0")
                self.end_headers()

        return Handler

    def verified(self) -> list[Delivery]:
        with self._lock:
            return [d for d in self.deliveries if d.verified and 200 <= d.status < 300]

    def events(self, job_id: str | None = None, type_prefix: str = "import.") -> list[dict]:
        """Accepted events after dedupe by webhook-id, in arrival order (what a backend would apply)."""
        seen: set[str] = set()
        events = []
        for delivery in self.verified():
            if delivery.webhook_id in seen:
                continue
            seen.add(delivery.webhook_id)
            body = delivery.json()
            if not body["type"].startswith(type_prefix):
                continue
            if job_id is None or body["data"].get("job_id") == job_id:
                events.append(body)
        return events


class RangeFileServer:
    """Serves files from a directory with Range support; can drop a connection after N bytes, once per path,
    or stall at a byte offset (every GET of that path) until the client hangs up, noting when it did."""

    def __init__(self, root: Path, port: int | None = None):
        self.root = root
        self.drop_after: dict[str, int] = {}  # path -> byte count after which the first GET is cut
        self.throttle_bps: int | None = None
        self.requests: list[dict[str, str]] = []
        self.redirects: dict[str, str] = {}
        self.ranges = True  # False: ignore Range like a server that cannot resume
        self.on_drop: Callable[[Path], None] | None = None
        self.stall_at: dict[str, int] = {}  # path -> file offset where every GET stops sending and waits
        self.stalls: list[tuple[str, float]] = []  # (path, monotonic time) when a GET started to stall
        self.hangups: list[tuple[str, float]] = []  # (path, monotonic time) when a stalled client hung up
        self.head_delay_s = 0.0  # a slow server: HEAD answers only after this long
        self._server = _Server(self._handler, port)
        self.port = self._server.port

    def url(self, name: str, query: str = "") -> str:
        return f"http://127.0.0.1:{self.port}/files/{name}" + (f"?{query}" if query else "")

    def start(self) -> RangeFileServer:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def _stall(self, connection: socket.socket, key: str, limit_s: float = 300.0) -> None:
        """Send nothing more; return when the client closes its end (or after `limit_s`)."""
        self.stalls.append((key, time.monotonic()))
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:
            readable, _, _ = select.select([connection], [], [], 0.05)
            if not readable:
                continue
            try:
                if connection.recv(4096):
                    continue  # a pipelined request or stray bytes: the client is still there
            except OSError:
                pass
            self.hangups.append((key, time.monotonic()))
            return

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _target(self) -> Path | None:
                path = self.path.split("?", 1)[0]
                if path in server.redirects:
                    self.send_response(302)
                    self.send_header("location", server.redirects[path])
                    self.send_header("content-length", "0")
                    self.end_headers()
                    return None
                file = server.root / path.removeprefix("/files/")
                if not path.startswith("/files/") or not file.is_file():
                    self.send_response(404)
                    self.send_header("content-length", "0")
                    self.end_headers()
                    return None
                return file

            def do_HEAD(self):
                server.requests.append(
                    {"method": "HEAD", "path": self.path, **{k.lower(): v for k, v in self.headers.items()}}
                )
                time.sleep(server.head_delay_s)
                file = self._target()
                if file is None:
                    return
                stat = file.stat()
                self.send_response(200)
                self.send_header("content-length", str(stat.st_size))
                self.send_header("accept-ranges", "bytes")
                self.send_header("etag", f'"{stat.st_mtime_ns:x}-{stat.st_size:x}"')
                self.end_headers()

            def do_GET(self):
                server.requests.append(
                    {"method": "GET", "path": self.path, **{k.lower(): v for k, v in self.headers.items()}}
                )
                file = self._target()
                if file is None:
                    return
                stat = file.stat()
                size = stat.st_size
                etag = f'"{stat.st_mtime_ns:x}-{stat.st_size:x}"'
                start, end = 0, size - 1
                match = re.match(r"bytes=(\d+)-(\d*)$", self.headers.get("range", ""))
                if_range = self.headers.get("if-range")
                if match and server.ranges and (if_range is None or if_range == etag):
                    start = int(match.group(1))
                    end = min(size - 1, int(match.group(2))) if match.group(2) else size - 1
                    self.send_response(206)
                    self.send_header("content-range", f"bytes {start}-{end}/{size}")
                else:
                    self.send_response(200)
                self.send_header("content-length", str(end + 1 - start))
                self.send_header("accept-ranges", "bytes")
                self.send_header("etag", etag)
                self.end_headers()
                key = self.path.split("?", 1)[0]
                closed = bool(match and match.group(2))  # a metadata read, not the stream: never cut
                cut = None if closed else server.drop_after.pop(key, None)
                stall = server.stall_at.get(key)
                sent = 0
                # Throttled, the file goes out in twentieths of a second's worth: an even trickle, not bursts.
                step = max(1024, min(64 * 1024, server.throttle_bps // 20)) if server.throttle_bps else 64 * 1024
                with open(file, "rb") as fh:
                    fh.seek(start)
                    while True:
                        chunk = fh.read(min(step, end + 1 - start - sent))
                        if not chunk:
                            break
                        if stall is not None and start + sent + len(chunk) > stall:
                            self.wfile.write(chunk[: max(0, stall - start - sent)])
                            self.wfile.flush()
                            server._stall(self.connection, key)
                            self.close_connection = True
                            return
                        if cut is not None and sent + len(chunk) > cut:
                            self.wfile.write(chunk[: cut - sent])
                            self.wfile.flush()
                            if server.on_drop:  # before the cut, so the client's resume sees its effect
                                server.on_drop(file)
                            self.connection.shutdown(socket.SHUT_RDWR)
                            self.close_connection = True
                            return
                        self.wfile.write(chunk)
                        sent += len(chunk)
                        if server.throttle_bps:
                            time.sleep(len(chunk) / server.throttle_bps)

        return Handler


def stream_gets(requests: list[dict]) -> list[dict]:
    """The GETs that stream the archive (whole, or resumed with an open range), not the few closed-range reads
    that learn its uncompressed size before the import starts."""
    return [r for r in requests if r["method"] == "GET" and not re.fullmatch(r"bytes=\d+-\d+", r.get("range", ""))]


def random_bytes_file(path: Path, size: int) -> Path:
    path.write_bytes(os.urandom(size))
    return path
