"""This host's stream and load pace: the split of a load's percent follows what the host really spends."""

import json

import pytest

from ferry_importer.pace import FILE_NAME, Pace, PaceFile, learn, learned_weight


def test_a_host_that_loads_fast_gives_the_loading_stage_a_small_share():
    assert learned_weight(Pace({"xz": 20e6}, 180e6), "xz") == pytest.approx(0.1)
    assert learned_weight(Pace({"none": 200e6}, 100e6), "none") == pytest.approx(0.667, abs=1e-3)


def test_nothing_is_learned_before_a_load_of_that_compression():
    assert learned_weight(Pace(), "xz") is None
    assert learned_weight(Pace({"gzip": 50e6}, 100e6), "xz") is None


def test_the_share_stays_within_bounds_however_lopsided_the_host():
    assert learned_weight(Pace({"none": 1e12}, 1.0), "none") == 0.9
    assert learned_weight(Pace({"none": 1.0}, 1e12), "none") == 0.05


def test_learning_leans_on_the_recent_loads_and_ignores_tiny_ones():
    first = learn(Pace(), "xz", 400 << 20, stream_s=20.0, load_s=4.0)
    assert first.stream_bps["xz"] == pytest.approx((400 << 20) / 20) and first.load_bps == pytest.approx(
        (400 << 20) / 4
    )
    second = learn(first, "xz", 400 << 20, stream_s=10.0, load_s=4.0)
    assert second.stream_bps["xz"] == pytest.approx(((400 << 20) / 20 + (400 << 20) / 10) / 2, rel=1e-6)
    assert learn(second, "xz", 1 << 20, stream_s=5.0, load_s=5.0) == second  # too small to say anything
    too_short = learn(second, "xz", 400 << 20, stream_s=5.0, load_s=0.01)  # a loading stage too short to time
    assert too_short.load_bps == second.load_bps and too_short.stream_bps["xz"] > second.stream_bps["xz"]


def test_a_load_that_skipped_layers_is_timed_by_the_bytes_it_really_loaded():
    learned = learn(Pace(), "gzip", 400 << 20, stream_s=20.0, load_s=2.0, load_bytes=100 << 20)
    assert learned.load_bps == pytest.approx((100 << 20) / 2) and learned.stream_bps["gzip"] == pytest.approx(
        (400 << 20) / 20
    )


def test_the_pace_file_round_trips_and_a_broken_one_means_unknown(tmp_path):
    keeper = PaceFile(tmp_path)
    assert keeper.read() == Pace()
    keeper.write(Pace({"gzip": 3e7}, 9e7))
    assert keeper.read() == Pace({"gzip": 3e7}, 9e7)
    assert [p.name for p in tmp_path.iterdir()] == [FILE_NAME], "no temporary file is left"
    (tmp_path / FILE_NAME).write_text("{not json")
    assert keeper.read() == Pace()
    (tmp_path / FILE_NAME).write_text(json.dumps({"stream_bps": {"xz": -1}, "load_bps": "fast"}))
    assert keeper.read() == Pace()


def test_a_pace_that_cannot_be_written_is_only_a_warning(tmp_path, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("")
    PaceFile(blocker / "data").write(Pace({"xz": 1e7}, 1e8))  # the data dir's parent is a file
    assert "could not keep this host's load pace" in caplog.text


def test_the_first_real_load_replaces_the_calibrations_pace_instead_of_averaging_with_it(tmp_path):
    calibrated = Pace({}, 100e6, calibrated=True)
    first = learn(calibrated, "xz", 400 << 20, stream_s=20.0, load_s=2.0)
    assert first.load_bps == pytest.approx((400 << 20) / 2, rel=1e-6) and not first.calibrated
    assert learn(first, "xz", 400 << 20, stream_s=20.0, load_s=4.0).load_bps == pytest.approx(
        ((400 << 20) / 2 + (400 << 20) / 4) / 2, rel=1e-6
    )
    keeper = PaceFile(tmp_path)
    keeper.write(calibrated)
    assert keeper.read() == calibrated
