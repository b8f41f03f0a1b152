"""The cache of built trees and archives: keyed by what built them, complete or absent, never half."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.rootfs import build_atomically, cache_root, key


def test_the_cache_lives_under_xdg_cache_home(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache_root() == tmp_path / "ferry"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache_root() == Path.home() / ".cache" / "ferry"


def test_another_mirror_builds_another_tree(monkeypatch):
    monkeypatch.delenv("FERRY_DEBIAN_MIRROR", raising=False)
    default = key()
    monkeypatch.setenv("FERRY_DEBIAN_MIRROR", "http://mirror.example/debian")
    assert key() != default and key().startswith("debian-bookworm-minbase-")


def test_a_failed_build_leaves_nothing_and_the_next_one_builds_again(tmp_path):
    final = tmp_path / "entry"

    def broken(tmp):
        (tmp / "half").write_text("x")
        raise RuntimeError("mirror went away")

    with pytest.raises(RuntimeError, match="mirror went away"):
        build_atomically(final, broken)
    assert not final.exists()
    assert [p.name for p in tmp_path.iterdir() if ".tmp-" in p.name] == []
    built = build_atomically(final, lambda tmp: (tmp / "whole").write_text("ok"))
    assert (built / "whole").read_text() == "ok"


def test_a_complete_entry_is_reused_without_building(tmp_path):
    final = tmp_path / "entry"
    build_atomically(final, lambda tmp: (tmp / "whole").write_text("first"))

    def must_not_run(tmp):
        raise AssertionError("built twice")

    assert (build_atomically(final, must_not_run) / "whole").read_text() == "first"


def test_a_build_killed_midway_leaves_no_entry_and_its_leftovers_are_cleared(tmp_path):
    final = tmp_path / "entry"
    script = (
        "import sys, time; sys.path.insert(0, '.');"
        "from tests.support.rootfs import build_atomically; from pathlib import Path;"
        f"build_atomically(Path({str(final)!r}), lambda tmp: ((tmp / 'half').write_text('x'), time.sleep(60)))"
    )
    child = subprocess.Popen([sys.executable, "-c", script], cwd=Path(__file__).resolve().parents[2])
    deadline = time.monotonic() + 30
    while not list(tmp_path.glob(".entry.tmp-*/half")) and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert not final.exists()
    assert list(tmp_path.glob(".entry.tmp-*"))  # what SIGKILL leaves: only the temporary folder
    built = build_atomically(final, lambda tmp: (tmp / "whole").write_text("ok"))
    assert (built / "whole").read_text() == "ok"
    assert list(tmp_path.glob(".entry.tmp-*")) == []
