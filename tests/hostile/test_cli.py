"""What the backend relays from importers (job ids, images, error messages) reaches `ferry` as text, never as
terminal control: the real CLI against a real backend, its output read as bytes."""

from __future__ import annotations

import os
import subprocess

from backend.tests.support import BIN, event_data
from tests.hostile.support import unique

ESCAPES = ("\x1b]0;owned\x07", "\x1b[2J", "\x9b31m")


def _ferry(backend, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, FERRY_URL=backend.url, FERRY_TOKEN=backend.admin_token, COLUMNS="400")
    return subprocess.run([str(BIN / "ferry"), *args], env=env, capture_output=True, timeout=60)


async def test_control_characters_from_the_backend_never_reach_the_terminal(hostile_backend):
    importer = await hostile_backend.add_host(unique("term"))
    job_id = unique("job")
    assert (
        await importer.send(
            "import.queued", event_data(job_id, importer.name, 1, state="queued", phase="queued", percent=0.0)
        )
    ).status_code == 200
    failed = event_data(
        job_id,
        importer.name,
        2,
        state="failed",
        phase="importing",
        error={"code": "engine_error", "message": "boom " + "".join(ESCAPES), "detail": "\x1b[?1049h"},
    )
    assert (await importer.send("import.failed", failed)).status_code == 200
    for args in (("jobs", "--host", importer.name), ("events", job_id)):
        result = _ferry(hostile_backend, *args)
        assert result.returncode == 0, result.stderr
        out = result.stdout.decode()
        assert not any(ord(c) < 0x20 and c not in "\n" or 0x7F <= ord(c) <= 0x9F for c in out), repr(out)
        assert "\\x1b" in out or args[0] == "events"  # shown, escaped (a delivery table has no message)
    missing = _ferry(hostile_backend, "watch", "no-such\x1b[2J-job")
    assert missing.returncode != 0
    assert b"\x1b" not in missing.stderr and b"\\x1b" in missing.stderr
