"""A load's watch: the calibration before a host's first load never holds the import up for long."""

import time

from stub_engine import StubEngine

from ferry_importer.engine.client import Engine
from ferry_importer.load_share import load_weight
from ferry_importer.load_watch import LoadWatch
from ferry_importer.pace import PaceFile


async def test_an_engine_that_hangs_on_the_calibration_load_leaves_the_pace_unknown_and_the_import_going(tmp_path):
    with StubEngine(tmp_path / "stub.sock", mode="stall") as stub:  # never reads a load's body
        async with Engine(stub.host) as engine:
            watch = LoadWatch(engine, PaceFile(tmp_path / "data"), "xz", calibration_timeout=0.5)
            started = time.monotonic()
            share = await watch.start(None, [])
            waited = time.monotonic() - started
            await watch.close()
    assert waited < 5.0
    assert share.load_bps is None and share.weight == load_weight("xz")  # the table, as before
    assert PaceFile(tmp_path / "data").read().load_bps is None  # nothing was measured, nothing kept
