"""`ferry watch`: follows jobs over Socket.IO, resubscribes by seq after a cut connection, shows bars."""

from __future__ import annotations

import json
import math
import os
import pty
import re
import select
import signal
import subprocess
import time

from cli.tests.streams import CuttableProxy, FerryProcess
from cli.tests.support import FERRY, child_env, drive, run_ferry, unique

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def started_job(backend, host, job_id: str) -> None:
    """The job exists on the backend (its queued callback arrived)."""
    first = drive(backend, host.name, host.secret, job_id, speed=math.inf, part=slice(0, 1))
    first.join(30)
    assert not first.failures


def test_watch_resubscribes_after_a_cut_connection_and_misses_nothing(backend, host):
    job_id = unique("cut")
    started_job(backend, host, job_id)
    proxy = CuttableProxy(backend.port).start()
    try:
        watch = FerryProcess("watch", job_id, "--json", url=proxy.url, token=backend.admin_token)
        seqs = [json.loads(watch.next_line())["data"]["seq"]]  # subscribed: the stored history has arrived
        early = drive(backend, host.name, host.secret, job_id, speed=math.inf, part=slice(1, 5))
        while seqs[-1] < 5:
            seqs.append(json.loads(watch.next_line())["data"]["seq"])
        proxy.cut(for_s=1.5)  # the rest starts now: the socket misses the first second and a half of it live
        rest = drive(backend, host.name, host.secret, job_id, speed=2, part=slice(5, None))
        while (line := watch.next_line()) is not None:
            seqs.append(json.loads(line)["data"]["seq"])
        assert watch.finish() == 0, watch.stderr
        early.join(30)
        rest.join(30)
    finally:
        proxy.stop()
    assert not early.failures and not rest.failures
    total = backend.snapshot(job_id)["seq"]
    assert seqs == list(range(1, total + 1)), "every event exactly once, in order, across the reconnect"
    assert "reconnecting" in watch.stderr


def test_watch_on_a_terminal_shows_a_bar_and_a_running_finalizing_clock(backend, host):
    job_id = unique("tty")
    started_job(backend, host, job_id)
    master, slave = pty.openpty()
    env = child_env(FERRY_URL=backend.url, FERRY_TOKEN=backend.admin_token, COLUMNS="160", TERM="xterm")
    proc = subprocess.Popen([FERRY, "watch", job_id], stdin=slave, stdout=slave, stderr=slave, env=env)
    os.close(slave)
    output, driver = b"", None
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            if driver is None and b"queued" in output:  # the bar shows the subscribed snapshot: go
                driver = drive(backend, host.name, host.secret, job_id, speed=2, finalizing_s=4.0, part=slice(1, None))
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # the terminal closed: ferry exited
                    break
                if not chunk:
                    break
                output += chunk
            elif proc.poll() is not None:
                break
        assert proc.wait(30) == 0, output[-2000:]
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
        if driver is not None:
            driver.join(30)
    text = ANSI.sub("", output.decode(errors="replace"))
    clock = [int(s) for s in re.findall(r"finalizing · (\d+) s", text)]
    assert len(set(clock)) >= 3 and clock == sorted(clock), clock
    assert "━" in text and "99.0%" in text  # the bar, held at 99 while the engine works
    assert f"{host.name} {job_id}: done · lab/watched:1" in text


def test_watch_of_a_failed_job_prints_its_code_and_exits_1(backend, host):
    job_id = unique("failed")
    driver = drive(backend, host.name, host.secret, job_id, speed=math.inf, fail="insufficient_disk")
    driver.join(30)
    done = run_ferry("watch", job_id, backend=backend)
    assert done.returncode == 1
    assert "failed · insufficient_disk: no space left" in done.stdout
    assert "1 of 1 import(s) did not succeed: insufficient_disk" in done.stderr


def test_ctrl_c_ends_a_watch_with_exit_130(backend, host):
    job_id = unique("ctrlc")
    started_job(backend, host, job_id)  # queued, and nothing more will come
    watch = FerryProcess("watch", job_id, "--json", url=backend.url, token=backend.admin_token)
    assert json.loads(watch.next_line())["type"] == "import.queued"
    watch.proc.send_signal(signal.SIGINT)
    assert watch.finish(timeout=30) == 130
    assert watch.stderr.strip().splitlines()[-1] == "ferry: interrupted"
