"""A load's percent splits between the stream and the engine's loading stage by what this host and this stream
really spend, and layers the engine already has shrink the loading stage."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ferry_importer.load_share import PERCENT_CAP, LoadShare, load_weight, paced_weight, shrunk_weight


def test_layers_the_engine_has_shrink_the_loading_stage_down_to_nothing():
    assert shrunk_weight(0.5, 1.0) == 0.5
    assert shrunk_weight(0.5, 0.5) == pytest.approx(1 / 3)
    assert shrunk_weight(0.5, 0.0) == 0.0


def test_the_split_follows_the_streams_own_rate_and_the_hosts_loading_pace():
    # a 500 MB archive at 20 MB/s streams for 25 s; 1000 MB of content at 100 MB/s loads for 10 s
    assert paced_weight(500_000_000, 20e6, 1_000_000_000, 100e6) == pytest.approx(10 / 35, abs=1e-3)
    assert paced_weight(500_000_000, 1e3, 1_000_000_000, 100e6) == 0.05  # a crawling WAN stream: bounded


def test_the_weight_settles_once_after_two_seconds_of_a_long_enough_stream():
    share = LoadShare(load_weight("xz"), load_bps=100e6, content_total=1_000_000_000)
    share.settle(1.0, 20_000_000, 500_000_000, 20e6)
    assert share.weight == load_weight("xz") and not share.settled  # too early to judge the stream
    share.settle(2.5, 50_000_000, 500_000_000, 20e6)
    assert share.settled and share.weight == pytest.approx(10 / 35, abs=1e-3)
    share.settle(9.0, 200_000_000, 500_000_000, 5e6)
    assert share.weight == pytest.approx(10 / 35, abs=1e-3)  # once only: the bar does not wander

    short = LoadShare(0.3, load_bps=100e6, content_total=10_000_000)
    short.settle(2.5, 6_000_000, 10_000_000, 2e6)  # more than half streamed already: keep the weight
    assert not short.settled and short.weight == 0.3


def test_without_a_declared_size_the_content_is_extrapolated_from_the_ratio_so_far():
    share = LoadShare(0.3, load_bps=100e6)
    share.content_sent = 400_000_000  # 4:1 so far
    assert share.content(100_000_000, 250_000_000) == 1_000_000_000


def test_while_streaming_the_eta_adds_the_loading_of_only_the_bytes_the_engine_lacks():
    share = LoadShare(0.3, load_bps=100e6, content_total=1_000_000_000)
    assert share.stream_eta(250_000_000, 500_000_000, 25e6) == 20.0  # 10 s of stream + 10 s of loading
    share.present_bytes = 500_000_000
    assert share.stream_eta(250_000_000, 500_000_000, 25e6) == 15.0
    share.planned_share = 0.0  # the manifest says: the engine has every layer
    assert share.stream_eta(250_000_000, 500_000_000, 25e6) == 10.0


def test_without_a_pace_the_eta_predicts_loading_from_the_weight():
    assert LoadShare(0.5).stream_eta(500, 1000, 100.0) == 15.0  # 5 s of stream + as long as the whole stream


def test_when_the_engine_has_every_layer_the_bar_follows_the_stream_alone():
    share = LoadShare(0.6, content_total=1000)
    assert share.percent(500, 1000, 0.0) == 20.0
    share.present_bytes = 1000
    assert share.percent(500, 1000, 0.0) == 50.0
    assert share.percent(1000, 1000, 0.0) == PERCENT_CAP


@given(
    weight=st.floats(0.05, 0.9),
    steps=st.lists(st.tuples(st.integers(0, 100), st.integers(0, 100)), min_size=1, max_size=30),
)
def test_percent_never_moves_back_while_bytes_stream_and_present_layers_are_found(weight, steps):
    share = LoadShare(weight, content_total=10_000)
    done = present = 0
    last = 0.0
    for more, found in steps:
        done, present = min(10_000, done + more * 10), min(10_000, present + found * 10)
        share.present_bytes = present
        now = share.percent(done, 10_000, 0.0)
        assert now >= last
        last = now
