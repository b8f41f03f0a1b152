"""The URL source against a real local HTTP server: streaming, Range resume, verification, allow-list."""

from __future__ import annotations

import os
import threading
import time

import pytest

from ferry_contract import ErrorCode
from ferry_contract.urls import parse_prefix
from ferry_importer.errors import ImporterError
from ferry_importer.sources.allowlist import SourceRejected
from ferry_importer.sources.url import UrlSource
from importer.tests.service_support import wait_until
from importer.tests.silent_server import SilentServer

pytestmark = pytest.mark.timeout(60)

SIZE = 3 * 1024 * 1024 + 123


@pytest.fixture
def archive(files):
    data = os.urandom(SIZE)
    (files.root / "a.bin").write_bytes(data)
    return data


def make_source(files, name="a.bin", **kw) -> UrlSource:
    kw.setdefault("resume_backoff_s", 0.01)
    return UrlSource(files.url(name, "token=secret"), prefixes=[parse_prefix(files.url(""))], **kw)


def read_all(source: UrlSource, n: int = 256 * 1024) -> bytes:
    out = bytearray()
    with source.open() as reader:
        while chunk := reader.read(n):
            out.extend(chunk)
    return bytes(out)


def test_probe_learns_size_and_description_hides_the_token(files, archive):
    source = make_source(files)
    source.probe()
    assert source.size == SIZE
    assert source.path is None
    assert "token" not in source.describe() and source.describe().endswith("/files/a.bin")


def test_streams_the_whole_file(files, archive):
    source = make_source(files, size=SIZE)
    source.probe()
    assert read_all(source) == archive
    assert source.resumes == 0


def test_dropped_connection_resumes_with_range_from_the_last_byte(files, archive):
    files.drop_after["/files/a.bin"] = 1_000_000
    source = make_source(files)
    source.probe()
    assert read_all(source) == archive
    assert source.resumes == 1
    gets = [r for r in files.requests if r["method"] == "GET"]
    assert len(gets) == 2
    resumed_at = int(gets[1]["range"].removeprefix("bytes=").rstrip("-"))
    assert 0 < resumed_at <= 1_000_000
    assert gets[1]["if-range"].startswith('"')


def test_shorter_than_announced_fails_at_end_of_stream(files, archive):
    source = make_source(files, size=SIZE)
    source.probe()
    (files.root / "a.bin").write_bytes(archive[:-10])  # shrinks after the probe
    reader = source.open()
    with pytest.raises(ImporterError) as err:
        while reader.read(1 << 20):
            pass
    assert err.value.code == ErrorCode.SOURCE_MISMATCH
    reader.close()


def test_longer_than_announced_fails_as_soon_as_it_overflows(files, archive):
    source = make_source(files, size=SIZE)
    source.probe()
    (files.root / "a.bin").write_bytes(archive + b"more")
    reader = source.open()
    consumed = 0
    with pytest.raises(ImporterError) as err:
        while chunk := reader.read(1 << 20):
            consumed += len(chunk)
    assert err.value.code == ErrorCode.SOURCE_MISMATCH
    assert consumed <= SIZE
    reader.close()


def test_announced_size_that_differs_is_refused_before_download(files, archive):
    source = make_source(files, size=SIZE + 1)
    with pytest.raises(ImporterError) as err:
        source.probe()
    assert err.value.code == ErrorCode.SOURCE_MISMATCH
    assert not [r for r in files.requests if r["method"] == "GET"]


def test_file_changed_between_drop_and_resume_is_a_mismatch(files, archive):
    files.drop_after["/files/a.bin"] = 500_000

    def rewrite(path):
        path.write_bytes(os.urandom(SIZE))

    files.on_drop = rewrite
    source = make_source(files)
    source.probe()
    with pytest.raises(ImporterError) as err:
        read_all(source)
    assert err.value.code == ErrorCode.SOURCE_MISMATCH
    assert "changed" in err.value.message


def test_server_without_range_support_fails_clearly(files, archive):
    files.ranges = False
    files.drop_after["/files/a.bin"] = 500_000
    source = make_source(files)
    source.probe()
    with pytest.raises(ImporterError) as err:
        read_all(source)
    assert err.value.code == ErrorCode.SOURCE_UNAVAILABLE
    assert "cannot resume" in err.value.message


def test_redirect_inside_the_prefix_is_followed(files, archive):
    files.redirects["/files/old.bin"] = files.url("a.bin")
    source = make_source(files, "old.bin")
    source.probe()
    assert read_all(source) == archive


def test_redirect_out_of_the_prefix_is_refused(files, archive):
    files.redirects["/files/evil.bin"] = "http://127.0.0.1:1/elsewhere/a.bin"
    source = make_source(files, "evil.bin")
    with pytest.raises(ImporterError) as err:
        source.probe()
    assert err.value.code == ErrorCode.SOURCE_NOT_ALLOWED


def test_missing_file_is_source_not_found(files):
    with pytest.raises(ImporterError) as err:
        make_source(files, "nope.bin").probe()
    assert err.value.code == ErrorCode.SOURCE_NOT_FOUND


def test_unreachable_server_is_source_unavailable(files):
    files.stop()
    with pytest.raises(ImporterError) as err:
        make_source(files).probe()
    assert err.value.code == ErrorCode.SOURCE_UNAVAILABLE


def test_server_that_keeps_dropping_gives_up_after_the_resume_budget(files, archive):
    files.drop_after["/files/a.bin"] = 500_000
    files.on_drop = lambda _file: files.stop()  # the server goes away: every resume is refused
    source = make_source(files, max_resumes=2)
    source.probe()
    reader = source.open()
    with pytest.raises(ImporterError) as err:
        while reader.read(1 << 20):
            pass
    assert err.value.code == ErrorCode.SOURCE_UNAVAILABLE
    reader.close()


def test_url_outside_the_allow_list_is_rejected_up_front(files):
    with pytest.raises(SourceRejected) as err:
        UrlSource("http://127.0.0.1:1/files/a.bin", prefixes=[parse_prefix(files.url(""))])
    assert err.value.code == ErrorCode.SOURCE_NOT_ALLOWED


def test_close_from_another_thread_interrupts_a_resume_backoff(files, archive):
    files.drop_after["/files/a.bin"] = 500_000
    files.on_drop = lambda _file: files.stop()
    source = make_source(files, resume_backoff_s=30, max_resumes=5)
    source.probe()
    reader = source.open()
    threading.Timer(0.3, reader.close).start()
    started = time.monotonic()
    with pytest.raises(ImporterError) as err:
        while reader.read(1 << 20):
            pass
    assert time.monotonic() - started < 10
    assert err.value.code == ErrorCode.INTERRUPTED


def test_close_from_another_thread_ends_a_read_blocked_on_a_stalled_server_and_hangs_up(files, archive):
    files.stall_at["/files/a.bin"] = 300_000  # sends that much, then nothing, keeping the connection open
    source = make_source(files, size=SIZE, timeout_s=60)
    source.probe()
    reader = source.open()
    got, errors = [], []

    def read_until_it_fails():
        try:
            while chunk := reader.read(64 * 1024):
                got.append(len(chunk))
        except ImporterError as exc:
            errors.append(exc)

    thread = threading.Thread(target=read_until_it_fails, daemon=True)
    thread.start()
    wait_until(lambda: sum(got) == 300_000 and files.stalls, 10, what="the stall")
    time.sleep(0.3)
    assert thread.is_alive() and not files.hangups  # blocked on the silent connection
    closed_at = time.monotonic()
    reader.close()
    thread.join(5)
    assert not thread.is_alive() and errors and errors[0].code == ErrorCode.INTERRUPTED
    wait_until(lambda: files.hangups, 5, what="the server to see the connection end")
    assert files.hangups[0][1] - closed_at < 2
    assert len([r for r in files.requests if r["method"] == "GET"]) == 1  # stopped means no reconnect


@pytest.fixture
def silent_server():
    server = SilentServer()
    yield server
    server.close()


def test_abort_probe_ends_a_probe_waiting_for_an_answer(silent_server):
    source = UrlSource(silent_server.url("a.bin"), prefixes=[parse_prefix(silent_server.url())], timeout_s=60)
    errors = []

    def probe():
        try:
            source.probe()
        except ImporterError as exc:
            errors.append(exc)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    time.sleep(0.5)
    assert thread.is_alive()
    aborted_at = time.monotonic()
    source.abort_probe()
    thread.join(5)
    assert not thread.is_alive() and errors[0].code == ErrorCode.INTERRUPTED
    wait_until(lambda: silent_server.hangups, 5, what="the server to see the connection end")
    assert silent_server.hangups[0] - aborted_at < 2
