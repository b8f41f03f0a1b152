#!/usr/bin/env python3
"""Find or start a Docker engine for `make run` and the tests (stdlib only, so it runs before any venv).

Order: DOCKER_HOST (or the default socket) if it answers; else a private engine under
.run/engines/NAME, installing Debian's docker.io first when dockerd is missing and we are root
with apt. A private engine is stopped only by whoever started it (the pid file says which).

    python3 scripts/engine.py up [--name N]     # prints DOCKER_HOST=unix://…
    python3 scripts/engine.py down [--name N]
    python3 scripts/engine.py status [--name N]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUN_DIR = Path(os.environ.get("FERRY_RUN_DIR", ROOT / ".run"))
DEFAULT_SOCKET = "/var/run/docker.sock"
HINT = (
    "No Docker engine is available: set DOCKER_HOST to a running engine, or install Debian's "
    "docker.io (apt-get install docker.io) and run this again as root."
)


class EngineUnavailable(RuntimeError):
    pass


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._path)
        self.sock = sock


def ping(docker_host: str, timeout: float = 2.0) -> dict | None:
    """The engine's /version answer, or None when nothing answers at docker_host."""
    try:
        if docker_host.startswith("unix://"):
            conn: http.client.HTTPConnection = _UnixHTTPConnection(docker_host[len("unix://") :], timeout)
        elif docker_host.startswith("tcp://"):
            host, _, port = docker_host[len("tcp://") :].partition(":")
            conn = http.client.HTTPConnection(host, int(port or 2375), timeout=timeout)
        else:
            return None
        conn.request("GET", "/version")
        response = conn.getresponse()
        body = response.read()
        conn.close()
        return json.loads(body) if response.status == 200 else None
    except (OSError, ValueError, http.client.HTTPException):
        return None


def _paths(name: str) -> dict[str, Path]:
    base = RUN_DIR / "engines" / name
    return {
        "base": base,
        "data": base / "data",
        "exec": base / "exec",
        "socket": base / "docker.sock",
        "pid": base / "docker.pid",
        "log": base / "dockerd.log",
    }


def _pid_alive(pid_file: Path) -> int | None:
    try:
        pid = int(pid_file.read_text().strip())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def _ensure_dockerd() -> str:
    dockerd = shutil.which("dockerd")
    if dockerd:
        return dockerd
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("dockerd is missing: installing Debian's docker.io …", file=sys.stderr)
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-qq"], check=False, env=env)
        done = subprocess.run(["apt-get", "install", "-y", "-qq", "docker.io"], env=env)
        dockerd = shutil.which("dockerd")
        if done.returncode == 0 and dockerd:
            return dockerd
    raise EngineUnavailable(HINT)


def up(name: str = "default", use_existing: bool = True, timeout: float = 60.0) -> tuple[str, bool]:
    """Return (DOCKER_HOST that answers, whether this call started it), starting a private engine when needed."""
    if use_existing:
        for candidate in (os.environ.get("DOCKER_HOST"), f"unix://{DEFAULT_SOCKET}"):
            if candidate and ping(candidate):
                return candidate, False
    paths = _paths(name)
    host = f"unix://{paths['socket']}"
    if _pid_alive(paths["pid"]) and ping(host):
        return host, False
    dockerd = _ensure_dockerd()
    for key in ("data", "exec"):
        paths[key].mkdir(parents=True, exist_ok=True)
    paths["pid"].unlink(missing_ok=True)
    paths["socket"].unlink(missing_ok=True)
    log = open(paths["log"], "ab")
    proc = subprocess.Popen(
        [
            dockerd,
            "--iptables=false",
            "--ip-forward=false",
            "--bridge=none",
            "--storage-driver=vfs",
            f"--data-root={paths['data']}",
            f"--exec-root={paths['exec']}",
            f"-H={host}",
            f"--pidfile={paths['pid']}",
        ],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
        start_new_session=True,
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ping(host):
            return host, True
        if proc.poll() is not None:  # dockerd gave up (not root, no cgroups, a clash): say so now, not in a minute
            tail = paths["log"].read_text(errors="replace").strip().splitlines()[-1:] or ["(no output)"]
            raise EngineUnavailable(
                f"dockerd exited with code {proc.returncode} while starting ({tail[0][-200:]}); see {paths['log']}. "
                + HINT
            )
        time.sleep(0.2)
    down(name)
    raise EngineUnavailable(f"The private Docker engine did not answer within {timeout:.0f} s; see {paths['log']}.")


def down(name: str = "default", timeout: float = 30.0) -> bool:
    """Stop the private engine NAME if this project started it; True when one was stopped."""
    paths = _paths(name)
    pid = _pid_alive(paths["pid"])
    if pid is None:
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _pid_alive(paths["pid"]) == pid:
        time.sleep(0.2)
    if _pid_alive(paths["pid"]) == pid:
        os.kill(pid, signal.SIGKILL)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["up", "down", "status"])
    parser.add_argument("--name", default="default", help="private engine name (its run directory)")
    parser.add_argument("--private", action="store_true", help="always use a private engine")
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            host, started = up(args.name, use_existing=not args.private)
            print(f"DOCKER_HOST={host}")
            print(f"FERRY_ENGINE_STARTED={int(started)}")
        elif args.command == "down":
            print("stopped" if down(args.name) else "not running (or not ours)")
        else:
            host = f"unix://{_paths(args.name)['socket']}"
            version = ping(host)
            print(f"{host}: {'Docker ' + version.get('Version', '?') if version else 'not answering'}")
    except EngineUnavailable as exc:
        print(str(exc), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
