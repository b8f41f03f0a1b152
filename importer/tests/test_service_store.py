"""The job store and the service reporter on a real SQLite file; the settings parsing."""

from __future__ import annotations

import json

import pytest

from ferry_contract import ErrorInfo, ImportJobRequest, JobState, Phase
from ferry_importer import job_store
from ferry_importer.callbacks import outbox
from ferry_importer.database import Database
from ferry_importer.job_reporter import EventRecorder, OutboxReporter
from ferry_importer.progress import Snapshot
from ferry_importer.settings import SettingsError, load_settings, settings_help
from importer.tests.service_support import SECRET, TOKEN

pytestmark = pytest.mark.timeout(60)


def request(job_id="j1", **extra) -> ImportJobRequest:
    body = {
        "job_id": job_id,
        "image": "lab/ceos:4.35.1F",
        "source": {"path": "/srv/a.tar"},
        "callback_url": "http://127.0.0.1:9/cb",
        **extra,
    }
    return ImportJobRequest.model_validate(body)


@pytest.fixture
async def db(tmp_path):
    d = Database(tmp_path / "importer.db")
    await d.open()
    yield d
    await d.close()


async def test_a_job_id_is_stored_once(db):
    first, created = await db.call(job_store.insert, request(), 1.0)
    again, created_again = await db.call(job_store.insert, request(image="other:1"), 2.0)
    assert created and not created_again
    assert again.request.image == "lab/ceos:4.35.1F" and again.created_at == 1.0
    assert job_store.same_request(request(), request(callback_url="http://other/cb"))
    assert not job_store.same_request(request(), request(force=True))


async def test_queue_order_follows_acceptance(db):
    for name in ("c", "a", "b"):
        await db.call(job_store.insert, request(name), 1.0)
    assert [r.job_id for r in await db.call(job_store.in_states, job_store.ACTIVE_STATES)] == ["c", "a", "b"]


async def reporter_for(db, job_id="j1", woken=None):
    record = await db.call(job_store.get, job_id)
    recorder = EventRecorder(db, lambda: woken.append(1) if woken is not None else None)
    return OutboxReporter(recorder, record, "lab1")


def snap(phase=Phase.IMPORTING, done=10, percent=1.0) -> Snapshot:
    return Snapshot(phase=phase, bytes_done=done, bytes_total=1000, percent=percent)


async def test_events_commit_snapshot_and_outbox_together_and_wake_the_worker(db):
    await db.call(job_store.insert, request(), 1.0)
    woken: list[int] = []
    reporter = await reporter_for(db, woken=woken)
    await reporter.queued(1, first=True)
    await reporter.progress(snap(Phase.PREPARING, 0, 0.0))
    await reporter.progress(snap())
    await reporter.progress(snap(done=20, percent=2.0))
    record = await db.call(job_store.get, "j1")
    assert (record.state, record.phase, record.seq, record.snapshot.bytes_done) == ("running", "importing", 4, 20)
    messages = await db.call(outbox.list_messages, job_id="j1")
    assert [(m.seq, m.type, m.droppable) for m in messages] == [
        (1, "import.queued", False),
        (2, "import.progress", False),
        (3, "import.progress", False),
        (4, "import.progress", True),
    ]
    assert json.loads(messages[0].body)["data"]["queue_position"] == 1
    assert len(woken) == 4


async def test_a_new_reporter_continues_the_stored_seq(db):
    await db.call(job_store.insert, request(), 1.0)
    first = await reporter_for(db)
    await first.queued(2, first=True)
    await first.queued(1, first=False)  # moved up the queue: a queued-state progress event
    second = await reporter_for(db)
    await second.progress(snap())
    seqs = [(m.seq, m.type) for m in await db.call(outbox.list_messages, job_id="j1")]
    assert seqs == [(1, "import.queued"), (2, "import.progress"), (3, "import.progress")]


async def test_stale_events_never_move_the_snapshot_back_and_terminal_is_final(db):
    await db.call(job_store.insert, request(), 1.0)
    behind = await reporter_for(db)  # still thinks the job is at seq 0
    ahead = await reporter_for(db)
    await ahead.progress(snap(done=50, percent=5.0))
    await ahead.progress(snap(done=80, percent=8.0))
    await behind.progress(snap(done=10, percent=1.0))  # seq 1 arrives after seq 2
    record = await db.call(job_store.get, "j1")
    assert (record.seq, record.snapshot.bytes_done) == (2, 80)
    await ahead.fail(ErrorInfo(code="engine_error", message="boom"))
    failed = await db.call(job_store.get, "j1")
    assert failed.state == JobState.FAILED and failed.finished_at is not None
    late = await reporter_for(db)
    await late.progress(snap(done=90))  # a later seq cannot revive a finished job
    assert (await db.call(job_store.get, "j1")).state == JobState.FAILED


async def test_jobs_without_callback_url_record_events_but_queue_nothing(db):
    await db.call(job_store.insert, request(callback_url=None), 1.0)
    reporter = await reporter_for(db)
    await reporter.queued(1, first=True)
    assert (await db.call(job_store.get, "j1")).seq == 1
    assert await db.call(outbox.list_messages) == []


async def test_retention_forgets_only_finished_jobs(db):
    await db.call(job_store.insert, request("old"), 1.0)
    await db.call(job_store.insert, request("live"), 1.0)
    reporter = await reporter_for(db, "old")
    await reporter.canceled(None, snap())
    assert await db.call(job_store.purge, 10**12) == 1
    assert [r.job_id for r in await db.call(job_store.recent, limit=10)] == ["live"]


def test_settings_read_comma_lists_and_resolve_roots(monkeypatch, tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    monkeypatch.setenv("FERRY_IMPORTER_TOKEN", TOKEN)
    monkeypatch.setenv("FERRY_IMPORTER_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("FERRY_IMPORTER_ALLOWED_ROOTS", f"{tmp_path}/link, /srv/images ,")
    monkeypatch.setenv("FERRY_IMPORTER_ALLOWED_URL_PREFIXES", "http://backend:8000/api/uploads/")
    monkeypatch.setenv("FERRY_IMPORTER_MAX_CONCURRENT", "3")
    settings = load_settings()
    assert [str(r) for r in settings.allowed_roots] == [str(tmp_path / "real"), "/srv/images"]
    assert settings.url_prefixes[0].port == 8000 and settings.max_concurrent == 3
    assert settings.database_path == settings.data_dir / "importer.db"


@pytest.mark.parametrize(
    "env, fragment",
    [
        ({"FERRY_IMPORTER_TOKEN": "short"}, "FERRY_IMPORTER_TOKEN must be at least 16 characters"),
        ({"FERRY_IMPORTER_WEBHOOK_SECRET": "plain"}, "FERRY_IMPORTER_WEBHOOK_SECRET must look like whsec_"),
        ({"FERRY_IMPORTER_WEBHOOK_SECRET": "whsec_c2hvcnQ="}, "at least 16 bytes"),
        ({"FERRY_IMPORTER_ALLOWED_ROOTS": "relative/dir"}, "must be an absolute path"),
        ({"FERRY_IMPORTER_ALLOWED_URL_PREFIXES": "http://h/x?token=1"}, "query"),
        ({"FERRY_IMPORTER_MAX_CONCURRENT": "0"}, "FERRY_IMPORTER_MAX_CONCURRENT"),
    ],
)
def test_bad_settings_are_one_clear_line(monkeypatch, env, fragment):
    monkeypatch.setenv("FERRY_IMPORTER_TOKEN", TOKEN)
    monkeypatch.setenv("FERRY_IMPORTER_WEBHOOK_SECRET", SECRET)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(SettingsError, match=fragment.replace("?", r"\?")) as err:
        load_settings()
    assert "\n" not in str(err.value)


def test_missing_secrets_are_named(monkeypatch):
    monkeypatch.delenv("FERRY_IMPORTER_TOKEN", raising=False)
    monkeypatch.delenv("FERRY_IMPORTER_WEBHOOK_SECRET", raising=False)
    with pytest.raises(SettingsError) as err:
        load_settings()
    assert "FERRY_IMPORTER_TOKEN is required" in str(err.value)
    assert "FERRY_IMPORTER_WEBHOOK_SECRET is required" in str(err.value)


def test_help_documents_every_setting():
    text = settings_help()
    for name in (
        "TOKEN",
        "WEBHOOK_SECRET",
        "NAME",
        "DATA_DIR",
        "ALLOWED_ROOTS",
        "ALLOWED_URL_PREFIXES",
        "MAX_CONCURRENT",
        "STALL_TIMEOUT_S",
        "HEARTBEAT_S",
        "OUTBOX_EXPIRE_S",
    ):
        assert f"FERRY_IMPORTER_{name}:" in text
