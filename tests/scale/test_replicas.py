"""Two backend replicas on one Postgres and one Redis behind the committed nginx config."""

from __future__ import annotations

import asyncio
import hashlib
import uuid

import docker
import httpx
import pytest
import socketio

from backend.tests.support import Importer, completed_data, event_data, new_secret
from importer.tests.service_process import ImporterProcess, remove_images
from importer.tests.service_support import SECRET, TOKEN
from tests.scale.cluster import Watcher, assert_contiguous
from tests.scale.conftest import random_rootfs
from tests.scale.servers import NginxServer, free_port
from tests.support.images import image_present

pytestmark = pytest.mark.slow


async def _register(
    cluster,
    url: str = "http://127.0.0.1:9",
    token: str = "importer-token-scale",
    secret: str | None = None,
    name: str | None = None,
) -> tuple[str, str]:
    name = name or "lab-" + uuid.uuid4().hex[:8]
    secret = secret or new_secret()
    async with cluster.client() as http:
        response = await http.post(
            "/api/hosts", json={"name": name, "url": url, "token": token, "webhook_secret": secret}
        )
    assert response.status_code == 201, response.text
    return name, secret


async def test_callbacks_on_either_replica_reach_clients_on_both(cluster):
    host, secret = await _register(cluster)
    a, b = cluster.backends
    via_a, via_b = Importer(a, host, secret), Importer(b, host, secret)
    viewer = await cluster.token("viewer")
    on_b = await Watcher(b.url, viewer).connect()  # directly on replica B
    proxied = await Watcher(cluster.url, viewer).connect()  # wherever nginx puts it
    job = "job_x_" + uuid.uuid4().hex[:8]
    try:
        assert (
            await via_a.send("import.queued", event_data(job, host, 1, state="queued", phase="queued", percent=0.0))
        ).status_code == 200
        for watcher in (on_b, proxied):
            await watcher.subscribe(job)
        for seq in range(2, 12):  # alternate replicas: odd seqs land on A, even ones on B
            response = await (via_a if seq % 2 else via_b).send("import.progress", event_data(job, host, seq))
            assert response.json()["verdict"] == "applied"
        assert (await via_a.send("import.completed", completed_data(job, host, 12))).json()["verdict"] == "applied"
        for watcher in (on_b, proxied):
            await watcher.wait_for(lambda w=watcher: w.finished(job), 15, "import.completed")
            assert_contiguous(watcher.seqs(job))
            assert watcher.seqs(job)[-1] == 12
            live = [data["seq"] for name, data, meta in watcher.of(job) if not meta.get("catchup")]
            assert live == list(range(2, 13)), live  # everything after the subscribe arrived live, over Redis
    finally:
        await on_b.close()
        await proxied.close()


async def test_proxy_spreads_websockets_over_both_replicas(cluster):
    viewer = await cluster.token("viewer")
    before = await cluster.socket_clients()
    watchers = [await Watcher(cluster.url, viewer, reconnection=False).connect() for _ in range(16)]
    try:
        after = await cluster.socket_clients()
        added = [n - m for n, m in zip(after, before)]
        assert sum(added) == 16 and all(n > 0 for n in added), f"websockets per replica: {added}"
    finally:
        for watcher in watchers:
            await watcher.close()


@pytest.mark.parametrize("transports", [["polling"], ["polling", "websocket"]], ids=["polling", "polling-then-upgrade"])
async def test_long_polling_sticks_to_one_replica_through_the_proxy(cluster, transports):
    host, secret = await _register(cluster)
    via_a = Importer(cluster.backends[0], host, secret)
    job = "job_poll_" + uuid.uuid4().hex[:8]
    await via_a.send("import.queued", event_data(job, host, 1, state="queued", phase="queued", percent=0.0))
    client = socketio.AsyncClient(reconnection=False)
    seen: list[int] = []
    client.on("import.progress", lambda data, meta: seen.append(data["seq"]))
    await client.connect(
        cluster.url, auth={"token": await cluster.token("viewer")}, transports=transports, wait_timeout=10
    )
    try:
        # Several round trips: a session handed to the wrong replica would be refused ("Invalid session").
        for seq in range(2, 8):
            ack = await client.call("subscribe", {"job_id": job, "after_seq": seq - 1}, timeout=10)
            assert ack["ok"] and ack["snapshot"]["seq"] == seq - 1
            await via_a.send("import.progress", event_data(job, host, seq))
            deadline = asyncio.get_running_loop().time() + 10
            while seq not in seen:
                assert asyncio.get_running_loop().time() < deadline, f"seq {seq} never arrived; got {seen}"
                await asyncio.sleep(0.05)
            await client.call("unsubscribe", {"job_id": job}, timeout=10)
        assert seen == list(range(2, 8))
        assert client.connected
    finally:
        # A polling client's polite disconnect sends its close packet at once, then waits out the pending
        # long-poll (~30 s): give the close a moment to reach the server, then stop waiting.
        try:
            await asyncio.wait_for(client.disconnect(), 2)
        except TimeoutError:
            await client.eio.disconnect(abort=True)


async def test_tus_upload_cut_on_one_replica_resumes_on_the_other(cluster):
    """The shared FERRY_DATA_DIR: bytes written by replica A are where replica B continues."""
    a, b = cluster.backends
    operator = await cluster.token("operator")
    data = bytes(range(256)) * 4096  # 1 MiB
    tus = {"Tus-Resumable": "1.0.0"}
    async with cluster.client(operator, base_url=a.url) as on_a, cluster.client(operator, base_url=b.url) as on_b:
        created = await on_a.post("/api/uploads/", headers={**tus, "Upload-Length": str(len(data))})
        location = created.headers["location"]
        first = await on_a.patch(
            location,
            content=data[:300_000],
            headers={**tus, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"},
        )
        assert first.status_code == 204
        head = await on_b.head(location, headers=tus)
        assert head.headers["upload-offset"] == "300000"
        rest = await on_b.patch(
            location,
            content=data[300_000:],
            headers={**tus, "Upload-Offset": "300000", "Content-Type": "application/offset+octet-stream"},
        )
        assert rest.status_code == 204, rest.text
        info = (await on_a.get(location)).json()
    assert info["complete"] and info["sha256"] == hashlib.sha256(data).hexdigest()
    async with cluster.client(operator) as proxied:  # and any replica serves it, ranges included
        body = await proxied.get(location + "/content", headers={"Range": "bytes=1000-"})
    assert body.status_code == 206 and body.content == data[1000:]


async def test_an_upload_arriving_on_one_replica_is_served_as_it_lands_by_the_other(cluster):
    """No PATCH on replica B wakes its waiting content stream: it sees the shared file grow by its slow re-check."""
    a, b = cluster.backends
    operator = await cluster.token("operator")
    data = bytes(range(256)) * 4096  # 1 MiB
    tus = {"Tus-Resumable": "1.0.0", "Content-Type": "application/offset+octet-stream"}
    received = bytearray()
    async with cluster.client(operator, base_url=a.url) as on_a, cluster.client(operator, base_url=b.url) as on_b:
        created = await on_a.post("/api/uploads/", headers={"Tus-Resumable": "1.0.0", "Upload-Length": str(len(data))})
        location = created.headers["location"]

        async def pull() -> None:
            async with on_b.stream("GET", location + "/content") as response:
                assert response.status_code == 200
                async for chunk in response.aiter_raw():
                    received.extend(chunk)

        puller = asyncio.create_task(pull())
        first = await on_a.patch(location, content=data[:400_000], headers={**tus, "Upload-Offset": "0"})
        assert first.status_code == 204
        for _ in range(100):  # within a re-check or two (2 s each)
            if len(received) == 400_000:
                break
            await asyncio.sleep(0.1)
        assert len(received) == 400_000 and not puller.done()
        rest = await on_a.patch(location, content=data[400_000:], headers={**tus, "Upload-Offset": "400000"})
        assert rest.status_code == 204
        await asyncio.wait_for(puller, 15)
    assert bytes(received) == data


async def test_proxy_sends_every_request_of_one_upload_to_the_same_replica(cluster):
    """While a PATCH is still streaming, a second PATCH of that upload meets the same replica's lock (423),
    never another replica that would write the same bytes concurrently."""
    operator = await cluster.token("operator")
    tus = {"Tus-Resumable": "1.0.0", "Content-Type": "application/offset+octet-stream"}

    async def contend() -> tuple[int, int, dict, str]:
        async with cluster.client(operator) as http, cluster.client(operator) as other:
            created = await http.post("/api/uploads/", headers={**tus, "Upload-Length": str(1 << 20)})
            location = created.headers["location"]
            gate = asyncio.Event()

            async def slow_body():
                yield b"x" * 65536
                await gate.wait()
                yield b"y" * 65536

            first = asyncio.create_task(
                http.patch(location, content=slow_body(), headers={**tus, "Upload-Offset": "0"})
            )
            await asyncio.sleep(0.5)
            second = await other.patch(location, content=b"z" * 1024, headers={**tus, "Upload-Offset": "0"})
            gate.set()
            done = await first
            await http.delete(location, headers=tus)
            return second.status_code, done.status_code, second.json(), done.headers.get("upload-offset")

    # Several uploads at once (ids hash to either replica); the backend holds a contended PATCH ~10 s before 423.
    for second, first, body, offset in await asyncio.gather(*(contend() for _ in range(4))):
        assert (second, body["error"]["code"]) == (423, "upload_locked"), body
        assert (first, offset) == (204, str(2 * 65536))


async def test_proxy_serves_the_page_and_answers_json_when_no_replica_is_up(cluster, web_page, tmp_path):
    async with httpx.AsyncClient(base_url=cluster.url, timeout=10) as http:
        page = await http.get("/")
        assert page.status_code == 200 and "ferry operator page (static)" in page.text
        assert (await http.get("/metrics")).status_code == 404  # scraped per replica, not through the proxy
        assert (await http.get("/api/me")).json()["error"]["code"] == "unauthorized"
    lonely = NginxServer(tmp_path / "nginx", [free_port()], web_dir=web_page).start()
    try:
        async with httpx.AsyncClient(base_url=lonely.url, timeout=10) as http:
            down = await http.get("/api/me")
    finally:
        lonely.stop()
    assert down.status_code == 503
    assert down.json()["error"]["code"] == "backend_unavailable"


@pytest.fixture
def archive(tmp_path):
    # The kill must land mid-import: 48 MiB were 56 % imported when it did here (about 145 MB/s onto vfs).
    return random_rootfs(tmp_path / "rootfs.tar", 192 << 20)


@pytest.mark.engine
async def test_replica_killed_mid_import_loses_nothing(cluster, docker_host, archive, tmp_path):
    """A SIGKILLed replica: the importer's callbacks land on the other one, its client reconnects and resubscribes.

    While callbacks fail, the importer may coalesce progress events (documented: newer progress replaces
    older pending progress, never queued, phase or terminal events), so the job's seqs can have holes.
    Nothing is lost when every seq the importer made was delivered or coalesced by it, the log holds
    exactly the delivered ones, and every client saw exactly the log.
    """
    name = "lab-" + uuid.uuid4().hex[:8]
    importer = ImporterProcess(
        tmp_path / "importer",
        docker_host,
        name=name,
        allowed_url_prefixes=cluster.url + "/api/uploads/",
        callback_url_prefixes=cluster.url + "/api/callbacks/",
    ).start()
    engine = docker.DockerClient(base_url=docker_host)
    label = uuid.uuid4().hex[:12]
    image = f"ferry-test/scale-kill-{label}:1"
    watchers = []
    try:
        await _register(cluster, url=importer.base_url, token=TOKEN, secret=SECRET, name=name)
        operator, viewer = await cluster.token("operator"), await cluster.token("viewer")
        upload_id = await cluster.upload_file(archive, operator)
        watcher, victim = await cluster.connect_and_locate(viewer)
        survivor = cluster.backends[1 - victim]
        bystander = await Watcher(survivor.url, viewer).connect()  # stays on the replica that lives
        watchers = [watcher, bystander]
        async with cluster.client(operator) as http:
            created = await http.post(
                "/api/imports",
                json={
                    "upload_id": upload_id,
                    "hosts": [name],
                    "image": image,
                    "format": "import",
                    "changes": [f"LABEL ferry.test={label}"],
                },
            )
        assert created.status_code == 202, created.text
        job_id = created.json()["jobs"][0]["id"]
        for each in watchers:
            await each.subscribe(job_id)

        def moving():
            return any(
                n == "import.progress" and d["state"] == "running" and d["bytes_done"] > 0
                for n, d, _ in watcher.of(job_id)
            )

        await watcher.wait_for(moving, 60, "the import to move bytes")
        cluster.kill(victim)
        at_kill = await asyncio.to_thread(importer.job, job_id)
        assert at_kill["state"] == "running", f"the import was not running when the replica died: {at_kill}"

        for each in watchers:
            await each.wait_for(lambda w=each: w.finished(job_id), 120, "the job to finish on the surviving replica")
        assert watcher.connects == 2 and watcher.acks[-1]["ok"], "the client reconnected once and resubscribed"
        assert bystander.connects == 1

        async with cluster.client(operator) as http:
            snapshot = (await http.get(f"/api/imports/{job_id}")).json()
            logged = [e["seq"] for e in (await http.get(f"/api/imports/{job_id}/events")).json()]
        messages = (await asyncio.to_thread(importer.outbox, job_id))["messages"]
        status = {m["seq"]: m["status"] for m in messages}
        kinds = {m["seq"]: m["type"] for m in messages}
        made = sorted(status)
        assert made == list(range(1, made[-1] + 1)), f"the importer numbers its events without holes: {made}"
        delivered = [seq for seq in made if status[seq] == "delivered"]
        coalesced = [seq for seq in made if status[seq] == "coalesced"]
        assert sorted(delivered + coalesced) == made, (
            f"every event was delivered or coalesced by the importer: {status}"
        )
        assert all(kinds[seq] == "import.progress" for seq in coalesced), kinds
        assert logged == delivered, "the log holds every delivered event"
        for each in watchers:
            assert each.seqs(job_id) == logged, f"a client missed or repeated events: {each.seqs(job_id)} vs {logged}"
            assert [n for n, _, _ in each.of(job_id)][-1] == "import.completed"
            percents = [d["percent"] for _, d, _ in each.of(job_id)]
            assert percents == sorted(percents), percents
        assert snapshot["state"] == "succeeded" and snapshot["seq"] == logged[-1]
        assert image_present(engine, image)
    finally:
        for each in watchers:
            await each.close()
        importer.close()
        remove_images(engine, [image], label)
        engine.close()
