"""The processes a benchmark run starts and always stops: the backend, the bare servers, the socket watchers."""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil

from tests.support.process import free_port, spawn, terminate, wait_healthy

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent


def cpu_seconds(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return times.user + times.system


class _Server:
    proc: subprocess.Popen
    url: str

    @property
    def process(self) -> psutil.Process:
        return psutil.Process(self.proc.pid)

    def __exit__(self, *exc) -> None:
        terminate(self.proc, timeout=15)


class BareServer(_Server):
    def __init__(self, kind: str):
        self.kind = kind
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> BareServer:
        self.proc = subprocess.Popen(
            [str(BIN / "python"), str(HERE / "bare_servers.py"), self.kind, "--port", str(self.port)]
        )
        wait_healthy(self.proc, self.url, Path(os.devnull), f"bare {self.kind} server", 120)
        return self


class BenchBackend(_Server):
    """`ferry-backend serve` with its own data dir and one registered host whose secret the bench signs with."""

    def __init__(self, data_dir: Path, host: str, **settings: str):
        self.settings = {f"FERRY_{k.upper()}": v for k, v in settings.items()}
        self.data_dir = data_dir
        self.host = host
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.admin_token = "fy_bench_" + secrets.token_hex(16)
        self.secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()

    def __enter__(self) -> BenchBackend:
        self.data_dir.mkdir(parents=True)
        env = {
            **os.environ,
            "FERRY_DATA_DIR": str(self.data_dir),
            "FERRY_ADMIN_TOKEN": self.admin_token,
            "FERRY_LOG_LEVEL": "warning",
            "FERRY_HOST_STALE_S": "3600",
            "FERRY_PUBLIC_URL": self.url,
            **self.settings,
        }
        log = self.data_dir / "backend.log"
        self.proc = spawn([str(BIN / "ferry-backend"), "serve", "--listen", f"127.0.0.1:{self.port}"], env, log)
        wait_healthy(self.proc, self.url, log, "backend", 120)
        response = httpx.post(
            f"{self.url}/api/hosts",
            headers={"Authorization": f"Bearer {self.admin_token}"},
            timeout=30,
            json={
                "name": self.host,
                "url": "http://127.0.0.1:9",
                "token": "unused-importer-token",
                "webhook_secret": self.secret,
            },
        )
        response.raise_for_status()
        return self

    def emit_buckets(self) -> dict[float, float]:
        """ferry_callback_to_emit_seconds: cumulative count per upper bound (seconds), from /metrics."""
        text = httpx.get(
            f"{self.url}/metrics", headers={"Authorization": f"Bearer {self.admin_token}"}, timeout=30
        ).text
        buckets = {}
        for line in text.splitlines():
            if line.startswith("ferry_callback_to_emit_seconds_bucket"):
                bound = line.split('le="', 1)[1].split('"', 1)[0]
                buckets[float("inf") if bound == "+Inf" else float(bound)] = float(line.rsplit(" ", 1)[1])
        return buckets

    def peak_rss(self) -> int:
        """VmHWM: the most resident memory the process ever had, in bytes."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError("no VmHWM in /proc status")


class Watchers:
    """watchers.py in its own process: K clients, client i watching job i mod N."""

    def __init__(self, url: str, token: str, jobs: list[str], clients: int, out: Path, bare: bool):
        self.args = [
            str(BIN / "python"),
            str(HERE / "watchers.py"),
            "--url",
            url,
            "--token",
            token,
            "--jobs",
            ",".join(jobs),
            "--clients",
            str(clients),
            "--out",
            str(out),
        ] + (["--bare"] if bare else [])
        self.jobs, self.clients, self.out = jobs, clients, out
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 300) -> Watchers:
        self.proc = subprocess.Popen(self.args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        deadline = time.monotonic() + timeout
        line = self.proc.stdout.readline()
        if line.strip() != "ready" or time.monotonic() > deadline:
            self.stop()
            raise RuntimeError(f"socket watchers did not get ready ({line.strip() or 'exited'})")
        return self

    @property
    def process(self) -> psutil.Process:
        return psutil.Process(self.proc.pid)

    def per_job(self, job_id: str) -> int:
        index = self.jobs.index(job_id)
        return len(range(index, self.clients, len(self.jobs)))

    def finish(self) -> list[tuple[str, int, float]]:
        self.proc.stdin.write("done\n")
        self.proc.stdin.flush()
        self.proc.wait(120)
        return [tuple(row) for row in json.loads(self.out.read_text())]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
