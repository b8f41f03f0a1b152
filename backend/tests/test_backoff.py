"""The reconnect schedule of the Redis event bus: grows with each failure in a row, bounded, jittered."""

from __future__ import annotations

import pytest

from ferry_backend.backoff import Backoff, backoff_delay

POLICY = Backoff(base_s=0.5, factor=2.0, max_s=15.0, jitter=0.2)


def test_no_failure_means_no_wait():
    assert backoff_delay(0, POLICY, 0.5) == 0.0


def test_the_delay_doubles_with_each_failure_in_a_row_up_to_the_cap():
    assert [backoff_delay(n, POLICY, 0.5) for n in range(1, 8)] == [0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 15.0]


@pytest.mark.parametrize("failures", [1, 3, 40, 10_000])
def test_jitter_spreads_the_delay_within_its_band(failures):
    nominal = backoff_delay(failures, POLICY, 0.5)
    low, high = backoff_delay(failures, POLICY, 0.0), backoff_delay(failures, POLICY, 0.999999)
    assert low == pytest.approx(nominal * 0.8) and high == pytest.approx(nominal * 1.2, rel=1e-5)
    assert low < nominal < high
