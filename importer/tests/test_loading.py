"""The engine's loading stage, followed against the archive's layer plan (pure; lines as the engine prints them)."""

import json

from hypothesis import given
from hypothesis import strategies as st

from ferry_importer.archive.layout import ArchiveImage
from ferry_importer.engine.loading import LayerTracker, engine_reports_layers, plan_layers
from ferry_importer.engine.transfer import layer_progress
from ferry_importer.load_share import PERCENT_CAP, load_eta, weighted_percent

BASE = ArchiveImage(config="c1.json", repo_tags=("app:1",), layers=("a/layer.tar", "b/layer.tar", "c/layer.tar"))
SIZES = {"a/layer.tar": 100, "b/layer.tar": 300, "c/layer.tar": 600, "d/layer.tar": 50}


def tracker(*images: ArchiveImage) -> LayerTracker:
    images = images or (BASE,)
    track = LayerTracker()
    track.set_plan(plan_layers(images, SIZES), images)
    return track


def test_the_plan_lists_each_chain_once_in_the_engines_order():
    second = ArchiveImage(
        config="c2.json", repo_tags=("app:2",), layers=("./a/layer.tar", "b/layer.tar", "d/layer.tar")
    )
    plan = plan_layers([BASE, second], SIZES)
    assert [(layer.size, layer.image) for layer in plan] == [(100, 0), (300, 0), (600, 0), (50, 1)]
    # the same file on other layers below is another chain: the engine loads it again
    moved = ArchiveImage(config="c3.json", repo_tags=(), layers=("b/layer.tar",))
    assert [layer.size for layer in plan_layers([BASE, moved], SIZES)] == [100, 300, 600, 300]
    assert plan_layers([ArchiveImage(config="x", repo_tags=(), layers=("unknown.tar",))], SIZES) is None


def test_layer_lines_count_bytes_and_layers_as_the_engine_reports_them():
    track = tracker()
    assert (track.layers_done, track.layers_total, track.bytes_done, track.bytes_total) == (0, 3, 0, 1000)
    track.layer("aaa", 40, 100)
    assert (track.layers_done, track.bytes_done) == (0, 40)
    track.layer("aaa", 100, 100)
    track.layer("bbb", 30, 300)
    assert (track.layers_done, track.bytes_done) == (1, 130)
    track.layer("bbb", 20, 300)  # never backwards
    assert track.bytes_done == 130
    track.loaded("app:1")
    assert (track.layers_done, track.bytes_done, track.fraction()) == (3, 1000, 1.0)


def test_layers_the_engine_already_has_count_as_done_once_it_moves_past_them():
    track = tracker()
    track.layer("ccc", 10, 600)  # a and b were skipped without a word
    assert (track.layers_done, track.bytes_done) == (2, 410)
    fully_present = tracker()
    fully_present.loaded("app:1")
    assert (fully_present.layers_done, fully_present.fraction()) == (3, 1.0)


def test_a_second_image_is_done_when_the_engine_names_it_even_by_id():
    second = ArchiveImage(config="blobs/sha256/" + "e" * 64, repo_tags=(), layers=("a/layer.tar", "d/layer.tar"))
    track = tracker(BASE, second)
    track.loaded("app:1")
    assert (track.layers_done, track.layers_total) == (3, 4)
    track.loaded("sha256:" + "e" * 64)
    assert (track.layers_done, track.bytes_done) == (4, 1050)
    track.loaded("unknown:ref")
    assert track.layers_done == 4


def test_without_a_plan_finished_layers_are_still_counted():
    track = LayerTracker()
    track.layer("aaa", 5, 100)
    track.layer("bbb", 5, 100)
    track.finish()
    assert (track.layers_done, track.layers_total, track.bytes_total, track.fraction()) == (2, None, None, 0.0)


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["aaa", "bbb", "ccc", "zzz"]), st.integers(0, 700), st.sampled_from([100, 300, 600, 77])
        ),
        max_size=40,
    ),
    st.lists(st.sampled_from(["app:1", "nope"]), max_size=2),
)
def test_counts_and_fraction_never_move_back_whatever_the_engine_prints(lines, refs):
    track = tracker()
    seen = (0, 0, 0.0)
    for layer_id, current, total in lines:
        track.layer(layer_id, current, total)
        now = (track.layers_done, track.bytes_done, track.fraction())
        assert all(a <= b for a, b in zip(seen, now)) and now[0] <= 3 and now[1] <= 1000
        seen = now
    for ref in refs:
        track.loaded(ref)
    track.finish()
    assert (track.layers_done, track.bytes_done) == (3, 1000)


def test_engine_lines_are_parsed_only_when_they_are_layer_progress():
    line = {
        "status": "Loading layer",
        "progressDetail": {"current": 163840, "total": 15730176},
        "progress": "[>   ]  163.8kB/15.73MB",
        "id": "aa57239eeb2a",
    }
    assert layer_progress(line) == ("aa57239eeb2a", 163840, 15730176)
    assert layer_progress({"stream": "Loaded image: app:1\n"}) is None
    assert layer_progress({"status": "Loading layer", "progressDetail": {}}) is None
    assert layer_progress({"status": "Loading layer", "progressDetail": {"current": -1, "total": 5}}) is None


def test_the_containerd_store_is_known_not_to_report_layers():
    assert engine_reports_layers({"Driver": "vfs", "DriverStatus": []})
    assert not engine_reports_layers({})  # an answer that names no graph driver is no classic store
    assert not engine_reports_layers(
        {"Driver": "overlayfs", "DriverStatus": [["driver-type", "io.containerd.snapshotter.v1"]]}
    )


def test_a_loads_percent_weighs_both_stages_and_stays_below_100():
    assert weighted_percent(500, 1000, 0.0, 0.6) == 20.0
    assert weighted_percent(1000, 1000, 0.0, 0.6) == 40.0
    assert weighted_percent(1000, 1000, 0.5, 0.6) == 70.0
    assert weighted_percent(1000, 1000, 1.0, 0.6) == PERCENT_CAP
    assert weighted_percent(10, None, 0.0, 0.6) == 0.0


def test_while_streaming_a_load_the_eta_includes_the_predicted_loading_stage():
    # 600 of 1000 bytes at 100 B/s: 4 s of stream left, and loading lasts 0.6/0.4 × the 10 s stream
    assert load_eta(600, 1000, 100.0, 0.6) == 19.0
    assert load_eta(600, 1000, 100.0, 0.0) == 4.0
    assert load_eta(600, 1000, None, 0.6) is None


def test_layers_of_equal_size_are_told_apart_by_the_diff_id_the_engine_prints():
    diffs = ["a" * 64, "b" * 64, "c" * 64]
    config = json.dumps({"rootfs": {"type": "layers", "diff_ids": [f"sha256:{d}" for d in diffs]}}).encode()
    image = ArchiveImage(
        config="f" * 64 + ".json", repo_tags=("app:1",), layers=("1/layer.tar", "2/layer.tar", "3/layer.tar")
    )
    sizes = {"1/layer.tar": 500, "2/layer.tar": 500, "3/layer.tar": 500}
    plan = plan_layers([image], sizes, {"f" * 64 + ".json": config})
    assert [layer.short_id for layer in plan] == ["a" * 12, "b" * 12, "c" * 12]
    track = LayerTracker()
    track.set_plan(plan, [image])
    track.layer("c" * 12, 100, 500)  # the first two are in the engine already
    assert (track.layers_done, track.bytes_done) == (2, 1100)
    # other tools name layers after their digest: no config needed
    named = ArchiveImage(config="x.json", repo_tags=(), layers=(f"{diffs[0]}.tar", f"blobs/sha256/{diffs[1]}"))
    assert [
        layer.short_id for layer in plan_layers([named], {f"{diffs[0]}.tar": 5, f"blobs/sha256/{diffs[1]}": 5})
    ] == ["a" * 12, "b" * 12]


def test_the_importers_own_bar_says_which_layers_are_loading():
    from ferry_importer.console import describe
    from ferry_importer.progress import Snapshot

    loading = Snapshot(
        phase="loading",
        bytes_done=500_000_000,
        bytes_total=500_000_000,
        percent=62.0,
        rate_bps=45_000_000.0,
        eta_s=3.0,
        layers_done=3,
        layers_total=7,
        layer_bytes_done=120_000_000,
        layer_bytes_total=270_000_000,
    )
    assert describe(loading) == "layers 3/7  120.0 MB/270.0 MB  45.0 MB/s  ETA 0:03"


def hexes(*chars: str) -> list[str]:
    return [c * 64 for c in chars]


def test_chain_ids_follow_the_oci_rule_and_stop_at_an_unknown_diff_id():
    import hashlib

    from ferry_importer.engine.inventory import chain_ids

    a, b, c = hexes("a", "b", "c")
    second = hashlib.sha256(f"sha256:{a} sha256:{b}".encode()).hexdigest()
    third = hashlib.sha256(f"sha256:{second} sha256:{c}".encode()).hexdigest()
    assert chain_ids([a, b, c]) == [a, second, third]
    assert chain_ids([a, None, c]) == [a, None, None]


def test_the_layers_the_engine_has_are_marked_by_chain_and_only_the_others_are_its_work():
    from ferry_importer.engine.inventory import chain_ids, from_inspects
    from ferry_importer.engine.loading import mark_present

    a, b, c = hexes("a", "b", "c")
    config = json.dumps({"rootfs": {"diff_ids": [f"sha256:{d}" for d in (a, b, c)]}}).encode()
    image = ArchiveImage(config="cfg.json", repo_tags=("app:1",), layers=("a/layer.tar", "b/layer.tar", "c/layer.tar"))
    # the engine has an image of a and b: the same chain
    known = from_inspects([{"RootFS": {"Layers": [f"sha256:{a}", f"sha256:{b}"]}}, {"RootFS": {}}])
    assert known.chain_ids == frozenset(x for x in chain_ids([a, b]) if x)
    plan = mark_present(plan_layers([image], SIZES, {"cfg.json": config}), known)
    assert [layer.present for layer in plan] == [True, True, False]

    track = LayerTracker()
    track.set_plan(plan, [image])
    assert (track.new_share(), track.new_bytes_total) == (0.6, 600)
    track.layer(c[:12], 300, 600)  # a and b skipped: no work, the stage is half done
    assert (track.layers_done, track.fraction()) == (2, 0.5)
    track.finish()
    assert track.fraction() == 1.0 and track.all_new_reported

    # b on other layers below (a different chain) is new to the engine even though its diff id is known
    elsewhere = from_inspects([{"RootFS": {"Layers": [f"sha256:{b}"]}}])
    assert [layer.present for layer in mark_present(plan_layers([image], SIZES, {"cfg.json": config}), elsewhere)] == [
        False,
        False,
        False,
    ]


def test_when_the_engine_has_every_layer_the_stage_counts_by_layers_and_learns_nothing():
    from ferry_importer.engine.inventory import from_inspects
    from ferry_importer.engine.loading import mark_present

    a, b, c = hexes("a", "b", "c")
    config = json.dumps({"rootfs": {"diff_ids": [f"sha256:{d}" for d in (a, b, c)]}}).encode()
    image = ArchiveImage(config="cfg.json", repo_tags=("app:1",), layers=("a/layer.tar", "b/layer.tar", "c/layer.tar"))
    known = from_inspects([{"RootFS": {"Layers": [f"sha256:{d}" for d in (a, b, c)]}}])
    track = LayerTracker()
    track.set_plan(mark_present(plan_layers([image], SIZES, {"cfg.json": config}), known), [image])
    assert (track.new_share(), track.fraction()) == (0.0, 0.0)
    track.loaded("app:1")
    assert track.fraction() == 1.0 and not track.all_new_reported


def test_while_streaming_layer_files_named_by_diff_id_tell_what_the_engine_has():
    from ferry_importer.engine.inventory import KnownLayers
    from ferry_importer.engine.loading import NamedPresence, blob_diff_id

    a, b, c = hexes("a", "b", "c")
    presence = NamedPresence(KnownLayers(diff_ids=frozenset({a, c})))
    files = [(f"blobs/sha256/{a}", 100), (f"blobs/sha256/{b}", 200)]
    assert presence.update(files) == 100
    files += [(f"{c}.tar", 300), (f"{c[:40]}/layer.tar", 400)]  # an older save's names say nothing
    assert presence.update(files) == 400
    assert presence.update(files) == 400  # each file counted once
    assert blob_diff_id(f"./blobs/sha256/{a}") == a and blob_diff_id("blobs/sha256/short") is None
