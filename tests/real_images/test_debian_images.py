"""Images ferry imports really run: a debootstrap'ed Debian, as tar, single-block xz, gzip and docker-save.

Each archive goes through `ferry-importer import` into the real engine; the image must then start
(`--network none`) and its Debian must work (`/etc/debian_version`, `apt-get --version`), and its layer
must be byte for byte what `docker import` makes of the same file (same RootFS.Layers digest).
"""

from __future__ import annotations

import json
import subprocess
import uuid

import docker
import pytest

from backend.tests.support import BIN, process_env
from tests.real_images.archives import FORMATS

# The first test of a cold machine also builds the tree and its archives (about 2 minutes, more on a busy one).
pytestmark = [pytest.mark.engine, pytest.mark.slow, pytest.mark.timeout(900)]
CHECK = "cat /etc/debian_version && apt-get --version | head -n 1"


def ferry_import(archive, ref: str, docker_host: str, data_dir) -> list[dict]:
    """`ferry-importer import --json`: the events it printed; fails with its stderr unless it exits 0."""
    env = {**process_env(), "DOCKER_HOST": docker_host}
    done = subprocess.run(
        [str(BIN / "ferry-importer"), "import", str(archive), "--image", ref, "--json", "--data-dir", str(data_dir)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


def run_in(client: docker.DockerClient, ref: str) -> str:
    output = client.containers.run(ref, ["sh", "-c", CHECK], network_mode="none", remove=True)
    return output.decode()


def layers(client: docker.DockerClient, ref: str) -> list[str]:
    return client.api.inspect_image(ref)["RootFS"]["Layers"]


@pytest.fixture
def refs(engine_client):
    made: list[str] = []
    yield made
    for ref in made:
        try:
            engine_client.api.remove_image(ref, force=True)
        except docker.errors.APIError:
            pass


@pytest.fixture(scope="module")
def docker_import_layers(engine_client, debian_archives):
    """RootFS.Layers of `docker import` of each filesystem archive (the engine's own reading of the file)."""
    found = {}
    for fmt in ("tar", "tar.xz", "tar.gz"):
        ref = f"ferry-realimg/reference-{fmt.replace('.', '-')}:{uuid.uuid4().hex[:8]}"
        repository, tag = ref.rsplit(":", 1)
        engine_client.api.import_image_from_file(str(debian_archives.of(fmt)), repository=repository, tag=tag)
        try:
            found[fmt] = layers(engine_client, ref)
        finally:
            engine_client.api.remove_image(ref, force=True)
    return found


@pytest.mark.parametrize("fmt", FORMATS)
def test_imported_debian_runs_and_has_the_layer_docker_import_makes(
    fmt, debian_archives, docker_import_layers, engine_client, docker_host, refs, tmp_path
):
    ref = f"ferry-realimg/debian-{fmt.replace('.', '-')}:{uuid.uuid4().hex[:8]}"
    refs.append(ref)
    if fmt == "docker-save":
        refs.append(debian_archives.saved_ref)  # a load keeps the archive's own tag as well
    archive = debian_archives.of(fmt)
    events = ferry_import(archive, ref, docker_host, tmp_path / "importer")
    assert events[-1]["type"] == "import.completed", events[-1]
    assert events[-1]["data"]["percent"] == 100.0
    percents = [event["data"]["percent"] for event in events]
    assert percents == sorted(percents), percents  # a real archive's progress never goes back
    assert {event["data"]["bytes_total"] for event in events} == {archive.stat().st_size}
    assert events[-1]["data"]["bytes_done"] == archive.stat().st_size  # every byte of the file reached the engine

    output = run_in(engine_client, ref)
    version, apt = output.strip().splitlines()
    assert version.startswith("12."), output  # bookworm
    assert apt.startswith("apt 2.6"), output

    expected = docker_import_layers["tar" if fmt == "docker-save" else fmt]
    assert len(expected) == 1
    assert layers(engine_client, ref) == expected


def test_every_archive_holds_the_same_tree(docker_import_layers):
    """The engine reads tar, xz and gzip to the same layer: the archives differ only in their compression."""
    assert docker_import_layers["tar"] == docker_import_layers["tar.xz"] == docker_import_layers["tar.gz"]
