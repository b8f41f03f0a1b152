"""Malformed requests of uploaders and clients: each is a 4xx with the error body, never a 500."""

from __future__ import annotations

import asyncio

import httpx

TUS = {"Tus-Resumable": "1.0.0"}
SUPERSCRIPT_TWO = b"\xb2"  # "²" as a server reads the header (latin-1): str.isdigit() says yes, int() says no


def _assert_error(response: httpx.Response, status: int, code: str | None = None) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["message"]
    if code is not None:
        assert error["code"] == code


async def _new_upload(http: httpx.AsyncClient, size: int = 10) -> str:
    response = await http.post("/api/uploads/", headers={**TUS, "Upload-Length": str(size)})
    assert response.status_code == 201, response.text
    return response.headers["location"]


async def test_upload_lengths_and_offsets_in_non_ascii_digits_are_refused(hostile_backend):
    async with hostile_backend.client(hostile_backend.token("operator")) as http:
        _assert_error(await http.post("/api/uploads/", headers={**TUS, "Upload-Length": SUPERSCRIPT_TWO}), 400)
        location = await _new_upload(http)
        patch = {**TUS, "Content-Type": "application/offset+octet-stream"}
        _assert_error(
            await http.patch(location, content=b"x", headers={**patch, "Upload-Offset": SUPERSCRIPT_TWO}), 400
        )
        done = await http.patch(location, content=b"0123456789", headers={**patch, "Upload-Offset": "0"})
        assert done.status_code == 204  # the upload itself is unharmed
        content = await http.get(location + "/content", headers={"Range": b"bytes=\xb2-"})
        assert content.status_code in (200, 206) and content.content == b"0123456789"


async def test_a_content_link_token_with_non_ascii_characters_is_refused(hostile_backend):
    async with hostile_backend.client(hostile_backend.token("operator")) as http:
        location = await _new_upload(http, 0)
    async with httpx.AsyncClient(base_url=hostile_backend.url, timeout=30) as anonymous:
        for token in ("1999999999.\u00e9\u00e9", "\u0663.abc", "1999999999.\ud7ff"):
            response = await anonymous.get(location + "/content", params={"token": token})
            _assert_error(response, 401, "bad_content_token")


async def test_a_deeply_nested_request_body_is_a_client_error(hostile_backend):
    async with hostile_backend.client(hostile_backend.token("operator")) as http:
        response = await http.post("/api/imports", content=b"[" * 50_000, headers={"Content-Type": "application/json"})
        assert 400 <= response.status_code < 500, response.text[:200]
        assert response.json()["error"]["code"]
        assert (await http.get("/api/hosts")).status_code == 200


async def test_a_bearer_token_that_is_not_utf8_text_is_unauthorized(hostile_backend):
    async with httpx.AsyncClient(base_url=hostile_backend.url, timeout=30) as http:
        response = await http.get("/api/hosts", headers={"Authorization": b"Bearer \xff\xfe\xb2"})
        _assert_error(response, 401)


async def test_change_lines_with_control_characters_are_refused_before_dispatch(hostile_backend):
    async with hostile_backend.client(hostile_backend.token("operator")) as http:
        for line in ('CMD ["sh"]\nUSER root', "ENV X=\x1b[2J", "LABEL a=b\x00"):
            response = await http.post(
                "/api/imports",
                json={"source_url": "http://files.lab/a.tar", "hosts": ["lab1"], "image": "lab/x:1", "changes": [line]},
            )
            _assert_error(response, 422, "invalid_change")


async def test_the_page_and_the_api_carry_security_headers(hostile_backend):
    async with hostile_backend.client() as http:
        for path in ("/", "/index.html", "/api/hosts", "/no-such-file"):
            response = await http.get(path)
            policy = response.headers.get("content-security-policy", "")
            assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy, (path, policy)
            assert response.headers.get("x-content-type-options") == "nosniff", path


async def test_content_link_tokens_never_reach_the_access_log(hostile_backend):
    async with hostile_backend.client(hostile_backend.token("operator")) as http:
        location = await _new_upload(http, 0)
    secret = "1999999999.deadbeefcafe" + "f" * 40
    async with httpx.AsyncClient(base_url=hostile_backend.url, timeout=30) as anonymous:
        response = await anonymous.get(location + "/content", params={"token": secret, "part": "x"})
    assert response.status_code == 401
    upload_path = location.split("://", 1)[-1].split("/", 1)[-1]
    for _ in range(50):  # the access line is written as the answer goes out
        log = hostile_backend.log_path.read_text(errors="replace")
        if f"{upload_path}/content?token=REDACTED&part=REDACTED" in log:
            break
        await asyncio.sleep(0.1)
    assert f"{upload_path}/content?token=REDACTED&part=REDACTED" in log, log[-2000:]
    assert secret not in log and "deadbeefcafe" not in log
