"""Fixtures for the importer tests: the real engine, unique names, and proof that nothing was left behind."""

from __future__ import annotations

import io
import os
import sys
import tarfile
import uuid
from pathlib import Path

import docker
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from ferry_importer import CollectingReporter, Engine, ImportSpec, LocalFileSource, Options, run_import  # noqa: E402

SESSION_TOKEN = uuid.uuid4().hex[:10]


@pytest.fixture(scope="session")
def docker_client(docker_host: str):
    client = docker.DockerClient(base_url=docker_host, timeout=300)
    yield client
    client.close()


@pytest.fixture
def token() -> str:
    """A unique label value for this test's images: `ferry.test=<token>` finds every leftover."""
    return uuid.uuid4().hex[:12]


@pytest.fixture
def name(token: str) -> str:
    return f"ferry-test/imp-{token}"


@pytest.fixture
async def engine(docker_host: str):
    async with Engine(docker_host) as client:
        yield client


def leftovers(client: docker.DockerClient, token: str) -> list[str]:
    """Images (tagged or dangling) carrying this test's label."""
    images = client.api.images(all=True, filters={"label": f"ferry.test={token}"})
    return [image["Id"] for image in images]


@pytest.fixture
def cleanup(docker_client, token):
    """Removes whatever a test created (by label and by the refs it registers), even when it fails."""
    refs: list[str] = []
    yield refs
    for ref in refs:
        try:
            docker_client.api.remove_image(ref, force=True)
        except docker.errors.APIError:
            pass
    for image_id in leftovers(docker_client, token):
        try:
            docker_client.api.remove_image(image_id, force=True)
        except docker.errors.APIError:
            pass


@pytest.fixture
def run(engine, tmp_path):
    """Run the pipeline on a file the way the service will: returns (image or error, events)."""

    async def _run(path: Path, image: str | None = None, *, source=None, options: Options | None = None, **spec):
        reporter = CollectingReporter(job_id="test-job", host="test-host")
        opts = options or Options(data_dir=tmp_path / "data")
        try:
            result = await run_import(
                ImportSpec(image=image, **spec),
                source or LocalFileSource(path),
                engine=engine,
                reporter=reporter,
                options=opts,
            )
        except Exception as exc:  # noqa: BLE001 - the tests look at the error
            return exc, reporter.events
        return result, reporter.events

    return _run


def _build_context(files: dict[str, bytes]) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for path, data in files.items():
            info = tarfile.TarInfo(path)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    return buf


@pytest.fixture(scope="session")
def saved_image(docker_client, tmp_path_factory):
    """A three-layer FROM-scratch image built offline by the engine, `docker save`d, then removed.

    Returns (archive path, repo tags, image id, label token)."""
    label = f"saved-{SESSION_TOKEN}"
    tag = f"ferry-test/saved-{SESSION_TOKEN}:v1"
    dockerfile = (
        f'FROM scratch\nLABEL ferry.test={label}\nCOPY a /a\nCOPY b /opt/b\nCOPY c /etc/c\nCMD ["/a"]\n'
    ).encode()
    context = _build_context(
        {"Dockerfile": dockerfile, "a": os.urandom(150_000), "b": os.urandom(120_000), "c": b"config\n" * 100}
    )
    image, _ = docker_client.images.build(fileobj=context, custom_context=True, tag=tag, rm=True, forcerm=True)
    docker_client.api.tag(image.id, f"ferry-test/saved-{SESSION_TOKEN}", "second")
    path = tmp_path_factory.mktemp("saved") / "saved.tar"
    with open(path, "wb") as fh:
        for chunk in docker_client.api.get_image(tag):
            fh.write(chunk)
    repo_tags = [tag]
    # save by one tag writes that tag; remove every tag so loads really create the image
    docker_client.api.remove_image(f"ferry-test/saved-{SESSION_TOKEN}:second")
    docker_client.api.remove_image(tag)
    yield path, repo_tags, image.id, label
    for ref in repo_tags:
        try:
            docker_client.api.remove_image(ref, force=True)
        except docker.errors.APIError:
            pass


@pytest.fixture
def files(tmp_path):
    """A Range-capable file server over tmp_path/files: URL sources for the importer."""
    from importer.tests.service_support import RangeFileServer

    root = tmp_path / "files"
    root.mkdir()
    server = RangeFileServer(root).start()
    yield server
    server.stop()
