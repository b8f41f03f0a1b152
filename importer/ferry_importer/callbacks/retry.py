"""Callback delivery decisions as pure functions: what an attempt's outcome means and when to try again.

Exponential backoff with ±jitter so a fleet of importers does not hammer a recovering backend in
lock-step; a receiver's `Retry-After` wins over our schedule; 410 Gone means "stop for this job".
"""

from __future__ import annotations

from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from enum import StrEnum


class DeliveryVerdict(StrEnum):
    DELIVERED = "delivered"
    RETRY = "retry"
    GONE = "gone"


@dataclass(frozen=True)
class RetryPolicy:
    base_s: float = 1.0
    factor: float = 2.0
    max_s: float = 600.0
    jitter: float = 0.2
    expire_s: float = 86400.0


def classify(status: int | None) -> DeliveryVerdict:
    """None = no HTTP answer (refused, reset, timeout): retry like any other non-2xx, except 410."""
    if status is not None and 200 <= status < 300:
        return DeliveryVerdict.DELIVERED
    if status == 410:
        return DeliveryVerdict.GONE
    return DeliveryVerdict.RETRY


def backoff_delay(failures: int, policy: RetryPolicy, rand: float) -> float:
    """Delay after the `failures`-th failed attempt (1-based); `rand` in [0, 1) places it in the jitter band."""
    if failures < 1:
        return 0.0
    exponent = min(failures - 1, 64)
    nominal = min(policy.base_s * policy.factor**exponent, policy.max_s)
    spread = nominal * policy.jitter
    return max(0.0, nominal - spread + 2 * spread * rand)


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or HTTP-date), None if absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # "²" is a digit to isdigit(), not to float()
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now)


def next_attempt_at(*, failures: int, now: float, retry_after: float | None, policy: RetryPolicy, rand: float) -> float:
    """When to try again: the receiver's Retry-After if it gave one, else our backoff."""
    if retry_after is not None:
        return now + retry_after
    return now + backoff_delay(failures, policy, rand)


def is_expired(created_at: float, at: float, policy: RetryPolicy) -> bool:
    """An event not delivered within the expiry window is given up (recorded as expired, never silently lost)."""
    return at - created_at > policy.expire_s
