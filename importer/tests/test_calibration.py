"""Before its first load a host measures how fast its engine loads layers, with a small generated archive that it
removes again."""

import hashlib
import io
import json
import tarfile

import pytest

from ferry_importer.engine.calibration import ProbeArchive, measure_load_pace
from ferry_importer.engine.client import Engine


async def archive_bytes(archive: ProbeArchive) -> bytes:
    return b"".join([piece async for piece in archive.pieces()])


async def test_the_calibration_archive_is_a_docker_save_whose_config_names_its_layer():
    archive = ProbeArchive(seed=7)
    data = await archive_bytes(archive)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())
        config_bytes = tar.extractfile(manifest[0]["Config"]).read()
        layer = tar.extractfile(manifest[0]["Layers"][0]).read()
    assert len(layer) == archive.layer_bytes
    assert json.loads(config_bytes)["rootfs"]["diff_ids"] == [f"sha256:{hashlib.sha256(layer).hexdigest()}"]
    assert archive.image_id == hashlib.sha256(config_bytes).hexdigest() and manifest[0]["RepoTags"] is None
    with tarfile.open(fileobj=io.BytesIO(layer)) as inner:
        sizes = sorted({member.size for member in inner.getmembers()})
    assert len(sizes) == 5 and sizes[0] < 4096 < sizes[-1]  # small and large files, like a real layer
    assert (await archive_bytes(ProbeArchive(seed=8)))[:512] != data[:512]  # each run a new image


@pytest.mark.engine
async def test_a_calibration_load_measures_the_pace_and_leaves_no_image(engine, docker_client):
    before = {image.id for image in docker_client.images.list(all=True)}
    pace = await measure_load_pace(engine)
    assert pace is not None and pace > 1e6  # bytes per second: any real host loads faster than 1 MB/s
    assert {image.id for image in docker_client.images.list(all=True)} == before


async def test_an_engine_that_does_not_answer_gives_no_pace_and_no_error(tmp_path):
    async with Engine(host=f"unix://{tmp_path}/absent.sock", connect_timeout=1.0) as engine:
        assert await measure_load_pace(engine) is None


async def test_an_engine_whose_load_answer_does_not_name_the_image_gives_no_pace(tmp_path):
    from stub_engine import StubEngine

    with StubEngine(tmp_path / "stub.sock", mode="slow") as stub:  # answers a load like an import: some new id
        async with Engine(stub.host) as engine:
            assert await measure_load_pace(engine) is None
