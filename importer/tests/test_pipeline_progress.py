"""Progress invariants on a real ≥ 50 MB import, and the finalizing heartbeat on a slow engine."""

import os
import time
from datetime import timedelta

import pytest
from stub_engine import StubEngine

from archives import tar_bytes, write
from ferry_importer import CollectingReporter, Engine, ImportSpec, LocalFileSource, Options, run_import

pytestmark = pytest.mark.engine


def check_invariants(events, file_size):
    seqs = [e.data.seq for e in events]
    assert seqs == list(range(1, len(events) + 1))
    assert [e.type for e in events[:-1]] == ["import.progress"] * (len(events) - 1)
    assert events[-1].type == "import.completed" and events[-1].data.state == "succeeded"
    percents = [e.data.percent for e in events]
    assert percents == sorted(percents)
    assert percents.count(100.0) == 1 and percents[-1] == 100.0
    done = [e.data.bytes_done for e in events]
    assert done == sorted(done) and done[-1] == file_size
    for event in events[:-1]:  # percent is the share of archive bytes the engine has taken
        assert event.data.percent <= 100.0 * event.data.bytes_done / file_size + 0.1
    gaps = [(b.timestamp - a.timestamp) for a, b in zip(events, events[1:])]
    assert max(gaps) <= timedelta(seconds=1), max(gaps)
    for first in range(len(events)):  # at most ~10 events in any second
        window = [e for e in events[first:] if e.timestamp - events[first].timestamp < timedelta(seconds=1)]
        assert len(window) <= 14


class PacedFile:
    """Reads at most `bps` bytes a second, as a lab link would deliver them."""

    def __init__(self, raw, bps: int) -> None:
        self.raw, self.bps, self.taken, self.start = raw, bps, 0, time.monotonic()

    def read(self, size: int = -1) -> bytes:
        ahead = self.taken / self.bps - (time.monotonic() - self.start)
        if ahead > 0:
            time.sleep(ahead)
        chunk = self.raw.read(min(size if size > 0 else 1 << 16, 1 << 20))
        self.taken += len(chunk)
        return chunk

    def close(self) -> None:
        self.raw.close()


class PacedSource(LocalFileSource):
    def __init__(self, path, bps: int) -> None:
        super().__init__(path)
        self.bps = bps

    def open(self):
        return PacedFile(super().open(), self.bps)


@pytest.mark.slow
async def test_progress_on_a_50_mb_archive_is_truthful_monotonic_and_never_silent(
    run, tmp_path, name, token, cleanup, docker_client
):
    # random data in 1 MiB files: incompressible, so the gzip file itself is > 50 MB
    files = {f"data/part{i:02d}": os.urandom(1 << 20) for i in range(52)}
    path = write(tmp_path / "big.tar.gz", tar_bytes(files), "gzip")
    assert path.stat().st_size >= 50 * 1000 * 1000
    cleanup.append(f"{name}:big")
    # At 40 MB/s, like a fast lab link: the disk here gave the importing stage only three events (one
    # each 0.1 s), a faster machine would give fewer; these invariants are about a transfer that lasts.
    source = PacedSource(path, 40_000_000)
    image, events = await run(path, f"{name}:big", source=source, changes=[f"LABEL ferry.test={token}"])
    assert not isinstance(image, Exception), image
    check_invariants(events, path.stat().st_size)
    phases = [e.data.phase for e in events]
    assert phases.index("importing") < phases.index("finalizing") < phases.index("verifying") < phases.index("done")
    importing = [e for e in events if e.data.phase == "importing"]
    assert len(importing) >= 3 and any(e.data.rate_bps for e in importing)
    assert image.size == 52 << 20


async def test_a_long_finalize_shows_elapsed_seconds_at_least_every_second(tmp_path):
    path = write(tmp_path / "rootfs.tar", tar_bytes({"blob": os.urandom(2_000_000)}))
    reporter = CollectingReporter()
    with StubEngine(tmp_path / "stub.sock", mode="slow", finalize_seconds=2.5) as stub:
        async with Engine(stub.host) as engine:
            image = await run_import(
                ImportSpec(image="stub/image:1"),
                LocalFileSource(path),
                engine=engine,
                reporter=reporter,
                options=Options(data_dir=tmp_path / "data"),
            )
    assert image.ref == "stub/image:1"
    events = reporter.events
    check_invariants(events, path.stat().st_size)
    finalizing = [e for e in events if e.data.phase == "finalizing"]
    assert len(finalizing) >= 3
    elapsed = [e.data.phase_elapsed_s for e in finalizing]
    assert elapsed == sorted(elapsed) and elapsed[-1] >= 2.0
    assert all(e.data.percent == finalizing[0].data.percent < 100 for e in finalizing)
