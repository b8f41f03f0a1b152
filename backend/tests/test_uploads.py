"""tus uploads against a real backend: tuspy, an upload cut mid-way that resumes, termination, expiry, content with Range."""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import time

import httpx
import pytest
from tusclient import client as tus_client

TUS = {"Tus-Resumable": "1.0.0"}


def payload(size: int) -> bytes:
    return os.urandom(size)


def tus_upload(backend, token: str, data_path, chunk_size: int = 256 * 1024, metadata=None) -> str:
    client = tus_client.TusClient(backend.url + "/api/uploads/", headers={"Authorization": f"Bearer {token}"})
    uploader = client.uploader(str(data_path), chunk_size=chunk_size, metadata=metadata or {"filename": data_path.name})
    uploader.upload()
    return uploader.url


async def test_tuspy_upload_is_stored_with_sha256(backend, tmp_path):
    data = payload(1_300_000)
    path = tmp_path / "image.tar.xz"
    path.write_bytes(data)
    url = await asyncio.to_thread(tus_upload, backend, backend.token("operator"), path)
    upload_id = url.rstrip("/").rsplit("/", 1)[-1]
    async with backend.client(backend.token("operator")) as http:
        info = (await http.get(f"/api/uploads/{upload_id}")).json()
    assert info["complete"] and info["size"] == info["offset"] == len(data)
    assert info["sha256"] == hashlib.sha256(data).hexdigest()
    assert info["filename"] == "image.tar.xz"
    assert (backend.data_dir / "uploads" / upload_id).read_bytes() == data


async def test_upload_cut_mid_way_resumes_where_it_stopped(backend, tmp_path):
    data = payload(3_000_000)
    path = tmp_path / "big.tar"
    path.write_bytes(data)
    token = backend.token("operator")
    async with backend.client(token) as http:
        created = await http.post(
            "/api/uploads/",
            headers={**TUS, "Upload-Length": str(len(data)), "Upload-Metadata": "filename YmlnLnRhcg=="},
        )
        assert created.status_code == 201
        location = created.headers["location"]
        cut_at = 1_234_567

        async def body_then_drop():
            yield data[:cut_at]
            await asyncio.sleep(0.3)
            raise ConnectionResetError("network cable pulled")

        with pytest.raises((httpx.HTTPError, ConnectionResetError)):
            await http.patch(
                location,
                content=body_then_drop(),
                headers={
                    **TUS,
                    "Upload-Offset": "0",
                    "Content-Type": "application/offset+octet-stream",
                    "Content-Length": str(len(data)),
                },
            )
        head = await http.head(location, headers=TUS)
        assert head.status_code == 200
        assert int(head.headers["upload-offset"]) == cut_at
        assert head.headers["upload-length"] == str(len(data))

    # tuspy picks the upload up at the server's offset and finishes it.
    client = tus_client.TusClient(backend.url + "/api/uploads/", headers={"Authorization": f"Bearer {token}"})
    uploader = client.uploader(str(path), url=backend.url + location, chunk_size=512 * 1024)
    assert uploader.offset == cut_at
    await asyncio.to_thread(uploader.upload)
    upload_id = location.rsplit("/", 1)[-1]
    async with backend.client(token) as http:
        info = (await http.get(f"/api/uploads/{upload_id}")).json()
    assert info["complete"] and info["sha256"] == hashlib.sha256(data).hexdigest()
    assert (backend.data_dir / "uploads" / upload_id).read_bytes() == data


async def test_patch_rules_offset_type_version_and_overrun(backend):
    async with backend.client(backend.token("operator")) as http:
        location = (await http.post("/api/uploads/", headers={**TUS, "Upload-Length": "10"})).headers["location"]
        ok = {**TUS, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"}
        wrong_offset = await http.patch(location, content=b"abc", headers={**ok, "Upload-Offset": "3"})
        assert wrong_offset.status_code == 409 and wrong_offset.json()["error"]["code"] == "offset_mismatch"
        wrong_type = await http.patch(location, content=b"abc", headers={**ok, "Content-Type": "application/json"})
        assert wrong_type.status_code == 415
        old_version = await http.patch(location, content=b"abc", headers={**ok, "Tus-Resumable": "0.2.0"})
        assert old_version.status_code == 412 and old_version.headers["tus-version"] == "1.0.0"
        too_much = await http.patch(location, content=b"x" * 11, headers=ok)
        assert too_much.status_code == 400 and too_much.json()["error"]["code"] == "upload_overrun"
        first = await http.patch(location, content=b"abcd", headers=ok)
        assert (
            first.status_code == 204
            and first.headers["upload-offset"] == "4"
            and first.headers["tus-resumable"] == "1.0.0"
        )
        rest = await http.patch(location, content=b"efghij", headers={**ok, "Upload-Offset": "4"})
        assert rest.status_code == 204 and rest.headers["upload-offset"] == "10"
        info = (await http.get(location)).json()
        assert info["sha256"] == hashlib.sha256(b"abcdefghij").hexdigest()


async def test_options_and_size_limit(quick_backend):
    small = quick_backend
    parts = small.data_dir / "uploads"
    before = sorted(parts.iterdir())
    async with small.client() as http:
        options = await http.options("/api/uploads/")
        assert options.status_code == 204
        assert options.headers["tus-version"] == "1.0.0" and options.headers["tus-max-size"] == "1000"
        assert set(options.headers["tus-extension"].split(",")) >= {"creation", "termination", "expiration"}
        too_big = await http.post("/api/uploads/", headers={**TUS, "Upload-Length": "1001"})
        assert too_big.status_code == 413 and too_big.json()["error"]["code"] == "upload_too_large"
        no_length = await http.post("/api/uploads/", headers=TUS)
        assert no_length.status_code == 400
    assert sorted(parts.iterdir()) == before  # refused creations leave no part file


async def test_termination_removes_the_bytes(backend):
    async with backend.client(backend.token("operator")) as http:
        location = (await http.post("/api/uploads/", headers={**TUS, "Upload-Length": "5"})).headers["location"]
        upload_id = location.rsplit("/", 1)[-1]
        await http.patch(
            location,
            content=b"ab",
            headers={**TUS, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"},
        )
        assert (backend.data_dir / "uploads" / upload_id).exists()
        gone = await http.delete(location, headers=TUS)
        assert gone.status_code == 204
        assert not (backend.data_dir / "uploads" / upload_id).exists()
        assert (await http.head(location, headers=TUS)).status_code == 404
        assert (await http.delete(location, headers=TUS)).status_code == 404


async def test_abandoned_upload_expires_and_is_removed(quick_backend):
    quick = quick_backend
    async with quick.client() as http:
        created = await http.post("/api/uploads/", headers={**TUS, "Upload-Length": "100"})
        assert "upload-expires" in created.headers
        location = created.headers["location"]
        upload_id = location.rsplit("/", 1)[-1]
        part = quick.data_dir / "uploads" / upload_id
        assert part.exists()
        deadline = time.monotonic() + 15
        while part.exists() and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        assert not part.exists()
        assert (await http.head(location, headers=TUS)).status_code == 404


async def test_a_part_file_without_an_upload_is_swept_and_live_ones_are_kept(backend):
    """A crash between creating the part file and recording the upload leaves a file nobody owns.

    On the backend with the default expiry (a day), so the live upload cannot expire while the sweep is awaited."""
    import os
    import secrets

    quick = backend
    async with quick.client() as http:
        live = (await http.post("/api/uploads/", headers={**TUS, "Upload-Length": "100"})).headers["location"]
    uploads = quick.data_dir / "uploads"
    orphan, recent = uploads / secrets.token_hex(12), uploads / secrets.token_hex(12)
    orphan.write_bytes(b"x" * 10)
    recent.write_bytes(b"y" * 10)
    old = time.time() - 2 * 24 * 3600  # older than any grace the sweep gives (the expiry: a day)
    os.utime(orphan, (old, old))
    deadline = time.monotonic() + 30  # the sweep runs every 5 s
    while orphan.exists() and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    assert not orphan.exists()
    assert recent.exists()  # within the grace period: it may be an upload being created right now
    async with quick.client() as http:
        assert (await http.head(live, headers=TUS)).status_code == 200
    recent.unlink()


async def test_content_serves_ranges_with_a_signed_link_only(backend, tmp_path):
    """The link an importer gets: signed, bound to one upload, Range-capable."""
    from ferry_backend.security import sign_content_link
    from ferry_backend.settings import Settings
    from ferry_backend.store import Store, shared_secret

    data = payload(700_000)
    token = backend.token("operator")
    async with backend.client(token) as http:
        location = (await http.post("/api/uploads/", headers={**TUS, "Upload-Length": str(len(data))})).headers[
            "location"
        ]
        upload_id = location.rsplit("/", 1)[-1]
        half = await http.head(f"/api/uploads/{upload_id}/content")  # arriving: served as it lands
        assert half.status_code == 200 and half.headers["upload-offset"] == "0" and "repr-digest" not in half.headers
        deferred = await http.post("/api/uploads/", headers={**TUS, "Upload-Defer-Length": "1"})
        assert deferred.status_code == 400  # an upload must declare its length: an import reads up to it
        await http.patch(
            location,
            content=data,
            headers={**TUS, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"},
        )

    store = Store.from_url(Settings(data_dir=backend.data_dir).resolved_database_url)
    async with store.write() as session:
        key = (await shared_secret(session, "content_link_key")).encode()
    await store.close()
    link = sign_content_link(key, upload_id, 60)
    async with httpx.AsyncClient(base_url=backend.url) as anonymous:
        full = await anonymous.get(f"/api/uploads/{upload_id}/content", params={"token": link})
        assert full.status_code == 200 and full.content == data and full.headers["accept-ranges"] == "bytes"
        part = await anonymous.get(
            f"/api/uploads/{upload_id}/content", params={"token": link}, headers={"Range": "bytes=500000-"}
        )
        assert part.status_code == 206 and part.content == data[500000:]
        assert part.headers["content-range"] == f"bytes 500000-{len(data) - 1}/{len(data)}"
        beyond = await anonymous.get(
            f"/api/uploads/{upload_id}/content", params={"token": link}, headers={"Range": "bytes=900000-"}
        )
        assert beyond.status_code == 416 and beyond.headers["content-range"] == f"bytes */{len(data)}"
        assert beyond.json()["error"]["code"] == "range_not_satisfiable"
        head = await anonymous.head(f"/api/uploads/{upload_id}/content", params={"token": link})
        assert head.status_code == 200 and head.headers["content-length"] == str(len(data)) and head.content == b""
        etag = head.headers["etag"]
        same = await anonymous.get(
            f"/api/uploads/{upload_id}/content",
            params={"token": link},
            headers={"Range": "bytes=10-19", "If-Range": etag},
        )
        assert same.status_code == 206 and same.content == data[10:20]
        changed = await anonymous.get(
            f"/api/uploads/{upload_id}/content",
            params={"token": link},
            headers={"Range": "bytes=10-19", "If-Range": '"something-else"'},
        )
        assert changed.status_code == 200 and changed.content == data
        forged = await anonymous.get(f"/api/uploads/{upload_id}/content", params={"token": link[:-2] + "00"})
        assert forged.status_code == 401 and forged.json()["error"]["code"] == "bad_content_token"
        expired = sign_content_link(key, upload_id, -10)
        assert (await anonymous.get(f"/api/uploads/{upload_id}/content", params={"token": expired})).status_code == 401
        nothing = await anonymous.get(f"/api/uploads/{upload_id}/content")
        assert nothing.status_code == 401


async def test_stalled_connection_does_not_hold_the_upload(quick_backend):
    """A client whose connection hangs (half-open): its PATCH ends after the idle limit and the upload resumes elsewhere."""
    data = os.urandom(900)
    async with quick_backend.client() as http:
        location = (await http.post("/api/uploads/", headers={**TUS, "Upload-Length": str(len(data))})).headers[
            "location"
        ]
        release = asyncio.Event()

        async def send_then_hang():
            yield data[:400]
            await release.wait()  # the connection stays open, nothing more comes

        stalled = asyncio.create_task(
            http.patch(
                location,
                content=send_then_hang(),
                headers={
                    **TUS,
                    "Upload-Offset": "0",
                    "Content-Type": "application/offset+octet-stream",
                    "Content-Length": str(len(data)),
                },
            )
        )
        await asyncio.sleep(0.3)
        async with quick_backend.client() as other:
            head = await other.head(location, headers=TUS)
            assert head.headers["upload-offset"] == "400"
            rest = await other.patch(
                location,
                content=data[400:],
                headers={**TUS, "Upload-Offset": "400", "Content-Type": "application/offset+octet-stream"},
            )
            assert rest.status_code == 204 and rest.headers["upload-offset"] == "900"
            info = (await other.get(location)).json()
        release.set()
        stalled.cancel()
        await asyncio.gather(stalled, return_exceptions=True)
    assert info["complete"] and info["sha256"] == hashlib.sha256(data).hexdigest()


def test_upload_locks_are_shared_while_held_and_forgotten_after():
    import gc

    from ferry_backend.services import KeyedLocks

    locks = KeyedLocks()
    held = locks("a")
    assert locks("a") is held and locks("b") is not held
    for index in range(1000):  # HEADs and PATCHes for ids that do not exist
        locks(f"unknown-{index}")
    gc.collect()
    assert len(locks) == 1 and locks("a") is held
    del held
    gc.collect()
    assert len(locks) == 0


@pytest.mark.fault
async def test_a_backend_killed_mid_patch_resumes_from_the_bytes_that_landed_not_from_the_patchs_start(tmp_path):
    from backend.tests.support import Backend

    data = payload(48 * 1024 * 1024)
    own = Backend(tmp_path / "killed").start()
    try:
        token = own.token("operator")
        async with own.client(token) as http:
            created = await http.post("/api/uploads/", headers={**TUS, "Upload-Length": str(len(data))})
            location = created.headers["location"]
            sent = 0

            async def slow_body():  # a WAN upload: 1 MiB every 0.1 s, still going when the kill comes
                nonlocal sent
                for start in range(0, len(data), 1024 * 1024):
                    yield data[start : start + 1024 * 1024]
                    sent = start + 1024 * 1024
                    await asyncio.sleep(0.1)

            patch = asyncio.create_task(
                http.patch(
                    location,
                    content=slow_body(),
                    headers={**TUS, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"},
                )
            )
            async with own.client(token) as watcher:  # the recorded offset moves while the PATCH runs
                recorded = 0
                while recorded == 0 and not patch.done():
                    await asyncio.sleep(0.2)
                    recorded = (await watcher.get(location)).json()["offset"]
            assert not patch.done() and recorded > 0, "the offset was recorded before the PATCH ended"
            own.stop(signal.SIGKILL)  # mid-PATCH, no graceful shutdown
            with pytest.raises(httpx.HTTPError):
                await patch
        assert sent < len(data)
        own.start()
        async with own.client(token) as http:
            head = await http.head(location, headers=TUS)
            assert head.status_code == 200, (head.status_code, head.headers, own.log())
            offset = int(head.headers["upload-offset"])
            assert recorded <= offset <= sent, f"resumes from {offset}: {recorded} were recorded, {sent} sent"
            resumed = await http.patch(
                location,
                content=data[offset:],
                headers={**TUS, "Upload-Offset": str(offset), "Content-Type": "application/offset+octet-stream"},
            )
            assert resumed.status_code == 204, resumed.text
            info = (await http.get(location)).json()
        assert info["complete"] and info["sha256"] == hashlib.sha256(data).hexdigest()
    finally:
        own.stop()
