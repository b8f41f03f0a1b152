"""The fast path: the same archive for the same tag answers "already present" without importing."""

import shutil

import pytest

from archives import rootfs_files, tar_bytes, write
from tests.support.images import image_present

pytestmark = pytest.mark.engine


def streamed(events) -> bool:
    return any(e.data.phase in ("importing", "finalizing") for e in events)


async def test_the_same_archive_again_is_already_present_without_streaming(run, tmp_path, name, token, cleanup):
    path = write(tmp_path / "rootfs.tar.xz", tar_bytes(rootfs_files()), "xz")
    cleanup.append(f"{name}:1")
    changes = [f"LABEL ferry.test={token}"]
    first, events = await run(path, f"{name}:1", changes=changes)
    assert streamed(events) and not first.already_present
    again, events = await run(path, f"{name}:1", changes=changes)
    assert again.already_present and again.id == first.id
    assert not streamed(events)
    assert [e.type for e in events] == ["import.progress", "import.completed"]
    assert events[-1].data.image.already_present is True


async def test_force_different_changes_or_a_moved_tag_import_again(run, tmp_path, name, token, cleanup, docker_client):
    path = write(tmp_path / "rootfs.tar", tar_bytes(rootfs_files()))
    cleanup.append(f"{name}:2")
    changes = [f"LABEL ferry.test={token}"]
    first, _ = await run(path, f"{name}:2", changes=changes)
    forced, events = await run(path, f"{name}:2", changes=changes, force=True)
    assert streamed(events) and forced.id != first.id
    other, events = await run(path, f"{name}:2", changes=[*changes, 'CMD ["/bin/tool"]'])
    assert streamed(events) and other.id != forced.id
    docker_client.api.remove_image(f"{name}:2")
    back, events = await run(path, f"{name}:2", changes=[*changes, 'CMD ["/bin/tool"]'])
    assert streamed(events) and image_present(docker_client, f"{name}:2")


async def test_a_copy_of_the_same_archive_is_recognised_by_its_digest(run, tmp_path, name, token, cleanup):
    path = write(tmp_path / "rootfs.tar.gz", tar_bytes(rootfs_files()), "gzip")
    cleanup.append(f"{name}:3")
    changes = [f"LABEL ferry.test={token}"]
    first, _ = await run(path, f"{name}:3", changes=changes)
    copy = tmp_path / "copy-of-rootfs.tar.gz"
    shutil.copyfile(path, copy)
    again, events = await run(copy, f"{name}:3", changes=changes)
    assert again.already_present and again.id == first.id and not streamed(events)


async def test_a_label_remembers_the_archive_even_without_the_local_index(run, tmp_path, name, token, cleanup, engine):
    from ferry_importer import Options

    path = write(tmp_path / "rootfs.tar", tar_bytes(rootfs_files()))
    cleanup.append(f"{name}:4")
    changes = [f"LABEL ferry.test={token}"]
    await run(path, f"{name}:4", changes=changes)
    labelled, _ = await run(path, f"{name}:4", changes=changes, force=True)  # digest known up front now
    fresh = Options(data_dir=tmp_path / "other-data")
    from ferry_importer.engine.verify import sha256_file

    again, events = await run(path, f"{name}:4", changes=changes, options=fresh, expected_sha256=sha256_file(path))
    assert again.already_present and again.id == labelled.id and not streamed(events)


async def test_a_loaded_archive_is_already_present_the_second_time(saved_image, run, docker_client):
    path, repo_tags, image_id, _ = saved_image
    try:
        first, _ = await run(path)
        again, events = await run(path)
        assert again.already_present and again.id == first.id == image_id and not streamed(events)
    finally:
        docker_client.api.remove_image(repo_tags[0], force=True)
