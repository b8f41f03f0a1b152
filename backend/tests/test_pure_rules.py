"""Protocol rules as pure functions: tus headers, Range parsing, content links, signature checks."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks import Webhook

from ferry_backend import answers
from ferry_backend.content import Unsatisfiable, parse_range
from ferry_backend.errors import FerryError, Unauthorized
from ferry_backend.import_jobs import source_url_name
from ferry_backend.receiver import verify_signature
from ferry_backend.security import Role, check_content_link, hash_token, new_token, sign_content_link
from ferry_backend.tus import check_version, encode_metadata, parse_length, parse_metadata, safe_filename

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123").decode()


def test_tus_metadata_round_trips_and_rejects_garbage():
    meta = {"filename": "ceos 4.35.tar.xz", "filetype": "application/x-xz", "flag": ""}
    assert parse_metadata(encode_metadata(meta)) == meta
    with pytest.raises(FerryError) as err:
        parse_metadata("filename !!notbase64!!")
    assert err.value.status == 400


def test_tus_version_and_length_rules():
    check_version("1.0.0")
    with pytest.raises(FerryError) as err:
        check_version("0.2.2")
    assert err.value.status == 412 and err.value.headers["Tus-Version"] == "1.0.0"
    assert parse_length("10", 10) == 10
    with pytest.raises(FerryError) as too_big:
        parse_length("11", 10)
    assert too_big.value.status == 413 and too_big.value.code == "upload_too_large"
    with pytest.raises(FerryError):
        parse_length(None, 10)
    with pytest.raises(FerryError):
        parse_length("-1", 10)


def test_filenames_are_reduced_to_a_harmless_last_component():
    assert safe_filename("../../etc/passwd") == "passwd"
    assert safe_filename("C:\\images\\ceos.tar.xz") == "ceos.tar.xz"
    assert safe_filename("a\nb") == "ab"
    assert safe_filename("") is None


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("bytes=0-9", (0, 9)),
        ("bytes=10-", (10, 99)),
        ("bytes=-5", (95, 99)),
        ("bytes=90-200", (90, 99)),
        ("bytes=0-1,5-6", None),
        ("items=0-1", None),
        ("bytes=5-2", None),
        ("bytes=-500", (0, 99)),
    ],
)
def test_range_header_parsing(header, expected):
    assert parse_range(header, 100) == expected


@pytest.mark.parametrize("header", ["bytes=100-", "bytes=100-200", "bytes=-0"])
def test_unsatisfiable_ranges(header):
    with pytest.raises(Unsatisfiable):
        parse_range(header, 100)


def test_content_links_bind_upload_and_expire():
    key = b"k" * 32
    link = sign_content_link(key, "abc", 60, now=1000)
    assert check_content_link(key, "abc", link, now=1030) is None
    assert "expired" in check_content_link(key, "abc", link, now=1061)
    assert "does not match" in check_content_link(key, "other", link, now=1030)
    assert "does not match" in check_content_link(b"x" * 32, "abc", link, now=1030)
    assert "malformed" in check_content_link(key, "abc", "garbage", now=1030)


def test_tokens_are_random_and_hashed():
    a, b = new_token(), new_token()
    assert a != b and len(a) > 40
    assert hash_token(a) != a and len(hash_token(a)) == 64
    assert Role.admin > Role.operator > Role.viewer
    with pytest.raises(ValueError):
        Role.parse("root")


def _signed(body: bytes, when: datetime, msg_id: str = "msg_1", secret: str = SECRET) -> dict:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(when.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, when, body.decode()),
    }


def test_signature_verification_accepts_the_real_thing():
    now = datetime.now(UTC)
    body = b'{"type":"import.progress"}'
    assert verify_signature(SECRET, body, _signed(body, now), now) == "msg_1"


@pytest.mark.parametrize(
    ("mutate", "code"),
    [
        (lambda body, h, now: (body + b" ", h), "bad_signature"),
        (lambda body, h, now: (body, {**h, "webhook-id": "msg_2"}), "bad_signature"),
        (lambda body, h, now: (body, {k: v for k, v in h.items() if k != "webhook-signature"}), "missing_signature"),
        (lambda body, h, now: (body, _signed(body, now - timedelta(minutes=6))), "stale_timestamp"),
        (lambda body, h, now: (body, _signed(body, now + timedelta(minutes=6))), "stale_timestamp"),
        (
            lambda body, h, now: (
                body,
                _signed(body, now, secret="whsec_" + base64.b64encode(b"another-secret-xyz").decode()),
            ),
            "bad_signature",
        ),
        (lambda body, h, now: (body, {**h, "webhook-signature": "v1,AAAA"}), "bad_signature"),
    ],
)
def test_signature_verification_refuses(mutate, code):
    now = datetime.now(UTC)
    body = b'{"type":"import.progress"}'
    body, headers = mutate(body, _signed(body, now), now)
    with pytest.raises(Unauthorized) as err:
        verify_signature(SECRET, body, headers, now)
    assert err.value.code == code and err.value.status == 401


def test_a_source_urls_file_is_its_last_segment_or_the_url_itself():
    assert source_url_name("http://files.lab/images/ceos%20lab.tar.xz?x=1") == "ceos lab.tar.xz"
    assert source_url_name("http://files.lab/") == "http://files.lab/"
    assert source_url_name(None) is None


def test_a_callbacks_answer_follows_from_its_verdict():
    assert answers.accepted("stale", "job_1", 3) == (200, {"verdict": "stale", "job_id": "job_1", "seq": 3})
    status, body = answers.accepted("wrong_host", "job_1", 3)
    assert status == 409 and body["error"]["code"] == "wrong_host"
    kept = answers.stored(answers.refused(422, "invalid_callback", "x" * 5000))
    assert kept["answer_status"] == 422 and len(kept["answer"]) == answers.ANSWER_MAX_LEN
