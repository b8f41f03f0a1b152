"""Hostile archives and job requests sent to a real `ferry-importer serve` on a real Docker engine."""

from __future__ import annotations

import lzma

import docker
import pytest

from importer.tests.archives import rootfs_files, tar_bytes, xz_bomb
from importer.tests.service_process import Lab

pytestmark = pytest.mark.engine


@pytest.fixture
def lab(tmp_path, docker_host):
    lab = Lab(tmp_path, docker_host)
    yield lab
    lab.close(docker.DockerClient(base_url=docker_host))


def test_xz_bomb_fails_with_a_stable_code_before_the_dictionary_is_allocated(lab):
    tarball = tar_bytes(rootfs_files(50_000))
    bomb = xz_bomb(tarball)
    assert lzma.decompress(bomb) == tarball  # a valid xz file: only the memory it asks for is hostile
    (lab.roots / "bomb.tar.xz").write_bytes(bomb)
    importer = lab.importer()
    body = lab.job(lab.image("bomb"), {"path": str(lab.roots / "bomb.tar.xz")})
    assert importer.submit(**body).status_code == 202
    job = importer.wait_state(body["job_id"], {"failed", "succeeded"})
    assert job["state"] == "failed"
    assert job["error"]["code"] == "compression_memory_limit", job["error"]
    assert "256 MiB" in job["error"]["message"]
    assert importer.client.get("/healthz").status_code == 200
    assert lab.spool_entries() == []


def test_change_lines_with_control_characters_are_refused(lab):
    (lab.roots / "rootfs.tar").write_bytes(tar_bytes(rootfs_files(10_000)))
    importer = lab.importer()
    for line in ('CMD ["sh"]\nUSER root', "LABEL a=b\rUSER root", "ENV X=\x1b]0;owned\x07", "LABEL a=\x85"):
        body = lab.job(lab.image("change"), {"path": str(lab.roots / "rootfs.tar")})
        body["changes"] = [line]
        response = importer.submit(**body)
        assert response.status_code == 422, (line, response.text)
        assert response.json()["error"]["code"] == "invalid_change"
        assert importer.client.get(f"/v1/imports/{body['job_id']}").status_code == 404
