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


def test_an_import_waits_when_it_is_less_than_one_interval_of_the_upload_behind_it():
    assert is_waiting(10, UploadState(10, 30))
    assert not is_waiting(5, UploadState(10, 30))  # bytes are there to read: the importer is the slower one
    assert is_waiting(5, UploadState(10, 30), slack=5)  # the backend hands bytes out in bursts
    assert not is_waiting(30, UploadState(30, 30, "ab"))
    assert not is_waiting(10, None)


async def test_the_watch_says_waiting_while_reads_keep_up_and_not_when_they_fall_behind():
    read = [0]
    states = [UploadState(100, 1000), UploadState(200, 1000), UploadState(600, 1000), UploadState(1000, 1000, "ab")]
    seen: list[tuple[int, bool]] = []

    async def on_state(state, waiting):
        seen.append((state.available, waiting))
        read[0] = {100: 150, 200: 190, 600: 300}.get(state.available, 1000)  # what the import reads meanwhile

    read[0] = 100
    task = asyncio.create_task(watch_arrival(lambda: read[0], lambda: states.pop(0), on_state, interval=0.05))
    await asyncio.wait_for(task, 5)  # ends once the upload is complete
    assert [w for _, w in seen] == [True, True, False, False]
