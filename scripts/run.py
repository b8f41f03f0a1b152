"""`make run`: the Docker engine, the backend on 127.0.0.1:8000 and one local importer registered as host `local`.

Secrets are generated once and kept under .run/ (mode 600) so a restart keeps tokens valid; the admin token is
printed and written to .run/admin-token unless FERRY_ADMIN_TOKEN is set. Stays in the foreground; Ctrl-C stops
everything it started (and the private engine, if it started that too).
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import engine  # noqa: E402  (scripts/engine.py, stdlib only)

RUN = Path(os.environ.get("FERRY_RUN_DIR") or ROOT / ".run")  # tests point it elsewhere
BIN = Path(sys.executable).parent
BACKEND_LISTEN = os.environ.get("FERRY_RUN_BACKEND", "127.0.0.1:8000")
IMPORTER_LISTEN = os.environ.get("FERRY_RUN_IMPORTER", "127.0.0.1:8700")
HOST_NAME = "local"


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.chmod(path, 0o600)


def _secrets() -> dict[str, str]:
    """Generated once per checkout; kept so restarts keep the same tokens and webhook secret."""
    path = RUN / "secrets.json"
    try:
        stored = json.loads(path.read_text())
    except (OSError, ValueError):
        stored = {}
    stored.setdefault("importer_token", secrets.token_urlsafe(32))
    stored.setdefault("webhook_secret", "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode())
    stored.setdefault("admin_token", secrets.token_urlsafe(32))
    _write_private(path, json.dumps(stored, indent=2))
    return stored


def _wait_healthy(url: str, proc: subprocess.Popen, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with code {proc.returncode} while starting; see the log above.")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"{what} did not answer {url} within {timeout:.0f} s.")


def _busy(address: str) -> bool:
    """Something already listens there (or may not be bound): checked before anything starts, so another
    program answering on the port is never taken for ferry."""
    host, _, port = address.rpartition(":")
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host.strip("[]"), int(port)))
        except OSError:
            return True
    return False


def _ports_free() -> bool:
    free = True
    for variable, address in (("FERRY_RUN_BACKEND", BACKEND_LISTEN), ("FERRY_RUN_IMPORTER", IMPORTER_LISTEN)):
        if _busy(address):
            host = address.rpartition(":")[0]
            print(
                f"make run: {address} is already in use by another program; choose another address with "
                f"{variable}={host}:PORT (e.g. {variable}={host}:{_spare_port(host)} make run)",
                file=sys.stderr,
            )
            free = False
    return free


def _spare_port(host: str) -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host.strip("[]"), 0))
        return probe.getsockname()[1]


def main() -> int:
    if not _ports_free():
        return 1
    try:
        docker_host, engine_started = engine.up("run")
    except engine.EngineUnavailable as exc:
        print(exc, file=sys.stderr)
        return 1
    keys = _secrets()
    admin_token = os.environ.get("FERRY_ADMIN_TOKEN") or keys["admin_token"]
    if "FERRY_ADMIN_TOKEN" not in os.environ:
        _write_private(RUN / "admin-token", admin_token + "\n")
    public_url = f"http://{BACKEND_LISTEN}"
    # A terminal reads text logs better; deployments keep the JSON default. Either can be overridden.
    backend_env = dict(
        {"FERRY_LOG_FORMAT": "text", **os.environ},
        FERRY_DATA_DIR=str(RUN / "backend"),
        FERRY_PUBLIC_URL=public_url,
        FERRY_ADMIN_TOKEN=admin_token,
    )
    importer_env = dict(
        {"FERRY_IMPORTER_LOG_FORMAT": "text", **os.environ},
        DOCKER_HOST=docker_host,
        FERRY_IMPORTER_TOKEN=keys["importer_token"],
        FERRY_IMPORTER_WEBHOOK_SECRET=keys["webhook_secret"],
        FERRY_IMPORTER_NAME=HOST_NAME,
        FERRY_IMPORTER_DATA_DIR=str(RUN / "importer"),
        FERRY_IMPORTER_ALLOWED_URL_PREFIXES=f"{public_url}/api/uploads/",
        FERRY_IMPORTER_CALLBACK_URL_PREFIXES=f"{public_url}/api/callbacks/",
        FERRY_IMPORTER_HEARTBEAT_URL=f"{public_url}/api/callbacks/{HOST_NAME}",
    )
    subprocess.run(
        [BIN / "ferry-backend", "host", "add", HOST_NAME, "--url", f"http://{IMPORTER_LISTEN}", "--replace"],
        env=dict(
            backend_env, FERRY_HOST_TOKEN=keys["importer_token"], FERRY_HOST_WEBHOOK_SECRET=keys["webhook_secret"]
        ),
        check=True,
        stdout=subprocess.DEVNULL,
    )
    children: list[subprocess.Popen] = []
    stopping = crashed = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        importer = subprocess.Popen([BIN / "ferry-importer", "serve", "--listen", IMPORTER_LISTEN], env=importer_env)
        children.append(importer)
        backend = subprocess.Popen([BIN / "ferry-backend", "serve", "--listen", BACKEND_LISTEN], env=backend_env)
        children.append(backend)
        _wait_healthy(f"http://{IMPORTER_LISTEN}/healthz", importer, "the importer")
        _wait_healthy(f"{public_url}/healthz", backend, "the backend")
        token_note = (
            "FERRY_ADMIN_TOKEN" if "FERRY_ADMIN_TOKEN" in os.environ else f"{admin_token}  (also in .run/admin-token)"
        )
        print(
            f"\nferry is running\n  web page:      {public_url}/\n  admin token:   {token_note}\n"
            f"  importer:      http://{IMPORTER_LISTEN} (host '{HOST_NAME}', engine {docker_host})\n"
            f"  simulate:      ferry simulate --to {public_url} --host {HOST_NAME} --host-secret-from {RUN / 'secrets.json'}"
            " --speed 10\n"
            "Press Ctrl-C to stop.\n",
            flush=True,
        )
        while not stopping and all(child.poll() is None for child in children):
            time.sleep(0.5)
        for child in children:
            if child.poll() is not None and not stopping:
                print(f"{child.args[0]} exited with code {child.returncode}; stopping the rest.", file=sys.stderr)
                crashed = True
    finally:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(timeout=20)
            except subprocess.TimeoutExpired:
                child.kill()
        if engine_started:
            engine.down("run")
    return 1 if crashed else 0


if __name__ == "__main__":
    raise SystemExit(main())
