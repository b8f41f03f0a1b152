from pathlib import Path

import pytest

from ferry_importer.errors import InsufficientDisk, InvalidChange, InvalidReference
from ferry_importer.preflight import (
    check_changes,
    check_disk,
    check_reference,
    check_sha256,
    disk_needed,
    disk_places,
)


@pytest.mark.parametrize("text", ["ceos:4.35.1F", "registry.lab:5000/arista/ceos:4.32", "a/b/c", "x__y:T_1"])
def test_valid_references_pass(text):
    check_reference(text)


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("CEOS:4.35", "lowercase"),
        ("ceos:" + "t" * 129, "128"),
        ("ceos:-bad", "tag"),
        ("", "empty"),
        ("ceos@sha256:" + "a" * 64, "digest"),
    ],
)
def test_invalid_references_say_what_is_wrong(text, fragment):
    with pytest.raises(InvalidReference) as caught:
        check_reference(text)
    assert caught.value.code == "invalid_reference" and fragment in caught.value.message


def test_change_lines_use_the_engines_allow_list():
    assert check_changes(['CMD ["/bin/sh"]', " env A=1"]) == ['CMD ["/bin/sh"]', "env A=1"]
    with pytest.raises(InvalidChange) as caught:
        check_changes(["RUN rm -rf /"])
    assert caught.value.code == "invalid_change"


def test_expected_digest_is_normalised_or_refused():
    assert check_sha256("sha256:" + "A" * 64) == "a" * 64
    with pytest.raises(InvalidReference):
        check_sha256("abc")


def test_loads_need_twice_the_uncompressed_size():
    assert disk_needed(1000, loads=True) - disk_needed(1000, loads=False) == 1000


def test_disk_check_names_the_place_that_is_short(tmp_path):
    places = {"the engine's data root": tmp_path, "spool": Path("/nowhere")}
    check_disk(10, places, probe=lambda p: 100 if p == tmp_path else None)
    with pytest.raises(InsufficientDisk) as caught:
        check_disk(1000, places, probe=lambda p: 100 if p == tmp_path else None)
    assert "data root" in caught.value.message and caught.value.code == "insufficient_disk"


def test_disk_is_checked_on_the_engines_data_root_not_on_an_unused_spool():
    places = disk_places("/var/lib/docker", "unix:///var/run/docker.sock", spooled_to={})
    assert places == {"the engine's data root": Path("/var/lib/docker")}
    free = {Path("/var/lib/docker"): 500 << 30, Path("/home/ferry/.local/share/ferry-importer"): 1 << 30}
    check_disk(disk_needed(10 << 30, loads=True), places, probe=free.get)  # 20 GB fit the engine's 500 GB


def test_a_directory_that_really_receives_archive_bytes_is_checked_too():
    places = disk_places("/var/lib/docker", "unix:///var/run/docker.sock", {"the download spool": Path("/spool")})
    free = {Path("/var/lib/docker"): 500 << 30, Path("/spool"): 1 << 30}
    with pytest.raises(InsufficientDisk) as caught:
        check_disk(disk_needed(10 << 30, loads=False), places, probe=free.get)
    assert "download spool" in caught.value.message


def test_a_remote_engines_data_root_names_another_machines_disk_and_is_not_checked_here():
    assert disk_places("/var/lib/docker", "tcp://lab2.example:2376", {}) == {}
    assert disk_places(None, "unix:///var/run/docker.sock", {}) == {}
