"""deploy/build-images.py's decisions: which docker CLI builds, which base the images stand on."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

_SCRIPT = Path(__file__).resolve().parents[2] / "deploy" / "build-images.py"
_spec = importlib.util.spec_from_file_location("ferry_build_images", _SCRIPT)
build_images = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(build_images)  # type: ignore[union-attr]


def test_a_cli_without_buildx_is_passed_over_for_debians_older_one():
    found = [("/usr/local/bin/docker", False, (28, 2)), ("/usr/bin/docker", False, (20, 10))]
    assert build_images.choose_cli(found) == "/usr/bin/docker"


def test_a_cli_with_buildx_is_taken_first_whatever_its_version():
    found = [("/usr/local/bin/docker", True, (28, 2)), ("/usr/bin/docker", False, (20, 10))]
    assert build_images.choose_cli(found) == "/usr/local/bin/docker"


def test_no_cli_is_chosen_when_none_builds_with_buildkit():
    assert build_images.choose_cli([("/usr/local/bin/docker", False, (28, 2)), ("/x/docker", False, (0,))]) is None


def test_the_official_base_is_used_whenever_it_is_there():
    assert build_images.choose_base("auto", lambda: True) == "official"
    assert build_images.choose_base("official", lambda: True) == "official"


def test_the_stand_in_replaces_an_unreachable_official_base_only_in_auto():
    assert build_images.choose_base("auto", lambda: False) == "standin"
    with pytest.raises(build_images.BuildFailed, match="neither in the engine nor pullable"):
        build_images.choose_base("official", lambda: False)


def test_asking_for_the_stand_in_never_tries_the_registry():
    def registry():
        raise AssertionError("the registry was asked")

    assert build_images.choose_base("standin", registry) == "standin"


def test_the_stack_needs_every_base_and_builds_only_ferrys_images():
    builds, bases = build_images.wanted([], stack=True)
    assert builds == ["backend", "importer", "nginx"]
    assert bases == ["python", "node", "nginx", "postgres", "redis"]


def test_without_names_only_backend_and_importer_are_built():
    assert build_images.wanted([], stack=False) == (["backend", "importer"], ["python"])
    assert build_images.wanted(["redis"], stack=False) == ([], ["redis"])  # a service image is only made ready


def test_a_stand_ins_cache_key_changes_with_its_entrypoint(tmp_path, monkeypatch):
    monkeypatch.setattr(build_images, "STANDIN", tmp_path)
    monkeypatch.setattr(build_images.debian_rootfs, "key", lambda: "debian-bookworm-minbase-abc")
    (tmp_path / "Dockerfile.redis").write_text("FROM x\n")
    (tmp_path / "redis-entrypoint.sh").write_text("exec redis-server\n")
    (tmp_path / "Dockerfile.postgres").write_text("FROM x\n")
    first, other = build_images.standin_key("redis"), build_images.standin_key("postgres")
    assert first.startswith("standin-redis-debian-bookworm-minbase-abc-") and first != other.replace(
        "postgres", "redis"
    )
    (tmp_path / "redis-entrypoint.sh").write_text("exec redis-server --protected-mode no\n")
    assert build_images.standin_key("redis") != first
