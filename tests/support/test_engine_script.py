"""scripts/engine.py: a dockerd that cannot start is reported at once, in one sentence that says what to do."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_a_dockerd_that_exits_while_starting_fails_fast_with_the_hint(tmp_path):
    fake = tmp_path / "bin" / "dockerd"  # stands in for a dockerd refused by the host (not root, no cgroups)
    fake.parent.mkdir()
    fake.write_text(
        "#!/bin/sh\necho 'failed to start daemon: pid file found, ensure docker is not running' >&2\nexit 1\n"
    )
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{fake.parent}:{os.environ['PATH']}", "FERRY_RUN_DIR": str(tmp_path / "run")}
    env.pop("DOCKER_HOST", None)
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "engine.py"), "up", "--name", "broken", "--private"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert time.monotonic() - started < 15  # not the minute of polling a dead process
    assert done.returncode != 0
    assert "dockerd exited with code 1" in done.stderr and "pid file found" in done.stderr
    assert "set DOCKER_HOST" in done.stderr
