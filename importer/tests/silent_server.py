"""A source server that accepts connections and never answers: what a hung download looks like."""

from __future__ import annotations

import socket
import threading
import time


class SilentServer:
    """Accepts connections and never answers (a hung source); records when each client hangs up."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.hangups: list[float] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def url(self, name: str = "") -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}/files/{name}"

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._hold, args=(conn,), daemon=True).start()

    def _hold(self, conn: socket.socket) -> None:
        with conn:
            try:
                while conn.recv(4096):
                    pass
            except OSError:
                pass
            self.hangups.append(time.monotonic())

    def close(self) -> None:
        self._listener.close()
