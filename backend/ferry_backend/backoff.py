"""When to try a lost connection again: exponential backoff with ±jitter, as a pure function.

Jitter keeps the replicas of a deployment from reconnecting to a recovering Redis in lock-step.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    base_s: float = 0.5
    factor: float = 2.0
    max_s: float = 15.0
    jitter: float = 0.2  # the delay lies within ±20 % of its nominal value


def backoff_delay(failures: int, policy: Backoff, rand: float) -> float:
    """Delay after the `failures`-th failure in a row (1-based); `rand` in [0, 1) places it in the jitter band."""
    if failures < 1:
        return 0.0
    exponent = min(failures - 1, 64)
    nominal = min(policy.base_s * policy.factor**exponent, policy.max_s)
    spread = nominal * policy.jitter
    return max(0.0, nominal - spread + 2 * spread * rand)
