"""The Redis listeners survive an idle minute (redis-py 8 gave idle pub/sub sockets a 5 s timeout)."""

from __future__ import annotations

import pytest

from tests.scale.conftest import IDLE_MARK

pytestmark = [pytest.mark.slow, getattr(pytest.mark, IDLE_MARK)]

IDLE_S = 62.0


def test_event_crosses_replicas_after_an_idle_minute_without_reconnecting(quiet):
    quiet.warmed.result(180)
    result = quiet.run(quiet.finish(IDLE_S), IDLE_S + 60)
    assert result["idle_s"] >= IDLE_S
    assert result["seqs"] == [1, 2, 3]  # caught up, the warm-up event, then the one sent after the idle minute
    assert result["latency_s"] < 5, result
    # Each replica keeps one subscription (ferry's event bus; the Socket.IO server has no client manager of
    # its own, see sockets.py); it was not re-established during the idle time: a listener that timed out
    # and reconnected would be younger.
    subscribers = result["subscribers"]
    assert len(subscribers) == len(quiet.cluster.backends), subscribers
    youngest = min(int(c["age"]) for c in subscribers)
    assert youngest >= int(IDLE_S), f"a subscriber reconnected during the idle time: {subscribers}"
    # The websocket through nginx stayed up all along.
    assert (result["connects"], result["disconnects"]) == (1, 0), result
    for backend in quiet.cluster.backends:
        assert "lost its connection" not in backend.log()
