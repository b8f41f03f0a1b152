"""Which job keeps an image from being removed: the decision alone (the engine path is in test_api.py)."""

from __future__ import annotations

from ferry_importer.engine.removal import IMAGE_ID, in_use_by


def test_a_job_importing_to_one_of_the_tags_keeps_the_image():
    targets = {"j1": None, "j2": "lab/ceos", "j3": "lab/other:2"}
    assert in_use_by(["lab/ceos:latest", "lab/x:1"], targets) == "j2"  # an untagged name means :latest
    assert in_use_by(["lab/other:2"], targets) == "j3"
    assert in_use_by(["lab/x:1"], targets) is None
    assert in_use_by([], targets) is None


def test_only_image_ids_are_accepted():
    assert IMAGE_ID.fullmatch("sha256:" + "a" * 64)
    assert IMAGE_ID.fullmatch("0123456789ab")
    assert not IMAGE_ID.fullmatch("../../containers")
    assert not IMAGE_ID.fullmatch("lab/ceos:1")
