import bz2
import io
import lzma
import struct
import subprocess
import tracemalloc
import zlib

import pytest
from backports import zstd

from archives import COMPRESSORS
from ferry_importer.archive.compression import Compression, decompress, detect_compression, uncompressed_size
from ferry_importer.errors import CorruptCompression, TruncatedCompression

PAYLOAD = bytes(range(256)) * 4000 + b"tail" * 50_000


@pytest.mark.parametrize("kind", ["xz", "gzip", "zstd", "bzip2", "none"])
def test_every_compression_round_trips_in_bounded_pieces(kind):
    data = COMPRESSORS[kind](PAYLOAD)
    detected = detect_compression(data[:6])
    assert detected == (Compression(kind) if kind != "none" else Compression.NONE)
    pieces = list(decompress(io.BytesIO(data), detected, max_out=64 * 1024))
    assert b"".join(pieces) == PAYLOAD
    assert max(len(p) for p in pieces) <= 64 * 1024


STREAMING_COMPRESSORS = {
    "zstd": zstd.ZstdCompressor,
    "xz": lambda: lzma.LZMACompressor(preset=0),
    "gzip": lambda: zlib.compressobj(1, wbits=31),
    "bzip2": lambda: bz2.BZ2Compressor(1),
}
# zstd gets the big run: a 16 kB .zst of 512 MiB of zeros once came out as 256 MiB pieces. xz and bzip2
# compress zeros as well as zstd does but slowly, so 64 MiB each is enough to prove their bound.
ZERO_RUN_MIB = {"zstd": 512, "xz": 64, "gzip": 64, "bzip2": 64}


def write_compressed_zeros(path, kind: str, size: int) -> None:
    """Compress `size` zero bytes to `path` one MiB at a time (never the whole run in memory)."""
    compressor, zeros = STREAMING_COMPRESSORS[kind](), bytes(1 << 20)
    with open(path, "wb") as out:
        for _ in range(size >> 20):
            out.write(compressor.compress(zeros))
        out.write(compressor.flush())


@pytest.mark.parametrize("kind", ZERO_RUN_MIB)
def test_a_long_run_of_zeros_decodes_in_bounded_pieces_and_bounded_memory(kind, tmp_path):
    size, bound = ZERO_RUN_MIB[kind] << 20, 1 << 20
    path = tmp_path / f"zeros.{kind}"
    write_compressed_zeros(path, kind, size)
    assert path.stat().st_size < size // 200  # a tiny file that expands enormously
    total = biggest = 0
    tracemalloc.start()
    try:
        with open(path, "rb") as fh:
            for piece in decompress(fh, Compression(kind), max_out=bound):
                total += len(piece)
                biggest = max(biggest, len(piece))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert total == size
    assert biggest <= bound
    assert peak < 8 * bound, f"decoding allocated {peak >> 20} MiB at once"


def test_detection_uses_magic_bytes_not_the_file_name(tmp_path):
    path = tmp_path / "image.tar.gz"
    path.write_bytes(lzma.compress(PAYLOAD))
    assert detect_compression(path.read_bytes()[:6]) is Compression.XZ


def test_concatenated_members_decode_completely():
    xz = lzma.compress(b"first ") + b"\x00" * 8 + lzma.compress(b"second")
    gz = COMPRESSORS["gzip"](b"first ") + COMPRESSORS["gzip"](b"second")
    for data, kind in ((xz, Compression.XZ), (gz, Compression.GZIP)):
        assert b"".join(decompress(io.BytesIO(data), kind)) == b"first second"


def test_zstd_with_skippable_frames_between_its_frames_is_detected_and_decoded_whole(tmp_path):
    def skippable(nibble: int, payload: bytes) -> bytes:  # what pzstd writes before every frame
        return struct.pack("<II", 0x184D2A50 + nibble, len(payload)) + payload

    data = (
        skippable(0, b"\x10\x00\x00\x00")
        + COMPRESSORS["zstd"](b"first " * 1000)
        + skippable(0xF, b"meta")
        + COMPRESSORS["zstd"](b"second")
    )
    assert detect_compression(data[:6]) is Compression.ZSTD
    assert b"".join(decompress(io.BytesIO(data), Compression.ZSTD)) == b"first " * 1000 + b"second"
    path = tmp_path / "p.zst"
    path.write_bytes(data)
    assert uncompressed_size(path, Compression.ZSTD) is None  # unknown rather than the first frame's size


def test_trailing_garbage_after_the_last_member_is_ignored_like_the_tools_do():
    data = COMPRESSORS["gzip"](b"payload") + b"not gzip at all"
    assert b"".join(decompress(io.BytesIO(data), Compression.GZIP)) == b"payload"


@pytest.mark.parametrize("kind", ["xz", "gzip", "zstd", "bzip2"])
def test_a_cut_short_stream_is_truncated_compression(kind):
    data = COMPRESSORS[kind](PAYLOAD)
    with pytest.raises(TruncatedCompression) as caught:
        b"".join(decompress(io.BytesIO(data[: len(data) // 2]), Compression(kind)))
    assert caught.value.code == "truncated_compression"


@pytest.mark.parametrize("kind", ["xz", "gzip", "zstd", "bzip2"])
def test_damaged_bytes_are_corrupt_compression(kind):
    data = bytearray(COMPRESSORS[kind](PAYLOAD))
    for i in range(len(data) // 3, len(data) // 3 + 16):
        data[i] ^= 0x5A
    with pytest.raises(CorruptCompression) as caught:
        b"".join(decompress(io.BytesIO(bytes(data)), Compression(kind)))
    assert caught.value.code == "corrupt_compression"


def test_uncompressed_size_is_read_from_xz_index_and_gzip_trailer(tmp_path):
    for kind in ("xz", "gzip", "zstd", "none"):
        path = tmp_path / f"a.{kind}"
        path.write_bytes(COMPRESSORS[kind](PAYLOAD))
        assert uncompressed_size(path, Compression(kind) if kind != "none" else Compression.NONE) == len(PAYLOAD)
    assert uncompressed_size(tmp_path / "a.bz2", Compression.BZIP2) is None


def test_xz_size_sums_every_block_and_stream(tmp_path):
    path = tmp_path / "multi.xz"
    with open(path, "wb") as out:  # several blocks (xz -T2) followed by a second stream
        subprocess.run(["xz", "-T2", "--block-size=65536", "-c"], input=PAYLOAD, stdout=out, check=True)
        out.write(lzma.compress(b"more"))
    assert uncompressed_size(path, Compression.XZ) == len(PAYLOAD) + 4
    assert b"".join(decompress(open(path, "rb"), Compression.XZ)) == PAYLOAD + b"more"
