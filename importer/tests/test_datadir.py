"""One default data directory for `serve`, `import` and `outbox`: they must find the same outbox and index."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ferry_importer.datadir import default_data_dir
from ferry_importer.engine.fastpath import ImportIndex
from ferry_importer.settings import load_settings
from importer.tests.service_support import SECRET, TOKEN

BIN = Path(sys.executable).with_name("ferry-importer")


def test_the_explicit_variable_wins_then_xdg_data_home_then_the_home_directory():
    assert default_data_dir({"FERRY_IMPORTER_DATA_DIR": "/srv/ferry", "XDG_DATA_HOME": "/x"}) == Path("/srv/ferry")
    assert default_data_dir({"XDG_DATA_HOME": "/x/share"}) == Path("/x/share/ferry-importer")
    assert default_data_dir({}) == Path.home() / ".local" / "share" / "ferry-importer"


def test_a_relative_xdg_data_home_is_ignored_as_the_spec_asks():
    assert default_data_dir({"XDG_DATA_HOME": "relative/share"}) == Path.home() / ".local" / "share" / "ferry-importer"


def test_serve_settings_and_the_fast_path_index_use_the_same_default(monkeypatch, tmp_path):
    monkeypatch.delenv("FERRY_IMPORTER_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    expected = tmp_path / "xdg" / "ferry-importer"
    assert load_settings(token=TOKEN, webhook_secret=SECRET).data_dir == expected
    assert ImportIndex().data_dir == expected


def test_the_outbox_command_looks_in_the_same_default_place(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "FERRY_IMPORTER_DATA_DIR"}
    env["XDG_DATA_HOME"] = str(tmp_path / "xdg")
    result = subprocess.run([str(BIN), "outbox", "list"], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert f"no outbox at {tmp_path / 'xdg' / 'ferry-importer' / 'importer.db'}" in result.stderr
