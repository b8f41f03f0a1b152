"""An upload read while it arrives: what a content link's headers say, and when an import waits for it."""

from __future__ import annotations

import asyncio
import base64
import hashlib

from ferry_importer.sources.arriving import UploadState, is_waiting, parse_repr_digest, upload_state, watch_arrival


def test_repr_digest_gives_the_sha256_as_hex_and_nothing_else():
    digest = hashlib.sha256(b"ferry").digest()
    header = f"sha-512=:{base64.b64encode(b'x' * 64).decode()}:, sha-256=:{base64.b64encode(digest).decode()}:"
    assert parse_repr_digest(header) == digest.hex()
    assert parse_repr_digest(None) is None and parse_repr_digest("sha-256=:bm90IDMyIGJ5dGVz:") is None
    assert parse_repr_digest("sha-256=:!!!:") is None


def test_upload_state_is_read_from_the_tus_headers_of_the_content_link():
    assert upload_state({"upload-offset": "10", "upload-length": "30"}) == UploadState(10, 30, None)
    assert upload_state({"content-length": "30"}) is None  # not an upload: a plain URL source
    assert upload_state({"upload-offset": "-1", "upload-length": "30"}) is None
    assert UploadState(30, 30).complete and not UploadState(29, 30).complete


def test_an_import_waits_only_when_it_has_read_everything_that_arrived_of_an_unfinished_upload():
    assert is_waiting(10, UploadState(10, 30))
    assert not is_waiting(5, UploadState(10, 30))  # bytes are there to read: the importer is the slower one
    assert not is_waiting(30, UploadState(30, 30, "ab"))
    assert not is_waiting(10, None)


async def test_the_watch_reports_waiting_when_reads_stop_and_no_longer_when_they_flow_again():
    read = [0]
    states = [UploadState(100, 300), UploadState(100, 300), UploadState(300, 300, "ab")]
    seen: list[tuple[int | None, bool]] = []

    async def on_state(state, waiting):
        seen.append((state.available if state else None, waiting))

    def ask():
        return states.pop(0)

    read[0] = 100
    task = asyncio.create_task(watch_arrival(lambda: read[0], ask, on_state, interval=0.05))
    while not seen:
        await asyncio.sleep(0.01)
    read[0] = 200  # the upload moved on and the import read on
    while len(seen) < 2:
        await asyncio.sleep(0.01)
    await asyncio.wait_for(task, 5)  # after reads stop again: asks, the upload is complete, the watch ends
    assert seen[0] == (100, True) and seen[1] == (None, False) and seen[-1] == (300, False)
