"""The content link of an upload still arriving, against real backends: bytes served as they land, to several
pullers at once and by Range; an upload that stops is abandoned; a declared sha256 is checked at completion."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os

import httpx
import pytest

from backend.tests.support import FakeImporter, register, wait_until

TUS = {"Tus-Resumable": "1.0.0"}
OFFSET = {**TUS, "Content-Type": "application/offset+octet-stream"}


async def content_link(backend, upload_id: str) -> str:
    from ferry_backend.security import sign_content_link
    from ferry_backend.settings import Settings
    from ferry_backend.store import Store, shared_secret

    store = Store.from_url(Settings(data_dir=backend.data_dir).resolved_database_url)
    async with store.write() as session:
        key = (await shared_secret(session, "content_link_key")).encode()
    await store.close()
    return f"{backend.url}/api/uploads/{upload_id}/content?token={sign_content_link(key, upload_id, 300)}"


async def create(http: httpx.AsyncClient, size: int, meta: str | None = None) -> str:
    headers = {**TUS, "Upload-Length": str(size)}
    if meta:
        headers["Upload-Metadata"] = meta
    response = await http.post("/api/uploads/", headers=headers)
    assert response.status_code == 201, response.text
    return response.headers["location"].rsplit("/", 1)[-1]


async def patch(http: httpx.AsyncClient, upload_id: str, offset: int, data: bytes) -> httpx.Response:
    return await http.patch(f"/api/uploads/{upload_id}", content=data, headers={**OFFSET, "Upload-Offset": str(offset)})


class Puller:
    """One importer's pull of the link: what arrived, and when the first bytes did."""

    def __init__(self, url: str, headers: dict | None = None):
        self.url, self.headers = url, headers or {}
        self.received = bytearray()
        self.status: int | None = None
        self.error: BaseException | None = None

    async def run(self) -> None:
        try:
            async with (
                httpx.AsyncClient(timeout=30) as client,
                client.stream("GET", self.url, headers=self.headers) as r,
            ):
                self.status = r.status_code
                async for chunk in r.aiter_raw():
                    self.received += chunk
        except httpx.HTTPError as exc:
            self.error = exc


async def test_an_arriving_upload_is_served_as_it_lands_to_several_pullers(backend):
    data = os.urandom(3 * 1024 * 1024)
    half = len(data) // 2
    async with backend.client(backend.token("operator")) as http:
        upload_id = await create(http, len(data))
        url = await content_link(backend, upload_id)
        head = await http.head(url)
        assert head.status_code == 200 and head.headers["upload-offset"] == "0"
        assert head.headers["upload-length"] == str(len(data)) and "repr-digest" not in head.headers
        whole, tail = Puller(url), Puller(url, {"Range": f"bytes={half + 10}-"})
        tasks = [asyncio.create_task(whole.run()), asyncio.create_task(tail.run())]
        assert (await patch(http, upload_id, 0, data[:half])).status_code == 204
        await wait_until(lambda: asyncio.sleep(0, len(whole.received) == half), timeout=20)
        assert bytes(whole.received) == data[:half] and not tail.received  # the tail waits for its bytes
        assert not any(t.done() for t in tasks)
        assert (await patch(http, upload_id, half, data[half:])).status_code == 204
        await asyncio.wait_for(asyncio.gather(*tasks), 20)
        done = await http.head(url)
    assert whole.error is None and whole.status == 200 and bytes(whole.received) == data
    assert tail.error is None and tail.status == 206 and bytes(tail.received) == data[half + 10 :]
    digest = base64.b64encode(hashlib.sha256(data).digest()).decode()
    assert done.headers["repr-digest"] == f"sha-256=:{digest}:" and done.headers["upload-offset"] == str(len(data))


async def test_a_stopped_upload_is_abandoned_its_stream_breaks_off_and_new_imports_are_refused(quick_backend):
    """FERRY_UPLOAD_IDLE_S=1 here. The job (its host never reports) keeps the upload from the expiry sweep."""
    fake = await FakeImporter().start()
    data = os.urandom(900)
    try:
        host = await register(quick_backend, fake)
        async with quick_backend.client() as http:
            upload_id = await create(http, len(data))
            created = await http.post("/api/imports", json={"upload_id": upload_id, "hosts": [host.name]})
            assert created.status_code == 202
            url = await content_link(quick_backend, upload_id)
            assert (await patch(http, upload_id, 0, data[:400])).status_code == 204
            puller = Puller(url)
            await asyncio.wait_for(puller.run(), 15)
            assert bytes(puller.received) == data[:400] and isinstance(puller.error, httpx.RemoteProtocolError)
            again = await http.get(url, headers={"Range": "bytes=400-"})
            assert again.status_code == 409 and again.json()["error"]["code"] == "upload_abandoned"
            refused = await http.post("/api/imports", json={"upload_id": upload_id, "hosts": [host.name]})
            assert refused.status_code == 409 and refused.json()["error"]["code"] == "upload_abandoned"
            assert len(fake.submitted) == 1
    finally:
        await fake.stop()


def meta_sha256(value: str) -> str:
    return "sha256 " + base64.b64encode(value.encode()).decode()


async def test_a_declared_sha256_is_checked_when_the_upload_completes(backend):
    data = os.urandom(5000)
    right = hashlib.sha256(data).hexdigest()
    async with backend.client(backend.token("operator")) as http:
        bad = await http.post(
            "/api/uploads/", headers={**TUS, "Upload-Length": "10", "Upload-Metadata": meta_sha256("xyz")}
        )
        assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_request"
        good = await create(http, len(data), meta_sha256(right))
        assert (await patch(http, good, 0, data)).status_code == 204
        wrong = await create(http, len(data), meta_sha256("0" * 64))
        assert (await patch(http, wrong, 0, data[:100])).status_code == 204
        mismatch = await patch(http, wrong, 100, data[100:])
        assert mismatch.status_code == 460 and mismatch.json()["error"]["code"] == "checksum_mismatch"
        stored = (await http.get(f"/api/uploads/{wrong}")).json()
    assert stored["sha256"] == right  # what arrived is what the importers' stream check compares with


@pytest.mark.parametrize("declared", [False, True])
async def test_a_job_of_an_arriving_upload_gets_the_declared_sha256(backend, declared):
    fake = await FakeImporter().start()
    try:
        host = await register(backend, fake)
        data = os.urandom(2000)
        sha = hashlib.sha256(data).hexdigest()
        async with backend.client(backend.token("operator")) as http:
            upload_id = await create(http, len(data), meta_sha256(sha) if declared else None)
            created = await http.post("/api/imports", json={"upload_id": upload_id, "hosts": [host.name]})
            assert created.status_code == 202
            await wait_until(lambda: asyncio.sleep(0, len(fake.submitted) == 1))
            source = fake.submitted[0]["source"]
            assert source["size"] == len(data) and source["sha256"] == (sha if declared else None)
            removed = await http.delete(f"/api/uploads/{upload_id}", headers=TUS)  # cancels its job first
            assert removed.status_code == 204 and fake.canceled == [created.json()["jobs"][0]["id"]]
            assert (await http.get(f"/api/uploads/{upload_id}")).status_code == 404
    finally:
        await fake.stop()
