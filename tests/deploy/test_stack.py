"""The compose stack for real: up, healthy, the importer registered, a real archive uploaded and imported through
nginx, watched over Socket.IO through nginx, a backend replica killed mid-import, the job ending right, down -v.

Runs on the test engine with the project's own name; its images come from deploy/build-images.py --stack
(stand-ins made from Debian's packages where no registry answers, cached outside the clone).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid

import docker
import httpx
import pytest

from tests.deploy.stack import REPO, Stack, build_stack, compose_command, upload
from tests.real_images.archives import archives
from tests.scale.cluster import Watcher
from tests.support.process import free_port
from tests.support.rootfs import RootfsUnavailable, rootfs

# Cold (nothing cached) the stand-ins and the images take about 5 minutes to build; warm, about one.
pytestmark = [pytest.mark.engine, pytest.mark.slow, pytest.mark.timeout(1500)]
REPLICAS = ["backend-1", "backend-2"]
SERVICES = ["postgres", "redis", *REPLICAS, "importer", "nginx"]
TERMINAL = ("import.completed", "import.failed", "import.canceled")


@pytest.fixture(scope="module")
def client(docker_host):
    engine = docker.DockerClient(base_url=docker_host, timeout=300)
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def debian_xz(client):
    try:
        return archives(rootfs(), client).xz
    except RootfsUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="module")
def stack(docker_host, client, tmp_path_factory):
    """The compose project up and healthy; `down -v` and its images removed afterwards, whatever happened."""
    env = {**os.environ, "DOCKER_HOST": docker_host, "DOCKER_BUILDKIT": "1"}
    command = compose_command(env)
    if command is None:
        pytest.fail("neither `docker compose` nor docker-compose is installed (scripts/system-deps.sh)", pytrace=False)
    tag = f"itest-{uuid.uuid4().hex[:8]}"
    started = time.monotonic()
    chosen = build_stack(docker_host, tag)
    built = time.monotonic()
    generated = subprocess.run(
        [sys.executable, str(REPO / "deploy" / "make-env.py"), "--port", str(free_port())],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    engine_info = client.info()
    env_file = tmp_path_factory.mktemp("stack") / ".env"
    lines = [line for line in generated.splitlines() if not line.startswith("COMPOSE_PROJECT_NAME=")]
    lines += [f"{name}={value}" for name, value in chosen.items()]
    lines += [
        f"FERRY_DOCKER_SOCKET={docker_host.removeprefix('unix://')}",
        f"FERRY_DOCKER_ROOT={engine_info['DockerRootDir']}",
    ]
    env_file.write_text("\n".join(lines) + "\n")
    env_file.chmod(0o600)
    project = Stack(command, f"ferry-itest-{uuid.uuid4().hex[:6]}", env_file, env, client)
    try:
        project.compose("up", "-d", "--no-build")
        project.wait_healthy(SERVICES)
        up = time.monotonic()
        print(f"\nstack: images {built - started:.0f} s, up and healthy {up - built:.0f} s ({' '.join(command)})")
        yield project
    finally:
        down = time.monotonic()
        project.compose("down", "-v", "--remove-orphans", "--timeout", "10", check=False)
        for name in ("backend", "importer", "nginx"):
            try:
                client.api.remove_image(f"ferry-{name}:{tag}", force=True)
            except docker.errors.APIError:
                pass
        print(f"stack: down -v {time.monotonic() - down:.0f} s")


def test_the_importer_registers_itself_and_reports_alive(stack):
    assert stack.wait_exited("register-importer") == 0, stack.logs()
    token = stack.values()["FERRY_ADMIN_TOKEN"]
    deadline, hosts = time.monotonic() + 60, []
    while time.monotonic() < deadline:
        hosts = httpx.get(f"{stack.url}/api/hosts", headers={"Authorization": f"Bearer {token}"}, timeout=10).json()
        if any(host["name"] == "local" and host.get("alive") for host in hosts):
            break
        time.sleep(1)
    assert [host["name"] for host in hosts] == ["local"] and hosts[0]["alive"], hosts
    page = httpx.get(f"{stack.url}/", timeout=10)  # the operator page nginx serves from its image
    assert page.status_code == 200 and "<script" in page.text


async def _locate(stack: Stack, token: str, viewer: str) -> tuple[Watcher, int]:
    """A watcher connected through nginx, and which replica it landed on (from the replicas' own gauges)."""
    for _ in range(5):
        before = await asyncio.to_thread(stack.socket_clients, REPLICAS, token)
        watcher = await Watcher(stack.url, viewer).connect()
        added = [n - m for n, m in zip(await asyncio.to_thread(stack.socket_clients, REPLICAS, token), before)]
        if sorted(added) == [0, 1]:
            return watcher, added.index(1)
        await watcher.close()
    raise AssertionError(f"could not tell which replica the socket landed on: {added}")


async def test_an_archive_imported_through_nginx_survives_a_replica_killed_mid_import(stack, client, debian_xz):
    assert stack.wait_exited("register-importer") == 0, stack.logs()
    admin = stack.values()["FERRY_ADMIN_TOKEN"]
    async with httpx.AsyncClient(base_url=stack.url, timeout=30, headers={"Authorization": f"Bearer {admin}"}) as http:
        tokens = {}
        for role in ("operator", "viewer"):
            made = await http.post("/api/tokens", json={"role": role, "name": f"stack-{role}"})
            assert made.status_code == 201, made.text
            tokens[role] = made.json()["token"]
    label = uuid.uuid4().hex[:12]
    image = f"ferry-itest/stack-debian-{label}:1"
    watcher, victim = await _locate(stack, admin, tokens["viewer"])
    try:
        upload_id = await upload(stack.url, tokens["operator"], debian_xz)
        async with httpx.AsyncClient(base_url=stack.url, timeout=30) as http:
            operator = {"Authorization": f"Bearer {tokens['operator']}"}
            created = await http.post(
                "/api/imports",
                headers=operator,
                json={"upload_id": upload_id, "hosts": ["local"], "image": image, "format": "import"},
            )
            assert created.status_code == 202, created.text
            job_id = created.json()["jobs"][0]["id"]
            await watcher.subscribe(job_id)

            def moving():
                return any(n == "import.progress" and d["bytes_done"] > 0 for n, d, _ in watcher.of(job_id))

            await watcher.wait_for(moving, 120, "the import to move bytes")
            assert not watcher.finished(job_id), "the import ended before a replica could be killed"
            # A crash, not a `docker kill` (which counts as stopped by hand): its restart policy brings it back.
            killed = stack.container(REPLICAS[victim])
            os.kill(killed.attrs["State"]["Pid"], signal.SIGKILL)

            await watcher.wait_for(lambda: watcher.finished(job_id), 300, "the job to end")
            assert watcher.connects == 2 and watcher.acks[-1]["ok"], "the watcher reconnected once and resubscribed"
            snapshot = (await http.get(f"/api/imports/{job_id}", headers=operator)).json()
            logged = [e["seq"] for e in (await http.get(f"/api/imports/{job_id}/events", headers=operator)).json()]
        seen = watcher.seqs(job_id)
        assert seen == logged and seen == sorted(set(seen)), f"the watcher saw {seen}, the log holds {logged}"
        names = [n for n, _, _ in watcher.of(job_id)]
        assert [n for n in names if n in TERMINAL] == ["import.completed"], names
        percents = [d["percent"] for _, d, _ in watcher.of(job_id)]
        assert percents == sorted(percents) and percents[-1] == 100, percents
        assert snapshot["state"] == "succeeded" and snapshot["seq"] == logged[-1], snapshot
        output = client.containers.run(image, ["cat", "/etc/debian_version"], network_mode="none", remove=True)
        assert output.decode().startswith("12."), output
        stack.wait_healthy(REPLICAS, timeout=120)  # the killed replica came back by itself
        killed.reload()
        assert killed.attrs["RestartCount"] == 1, killed.attrs["State"]
    finally:
        await watcher.close()
        try:
            client.api.remove_image(image, force=True)
        except docker.errors.APIError:
            pass
