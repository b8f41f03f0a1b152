import json

from ferry_importer.engine.fastpath import ImportIndex, entry_for, fingerprint


def test_fingerprint_changes_with_archive_mode_and_change_lines():
    base = fingerprint("a" * 64, "import", [])
    assert base != fingerprint("b" * 64, "import", [])
    assert base != fingerprint("a" * 64, "load", [])
    assert base != fingerprint("a" * 64, "import", ["CMD x"])


def test_index_survives_a_restart_and_knows_files_by_identity(tmp_path):
    index = ImportIndex(tmp_path)
    entry = entry_for("a" * 64, 123, "import", ["CMD x"], "sha256:1", ["r:1"])
    index.record(entry, (1, 2, 123, 4))
    again = ImportIndex(tmp_path)
    assert again.known_sha256((1, 2, 123, 4)) == "a" * 64
    assert again.known_sha256((1, 2, 123, 5)) is None
    assert again.entries_for("r:1")[0].image_id == "sha256:1"
    assert [p.name for p in tmp_path.iterdir()] == ["index.json"]  # written atomically, no temp files left


def test_a_tag_moves_to_the_newest_image_that_claimed_it(tmp_path):
    index = ImportIndex(tmp_path)
    index.record(entry_for("a" * 64, 1, "import", [], "sha256:old", ["r:1"]), None)
    index.record(entry_for("b" * 64, 1, "import", [], "sha256:new", ["r:1"]), None)
    assert [e.image_id for e in index.entries_for("r:1")] == ["sha256:new"]
    data = json.loads((tmp_path / "index.json").read_text())
    assert len(data["images"]) == 1


def test_a_damaged_index_is_treated_as_empty(tmp_path):
    (tmp_path / "index.json").write_text("{broken")
    assert ImportIndex(tmp_path).entries_for("r:1") == []
