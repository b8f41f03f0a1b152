"""A token that leaked can be revoked, and a token can expire: refused from then on, its open sockets dropped."""

from __future__ import annotations

import asyncio

import httpx
import socketio

from tests.hostile.support import unique


async def _socket(backend, token: str) -> socketio.AsyncClient:
    sio = socketio.AsyncClient(reconnection=False)
    await sio.connect(backend.url, auth={"token": token}, transports=["websocket"], wait_timeout=10)
    return sio


async def _wait_disconnected(sio: socketio.AsyncClient, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while sio.connected:
        assert asyncio.get_running_loop().time() < deadline, "the socket stayed connected"
        await asyncio.sleep(0.1)


async def _refused_everywhere(backend, token: str) -> None:
    async with httpx.AsyncClient(base_url=backend.url, headers={"Authorization": f"Bearer {token}"}) as http:
        assert (await http.get("/api/imports")).status_code == 401
    try:
        await _socket(backend, token)
    except socketio.exceptions.ConnectionError:
        return
    raise AssertionError("a socket connected with an unusable token")


async def test_a_revoked_token_is_refused_and_its_sockets_are_disconnected(hostile_backend):
    async with hostile_backend.client() as admin:
        created = (await admin.post("/api/tokens", json={"role": "viewer", "name": unique("leaked")})).json()
        sio = await _socket(hostile_backend, created["token"])
        listed = (await admin.get("/api/tokens")).json()
        mine = next(t for t in listed if t["id"] == created["id"])
        assert mine["usable"] is True and mine["revoked_at"] is None
        assert all("token" not in t and "token_hash" not in t for t in listed)
        revoked = await admin.delete(f"/api/tokens/{created['id']}")
        assert revoked.status_code == 200 and revoked.json()["revoked_at"] and revoked.json()["usable"] is False
        assert (await admin.delete("/api/tokens/tok_nosuchtoken")).json()["error"]["code"] == "token_not_found"
    await _wait_disconnected(sio, timeout=3)
    await _refused_everywhere(hostile_backend, created["token"])


async def test_an_expired_token_is_refused_and_its_sockets_are_disconnected(hostile_backend):
    async with hostile_backend.client() as admin:
        created = (await admin.post("/api/tokens", json={"role": "viewer", "expires_in_s": 2})).json()
    assert created["expires_at"]
    sio = await _socket(hostile_backend, created["token"])
    async with httpx.AsyncClient(
        base_url=hostile_backend.url, headers={"Authorization": f"Bearer {created['token']}"}
    ) as http:
        assert (await http.get("/api/imports")).status_code == 200
    await _wait_disconnected(sio)
    await _refused_everywhere(hostile_backend, created["token"])


async def test_tokens_revoked_from_the_command_line_drop_the_running_backends_sockets(hostile_backend):
    made = hostile_backend.cli("token", "create", "--role", "viewer", "--name", "cli-made", "--expires-in", "1h")
    assert made.returncode == 0, made.stderr
    secret = made.stdout.strip()
    sio = await _socket(hostile_backend, secret)
    listing = hostile_backend.cli("token", "list")
    line = next(line for line in listing.stdout.splitlines() if "\tcli-made\t" in line)
    token_id, expires = line.split("\t")[0], line.split("\t")[4]
    assert expires != "never"
    revoked = hostile_backend.cli("token", "revoke", token_id)
    assert revoked.returncode == 0 and token_id in revoked.stdout
    await _wait_disconnected(sio)  # another process revoked it: the backend notices within its interval
    await _refused_everywhere(hostile_backend, secret)
    assert hostile_backend.cli("token", "create", "--role", "viewer", "--expires-in", "soon").returncode != 0
