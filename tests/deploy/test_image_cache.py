"""deploy/image_cache.py: what an image's key covers, and how old entries go."""

from __future__ import annotations

import importlib.util
import os
import time
from pathlib import Path

import pytest

_SCRIPT = Path(__file__).resolve().parents[2] / "deploy" / "image_cache.py"
_spec = importlib.util.spec_from_file_location("ferry_image_cache_under_test", _SCRIPT)
image_cache = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(image_cache)  # type: ignore[union-attr]

IGNORE = "**\n!requirements/app.lock\n!app\n**/__pycache__\n**/tests\napp/bench\n"


@pytest.fixture
def context(tmp_path) -> Path:
    for rel, text in {
        "requirements/app.lock": "httpx==1\n",
        "requirements/other.lock": "x==1\n",
        "app/main.py": "print(1)\n",
        "app/tests/test_main.py": "assert True\n",
        "app/__pycache__/main.pyc": "junk",
        "app/bench/run.py": "pass\n",
        "README.md": "outside the context\n",
    }.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    (tmp_path / "deploy").mkdir()
    (tmp_path / "deploy" / "Dockerfile.app").write_text("FROM base\nCOPY app app\n")
    (tmp_path / "deploy" / "Dockerfile.app.dockerignore").write_text(IGNORE)
    return tmp_path


def _digest(root: Path, bases=("sha256:aa",), **args) -> str:
    return image_cache.digest(root, root / "deploy" / "Dockerfile.app", args or {"BASE": "b"}, list(bases))


def test_the_context_is_what_the_dockerignore_lets_through(context):
    assert list(image_cache.context_files(context, IGNORE)) == ["app/main.py", "requirements/app.lock"]


def test_a_dockerignore_that_does_not_start_by_excluding_everything_is_refused(context):
    with pytest.raises(ValueError, match="must start with"):
        list(image_cache.context_files(context, "node_modules\n"))


def test_the_key_follows_the_context_the_arguments_and_the_bases(context):
    first = _digest(context)
    assert _digest(context) == first
    (context / "README.md").write_text("changed, but not in the context\n")
    (context / "app" / "tests" / "test_main.py").write_text("excluded too\n")
    assert _digest(context) == first
    (context / "app" / "main.py").write_text("print(2)\n")
    changed = _digest(context)
    assert changed != first
    os.chmod(context / "app" / "main.py", 0o755)
    assert _digest(context) != changed, "the executable bit is part of the image"
    assert _digest(context, bases=("sha256:bb",)) != _digest(context)
    assert _digest(context, BASE="other") != _digest(context)
    (context / "deploy" / "Dockerfile.app").write_text("FROM base\nCOPY app /srv/app\n")
    assert _digest(context) not in (first, changed)


def test_only_the_newest_entries_of_an_image_are_kept(tmp_path):
    for index, name in enumerate(["image-app-1", "image-app-2", "image-app-3", "image-app-4", "image-other-1"]):
        (tmp_path / name).mkdir()
        os.utime(tmp_path / name, (time.time() + index, time.time() + index))
    (tmp_path / ".image-app-5.tmp-x").mkdir()  # a build in progress is not an entry
    removed = image_cache.prune(tmp_path, "image-app-", keep=2)
    assert [p.name for p in removed] == ["image-app-2", "image-app-1"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".image-app-5.tmp-x",
        "image-app-3",
        "image-app-4",
        "image-other-1",
    ]
