import pytest

from ferry_importer.archive.layout import ArchiveImage, Layout, classify, load_verdict, parse_engine_version
from ferry_importer.archive.tarstream import Member
from ferry_importer.errors import MissingManifest, UnsupportedLayout

HEX = "a" * 64


def members(*names):
    return [Member(n, b"0", 0, i * 512) for i, n in enumerate(names)]


@pytest.mark.parametrize(
    "names, layout",
    [
        ((f"{HEX}.json", HEX, f"{HEX}/VERSION"), Layout.DOCKER_LEGACY),
        ((HEX, f"{HEX}/layer.tar"), Layout.DOCKER_LEGACY),
        (("blobs", "blobs/sha256", f"blobs/sha256/{HEX}"), Layout.OCI),
        ((f"{HEX}.tar", "manifest.json"), Layout.DOCKER_ARCHIVE),
        (("manifest.json",), Layout.DOCKER_ARCHIVE),
        (("", "bin", "bin/sh"), Layout.ROOTFS),
        (("etc", "etc/passwd"), Layout.ROOTFS),
        (("usr/lib/manifest.json",), Layout.ROOTFS),
    ],
)
def test_layout_is_decided_from_the_first_members(names, layout):
    assert classify(members(*names)) is layout


def test_an_archive_without_its_manifest_is_refused():
    with pytest.raises(MissingManifest) as caught:
        load_verdict({HEX, f"{HEX}.json", "repositories"}, {}, (20, 10))
    assert caught.value.code == "missing_manifest"


def test_a_pure_oci_layout_names_the_engine_version_that_can_load_it():
    with pytest.raises(UnsupportedLayout) as caught:
        load_verdict({"blobs", "index.json", "oci-layout"}, {}, (20, 10))
    assert "25.0" in caught.value.message and "20.10" in caught.value.message
    assert load_verdict({"blobs", "index.json", "oci-layout"}, {}, (27, 1)).images == ()


def test_the_manifest_says_which_images_and_tags_a_load_creates():
    plan = load_verdict(
        {"manifest.json"},
        {"manifest.json": f'[{{"Config": "{HEX}.json", "RepoTags": ["a:1", "b:2"]}}]'.encode()},
        (20, 10),
    )
    assert plan.repo_tags == ["a:1", "b:2"]
    assert plan.images[0].image_id == f"sha256:{HEX}"
    assert ArchiveImage(config=f"blobs/sha256/{HEX}", repo_tags=()).image_id == f"sha256:{HEX}"
    assert ArchiveImage(config="config.json", repo_tags=()).image_id is None


def test_an_unreadable_manifest_is_reported_as_missing_manifest():
    with pytest.raises(MissingManifest):
        load_verdict({"manifest.json"}, {"manifest.json": b"{not json"}, (20, 10))


def test_engine_versions_parse_and_unknown_ones_do_not_block():
    assert parse_engine_version("20.10.24+dfsg1") == (20, 10)
    assert parse_engine_version("27.3.1") == (27, 3)
    assert parse_engine_version("dev") >= (25, 0)
