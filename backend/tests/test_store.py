"""Store queries on a real SQLite database (the same migrations the service runs)."""

from __future__ import annotations

import sys
from datetime import timedelta

from ferry_backend import store as st
from ferry_backend.models import Job, Upload, utcnow


async def make_store(tmp_path) -> st.Store:
    store = st.Store.from_url(f"sqlite+aiosqlite:///{tmp_path / 'test.db'}")
    await store.migrate()
    await store.migrate()  # idempotent
    return store


def upload(upload_id: str, complete: bool, age_s: float, expired: bool) -> Upload:
    now = utcnow()
    return Upload(
        id=upload_id,
        size=10,
        offset=10 if complete else 3,
        complete=complete,
        meta={},
        created_at=now - timedelta(seconds=age_s),
        updated_at=now,
        completed_at=now - timedelta(seconds=age_s) if complete else None,
        expires_at=now - timedelta(seconds=1) if expired else now + timedelta(hours=1),
    )


def job(job_id: str, upload_id: str, state: str) -> Job:
    now = utcnow()
    return Job(
        id=job_id,
        host="h",
        image="a:1",
        upload_id=upload_id,
        format="auto",
        changes=[],
        force=False,
        state=state,
        phase="queued",
        seq=0,
        percent=0.0,
        bytes_done=0,
        created_at=now,
        updated_at=now,
        last_contact_at=now,
    )


async def test_expiry_spares_uploads_that_running_jobs_still_need(tmp_path):
    store = await make_store(tmp_path)
    async with store.write() as session:
        session.add_all(
            [
                upload("a" * 24, complete=False, age_s=10, expired=True),  # abandoned: goes
                upload("b" * 24, complete=False, age_s=10, expired=False),  # still being uploaded: stays
                upload("c" * 24, complete=True, age_s=999, expired=True),  # old, a job is still running on it: stays
                upload("d" * 24, complete=True, age_s=999, expired=True),  # old, its job finished: goes
                upload("e" * 24, complete=True, age_s=1, expired=True),  # finished recently: stays
            ]
        )
        session.add_all([job("j1", "c" * 24, "running"), job("j2", "d" * 24, "succeeded")])
    async with store.write() as session:
        gone = {u.id[0] for u in await st.expired_uploads(session, utcnow(), retention_s=100)}
    assert gone == {"a", "d"}
    await store.close()


async def test_bootstrap_admin_token_rotates(tmp_path):
    store = await make_store(tmp_path)
    async with store.write() as session:
        await st.set_bootstrap_admin(session, "first")
    async with store.write() as session:
        await st.set_bootstrap_admin(session, "second")
    async with store.read() as session:
        assert await st.find_token(session, "first") is None
        assert (await st.find_token(session, "second")).role == "admin"
    await store.close()


async def test_shared_secret_is_created_once(tmp_path):
    store = await make_store(tmp_path)
    async with store.write() as session:
        first = await st.shared_secret(session, "k")
    async with store.write() as session:
        assert await st.shared_secret(session, "k") == first and len(first) == 64
    await store.close()


def test_the_newest_migration_is_found_without_alembic():
    from alembic.script import ScriptDirectory

    from ferry_backend import db

    assert db.head_revision() == ScriptDirectory.from_config(db.alembic_config()).get_current_head()


async def test_a_database_at_the_newest_revision_starts_without_alembic(tmp_path, monkeypatch):
    from ferry_backend import db

    store = await make_store(tmp_path)
    assert await db.current_revision(store.engine) == db.head_revision()
    for name in [m for m in sys.modules if m == "alembic" or m.startswith("alembic.")]:
        monkeypatch.setitem(sys.modules, name, None)  # importing it now would fail
    monkeypatch.setitem(sys.modules, "alembic", None)
    await store.migrate()
    await store.close()
