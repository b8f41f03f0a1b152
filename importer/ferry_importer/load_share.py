"""How a docker-save load's percent splits between its two stages — pure maths, no I/O.

The stream (decompressing, the engine untarring what it receives) and, after the last byte, the engine loading
the layers it does not have. Percent is `(1 - w) * streamed + w * loaded`, where `w` is the loading stage's share
of the wall time. `w` comes, best first, from: the stream's own rate once it has run `SETTLE_S` seconds and the
host's loading pace (bytes/s, `pace.json`: learned from its loads, or measured by a small calibration load before
its first one); the host's learned split; the table below. Layers the engine already has shrink the loading
stage (`new_share`): a bar that would otherwise sit at the stream's share and jump at the end moves faster while
it streams instead.
"""

from __future__ import annotations

from dataclasses import dataclass

PERCENT_CAP = 99.0
SETTLE_S = 2.0
WEIGHT_BOUNDS = (0.05, 0.9)

# The loading stage's share of a load's wall time, by the archive's compression, for a host that knows nothing
# better. Both stages scale with the uncompressed bytes (the stream: decompressing and the engine untarring to a
# temporary directory; loading: the engine applying each layer), so the share depends on how dear decompression
# is, hardly on the size. Measured on one machine (2 cores, dockerd 20.10, vfs, shared with other work): a
# 463 MB `docker save` of three layers of real files (Chromium, Python's stdlib, node_modules), imported with
# `ferry-importer import --json` after removing the image each time; stream = first `importing` event to the
# last byte, loading = last byte to `verifying`. Median share over 2-3 runs: none 0.71, gzip -1 0.59,
# zstd -1 0.58-0.69, xz -1 0.32, bzip2 -1 0.14. The README has the table.
LOAD_WEIGHTS = {"none": 0.70, "gzip": 0.60, "zstd": 0.65, "xz": 0.30, "bzip2": 0.15}
LOAD_WEIGHT_DEFAULT = 0.5


def load_weight(compression: str) -> float:
    """Share of a load's percent given to the engine's loading stage, for an archive in `compression`."""
    return LOAD_WEIGHTS.get(compression, LOAD_WEIGHT_DEFAULT)


def weighted_percent(done: int, total: int | None, loaded: float, weight: float) -> float:
    """Percent of a load: the archive bytes the engine has taken weigh `1 - weight`, the share of the loading
    stage done (`loaded`, 0..1) weighs `weight`. Capped below 100 (100 is only for a verified image)."""
    sent = min(1.0, done / total) if total else 0.0
    return round(min(PERCENT_CAP, 100.0 * ((1.0 - weight) * sent + weight * min(1.0, max(0.0, loaded)))), 1)


def shrunk_weight(weight: float, new_share: float) -> float:
    """The loading stage's share when only `new_share` of its layer bytes must really be loaded."""
    new_share = min(1.0, max(0.0, new_share))
    load = weight * new_share
    return load / ((1.0 - weight) + load) if load else 0.0


def stage_split(stream_s: float, load_s: float) -> float:
    """The loading stage's share of a load's time, within `WEIGHT_BOUNDS`."""
    low, high = WEIGHT_BOUNDS
    return round(min(high, max(low, load_s / (stream_s + load_s))), 3)


def paced_weight(total: int, rate: float, content: int, load_bps: float) -> float:
    """The loading stage's share from this stream's rate (archive bytes/s) and the host's loading pace
    (content bytes/s): the stream lasts `total / rate`, loading `content / load_bps`."""
    return stage_split(total / rate, content / load_bps)


def _stream_rest(done: int, total: int | None, rate: float | None) -> float | None:
    """Seconds of stream still to go at `rate`, unrounded; None without a size or a rate."""
    if not total or not rate or rate <= 0:
        return None
    return max(0.0, (total - done) / rate)


def load_eta(done: int, total: int | None, rate: float | None, weight: float) -> float | None:
    """While the archive streams: the rest of the stream, plus the loading stage it predicts (at weight `w` it
    lasts `w / (1 - w)` times as long as the whole stream)."""
    rest = _stream_rest(done, total, rate)
    if rest is None or rate is None or total is None:
        return None
    if weight >= 1.0:
        return round(rest, 1)
    return round(rest + total / rate * weight / (1.0 - weight), 1)


@dataclass
class LoadShare:
    """The split of one load, kept by the progress driver. `weight` is the loading stage's share if every layer
    were new; `new_share` how much of it is (1.0 until something says otherwise)."""

    weight: float
    load_bps: float | None = None  # the host's loading pace, content bytes/s
    content_total: int | None = None  # uncompressed bytes, when the archive says up front
    content_sent: int = 0
    present_bytes: int = 0  # layer bytes the engine has, as the archive's names tell while it streams
    planned_share: float | None = None  # exact, from the archive's manifest and the engine's layers
    settled: bool = False

    def content(self, done: int, total: int | None) -> int | None:
        """The archive's uncompressed bytes: declared, or extrapolated from the ratio so far."""
        if self.content_total:
            return self.content_total
        if done and total and self.content_sent:
            return int(self.content_sent * total / done)
        return None

    def new_share(self, done: int, total: int | None) -> float:
        if self.planned_share is not None:
            return self.planned_share
        content = self.content(done, total)
        if not content or not self.present_bytes:
            return 1.0
        return max(0.0, 1.0 - self.present_bytes / content)

    def settle(self, elapsed: float, done: int, total: int | None, rate: float | None) -> None:
        """Once, after `SETTLE_S` seconds of a stream that has at least as long to go: the weight from this
        stream's own rate (a WAN source, a busy host) and the host's loading pace. A shorter stream keeps the
        weight it started with: moving it would only nudge a bar that is nearly full."""
        if self.settled or elapsed < SETTLE_S or not self.load_bps or not total or not rate or 2 * done > total:
            return
        content = self.content(done, total)
        if content:
            self.weight = paced_weight(total, rate, content, self.load_bps)
            self.settled = True

    def percent(self, done: int, total: int | None, loaded: float) -> float:
        return weighted_percent(done, total, loaded, shrunk_weight(self.weight, self.new_share(done, total)))

    def stream_eta(self, done: int, total: int | None, rate: float | None) -> float | None:
        """The rest of the stream, then the loading of the bytes the engine does not have."""
        rest = _stream_rest(done, total, rate)
        if rest is None:
            return None
        share = self.new_share(done, total)
        content = self.content(done, total)
        if self.load_bps and content:
            return round(rest + share * content / self.load_bps, 1)
        return load_eta(done, total, rate, shrunk_weight(self.weight, share))
