"""Service processes under test: start one with its output in a log file, wait for /healthz, stop it.

Every suite starts real `ferry-backend serve` and `ferry-importer serve` processes (and Redis, Postgres,
nginx); these few functions are the one place that knows how to do it without leaking a process.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def tail(path: Path, size: int = 4000) -> str:
    return path.read_text(errors="replace")[-size:] if path.exists() else ""


def spawn(argv: list[str], env: dict, log_path: Path) -> subprocess.Popen:
    """Start `argv` with stdout and stderr appended to `log_path`."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        return subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)


def wait_healthy(proc: subprocess.Popen, url: str, log_path: Path, what: str, timeout: float) -> None:
    """Until GET url/healthz answers 200; an exit or the timeout raises with the log's tail (and kills it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}: {tail(log_path)}")
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    terminate(proc, signal.SIGKILL)
    raise RuntimeError(f"{what} did not start within {timeout:.0f} s: {tail(log_path)}")


def wait_port(proc: subprocess.Popen, port: int, log_path: Path, what: str, timeout: float = 30.0) -> None:
    """Until 127.0.0.1:port accepts connections (servers without an HTTP health check)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}: {tail(log_path)}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on {port} within {timeout:.0f} s: {tail(log_path)}")


def terminate(proc: subprocess.Popen | None, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int | None:
    """Send `sig` and wait; SIGKILL when it does not exit in `timeout`. The exit code (None if never started)."""
    if proc is None:
        return None
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    return proc.returncode
