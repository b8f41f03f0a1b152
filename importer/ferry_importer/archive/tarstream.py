"""Follow the structure of a tar stream as it flows past, without buffering member data.

`TarWalker.feed()` takes decompressed pieces of any size and boundaries. It records the first member
names (for layout detection), captures the few small metadata members the layout checks need
(manifest.json, index.json), sums the content bytes, and notices where the end-of-archive marker
starts so the sender can hold it back until the whole stream has been checked. Python's `tarfile`
is used for header decoding only; its stream mode silently accepts a truncated archive, which is
exactly the failure this module must report.
"""

from __future__ import annotations

import re
import tarfile
from dataclasses import dataclass

from ferry_importer.errors import CorruptTar, NotAnArchive, TruncatedTar

BLOCK = 512
META_TYPES = {tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK}
HEADER_ONLY_TYPES = {
    tarfile.LNKTYPE,
    tarfile.SYMTYPE,
    tarfile.CHRTYPE,
    tarfile.BLKTYPE,
    tarfile.DIRTYPE,
    tarfile.FIFOTYPE,
}
META_LIMIT = 1 << 20
CAPTURE_LIMIT = 16 << 20
HELD_LIMIT = 1 << 20  # bytes kept from the end marker on; tar padding beyond it is dropped
LAYER_SIZES_LIMIT = 20_000  # member sizes kept for a load's layer plan (a name each: bounded memory)
CONFIG_LIMIT = 1 << 20  # image configs (`<hex>.json`, for their layers' diff ids) are kept up to this size…
CONFIG_TOTAL = 8 << 20  # …and this much in all
CONFIG_NAME = re.compile(r"^[0-9a-f]{64}\.json$")


def layer_like(name: str) -> bool:
    """Names docker archives give layer files: `<id>/layer.tar`, `<digest>.tar`, `blobs/sha256/<digest>`."""
    return name.endswith("/layer.tar") or ("/" not in name and name.endswith(".tar")) or name.startswith("blobs/")


@dataclass(frozen=True)
class Member:
    name: str  # normalised: no leading "./", no trailing "/"
    type: bytes
    size: int
    offset: int


def normalise(name: str) -> str:
    while name.startswith("./"):
        name = name[2:]
    return name.rstrip("/")


class TarWalker:
    def __init__(self, keep_first: int = 32, capture: frozenset[str] = frozenset()) -> None:
        self.keep_first = keep_first
        self.capture_names = capture
        self.first_members: list[Member] = []
        self.names: set[str] = set()  # top-level names seen (first path component)
        self.member_count = 0
        self.content_bytes = 0
        self.offset = 0  # bytes fed so far
        self.end_offset: int | None = None
        self.captured: dict[str, bytes] = {}
        self.layer_sizes: dict[str, int] = {}  # sizes of layer-like members, for the engine's loading stage
        self.layer_files: list[tuple[str, int]] = []  # the same, in order; read by another thread (only appended)
        self._config_bytes = 0
        self._header = bytearray()
        self._data_left = 0  # member data still to pass, excluding padding
        self._pad_left = 0
        self._current: Member | None = None
        self._meta: bytearray | None = None  # data of a pax/GNU-longname header being collected
        self._capture: bytearray | None = None
        self._pax: dict[str, str] = {}
        self._longname: str | None = None
        self._held = 0
        self._deferred = b""

    @property
    def ended(self) -> bool:
        return self.end_offset is not None

    def feed(self, chunk: bytes) -> tuple[bytes, bytes]:
        """Walk `chunk`; return (bytes to send now, bytes from the end marker on, to hold back)."""
        pos, size = 0, len(chunk)
        cut = size
        while pos < size:
            if self.end_offset is not None:
                cut = min(cut, pos)
                break
            if self._data_left:
                take = min(self._data_left, size - pos)
                if self._meta is not None:
                    self._meta += chunk[pos : pos + take]
                elif self._capture is not None:
                    self._capture += chunk[pos : pos + take]
                self._data_left -= take
                pos += take
                if not self._data_left:
                    self._member_done()
            elif self._pad_left:
                take = min(self._pad_left, size - pos)
                self._pad_left -= take
                pos += take
            else:
                take = min(BLOCK - len(self._header), size - pos)
                self._header += chunk[pos : pos + take]
                pos += take
                if len(self._header) == BLOCK:
                    header_start = self.offset + pos - BLOCK
                    self._on_header(bytes(self._header), header_start)
                    self._header.clear()
                    if self.end_offset is not None:
                        cut = max(0, pos - BLOCK)
                        break
        self.offset += size
        prefix, self._deferred = self._deferred, b""
        if cut >= size:
            out = prefix + chunk if prefix else chunk
            if self._header:  # a header split across pieces is released whole, with the next piece
                out, self._deferred = out[: -len(self._header)], out[-len(self._header) :]
            return out, b""
        if cut == 0 and prefix:  # the end marker began in the previous piece
            held = prefix + chunk
            sent = b""
        else:
            held, sent = chunk[cut:], prefix + chunk[:cut]
        held = held[: max(0, HELD_LIMIT - self._held)]
        self._held += len(held)
        return sent, held

    def finish(self) -> None:
        """Call at the end of the stream: raise TruncatedTar if it stopped inside a header or a member."""
        if self.end_offset is not None:
            return
        if self._data_left or self._pad_left or self._header:
            where = f"member {self._current.name!r}" if self._current else "a header"
            raise TruncatedTar(
                f"the tar stream is cut short in {where} (at byte {self.offset})",
                f"{self._data_left + self._pad_left or BLOCK - len(self._header)} more bytes were expected",
            )

    def _on_header(self, block: bytes, start: int) -> None:
        if block.count(0) == BLOCK:
            self.end_offset = start
            return
        try:
            info = tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
        except tarfile.HeaderError as exc:
            if start == 0:
                raise NotAnArchive("the content is not a tar archive", str(exc)) from None
            raise CorruptTar(f"the tar stream is damaged at byte {start}", str(exc)) from None
        size = int(self._pax.get("size", info.size)) if info.type not in META_TYPES else info.size
        name = self._longname or self._pax.get("path") or info.name
        if info.type in HEADER_ONLY_TYPES:
            size = 0
        member = Member(normalise(name), info.type, size, start)
        self._current = member
        self._data_left = size
        self._pad_left = -size % BLOCK
        if info.type in META_TYPES:
            if size > META_LIMIT:
                raise CorruptTar(f"the tar stream has an oversized extended header at byte {start}")
            self._meta = bytearray()
        else:
            self._pax, self._longname = {}, None
            self._on_member(member)
        if not self._data_left:
            self._member_done()

    def _on_member(self, member: Member) -> None:
        self.member_count += 1
        if len(self.first_members) < self.keep_first:
            self.first_members.append(member)
        top = member.name.split("/", 1)[0]
        if top:
            self.names.add(top)
        if member.type in (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.CONTTYPE):
            self.content_bytes += member.size
            if len(self.layer_sizes) < LAYER_SIZES_LIMIT and layer_like(member.name):
                self.layer_sizes[member.name] = member.size
                self.layer_files.append((member.name, member.size))
            if member.name in self.capture_names and member.size <= CAPTURE_LIMIT:
                self._capture = bytearray()
            elif (
                member.size <= CONFIG_LIMIT
                and self._config_bytes + member.size <= CONFIG_TOTAL
                and CONFIG_NAME.match(member.name)
            ):
                self._config_bytes += member.size
                self._capture = bytearray()

    def _member_done(self) -> None:
        member = self._current
        if self._meta is not None and member is not None:
            data = bytes(self._meta)
            self._meta = None
            if member.type == tarfile.GNUTYPE_LONGNAME:
                self._longname = data.rstrip(b"\x00").decode("utf-8", "surrogateescape")
            elif member.type == tarfile.XHDTYPE:
                self._pax.update(parse_pax(data))
        elif self._capture is not None and member is not None:
            self.captured[member.name] = bytes(self._capture)
            self._capture = None


def parse_pax(data: bytes) -> dict[str, str]:
    """The `path` and `size` records of a pax extended header ("LEN key=value\\n" records)."""
    records: dict[str, str] = {}
    pos = 0
    while pos < len(data):
        space = data.find(b" ", pos)
        if space < 0:
            break
        try:
            length = int(data[pos:space])
        except ValueError:
            raise CorruptTar("the tar stream has a malformed pax header") from None
        if length <= 0:
            break
        key, _, value = data[space + 1 : pos + length - 1].partition(b"=")
        if key in (b"path", b"size"):
            records[key.decode()] = value.decode("utf-8", "surrogateescape")
        pos += length
    return records
