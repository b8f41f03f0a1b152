"""Delivery decisions: verdicts, backoff with jitter, Retry-After, expiry; and the signature format."""

from __future__ import annotations

import time
from email.utils import formatdate

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from ferry_importer.callbacks.retry import (
    DeliveryVerdict,
    RetryPolicy,
    backoff_delay,
    classify,
    is_expired,
    next_attempt_at,
    parse_retry_after,
)
from ferry_importer.callbacks.signing import Signer, new_message_id
from importer.tests.service_support import SECRET

pytestmark = pytest.mark.timeout(60)

POLICY = RetryPolicy(base_s=1.0, factor=2.0, max_s=60.0, jitter=0.2, expire_s=3600)


@pytest.mark.parametrize(
    "status, verdict",
    [
        (200, DeliveryVerdict.DELIVERED),
        (204, DeliveryVerdict.DELIVERED),
        (299, DeliveryVerdict.DELIVERED),
        (410, DeliveryVerdict.GONE),
        (None, DeliveryVerdict.RETRY),
        (301, DeliveryVerdict.RETRY),
        (400, DeliveryVerdict.RETRY),
        (401, DeliveryVerdict.RETRY),
        (404, DeliveryVerdict.RETRY),
        (429, DeliveryVerdict.RETRY),
        (500, DeliveryVerdict.RETRY),
        (503, DeliveryVerdict.RETRY),
    ],
)
def test_only_2xx_delivers_and_only_410_stops(status, verdict):
    assert classify(status) is verdict


def test_backoff_doubles_within_the_jitter_band_and_is_capped():
    for failures, nominal in [(1, 1), (2, 2), (3, 4), (4, 8), (6, 32), (7, 60), (50, 60), (10_000, 60)]:
        low = backoff_delay(failures, POLICY, 0.0)
        high = backoff_delay(failures, POLICY, 0.999999)
        assert low == pytest.approx(nominal * 0.8)
        assert high == pytest.approx(nominal * 1.2, rel=1e-5)


def test_backoff_spreads_with_the_random_draw():
    delays = {round(backoff_delay(3, POLICY, r / 10), 6) for r in range(10)}
    assert len(delays) == 10


def test_retry_after_seconds_and_http_date_are_understood():
    now = time.time()
    assert parse_retry_after("120", now) == 120
    assert parse_retry_after(formatdate(now + 30, usegmt=True), now) == pytest.approx(30, abs=1.5)
    assert parse_retry_after(formatdate(now - 30, usegmt=True), now) == 0
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after("\u00b2", now) is None  # a digit to str.isdigit(), not a number
    assert parse_retry_after(None, now) is None


def test_retry_after_wins_over_the_backoff_schedule():
    assert next_attempt_at(failures=1, now=100.0, retry_after=45.0, policy=POLICY, rand=0.5) == 145.0
    assert next_attempt_at(failures=1, now=100.0, retry_after=None, policy=POLICY, rand=0.5) == pytest.approx(101.0)


def test_expiry_counts_from_creation():
    assert not is_expired(0.0, 3600.0, POLICY)
    assert is_expired(0.0, 3600.5, POLICY)


def test_signed_headers_verify_with_the_reference_library():
    body = '{"type":"import.progress","data":{}}'
    msg_id = new_message_id()
    headers = Signer(SECRET).headers(msg_id, body)
    assert headers["webhook-id"] == msg_id
    assert headers["webhook-signature"].startswith("v1,")
    assert abs(int(headers["webhook-timestamp"]) - time.time()) < 5
    Webhook(SECRET).verify(body, headers)


def test_signature_covers_the_body_and_the_secret():
    body = '{"a":1}'
    headers = Signer(SECRET).headers(new_message_id(), body)
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify('{"a":2}', headers)
    other = "whsec_" + "b3RoZXItc2VjcmV0LW90aGVyLXNlY3JldA=="
    with pytest.raises(WebhookVerificationError):
        Webhook(other).verify(body, headers)


def test_a_retry_keeps_the_id_but_signs_its_own_timestamp():
    body = "{}"
    msg_id = new_message_id()
    first = Signer(SECRET).headers(msg_id, body, now=1_700_000_000)
    second = Signer(SECRET).headers(msg_id, body, now=1_700_000_060)
    assert first["webhook-id"] == second["webhook-id"]
    assert first["webhook-timestamp"] != second["webhook-timestamp"]
    assert first["webhook-signature"] != second["webhook-signature"]


def test_message_ids_are_unique():
    ids = [new_message_id() for _ in range(200)]
    assert len(set(ids)) == 200
    assert all(i.startswith("msg_") for i in ids)
