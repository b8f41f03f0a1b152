"""docker-compose.yml run for real on the test engine: the compose command, the project's env file, its containers.

The images come from deploy/build-images.py --stack (the official ones where the engine has or can pull
them, else the stand-ins made from Debian's packages, cached under ${XDG_CACHE_HOME:-~/.cache}/ferry); the
project then starts with `up -d --no-build`. Debian's docker-compose (v1) or the compose v2 plugin, whichever
is here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import docker
import httpx

REPO = Path(__file__).resolve().parents[2]
TUS = {"Tus-Resumable": "1.0.0"}


def compose_command(env: dict) -> list[str] | None:
    """`docker compose` when the CLI has the v2 plugin, else Debian's `docker-compose`, else None."""
    for cli in dict.fromkeys(c for c in (shutil.which("docker"), "/usr/bin/docker") if c and os.access(c, os.X_OK)):
        if subprocess.run([cli, "compose", "version"], capture_output=True, env=env).returncode == 0:
            return [cli, "compose"]
    found = shutil.which("docker-compose")
    return [found] if found else None


def build_stack(docker_host: str, tag: str) -> dict[str, str]:
    """Every image the compose file runs, tagged ferry-NAME:tag; returns the variables that select them."""
    done = subprocess.run(
        [sys.executable, str(REPO / "deploy" / "build-images.py"), "--stack", "--tag-suffix", tag],
        env={**os.environ, "DOCKER_HOST": docker_host},
        capture_output=True,
        text=True,
        timeout=1500,
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    return dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)


@dataclass
class Stack:
    command: list[str]
    project: str
    env_file: Path
    env: dict
    engine: docker.DockerClient

    def compose(self, *args: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess:
        argv = [*self.command, "--project-name", self.project, "--project-directory", str(REPO)]
        argv += ["--env-file", str(self.env_file), "-f", str(REPO / "docker-compose.yml"), *args]
        done = subprocess.run(argv, env=self.env, capture_output=True, text=True, timeout=timeout)
        if check:
            assert done.returncode == 0, f"{' '.join(args)}: {(done.stdout + done.stderr)[-3000:]}"
        return done

    def values(self) -> dict[str, str]:
        return dict(line.split("=", 1) for line in self.env_file.read_text().splitlines() if "=" in line)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.values()['FERRY_HTTP_PORT']}"

    def container(self, service: str):
        ids = self.compose("ps", "-q", service).stdout.split()
        assert len(ids) == 1, f"{service}: containers {ids}"
        return self.engine.containers.get(ids[0])

    def health(self, service: str) -> str:
        container = self.container(service)
        state = container.attrs["State"]
        if state["Status"] != "running":  # a container that is restarting may still show its last health
            return state["Status"]
        return state.get("Health", {}).get("Status") or state["Status"]

    def logs(self, tail: int = 40) -> str:
        return self.compose("logs", "--no-color", "--tail", str(tail), check=False).stdout[-6000:]

    def wait_healthy(self, services: list[str], timeout: float = 240) -> None:
        deadline = time.monotonic() + timeout
        states: dict[str, str] = {}
        while time.monotonic() < deadline:
            states = {service: self.health(service) for service in services}
            if all(state == "healthy" for state in states.values()):
                return
            if any(state in ("unhealthy", "dead") for state in states.values()):
                break
            time.sleep(1)
        raise AssertionError(f"not healthy: {states}\n{self.logs()}")

    def wait_exited(self, service: str, timeout: float = 120) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.container(service).attrs["State"]
            if state["Status"] == "exited":
                return state["ExitCode"]
            time.sleep(1)
        raise AssertionError(f"{service} still running after {timeout} s\n{self.logs()}")

    def exec_python(self, service: str, code: str) -> str:
        result = self.container(service).exec_run(["python", "-c", code])
        assert result.exit_code == 0, result.output.decode(errors="replace")
        return result.output.decode()

    def socket_clients(self, replicas: list[str], token: str) -> list[int]:
        """Connected Socket.IO clients per replica, from each replica's own /metrics (read inside its container)."""
        code = (
            "import re, urllib.request as u\n"
            f"r = u.Request('http://127.0.0.1:8000/metrics', headers={{'Authorization': 'Bearer {token}'}})\n"
            "t = u.urlopen(r, timeout=5).read().decode()\n"
            "m = re.search(r'^ferry_socket_clients (\\S+)$', t, re.M)\n"
            "print(int(float(m.group(1))) if m else 0)\n"
        )
        return [int(self.exec_python(name, code).strip()) for name in replicas]


async def upload(url: str, token: str, path: Path, chunk: int = 1 << 20) -> str:
    """A tus upload through nginx, streamed from disk, in one PATCH; returns the upload id."""
    size = path.stat().st_size
    async with httpx.AsyncClient(base_url=url, timeout=120, headers={"Authorization": f"Bearer {token}"}) as http:
        created = await http.post(
            "/api/uploads/",
            headers={**TUS, "Upload-Length": str(size), "Upload-Metadata": "filename ZGViaWFuLnRhci54eg=="},
        )
        assert created.status_code == 201, created.text
        location = created.headers["location"]

        async def body():
            with open(path, "rb") as handle:
                while data := handle.read(chunk):
                    yield data

        headers = {**TUS, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"}
        done = await http.patch(location, content=body(), headers={**headers, "Content-Length": str(size)})
        assert done.status_code == 204, done.text
    return location.rsplit("/", 1)[-1]
