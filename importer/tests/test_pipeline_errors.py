"""Every failure has its stable code, a one-line message, and leaves nothing behind in the engine."""

import json
import lzma
import os

import pytest
from stub_engine import StubEngine

from archives import (
    docker_archive_from_layers,
    forge_xz_size,
    rootfs_files,
    sha256_hex,
    tar_bytes,
    without_member,
    write,
)
from conftest import leftovers
from ferry_importer import CollectingReporter, Engine, ImporterError, ImportSpec, LocalFileSource, Options, run_import
from ferry_importer.archive.layout import OCI_LOAD_MIN_ENGINE, parse_engine_version
from tests.support.images import image_present

pytestmark = pytest.mark.engine


def read_member_names(path):
    import tarfile

    with tarfile.open(path) as tar:
        return tar.getnames()


def assert_failed(result, events, code: str) -> ImporterError:
    assert isinstance(result, ImporterError), result
    assert result.code == code, (result.code, result.message)
    assert result.message and "\n" not in result.message
    terminal = events[-1]
    assert terminal.type == "import.failed" and terminal.data.error.code == code
    assert [e.data.seq for e in events] == list(range(1, len(events) + 1))
    return result


def assert_nothing_left(docker_client, token, *refs, data_dir=None):
    assert leftovers(docker_client, token) == []
    for ref in refs:
        assert not image_present(docker_client, ref), ref
    if data_dir is not None and data_dir.exists():
        assert {p.name for p in data_dir.iterdir()} <= {"index.json"}


def big_rootfs(token: str, size: int = 3_000_000) -> bytes:
    """A rootfs larger than one chunk, so the engine has been sent data when the failure shows up."""
    return tar_bytes({"payload/blob": os.urandom(size), "etc/marker": token.encode()})


async def test_an_empty_file_is_empty_archive(run, tmp_path):
    path = tmp_path / "empty.tar.xz"
    path.write_bytes(b"")
    assert_failed(*await run(path, "x/y:1"), "empty_archive")


@pytest.mark.parametrize("content", [lzma.compress(b""), b"\0" * 10240])
async def test_an_archive_with_no_files_is_empty_archive(content, run, tmp_path):
    path = tmp_path / "nothing.tar"
    path.write_bytes(content)
    assert_failed(*await run(path, "x/y:1"), "empty_archive")


@pytest.mark.parametrize("content", [b"just some text\n" * 100, b"tiny", os.urandom(5000)])
async def test_a_file_that_is_no_archive_is_not_an_archive(content, run, tmp_path):
    path = tmp_path / "notes.tar.gz"
    path.write_bytes(content)
    assert_failed(*await run(path, "x/y:1"), "not_an_archive")


async def test_corrupt_xz_fails_and_leaves_no_image(run, tmp_path, name, token, docker_client, cleanup):
    data = bytearray(lzma.compress(big_rootfs(token), preset=0))
    data[len(data) * 2 // 3] ^= 0xFF
    path = tmp_path / "corrupt.tar.xz"
    path.write_bytes(bytes(data))
    assert_failed(*await run(path, f"{name}:c", changes=[f"LABEL ferry.test={token}"]), "corrupt_compression")
    assert_nothing_left(docker_client, token, f"{name}:c", data_dir=tmp_path / "data")


async def test_truncated_xz_fails_and_leaves_no_image(run, tmp_path, name, token, docker_client, cleanup):
    data = lzma.compress(big_rootfs(token), preset=0)
    path = tmp_path / "cut.tar.xz"
    path.write_bytes(data[: len(data) * 3 // 4])
    assert_failed(*await run(path, f"{name}:t", changes=[f"LABEL ferry.test={token}"]), "truncated_compression")
    assert_nothing_left(docker_client, token, f"{name}:t")


async def test_a_truncated_tar_fails_although_the_engine_got_most_of_it(
    run, tmp_path, name, token, docker_client, cleanup
):
    data = big_rootfs(token)
    path = tmp_path / "cut.tar"
    path.write_bytes(data[: len(data) - 200_000])
    result, events = await run(path, f"{name}:tt", changes=[f"LABEL ferry.test={token}"])
    assert_failed(result, events, "truncated_tar")
    assert max(e.data.bytes_done for e in events) > 1_000_000  # the engine really was streaming
    assert_nothing_left(docker_client, token, f"{name}:tt")


async def test_a_docker_save_without_manifest_is_never_imported_as_a_filesystem(
    saved_image, run, tmp_path, docker_client
):
    path, repo_tags, image_id, label = saved_image
    broken = without_member(path, tmp_path / "no-manifest.tar", "manifest.json")
    result, events = await run(broken)
    assert_failed(result, events, "missing_manifest")
    assert_nothing_left(docker_client, label, *repo_tags)
    assert not image_present(docker_client, image_id)


async def test_a_pure_oci_layout_says_which_engine_can_load_it(run, engine, tmp_path, token, docker_client):
    version = parse_engine_version(str((await engine.version()).get("Version", "")))
    if version >= OCI_LOAD_MIN_ENGINE:
        pytest.skip(
            f"this engine ({version[0]}.{version[1]}) loads OCI layouts without manifest.json; "
            "the refusal on older engines is covered with a stub engine below"
        )
    data = docker_archive_from_layers(
        [tar_bytes({"f": b"x" * 2000})], [], style="oci", with_manifest=False, labels={"ferry.test": token}
    )
    path = write(tmp_path / "oci.tar", data)
    error = assert_failed(*await run(path), "unsupported_layout")
    assert "25.0" in error.message and "manifest.json" in error.message
    assert_nothing_left(docker_client, token)


async def test_an_engine_older_than_25_is_never_sent_a_whole_pure_oci_layout(tmp_path):
    data = docker_archive_from_layers([tar_bytes({"f": b"x" * 2000})], [], style="oci", with_manifest=False)
    path = write(tmp_path / "oci.tar", data)
    reporter = CollectingReporter()
    with StubEngine(tmp_path / "stub.sock", mode="slow", version="24.0.9") as stub:
        async with Engine(stub.host) as engine:
            with pytest.raises(ImporterError) as caught:
                await run_import(
                    ImportSpec(),
                    LocalFileSource(path),
                    engine=engine,
                    reporter=reporter,
                    options=Options(data_dir=tmp_path / "data"),
                )
    assert caught.value.code == "unsupported_layout"
    assert "25.0" in caught.value.message and "24.0" in caught.value.message
    assert reporter.events[-1].data.error.code == "unsupported_layout"
    assert stub.images == {} and stub.received < path.stat().st_size  # refused before the last byte


async def test_an_engine_error_inside_a_200_stream_fails_the_load(run, tmp_path, name, token, docker_client):
    data = docker_archive_from_layers(
        [tar_bytes({"f": b"x" * 5000})], [f"{name}:broken"], style="hex-tar", labels={"ferry.test": token}
    )
    # drop the layer the manifest points at: the engine answers 200, then errorDetail
    full = write(tmp_path / "full.tar", data)
    layer = next(m for m in read_member_names(full) if m.endswith(".tar"))
    path = without_member(full, tmp_path / "broken.tar", layer)
    error = assert_failed(*await run(path), "engine_error")
    assert "no such file" in error.message
    assert_nothing_left(docker_client, token, f"{name}:broken")


async def test_a_digest_mismatch_fails_before_the_engine_commits(run, tmp_path, name, token, docker_client, cleanup):
    data = big_rootfs(token)
    path = write(tmp_path / "rootfs.tar", data)
    result, _ = await run(path, f"{name}:sha", changes=[f"LABEL ferry.test={token}"], expected_sha256="0" * 64)
    assert_failed(result, _, "source_mismatch")
    assert_nothing_left(docker_client, token, f"{name}:sha")
    image, _ = await run(path, f"{name}:sha", changes=[f"LABEL ferry.test={token}"], expected_sha256=sha256_hex(data))
    assert not isinstance(image, Exception), image


async def test_an_invalid_name_fails_before_a_single_byte_is_read(run, tmp_path):
    path = write(tmp_path / "rootfs.tar", tar_bytes(rootfs_files(100)))

    class Untouchable(LocalFileSource):
        def open(self):
            raise AssertionError("the archive must not be opened")

    for bad in ("Upper/case:1", "ok:" + "t" * 200, "bad name"):
        assert_failed(*await run(path, bad, source=Untouchable(path)), "invalid_reference")


async def test_a_disallowed_change_line_is_refused(run, tmp_path):
    path = write(tmp_path / "rootfs.tar", tar_bytes(rootfs_files(100)))
    assert_failed(*await run(path, "x/y:1", changes=["RUN echo hi"]), "invalid_change")


async def test_an_unreachable_engine_is_engine_unreachable(tmp_path):

    path = write(tmp_path / "rootfs.tar", tar_bytes(rootfs_files(100)))
    reporter = CollectingReporter()
    async with Engine(f"unix://{tmp_path}/no-engine.sock") as engine:
        with pytest.raises(ImporterError) as caught:
            await run_import(
                ImportSpec(image="x/y:1"),
                LocalFileSource(path),
                engine=engine,
                reporter=reporter,
                options=Options(data_dir=tmp_path / "data"),
            )
    assert caught.value.code == "engine_unreachable"
    assert reporter.events[-1].data.error.code == "engine_unreachable"


@pytest.mark.fault
async def test_not_enough_disk_for_the_uncompressed_size_fails_up_front(run, tmp_path, name, token, docker_client):
    # the xz index claims a petabyte: the engine's real data root cannot hold it
    path = tmp_path / "huge.tar.xz"
    path.write_bytes(forge_xz_size(tar_bytes(rootfs_files(1000)), 10**15))
    result, events = await run(path, f"{name}:disk", changes=[f"LABEL ferry.test={token}"])
    error = assert_failed(result, events, "insufficient_disk")
    assert "data root" in error.message
    assert all(e.data.bytes_done == 0 for e in events)
    assert_nothing_left(docker_client, token, f"{name}:disk")


async def test_a_stalled_engine_is_detected_and_the_request_aborted(run, tmp_path):
    path = write(tmp_path / "rootfs.tar", os.urandom(0) + tar_bytes({"blob": os.urandom(8_000_000)}))
    with StubEngine(tmp_path / "stub.sock", mode="stall") as stub:
        async with Engine(stub.host) as engine:
            reporter = CollectingReporter()
            with pytest.raises(ImporterError) as caught:
                await run_import(
                    ImportSpec(image="x/y:1"),
                    LocalFileSource(path),
                    engine=engine,
                    reporter=reporter,
                    options=Options(data_dir=tmp_path / "data", stall_timeout=1.0),
                )
    assert caught.value.code == "engine_stalled"
    gaps = [b.timestamp - a.timestamp for a, b in zip(reporter.events, reporter.events[1:])]
    assert max(g.total_seconds() for g in gaps) <= 1.0  # progress kept flowing while the engine was stuck


async def test_failures_are_reported_as_valid_contract_events(run, tmp_path):
    from ferry_contract import parse_callback

    path = tmp_path / "empty.tar"
    path.write_bytes(b"")
    _, events = await run(path, "x/y:1")
    for event in events:
        assert parse_callback(json.dumps(event.model_dump(mode="json"))) == event


async def test_a_stub_image_after_reported_success_fails_verification_and_is_removed(tmp_path):

    path = write(tmp_path / "rootfs.tar", tar_bytes({"blob": os.urandom(3_000_000)}))
    reporter = CollectingReporter()
    with StubEngine(tmp_path / "stub.sock", mode="slow", stored_size=4096) as stub:
        async with Engine(stub.host) as engine:
            with pytest.raises(ImporterError) as caught:
                await run_import(
                    ImportSpec(image="stub/image:1"),
                    LocalFileSource(path),
                    engine=engine,
                    reporter=reporter,
                    options=Options(data_dir=tmp_path / "data"),
                )
        assert caught.value.code == "verification_failed"
        assert [ref for ref in stub.deleted if ref.startswith("sha256:")]  # the stub image was removed
        assert "stub/image:1" not in stub.images  # and never tagged


async def test_forcing_load_on_a_filesystem_archive_is_missing_manifest(run, tmp_path, token, docker_client):
    path = write(tmp_path / "rootfs.tar", big_rootfs(token))
    assert_failed(*await run(path, format="load"), "missing_manifest")
    assert_nothing_left(docker_client, token)


async def test_the_digest_hook_sees_the_sha256_before_the_engine_commits_and_can_refuse(
    engine, tmp_path, name, token, docker_client, cleanup
):
    from ferry_importer.errors import SourceMismatch

    data = big_rootfs(token)
    path = write(tmp_path / "rootfs.tar", data)
    seen = []

    def refuse(digest: str) -> None:
        seen.append(digest)
        raise SourceMismatch("the service expected another archive", digest)

    spec = ImportSpec(image=f"{name}:hook", changes=[f"LABEL ferry.test={token}"])
    with pytest.raises(ImporterError) as caught:
        await run_import(
            spec,
            LocalFileSource(path),
            engine=engine,
            reporter=CollectingReporter(),
            options=Options(data_dir=tmp_path / "data"),
            on_digest=refuse,
        )
    assert caught.value.code == "source_mismatch" and seen == [sha256_hex(data)]
    assert_nothing_left(docker_client, token, f"{name}:hook")
    accepted = []
    image = await run_import(
        spec,
        LocalFileSource(path),
        engine=engine,
        reporter=CollectingReporter(),
        options=Options(data_dir=tmp_path / "data"),
        on_digest=accepted.append,
    )
    assert accepted == [sha256_hex(data)] and image.ref == f"{name}:hook"
