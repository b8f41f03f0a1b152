"""Archives made by the tests themselves: rootfs tarballs in every compression, docker-save variants."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import json
import lzma
import os
import tarfile
import zlib
from pathlib import Path

from backports import zstd

COMPRESSORS = {
    "none": lambda data: data,
    "xz": lambda data: lzma.compress(data, preset=0),
    "gzip": lambda data: gzip.compress(data, compresslevel=1),
    "zstd": lambda data: zstd.compress(
        data, options={zstd.CompressionParameter.compression_level: 1, zstd.CompressionParameter.checksum_flag: 1}
    ),
    "bzip2": lambda data: bz2.compress(data, compresslevel=1),
}


def tar_bytes(files: dict[str, bytes], *, dot_prefix: bool = False, fmt: int = tarfile.PAX_FORMAT) -> bytes:
    """A tar stream of regular files (and their parent directories)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        seen: set[str] = set()
        if dot_prefix:
            root = tarfile.TarInfo("./")
            root.type, root.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(root)
        for name, data in files.items():
            parts = name.split("/")[:-1]
            for i in range(1, len(parts) + 1):
                directory = "/".join(parts[:i])
                if directory not in seen:
                    seen.add(directory)
                    info = tarfile.TarInfo(("./" if dot_prefix else "") + directory)
                    info.type, info.mode = tarfile.DIRTYPE, 0o755
                    tar.addfile(info)
            info = tarfile.TarInfo(("./" if dot_prefix else "") + name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def rootfs_files(size: int = 200_000) -> dict[str, bytes]:
    return {
        "bin/tool": os.urandom(size),
        "etc/os-release": b"NAME=ferry-test\n",
        "usr/share/doc/readme.txt": b"hello " * 1000,
    }


def write(path: Path, data: bytes, compression: str = "none") -> Path:
    path.write_bytes(COMPRESSORS[compression](data))
    return path


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_members(archive: Path) -> list[tuple[tarfile.TarInfo, bytes]]:
    with tarfile.open(archive) as tar:
        return [(m, tar.extractfile(m).read() if m.isfile() else b"") for m in tar.getmembers()]


def docker_archive_from_layers(
    layers: list[bytes],
    repo_tags: list[str],
    *,
    style: str,
    with_manifest: bool = True,
    labels: dict[str, str] | None = None,
) -> bytes:
    """A loadable docker archive built by hand from layer tars.

    style "hex-tar": other tools' layout — `<diffid>.tar` layers first, `<config>.json`, manifest.json last.
    style "oci": Engine 25 `docker save` layout — blobs/sha256/…, index.json, manifest.json, oci-layout.
    """
    diff_ids = [f"sha256:{sha256_hex(layer)}" for layer in layers]
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "created": "2024-01-01T00:00:00Z",
            "config": {"Labels": labels or {}},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "ferry test"} for _ in layers],
        },
        sort_keys=True,
    ).encode()
    config_hex = sha256_hex(config)
    files: dict[str, bytes] = {}
    if style == "hex-tar":
        for layer, diff in zip(layers, diff_ids):
            files[f"{diff.split(':')[1]}.tar"] = layer
        files[f"{config_hex}.json"] = config
        layer_paths = [f"{d.split(':')[1]}.tar" for d in diff_ids]
        config_path = f"{config_hex}.json"
    elif style == "oci":
        for layer in layers:
            files[f"blobs/sha256/{sha256_hex(layer)}"] = layer
        files[f"blobs/sha256/{config_hex}"] = config
        oci_manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {
                    "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": f"sha256:{config_hex}",
                    "size": len(config),
                },
                "layers": [
                    {
                        "mediaType": "application/vnd.oci.image.layer.v1.tar",
                        "digest": f"sha256:{sha256_hex(layer)}",
                        "size": len(layer),
                    }
                    for layer in layers
                ],
            }
        ).encode()
        files[f"blobs/sha256/{sha256_hex(oci_manifest)}"] = oci_manifest
        files["index.json"] = json.dumps(
            {
                "schemaVersion": 2,
                "manifests": [
                    {
                        "mediaType": "application/vnd.oci.image.manifest.v1+json",
                        "digest": f"sha256:{sha256_hex(oci_manifest)}",
                        "size": len(oci_manifest),
                    }
                ],
            }
        ).encode()
        files["oci-layout"] = b'{"imageLayoutVersion": "1.0.0"}'
        layer_paths = [f"blobs/sha256/{sha256_hex(layer)}" for layer in layers]
        config_path = f"blobs/sha256/{config_hex}"
    else:
        raise ValueError(style)
    if with_manifest:
        files["manifest.json"] = json.dumps(
            [{"Config": config_path, "RepoTags": repo_tags, "Layers": layer_paths}]
        ).encode()
    names = sorted(files) if style == "oci" else list(files)
    return tar_bytes({name: files[name] for name in names})


def image_id_of(archive_bytes: bytes) -> str:
    with tarfile.open(fileobj=io.BytesIO(archive_bytes)) as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())
    return "sha256:" + manifest[0]["Config"].rsplit("/", 1)[-1].removesuffix(".json")


def without_member(archive: Path, out: Path, drop: str) -> Path:
    """Copy a tar without one member (e.g. an incomplete docker save)."""
    with tarfile.open(archive) as src, tarfile.open(out, "w") as dst:
        for member in src.getmembers():
            if member.name != drop:
                dst.addfile(member, src.extractfile(member) if member.isfile() else None)
    return out


def forge_xz_size(data: bytes, claimed: int) -> bytes:
    """An xz file whose index claims `claimed` uncompressed bytes (for the disk check; never decoded)."""
    xz = lzma.compress(data)
    footer = xz[-12:]
    index_size = (int.from_bytes(footer[4:8], "little") + 1) * 4
    index = xz[-12 - index_size : -12]
    count, offset = _varint(index, 1)
    assert count == 1
    unpadded, offset = _varint(index, offset)
    body = b"\x00" + _enc(1) + _enc(unpadded) + _enc(claimed)
    body += b"\x00" * (-len(body) % 4)
    new_index = body + zlib.crc32(body).to_bytes(4, "little")
    fields = (len(new_index) // 4 - 1).to_bytes(4, "little") + footer[8:10]
    new_footer = zlib.crc32(fields).to_bytes(4, "little") + fields + b"YZ"
    return xz[: -12 - index_size] + new_index + new_footer


def xz_bomb(data: bytes, dict_prop: int = 37) -> bytes:
    """An xz file whose block header declares a huge LZMA2 dictionary (property 37: 1.5 GiB), CRC fixed up.

    Small and otherwise valid: a decoder without a memory limit allocates the dictionary and fills it.
    """
    xz = bytearray(
        lzma.compress(
            data, format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC32, filters=[{"id": lzma.FILTER_LZMA2, "preset": 0}]
        )
    )
    start, header_len = 12, (xz[12] + 1) * 4  # the block header follows the 12-byte stream header
    header = xz[start : start + header_len]
    offset = 2
    for present in (0x40, 0x80):  # optional compressed and uncompressed sizes
        if header[1] & present:
            offset = _varint(header, offset)[1]
    assert header[offset : offset + 2] == b"\x21\x01", "expected one LZMA2 filter with one property byte"
    header[offset + 2] = dict_prop
    header[-4:] = zlib.crc32(bytes(header[:-4])).to_bytes(4, "little")
    xz[start : start + header_len] = header
    return bytes(xz)


def _varint(data: bytes, offset: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[offset]
        offset += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, offset


def _enc(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)
