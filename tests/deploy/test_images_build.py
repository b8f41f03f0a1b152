"""The Dockerfiles build here and their images serve: deploy/build-images.py on the test engine.

With no image registry in reach, the base is the stand-in made from Debian's packages (cached under
${XDG_CACHE_HOME:-~/.cache}/ferry, so only the first run on a machine builds it). The backend image
must serve /healthz on its embedded SQLite, the importer image must reach the engine through the
mounted socket and import the real Debian archive of tests/real_images into it (an image that then runs),
and both must keep python and pip where the official base has them.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
import uuid
from pathlib import Path

import docker
import httpx
import pytest

from backend.tests.support import new_secret
from tests.real_images.archives import archives
from tests.support.process import free_port
from tests.support.rootfs import RootfsUnavailable, rootfs

# The first test builds both images, and on a cold machine the stand-in base too (5 to 6 minutes there).
pytestmark = [pytest.mark.engine, pytest.mark.slow, pytest.mark.timeout(1500)]
REPO = Path(__file__).resolve().parents[2]
SUFFIX = f"itest-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def client(docker_host):
    engine = docker.DockerClient(base_url=docker_host, timeout=300)
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def images(docker_host, client):
    """ferry-backend and ferry-importer, built by the script operators use, removed afterwards."""
    done = subprocess.run(
        [sys.executable, str(REPO / "deploy" / "build-images.py"), "backend", "importer", "--tag-suffix", SUFFIX],
        env={**os.environ, "DOCKER_HOST": docker_host},
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    built = {name: f"ferry-{name}:{SUFFIX}" for name in ("backend", "importer")}
    yield built
    for ref in built.values():
        try:
            client.api.remove_image(ref, force=True)
        except docker.errors.APIError:
            pass


def wait_for(url: str, container, headers: dict | None = None, timeout: float = 90) -> httpx.Response:
    """The first 200 from url; the container's logs when it exits or never answers."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            response = httpx.get(url, headers=headers, timeout=2)
            if response.status_code == 200:
                return response
        except httpx.HTTPError:
            pass
        container.reload()
        if container.status == "exited":
            break
        time.sleep(0.5)
    raise AssertionError(f"{url} never answered 200: {container.logs(tail=30).decode(errors='replace')}")


@pytest.fixture(scope="module")
def backend(client, images):
    """The backend image running as it would in compose, on its embedded SQLite."""
    port = free_port()
    container = client.containers.run(
        images["backend"], ["ferry-backend", "serve", "--listen", f"127.0.0.1:{port}"], network_mode="host", detach=True
    )
    yield container, f"http://127.0.0.1:{port}"
    container.remove(force=True)


@pytest.fixture(scope="module")
def debian_xz(client) -> Path:
    """The real Debian .tar.xz of tests/real_images (cached: made once per machine)."""
    try:
        return archives(rootfs(), client).xz
    except RootfsUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="module")
def importer(client, images, docker_host, debian_xz):
    """The importer image with the test engine's socket mounted where the image expects the host's,
    and the folder of the Debian archive as its one allowed root."""
    port, token = free_port(), "itest-" + secrets.token_hex(16)
    container = client.containers.run(
        images["importer"],
        ["ferry-importer", "serve", "--listen", f"127.0.0.1:{port}"],
        network_mode="host",
        detach=True,
        volumes={
            docker_host.removeprefix("unix://"): {"bind": "/var/run/docker.sock", "mode": "rw"},
            str(debian_xz.parent): {"bind": "/srv/images", "mode": "ro"},
        },
        environment={
            "FERRY_IMPORTER_TOKEN": token,
            "FERRY_IMPORTER_WEBHOOK_SECRET": new_secret(),
            "FERRY_IMPORTER_NAME": "itest",
            "FERRY_IMPORTER_ALLOWED_ROOTS": "/srv/images",
        },
    )
    yield container, f"http://127.0.0.1:{port}", token
    container.remove(force=True)


def test_backend_image_serves_healthz_on_sqlite_as_an_unprivileged_user(client, images, backend):
    container, url = backend
    health = wait_for(f"{url}/healthz", container)
    assert health.json()["status"] == "ok"
    assert client.api.inspect_image(images["backend"])["Config"]["User"] == "ferry"
    listing = container.exec_run(["ls", "/var/lib/ferry"])
    assert listing.exit_code == 0 and b"ferry.db" in listing.output, listing.output  # SQLite in the data volume


def test_importer_image_reaches_the_engine_through_the_mounted_socket(client, importer):
    container, url, token = importer
    wait_for(f"{url}/healthz", container)
    host = httpx.get(f"{url}/v1/host", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert host.status_code == 200, host.text
    engine = host.json()["engine"]
    assert engine["engine_reachable"] is True, engine
    assert engine["engine_api_version"] == client.version()["ApiVersion"]
    assert engine["storage_driver"] == client.info()["Driver"]


def test_the_importer_container_imports_a_real_debian_that_runs(client, importer, debian_xz):
    container, url, token = importer
    wait_for(f"{url}/healthz", container)
    ref = f"ferry-itest/debian-from-container:{uuid.uuid4().hex[:8]}"
    headers = {"Authorization": f"Bearer {token}"}
    job_id = f"itest-{uuid.uuid4().hex[:12]}"
    started = httpx.post(
        f"{url}/v1/imports",
        headers=headers,
        timeout=10,
        json={"job_id": job_id, "image": ref, "source": {"path": f"/srv/images/{debian_xz.name}"}},
    )
    assert started.status_code == 202, started.text
    deadline, job = time.monotonic() + 600, started.json()
    while job["state"] not in ("succeeded", "failed", "canceled") and time.monotonic() < deadline:
        time.sleep(1)
        job = httpx.get(f"{url}/v1/imports/{job_id}", headers=headers, timeout=10).json()
    try:
        assert job["state"] == "succeeded", job
        assert job["bytes_done"] == debian_xz.stat().st_size
        output = client.containers.run(ref, ["cat", "/etc/debian_version"], network_mode="none", remove=True)
        assert output.decode().startswith("12."), output
    finally:
        try:
            client.api.remove_image(ref, force=True)
        except docker.errors.APIError:
            pass


@pytest.mark.parametrize("name", ["backend", "importer"])
def test_python_and_pip_are_where_the_official_base_has_them(request, name):
    container = request.getfixturevalue(name)[0]
    script = "command -v python && command -v pip && python -c 'import sys; print(sys.version_info[:2])'"
    result = container.exec_run(["sh", "-c", script])
    assert result.exit_code == 0, result.output
    assert result.output.decode().split() == ["/usr/local/bin/python", "/usr/local/bin/pip", "(3,", "11)"]
