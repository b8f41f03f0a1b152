"""The cached Debian tree (scripts/debian_rootfs.py), loaded from the script so both share one recipe."""

from __future__ import annotations

import importlib.util
from pathlib import Path

_SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "debian_rootfs.py"
_spec = importlib.util.spec_from_file_location("ferry_debian_rootfs_script", _SCRIPT)
rootfs_script = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(rootfs_script)  # type: ignore[union-attr]

RootfsUnavailable = rootfs_script.RootfsUnavailable
build_atomically = rootfs_script.build_atomically
cache_root = rootfs_script.cache_root
key = rootfs_script.key
rootfs = rootfs_script.rootfs
