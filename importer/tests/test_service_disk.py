"""Free disk is checked where an import's bytes land (the engine's data root), never in a directory the job
does not write to: a lab host with a small data disk and a big /var/lib/docker takes big images."""

from __future__ import annotations

import subprocess

import pytest

from archives import rootfs_files, tar_bytes, write
from ferry_importer.archive.compression import Compression, uncompressed_size
from ferry_importer.preflight import disk_needed, free_bytes
from importer.tests.service_process import Lab
from tests.support.images import image_present

pytestmark = [pytest.mark.engine, pytest.mark.timeout(120)]


@pytest.fixture
def small_data_dir(tmp_path):
    """An 8 MB filesystem for the importer's DATA_DIR (job store, outbox, per-job spool)."""
    mount = tmp_path / "data"
    mount.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)], capture_output=True, text=True
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {result.stderr.strip()}")
    yield mount
    if subprocess.run(["umount", str(mount)], capture_output=True).returncode != 0:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_small_data_dir_does_not_refuse_an_image_the_engines_disk_can_hold(
    small_data_dir, tmp_path, docker_host, docker_client
):
    lab = Lab(tmp_path, docker_host)  # DATA_DIR is tmp_path/data: the small filesystem
    try:
        lab.receiver.start()
        importer = lab.importer()
        path = write(lab.roots / "rootfs.tar.xz", tar_bytes(rootfs_files(300_000)), "xz")
        needed = disk_needed(uncompressed_size(path, Compression.XZ), loads=False)
        assert free_bytes(small_data_dir) < needed  # had the spool been checked, the job would be refused
        image = lab.image("smalldisk")
        body = lab.job(image, {"path": str(path)})
        assert importer.submit(**body).status_code == 202
        job = importer.wait_state(body["job_id"], {"succeeded", "failed"})
        assert job["state"] == "succeeded", job
        assert image_present(docker_client, image)
    finally:
        lab.close(docker_client)
