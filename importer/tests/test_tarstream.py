import io
import random
import tarfile

import pytest

from archives import tar_bytes
from ferry_importer.archive.tarstream import TarWalker
from ferry_importer.errors import CorruptTar, NotAnArchive, TruncatedTar


def walk(data: bytes, piece_sizes=None, **kwargs):
    walker = TarWalker(**kwargs)
    sent, held, pos = [], [], 0
    rng = random.Random(7)
    while pos < len(data):
        size = piece_sizes or rng.randint(1, 4000)
        s, h = walker.feed(data[pos : pos + size])
        sent.append(s)
        held.append(h)
        pos += size
    walker.finish()
    return walker, b"".join(sent), b"".join(held)


def sample() -> bytes:
    files = {f"dir/file{i}": bytes([i]) * (i * 97) for i in range(30)}
    files["d/" * 70 + "long-name"] = b"long"
    files["manifest.json"] = b'[{"Config": "x.json"}]'
    return tar_bytes(files)


@pytest.mark.parametrize("fmt", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT])
def test_any_piece_boundaries_pass_every_byte_and_stop_at_the_end_marker(fmt):
    files = {f"f{i}": bytes([i]) * (i * 131) for i in range(25)}
    files["d/" * 70 + "long"] = b"x"
    data = tar_bytes(files, fmt=fmt)
    walker, sent, held = walk(data, capture=frozenset(), keep_first=500)
    assert sent + held == data
    assert walker.end_offset == len(sent)
    assert held[:1024] == b"\0" * 1024
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        assert walker.member_count == len(tar.getmembers())
    assert any(m.name.endswith("long") and len(m.name) > 100 for m in walker.first_members)


def test_small_metadata_members_are_captured_and_content_is_counted():
    walker, _, _ = walk(sample(), capture=frozenset({"manifest.json"}))
    assert walker.captured == {"manifest.json": b'[{"Config": "x.json"}]'}
    assert walker.content_bytes == sum(i * 97 for i in range(30)) + 4 + 22
    assert {"dir", "d", "manifest.json"} <= walker.names


def test_layer_sizes_and_image_configs_are_kept_within_their_bounds():
    configs = {f"{i:064x}.json": b"{}" * (300_000 + i) for i in range(20)}  # 12 MB of config-like members
    layers = {f"{'a' * 64}/layer.tar": b"L" * 5000, f"{'b' * 64}.tar": b"T" * 70, "blobs/sha256/" + "c" * 64: b"B"}
    walker, _, _ = walk(tar_bytes({**layers, **configs, "bin/tool.tar.gz": b"x"}), capture=frozenset())
    assert walker.layer_sizes == {name: len(data) for name, data in layers.items()}
    kept = sum(len(v) for v in walker.captured.values())
    assert 0 < kept <= 8 << 20 and set(walker.captured) < set(configs)
    assert all(walker.captured[name] == configs[name] for name in walker.captured)


@pytest.mark.parametrize("cut", [100, 700, 3000])
def test_a_stream_cut_inside_a_header_or_member_is_truncated_tar(cut):
    with pytest.raises(TruncatedTar):
        walk(sample()[:cut])


def test_a_stream_ending_cleanly_without_end_marker_is_accepted():
    data = tar_bytes({"a": b"1" * 600})
    end = 512 + 1024  # header + padded data, no end marker
    walker, sent, held = walk(data[:end])
    assert sent == data[:end] and held == b"" and not walker.ended


def test_garbage_instead_of_a_first_header_is_not_an_archive():
    with pytest.raises(NotAnArchive):
        walk(b"this is just a text file\n" * 100)


def test_a_damaged_header_later_in_the_stream_is_corrupt_tar():
    data = bytearray(tar_bytes({"a": b"1" * 600, "b": b"2" * 10}))
    data[1536 + 10] ^= 0xFF  # inside the second header's name: the checksum no longer matches
    with pytest.raises(CorruptTar) as caught:
        walk(bytes(data))
    assert "1536" in caught.value.message


def test_huge_member_sizes_from_pax_headers_are_followed():
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("big")
        info.size = 3000
        info.pax_headers = {"size": "3000", "comment": "x" * 10}
        tar.addfile(info, io.BytesIO(b"z" * 3000))
        tail = tarfile.TarInfo("after")
        tar.addfile(tail, io.BytesIO(b""))
    walker, _, _ = walk(buf.getvalue())
    assert [m.name for m in walker.first_members] == ["big", "after"]
    assert walker.first_members[0].size == 3000
