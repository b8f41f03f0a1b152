"""`ferry-importer import` as a user runs it: a real process against the real engine."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from archives import rootfs_files, tar_bytes, write
from conftest import leftovers
from ferry_contract import parse_callback
from tests.support.images import image_present

pytestmark = pytest.mark.engine
CLI = str(Path(sys.executable).parent / "ferry-importer")


@pytest.fixture
def env(docker_host, tmp_path):
    return {
        **os.environ,
        "DOCKER_HOST": docker_host,
        "FERRY_IMPORTER_DATA_DIR": str(tmp_path / "data"),
        "COLUMNS": "100",
    }


def cli(env, *args, timeout=120):
    return subprocess.run([CLI, "import", *args], env=env, capture_output=True, text=True, timeout=timeout)


def test_json_lines_are_contract_events_ending_in_exactly_one_terminal(env, tmp_path, name, token, cleanup):
    path = write(tmp_path / "rootfs.tar.zst", tar_bytes(rootfs_files()), "zstd")
    cleanup.append(f"{name}:json")
    done = cli(env, str(path), "--image", f"{name}:json", "--change", f"LABEL ferry.test={token}", "--json")
    assert done.returncode == 0, done.stderr
    events = [parse_callback(line) for line in done.stdout.splitlines()]
    assert [e.data.seq for e in events] == list(range(1, len(events) + 1))
    assert [e.type for e in events[:-1]] == ["import.progress"] * (len(events) - 1)
    assert events[-1].type == "import.completed" and events[-1].data.image.ref == f"{name}:json"
    assert {"seq", "state", "phase", "percent", "bytes_done", "bytes_total", "rate_bps", "eta_s"} <= set(
        json.loads(done.stdout.splitlines()[0])["data"]
    )
    assert f"imported: {name}:json" in done.stderr


def test_the_progress_bar_run_and_the_already_present_rerun(env, tmp_path, name, token, cleanup):
    path = write(tmp_path / "rootfs.tar.gz", tar_bytes(rootfs_files()), "gzip")
    cleanup.append(f"{name}:bar")
    args = (str(path), "-i", f"{name}:bar", "-c", f"LABEL ferry.test={token}")
    first = cli(env, *args)
    assert first.returncode == 0, first.stderr
    assert f"imported: {name}:bar" in first.stdout and "100%" in first.stderr
    again = cli(env, *args)
    assert again.returncode == 0 and f"already present: {name}:bar" in again.stdout


@pytest.mark.parametrize(
    "args, code",
    [
        (("--image", "Not/Valid"), "invalid_reference"),
        (("--image", "ok/name:1", "--change", "RUN x"), "invalid_change"),
    ],
)
def test_bad_input_exits_non_zero_with_one_failed_event(env, tmp_path, args, code):
    path = write(tmp_path / "rootfs.tar", tar_bytes(rootfs_files(100)))
    done = cli(env, str(path), *args, "--json")
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    failed = parse_callback(lines[-1])
    assert failed.type == "import.failed" and failed.data.error.code == code
    assert f"error [{code}]" in done.stderr


def test_a_missing_file_and_an_unreachable_engine_fail_clearly(env, tmp_path):
    done = cli(env, str(tmp_path / "missing.tar"), "--image", "a/b:1", "--json")
    assert done.returncode == 1 and parse_callback(done.stdout.splitlines()[-1]).data.error.code == "source_not_found"
    path = write(tmp_path / "rootfs.tar", tar_bytes(rootfs_files(100)))
    done = cli({**env, "DOCKER_HOST": f"unix://{tmp_path}/none.sock"}, str(path), "--image", "a/b:1")
    assert done.returncode == 1 and "engine_unreachable" in done.stdout


@pytest.mark.slow
@pytest.mark.parametrize("signum, exit_code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_mid_import_cancels_and_leaves_no_image(
    env, tmp_path, name, token, cleanup, docker_client, signum, exit_code
):
    path = tmp_path / "big.tar"
    path.write_bytes(tar_bytes({f"blob{i}": os.urandom(8 << 20) for i in range(14)} | {"t": token.encode()}))
    process = subprocess.Popen(
        [CLI, "import", str(path), "-i", f"{name}:sig", "-c", f"LABEL ferry.test={token}", "--json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines = []
    for line in process.stdout:
        lines.append(line)
        if json.loads(line)["data"]["bytes_done"] > 0:
            break
    process.send_signal(signum)
    rest, _ = process.communicate(timeout=60)
    lines += rest.splitlines()
    assert process.returncode == exit_code
    last = parse_callback(lines[-1])
    assert last.type == "import.canceled" and last.data.error.code == "interrupted"
    assert signal.Signals(signum).name in last.data.error.message
    assert last.data.bytes_done < path.stat().st_size
    time.sleep(0.2)
    assert leftovers(docker_client, token) == [] and not image_present(docker_client, f"{name}:sig")


def test_help_lists_the_import_command_and_its_options():
    done = subprocess.run([CLI, "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and "import" in done.stdout
    done = subprocess.run(
        [CLI, "import", "--help"], capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"}
    )
    for option in ("--image", "--format", "--change", "--force", "--json"):
        assert option in done.stdout
