import io
import lzma
import os
import subprocess

import pytest

from ferry_importer.archive.xzblocks import block_map, decode_block, decode_parallel, parallel_worthwhile
from ferry_importer.errors import CorruptCompression, TruncatedCompression

DATA = os.urandom(300_000) + bytes(range(256)) * 20_000


def multi_block(tmp_path, data=DATA, extra_stream=True):
    path = tmp_path / "multi.xz"
    with open(path, "wb") as out:
        subprocess.run(["xz", "-T2", "-1", "--block-size=1MiB", "-c"], input=data, stdout=out, check=True)
        if extra_stream:
            out.write(b"\x00" * 4)  # stream padding, then a second stream
            out.write(lzma.compress(b"second stream"))
    return path


def test_the_block_map_lists_every_block_of_every_stream(tmp_path):
    path = multi_block(tmp_path)
    blocks = block_map(path)
    assert len(blocks) == 7  # 5.4 MB in 1 MiB blocks, plus the second stream's block
    assert sum(b.uncompressed for b in blocks) == len(DATA) + len(b"second stream")
    assert parallel_worthwhile(blocks)
    raw = path.read_bytes()
    assert raw[blocks[0].offset - 12 : blocks[0].offset - 6] == b"\xfd7zXZ\x00"


def test_parallel_decoding_yields_the_same_bytes_in_order_and_reads_everything(tmp_path):
    path = multi_block(tmp_path)
    raw = io.BytesIO(path.read_bytes())
    out = list(decode_parallel(raw, block_map(path), max_out=256 * 1024))
    assert b"".join(out) == DATA + b"second stream"
    assert max(len(piece) for piece in out) <= 256 * 1024
    assert raw.tell() == path.stat().st_size  # indexes and footers were read too (hashes stay exact)


def test_a_single_block_file_is_not_worth_parallel_decoding(tmp_path):
    path = tmp_path / "single.xz"
    path.write_bytes(lzma.compress(DATA))
    assert not parallel_worthwhile(block_map(path))


def test_a_damaged_block_fails_its_check(tmp_path):
    path = multi_block(tmp_path, extra_stream=False)
    blocks = block_map(path)
    data = bytearray(path.read_bytes())
    data[blocks[2].offset + 100] ^= 0xFF
    with pytest.raises(CorruptCompression):
        list(decode_parallel(io.BytesIO(bytes(data)), blocks, max_out=1 << 20))


def test_a_file_cut_short_after_the_map_was_read_is_truncated(tmp_path):
    path = multi_block(tmp_path, extra_stream=False)
    blocks = block_map(path)
    data = path.read_bytes()[: blocks[3].offset + 10]
    with pytest.raises(TruncatedCompression):
        list(decode_parallel(io.BytesIO(data), blocks, max_out=1 << 20))


def test_a_file_without_a_valid_index_has_no_map(tmp_path):
    path = tmp_path / "cut.xz"
    data = lzma.compress(DATA)
    path.write_bytes(data[: len(data) // 2])
    assert block_map(path) is None


def test_decode_block_checks_the_size_in_the_index(tmp_path):
    path = multi_block(tmp_path, extra_stream=False)
    block = block_map(path)[0]
    stored = path.read_bytes()[block.offset : block.offset + block.stored]
    assert len(decode_block(block, stored)) == block.uncompressed
    wrong = type(block)(block.offset, block.unpadded, block.uncompressed + 1, block.flags)
    with pytest.raises(CorruptCompression):
        decode_block(wrong, stored)
