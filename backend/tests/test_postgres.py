"""The same backend on Postgres (asyncpg): migrations, auth, callbacks, replay. SQLite is the default; this keeps SQL portable."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

from backend.tests.support import Backend, SocketWatcher, completed_data, event_data, free_port

pytestmark = pytest.mark.slow

PG_BIN = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)), None)


def _as_postgres(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["runuser", "-u", "postgres", "--", *args], capture_output=True, text=True, timeout=120, **kwargs
    )


@pytest.fixture(scope="module")
def postgres_url():
    """A throwaway Postgres cluster (it refuses to run as root, so it runs as the postgres user)."""
    if PG_BIN is None or shutil.which("runuser") is None:
        pytest.skip("Postgres server binaries are not installed (make system-deps installs them)")
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("no postgres system user")
    root = Path(tempfile.mkdtemp(prefix="ferry-pg-"))
    os.chmod(root, 0o755)
    shutil.chown(root, "postgres")
    data, port = root / "data", free_port()
    init = _as_postgres(str(PG_BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync")
    assert init.returncode == 0, init.stderr
    start = _as_postgres(
        str(PG_BIN / "pg_ctl"),
        "-D",
        str(data),
        "-l",
        str(root / "log"),
        "-w",
        "-o",
        f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off",
        "start",
    )
    assert start.returncode == 0, start.stderr + (root / "log").read_text(errors="replace")
    try:
        yield f"postgresql+asyncpg://postgres@127.0.0.1:{port}/postgres"
    finally:
        _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def pg_backend(postgres_url, tmp_path_factory):
    backend = Backend(tmp_path_factory.mktemp("pg"), env_extra={"FERRY_DATABASE_URL": postgres_url})
    yield backend.start()
    backend.stop()


async def test_backend_runs_on_postgres_end_to_end(pg_backend):
    backend = pg_backend
    assert not (backend.data_dir / "ferry.db").exists()
    importer = await backend.add_host("pg-" + uuid.uuid4().hex[:6])
    job = "job_" + uuid.uuid4().hex[:10]
    await importer.send("import.queued", event_data(job, importer.name, 1, state="queued", phase="queued", percent=0.0))
    await importer.send("import.progress", event_data(job, importer.name, 3))
    stale = await importer.send("import.progress", event_data(job, importer.name, 2))
    assert stale.json()["verdict"] == "stale"
    body_dup = await importer.send("import.progress", event_data(job, importer.name, 4), msg_id="msg_pg_dup")
    assert body_dup.json()["verdict"] == "applied"
    again = await importer.send("import.progress", event_data(job, importer.name, 4), msg_id="msg_pg_dup")
    assert again.json()["verdict"] == "duplicate"
    watcher = await SocketWatcher(backend, backend.token("viewer")).connect()
    try:
        ack = await watcher.subscribe(job, after_seq=1)
        assert ack["snapshot"]["seq"] == 4
        await importer.send("import.completed", completed_data(job, importer.name, 5))
        await watcher.wait_for(lambda: watcher.seqs()[-1:] == [5])
        assert watcher.seqs() == [2, 3, 4, 5]
    finally:
        await watcher.close()
    async with backend.client() as http:
        snapshot = (await http.get(f"/api/imports/{job}")).json()
        listed = (await http.get("/api/imports", params={"state": "succeeded"})).json()["jobs"]
    assert snapshot["state"] == "succeeded" and snapshot["finished_at"] and job in [j["id"] for j in listed]


async def test_two_replicas_starting_together_on_an_empty_database_both_serve(postgres_url, tmp_path):
    """Both race to migrate and to insert the bootstrap admin token and the shared link key; neither may crash."""
    name = "fresh_" + uuid.uuid4().hex[:8]
    created = _as_postgres(
        str(PG_BIN / "psql"),
        "-h",
        "127.0.0.1",
        "-p",
        postgres_url.rsplit(":", 1)[1].split("/")[0],
        "-U",
        "postgres",
        "-c",
        f"CREATE DATABASE {name}",
    )
    assert created.returncode == 0, created.stderr
    url = postgres_url.rsplit("/", 1)[0] + "/" + name
    admin = "fy_admin_" + uuid.uuid4().hex
    replicas = [Backend(tmp_path / f"r{i}", env_extra={"FERRY_DATABASE_URL": url}, admin_token=admin) for i in (1, 2)]
    try:
        for replica in replicas:
            replica.launch()
        for replica in replicas:
            replica.wait_ready()
        for replica in replicas:
            async with replica.client() as http:
                assert (await http.get("/api/me")).json()["role"] == "admin"
                assert (await http.get("/api/hosts")).status_code == 200
    finally:
        for replica in replicas:
            replica.stop()
