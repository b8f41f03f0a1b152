"""schemathesis against both services' own OpenAPI documents, on real processes with valid tokens: generated
requests (25 examples per operation, a fixed seed so a run is repeatable) never get a 5xx, and every answer
has a status and a body its document declares."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import docker
import httpx
import pytest

from importer.tests.archives import tar_bytes
from tests.support import engine

SCHEMATHESIS = str(Path(sys.executable).with_name("schemathesis"))
CHECKS = "not_a_server_error,response_schema_conformance,status_code_conformance"
REQUEST_TIMEOUT_S = 30
ENGINE_NAME = "schemathesis"


def _run(document: dict, url: str, token: str, workdir: Path) -> subprocess.CompletedProcess:
    schema = workdir / "openapi.json"
    schema.write_text(httpx.Response(200, json=document).text)
    return subprocess.run(
        [
            SCHEMATHESIS,
            "run",
            str(schema),
            "--url",
            url,
            "-H",
            f"Authorization: Bearer {token}",
            "--checks",
            CHECKS,
            "--max-examples",
            "25",
            "--workers",
            "1",
            "--seed",
            "20261206",
            "--no-color",
            # each answer is checked for conformance, not speed (a 2-core machine in the middle of the suite)
            "--request-timeout",
            str(REQUEST_TIMEOUT_S),
        ],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_the_backend_conforms_to_its_openapi_document(hostile_backend, tmp_path):
    token = hostile_backend.admin_token
    document = httpx.get(f"{hostile_backend.url}/openapi.json", headers={"Authorization": f"Bearer {token}"}).json()
    done = _run(document, hostile_backend.url, token, tmp_path)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert " passed" in done.stdout


@pytest.fixture
def own_engine():
    """A private engine with one small image: schemathesis lists the importer's images and removes what it finds
    (its stateful phase follows GET /v1/images to DELETE /v1/images/{image_id}); on the suite's shared engine it
    removed the cached Debian images other tests use, and one such removal on vfs took 11.5 s."""
    try:
        host, _ = engine.up(ENGINE_NAME, use_existing=False)
    except engine.EngineUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    client = docker.DockerClient(base_url=host)
    seed = tar_bytes({"seed.txt": b"seed\n"})
    client.api.import_image_from_data(seed, repository="ferry-schemathesis/seed", tag="1")
    try:
        yield host
    finally:
        client.close()
        engine.down(ENGINE_NAME)


@pytest.mark.engine
def test_the_importer_conforms_to_its_openapi_document(tmp_path, own_engine):
    from importer.tests.service_process import ImporterProcess

    importer = ImporterProcess(tmp_path / "data", own_engine).start()
    try:
        document = importer.client.get("/v1/openapi.json").json()
        token = importer.client.headers["authorization"].removeprefix("Bearer ")
        done = _run(document, importer.base_url, token, tmp_path)
    finally:
        importer.close()
    # the importer's own log (every request with its time) says where a slow or failed answer spent its time
    assert done.returncode == 0, (
        done.stdout[-6000:] + done.stderr[-2000:] + "\nimporter log:\n" + importer.log()[-6000:]
    )
    assert " passed" in done.stdout
