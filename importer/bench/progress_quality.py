"""How truthful one import's bar was, from its `--json` events (pure; used by bench_import.py).

The run is timed from its first event to its terminal event (Python's start-up is not the bar's fault).
- longest stall: the longest stretch in which percent did not move, as seconds and as a share of the run;
- percent at half time: what the bar said when half the run was over (a linear bar says 50);
- ETA error at half time: the ETA shown then, against the time the run really still took.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path


def read_events(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _points(events: list[dict]) -> list[tuple[float, float, float | None]]:
    """(seconds since the first event, percent, eta_s) of every event."""
    times = [datetime.fromisoformat(e["timestamp"]).timestamp() for e in events]
    return [(t - times[0], e["data"]["percent"], e["data"].get("eta_s")) for t, e in zip(times, events)]


def quality(events: list[dict]) -> dict:
    points = _points(events)
    wall = points[-1][0]
    stall = 0.0
    since, last = 0.0, points[0][1]
    for t, percent, _ in points:
        if percent != last:
            stall, since, last = max(stall, t - since), t, percent
    stall = max(stall, wall - since)
    half = wall / 2
    before = [p for p in points if p[0] <= half]
    _, percent_half, eta_half = before[-1]
    left = wall - half
    return {
        "wall_s": round(wall, 2),
        "longest_stall_s": round(stall, 2),
        "longest_stall_share": round(stall / wall, 3) if wall else 0.0,
        "percent_at_half": percent_half,
        "eta_at_half_s": eta_half,
        "eta_error_at_half": round((eta_half - left) / left, 3) if eta_half is not None and left else None,
    }


def summary_line(label: str, q: dict) -> str:
    eta = "n/a" if q["eta_error_at_half"] is None else f"{q['eta_error_at_half'] * 100:+.0f} %"
    return (
        f"  {label}: run {q['wall_s']:.1f} s · longest stall {q['longest_stall_s']:.1f} s "
        f"({q['longest_stall_share'] * 100:.0f} % of the run, target <= 15 %) · percent at half time "
        f"{q['percent_at_half']:.1f} (target 25-75) · ETA error at half time {eta} (target within 25 %)"
    )
