"""The up-front disk check for archives pulled from a URL (every job the backend sends): the uncompressed size
is read from the archive's own metadata with a few Range requests, before a byte is streamed to the engine."""

from __future__ import annotations

import pytest

from archives import forge_xz_size, rootfs_files, tar_bytes, write
from ferry_contract.urls import parse_prefix
from ferry_importer.archive.compression import Compression, detect_compression, uncompressed_size
from ferry_importer.sources.remote_file import RemoteFile
from ferry_importer.sources.url import UrlSource

pytestmark = pytest.mark.timeout(60)


def url_source(files, name: str) -> UrlSource:
    source = UrlSource(files.url(name, "token=secret"), prefixes=[parse_prefix(files.url(""))])
    source.probe()
    return source


@pytest.mark.parametrize("compression", ["xz", "gzip", "zstd", "none"])
def test_a_remote_archive_tells_the_same_uncompressed_size_as_the_local_file(files, compression):
    path = write(files.root / f"rootfs.{compression}", tar_bytes(rootfs_files(400_000)), compression)
    kind = detect_compression(path.read_bytes()[:6])
    source = url_source(files, path.name)
    with RemoteFile(source, source.size) as remote:
        assert detect_compression(remote.read(6)) is kind
        remote_size = uncompressed_size(remote, kind)
    assert remote_size == uncompressed_size(path, kind)
    assert remote_size is not None and remote_size >= 400_000


def test_a_server_without_range_support_gives_no_size_and_no_error(files):
    path = write(files.root / "rootfs.xz", tar_bytes(rootfs_files(10_000)), "xz")
    source = url_source(files, path.name)
    files.ranges = False
    with RemoteFile(source, source.size) as remote:
        assert uncompressed_size(remote, Compression.XZ) is None


@pytest.mark.fault
@pytest.mark.engine
async def test_a_url_archive_too_big_for_the_engines_disk_fails_up_front(run, files, docker_client, token):
    path = files.root / "huge.tar.xz"
    path.write_bytes(forge_xz_size(tar_bytes(rootfs_files(1000)), 10**15))  # the index claims a petabyte
    source = UrlSource(files.url(path.name), prefixes=[parse_prefix(files.url(""))])
    result, events = await run(path, f"ferry-test/disk-{token}:1", source=source, changes=[f"LABEL ferry.test={token}"])
    assert getattr(result, "code", None) == "insufficient_disk", result
    assert "data root" in result.message
    assert all(e.data.bytes_done == 0 for e in events), "nothing was streamed before the refusal"
