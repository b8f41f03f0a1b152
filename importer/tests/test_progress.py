import asyncio

from hypothesis import given
from hypothesis import strategies as st

from ferry_contract import Phase
from ferry_importer.load_share import LoadShare
from ferry_importer.progress import PERCENT_CAP, ProgressDriver, RateMeter, emit_due, eta_seconds, percent_of


@given(st.lists(st.integers(min_value=0, max_value=10**9)), st.integers(min_value=1, max_value=10**9))
def test_percent_never_reaches_100_before_verification(values, total):
    for value in values:
        assert 0 <= percent_of(min(value, total), total) <= PERCENT_CAP


def test_percent_is_the_share_of_bytes_consumed():
    assert percent_of(250, 1000) == 25.0
    assert percent_of(1000, 1000) == PERCENT_CAP
    assert percent_of(5, None) == 0.0


def test_rate_and_eta_come_from_real_samples():
    meter = RateMeter(window=5)
    assert meter.rate() is None
    meter.add(0.0, 0)
    meter.add(2.0, 2_000_000)
    assert meter.rate() == 1_000_000
    assert eta_seconds(2_000_000, 10_000_000, meter.rate()) == 8.0
    assert eta_seconds(1, None, 5.0) is None


def test_emission_rules_rate_limit_changes_but_always_send_a_heartbeat():
    assert emit_due(10.0, None, changed=False)
    assert not emit_due(10.05, 10.0, changed=True)  # too soon after the last one
    assert emit_due(10.15, 10.0, changed=True)
    assert not emit_due(10.3, 10.0, changed=False)
    assert emit_due(10.5, 10.0, changed=False)  # heartbeat: never silent


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


class Recorder:
    def __init__(self):
        self.snapshots = []

    async def progress(self, snapshot):
        self.snapshots.append(snapshot)


async def test_driver_sends_finalizing_heartbeats_with_elapsed_seconds_and_never_moves_back():
    clock = FakeClock()
    recorder = Recorder()
    driver = ProgressDriver(recorder, total=1000, clock=clock)
    await driver.set_phase(Phase.IMPORTING)
    for step in range(1, 101):  # 100 updates within one second: at most ~10 events
        clock.now += 0.01
        driver.advance(step * 10)
        await driver.tick()
    importing = [s for s in recorder.snapshots if s.phase == Phase.IMPORTING]
    assert len(importing) <= 12
    await driver.set_phase(Phase.FINALIZING)
    driver.advance(500)  # a stale, smaller count is ignored
    for _ in range(60):
        clock.now += 0.05
        await driver.tick()
    finalizing = [s for s in recorder.snapshots if s.phase == Phase.FINALIZING]
    assert len(finalizing) >= 6
    elapsed = [s.phase_elapsed_s for s in finalizing]
    assert elapsed == sorted(elapsed) and elapsed[-1] >= 2.5
    percents = [s.percent for s in recorder.snapshots]
    assert percents == sorted(percents) and percents[-1] == PERCENT_CAP
    assert all(s.bytes_done == 1000 for s in finalizing)


async def test_phase_changes_are_emitted_at_once_even_inside_the_rate_limit():
    clock = FakeClock()
    recorder = Recorder()
    driver = ProgressDriver(recorder, total=10, clock=clock)
    await driver.tick()
    await driver.set_phase(Phase.IMPORTING)
    await driver.set_phase(Phase.FINALIZING)
    assert [s.phase for s in recorder.snapshots] == [Phase.PREPARING, Phase.IMPORTING, Phase.FINALIZING]


async def test_driver_run_loop_emits_on_its_own():
    recorder = Recorder()
    driver = ProgressDriver(recorder, total=10, heartbeat=0.1)
    task = asyncio.create_task(driver.run(interval=0.02))
    await asyncio.sleep(0.35)
    task.cancel()
    assert len(recorder.snapshots) >= 3


async def test_a_load_moves_through_both_stages_and_rate_and_eta_follow_the_running_one():
    from ferry_importer.archive.layout import ArchiveImage
    from ferry_importer.engine.loading import plan_layers

    clock = FakeClock()
    recorder = Recorder()
    driver = ProgressDriver(recorder, total=1000, clock=clock)
    driver.expect_load(LoadShare(0.6))
    await driver.set_phase(Phase.IMPORTING)
    for step in range(1, 11):  # 100 archive bytes/s
        clock.now += 1.0
        driver.advance(step * 100)
        await driver.tick()
    streaming = recorder.snapshots[-1]
    assert streaming.percent == 40.0 and streaming.rate_bps == 100.0
    image = ArchiveImage(config="c.json", repo_tags=("app:1",), layers=("a/layer.tar", "b/layer.tar"))
    driver.layers.set_plan(plan_layers([image], {"a/layer.tar": 2000, "b/layer.tar": 2000}), [image])
    await driver.set_phase(Phase.FINALIZING)
    for layer_id, current in [("aaaa", 1000), ("aaaa", 2000), ("bbbb", 1000), ("bbbb", 2000)]:  # 1000 B/s
        clock.now += 1.0
        await driver.layer_line(layer_id, current, 2000)
        await driver.tick()
    loading = [s for s in recorder.snapshots if s.phase == Phase.LOADING]
    assert loading[0].layers_total == 2 and loading[-1].layers_done == 1
    assert loading[-1].layer_bytes_done == 4000 and loading[-1].percent == PERCENT_CAP
    middle = [s for s in loading if s.layer_bytes_done == 2000][-1]
    assert middle.percent == 70.0 and middle.rate_bps == 1000.0 and middle.eta_s == 2.0
    percents = [s.percent for s in recorder.snapshots]
    assert percents == sorted(percents)
    driver.load_finished()
    assert driver.snapshot().layers_done == 2


def test_a_few_slow_seconds_move_the_rate_shown_but_hardly_the_eta():
    meter = RateMeter(window=5)
    for second in range(21):  # 20 s at 10 MB/s
        meter.add(float(second), second * 10_000_000)
    for second in range(21, 26):  # then 5 s at 1 MB/s: a busy host
        meter.add(float(second), 200_000_000 + (second - 20) * 1_000_000)
    assert meter.rate() < 2_000_000  # the bar shows the slow seconds as they are
    eta = eta_seconds(205_000_000, 400_000_000, meter.overall())
    assert eta is not None and 20 < eta < 25  # 8.2 MB/s over the stage: not the 195 s the window would say


async def test_layers_the_engine_has_make_the_bar_follow_the_stream_instead_of_jumping_at_the_end():
    clock = FakeClock()
    recorder = Recorder()
    driver = ProgressDriver(recorder, total=1000, clock=clock)
    have = {"bytes": 0}
    driver.expect_load(LoadShare(0.6, content_total=1000), lambda: have["bytes"])
    await driver.set_phase(Phase.IMPORTING)
    for step in range(1, 11):  # every layer file that passes is one the engine already has
        clock.now += 1.0
        have["bytes"] = step * 100
        driver.advance(step * 100, 100)
        await driver.tick()
    percents = [s.percent for s in recorder.snapshots]
    assert percents == sorted(percents)
    assert percents[-1] == PERCENT_CAP  # full when the stream is: nothing is left to load
    assert max(b - a for a, b in zip(percents, percents[1:])) < 25  # without it: 40 % at the end, then 99
