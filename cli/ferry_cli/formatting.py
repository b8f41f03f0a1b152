"""Pure formatting: sizes, rates, durations, times, and the one-line description of a job's state."""

from __future__ import annotations

import re
from datetime import UTC, datetime

# C0 controls but tab, DEL and C1: escape sequences, bells, cursor moves. What the backend relays (job ids,
# images, error messages from importers) may carry them; a terminal must not execute them.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")
TERMINAL_STATES = ("succeeded", "failed", "canceled")
UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def printable(text: str, keep_newlines: bool = False) -> str:
    """`text` with every control character shown as a visible escape (ESC as \\x1b), never sent raw."""

    def visible(match: re.Match) -> str:
        char = match.group()
        return char if keep_newlines and char == "\n" else f"\\x{ord(char):02x}"

    return _CONTROL.sub(visible, text)


def human_bytes(value: float | None) -> str:
    """Binary units, exactly as the web page writes them (67.4 MiB, 2.42 GiB): one vocabulary for one file."""
    if value is None:
        return "?"
    value = float(value)
    for unit in UNITS:
        if abs(value) < 1024 or unit == UNITS[-1]:
            digits = 0 if unit == "B" or abs(value) >= 100 else 1 if abs(value) >= 10 else 2
            return f"{value:.{digits}f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def human_rate(bps: float | None) -> str:
    return "" if bps is None else f"{human_bytes(bps)}/s"


def human_duration(seconds: float | None) -> str:
    """12 s, 3 min 05 s, 1 h 02 min: whole units, cut down like a stopwatch (a clock never shows ahead)."""
    if seconds is None:
        return "?"
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def parse_time(value: str | None) -> datetime | None:
    """ISO-8601 as the backend writes it (`…Z` or an offset); naive times are taken as UTC."""
    if not value:
        return None
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def short_time(value: str | None) -> str:
    """`2025-11-29 14:03:07.123` in UTC, for tables."""
    parsed = parse_time(value)
    return "" if parsed is None else parsed.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def describe(view: dict, elapsed: float | None = None) -> str:
    """What a job is doing, in one line. `elapsed` overrides the view's phase_elapsed_s (a running clock)."""
    state, phase = view.get("state"), view.get("phase")
    if state == "succeeded":
        image = view.get("image") or view.get("result") or {}
        ident = (image.get("id") or "")[:19]
        size = human_bytes(image.get("size")) if image.get("size") is not None else ""
        present = " (already present)" if image.get("already_present") else ""
        others = [t for loaded in (image.get("images") or [])[1:] for t in (loaded.get("tags") or [loaded.get("id")])]
        more = f"and {', '.join(others)}" if others else ""
        return " · ".join(p for p in ("done" + present, image.get("ref") or "", ident, size, more) if p)
    if state in ("failed", "canceled"):
        error = view.get("error") or {}
        line = f"{state} · {error.get('code')}: {error.get('message')}" if error else state
        if view.get("presumed"):
            line += f" (presumed: a later report from {view.get('host') or 'the host'} replaces it)"
        return line
    doubt = (view.get("doubt") or {}).get("message")
    return f"{_doing(view, state, phase, elapsed)} · {doubt}" if doubt else _doing(view, state, phase, elapsed)


def _doing(view: dict, state: str | None, phase: str | None, elapsed: float | None) -> str:
    if state == "queued" or phase == "queued":
        position = view.get("queue_position")
        return f"queued (position {position})" if position else "queued"
    if phase in ("importing", "downloading"):
        parts = [f"{phase} {human_bytes(view.get('bytes_done'))} / {human_bytes(view.get('bytes_total'))}"]
        if view.get("rate_bps") is not None:
            parts.append(human_rate(view["rate_bps"]))
        if view.get("eta_s") is not None:
            parts.append(f"eta {human_duration(view['eta_s'])}")
        return " · ".join(parts)
    if phase == "waiting_for_upload":  # the import read every byte of the upload that has arrived so far
        available, total = view.get("bytes_available"), view.get("bytes_total")
        parts = ["waiting for upload"]
        if available is not None and total:
            parts.append(f"{human_bytes(available)} / {human_bytes(total)} arrived ({100.0 * available / total:.0f} %)")
        return " · ".join(parts)
    if phase == "loading":  # the engine has every byte of a docker-save archive and loads its layers
        done, total = view.get("layers_done"), view.get("layers_total")
        parts = [
            "loading layers" + (f" {done}" if done is not None else "") + (f"/{total}" if total is not None else "")
        ]
        if view.get("layer_bytes_total"):
            parts.append(f"{human_bytes(view.get('layer_bytes_done') or 0)} / {human_bytes(view['layer_bytes_total'])}")
        if view.get("rate_bps") is not None:
            parts.append(human_rate(view["rate_bps"]))
        if view.get("eta_s") is not None:
            parts.append(f"eta {human_duration(view['eta_s'])}")
        return " · ".join(parts)
    if phase in ("finalizing", "verifying", "preparing"):
        elapsed = view.get("phase_elapsed_s") if elapsed is None else elapsed
        if elapsed is None:
            return phase
        label = f"{phase} · {human_duration(elapsed)}"
        return label + (" (the engine is applying the image)" if phase == "finalizing" else "")
    return str(phase or state or "?")


HOST_SILENT_AFTER_S = 20.0  # importers beat every 10 s: a host quiet for longer is silent, not "online"


def host_liveness(host: dict, now: datetime | None = None) -> str:
    """`online`, `silent for 58 s` or `never heard from`: a silence is shown as the doubt it is, with its length."""
    seen = parse_time(host.get("last_seen"))
    if seen is None:
        return "never heard from"
    quiet = max(0.0, ((now or datetime.now(UTC)) - seen).total_seconds())
    if host.get("alive") and quiet < HOST_SILENT_AFTER_S:
        return "online"
    return f"silent for {human_duration(quiet)}"


def is_terminal(view: dict) -> bool:
    return view.get("state") in TERMINAL_STATES
