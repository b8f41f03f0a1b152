"""Every input format round-trips through the real engine."""

import lzma
import os
import subprocess

import pytest

from archives import docker_archive_from_layers, image_id_of, rootfs_files, tar_bytes, write
from ferry_importer import ImporterError
from tests.support.images import image_present

pytestmark = pytest.mark.engine


@pytest.mark.parametrize("compression", ["none", "xz", "gzip", "zstd", "bzip2"])
async def test_a_rootfs_archive_in_every_compression_is_imported_and_verified(
    compression, run, tmp_path, name, token, cleanup, docker_client
):
    files = rootfs_files()
    path = write(tmp_path / "rootfs.archive", tar_bytes(files, dot_prefix=True), compression)
    cleanup.append(f"{name}:{compression}")
    image, events = await run(path, f"{name}:{compression}", changes=[f"LABEL ferry.test={token}", 'CMD ["/bin/tool"]'])
    assert not isinstance(image, Exception), image
    inspect = docker_client.api.inspect_image(f"{name}:{compression}")
    assert image.id == inspect["Id"] and image.tags == [f"{name}:{compression}"]
    assert image.size == inspect["Size"] == sum(len(d) for d in files.values())
    assert inspect["Config"]["Cmd"] == ["/bin/tool"]
    assert events[-1].type == "import.completed" and events[-1].data.percent == 100


async def test_an_archive_saved_by_the_engine_loads_with_its_own_tags(saved_image, run, docker_client):
    path, repo_tags, image_id, _ = saved_image
    image, events = await run(path)
    try:
        assert not isinstance(image, Exception), image
        assert image.id == image_id and image.ref == repo_tags[0]
        assert docker_client.api.inspect_image(repo_tags[0])["Id"] == image_id
        assert len(docker_client.api.inspect_image(image_id)["RootFS"]["Layers"]) == 3
    finally:
        docker_client.api.remove_image(repo_tags[0], force=True)


async def test_a_compressed_docker_save_loads_and_gets_the_extra_name(saved_image, run, docker_client, tmp_path, name):
    path, repo_tags, image_id, _ = saved_image
    xz = tmp_path / "saved.tar.xz"
    xz.write_bytes(lzma.compress(path.read_bytes(), preset=0))
    image, _ = await run(xz, f"{name}:extra")
    try:
        assert not isinstance(image, Exception), image
        assert image.ref == f"{name}:extra"
        assert set(image.tags) == {repo_tags[0], f"{name}:extra"}
    finally:
        for ref in (f"{name}:extra", repo_tags[0]):
            docker_client.api.remove_image(ref, force=True)


@pytest.mark.parametrize("style", ["hex-tar", "oci"])
async def test_archives_written_by_other_tools_load(style, run, tmp_path, name, token, cleanup, docker_client):
    layers = [tar_bytes({"a.bin": os.urandom(70_000)}), tar_bytes({"etc/b": b"second layer"})]
    data = docker_archive_from_layers(layers, [f"{name}:{style}"], style=style, labels={"ferry.test": token})
    path = write(tmp_path / f"{style}.tar.gz", data, "gzip")
    cleanup.append(f"{name}:{style}")
    image, _ = await run(path)
    assert not isinstance(image, Exception), image
    assert image.id == image_id_of(data)
    assert image_present(docker_client, f"{name}:{style}")


async def test_forcing_import_treats_any_tar_as_a_filesystem(saved_image, run, name, cleanup, docker_client):
    path, _, _, _ = saved_image
    cleanup.append(f"{name}:flat")
    image, _ = await run(path, f"{name}:flat", format="import")
    assert not isinstance(image, Exception), image
    assert docker_client.api.inspect_image(f"{name}:flat")["Size"] > 250_000


async def test_a_rootfs_archive_without_a_name_is_refused_before_the_engine_sees_it(run, tmp_path):
    path = write(tmp_path / "rootfs.tar", tar_bytes(rootfs_files(1000)))
    error, events = await run(path, None)
    assert isinstance(error, ImporterError) and error.code == "invalid_reference"
    assert events[-1].type == "import.failed"


async def test_a_multi_block_xz_archive_is_decoded_in_parallel_and_round_trips(
    run, tmp_path, name, token, cleanup, docker_client
):
    import subprocess

    from ferry_importer.archive.xzblocks import block_map, parallel_worthwhile

    files = {f"bin/part{i}": os.urandom(600_000) for i in range(6)} | {"etc/t": token.encode()}
    path = tmp_path / "multi.tar.xz"
    with open(path, "wb") as out:
        subprocess.run(["xz", "-T2", "-0", "--block-size=1MiB", "-c"], input=tar_bytes(files), stdout=out, check=True)
    assert parallel_worthwhile(block_map(path))
    cleanup.append(f"{name}:multi")
    from ferry_importer import Options

    options = Options(data_dir=tmp_path / "data", decode_threads=2)
    image, events = await run(path, f"{name}:multi", changes=[f"LABEL ferry.test={token}"], options=options)
    assert not isinstance(image, Exception), image
    assert image.size == sum(len(d) for d in files.values())
    assert events[-2].data.bytes_done == path.stat().st_size


def _save_two_images(docker_client, docker_host: str, token: str, path) -> list[str]:
    """A real `docker save` of two images (made with `docker import`), then both removed from the engine."""
    refs = [f"ferry-test/pair-{token}-{n}:1" for n in ("a", "b")]
    for index, ref in enumerate(refs):
        repository, tag = ref.rsplit(":", 1)
        docker_client.api.import_image_from_data(
            tar_bytes(rootfs_files(20_000 + index)),
            repository=repository,
            tag=tag,
            changes=[f"LABEL ferry.test={token}"],
        )
    subprocess.run(
        ["docker", "save", "-o", str(path), *refs],
        check=True,
        env={**os.environ, "DOCKER_HOST": docker_host},
        capture_output=True,
        timeout=120,
    )
    for ref in refs:
        docker_client.api.remove_image(ref, force=True)
    return refs


async def test_a_save_of_two_images_loads_without_a_name_like_docker_load_and_lists_both(
    run, tmp_path, docker_client, docker_host, token, cleanup
):
    cleanup.extend(refs := _save_two_images(docker_client, docker_host, token, tmp_path / "pair.tar"))
    image, events = await run(tmp_path / "pair.tar", None)
    assert not isinstance(image, Exception), image
    assert sorted(tag for loaded in image.images for tag in loaded.tags) == sorted(refs)
    assert image.ref in refs and all(image_present(docker_client, ref) for ref in refs)
    assert events[-1].type == "import.completed" and events[-1].data.image.images == image.images


async def test_a_name_for_a_save_of_two_images_is_refused_before_the_engine_commits(
    run, tmp_path, docker_client, docker_host, token, name, cleanup
):
    cleanup.extend(refs := _save_two_images(docker_client, docker_host, token, tmp_path / "pair.tar"))
    error, events = await run(tmp_path / "pair.tar", f"{name}:pair")
    assert isinstance(error, ImporterError) and error.code == "invalid_reference", error
    assert "2 images" in error.message
    assert not any(image_present(docker_client, ref) for ref in [*refs, f"{name}:pair"])
