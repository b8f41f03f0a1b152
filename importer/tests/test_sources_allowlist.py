"""Allow-list decisions: which URLs and paths a job may name."""

from __future__ import annotations

import os

import pytest

from ferry_contract import ErrorCode
from ferry_contract.urls import parse_prefix
from ferry_importer.sources.allowlist import (
    SourceRejected,
    check_callback_url,
    check_url,
    redact_url,
    resolve_path_source,
)

pytestmark = pytest.mark.timeout(60)

PREFIXES = [parse_prefix("http://backend:8000/api/uploads/"), parse_prefix("https://Files.Example/images")]


@pytest.mark.parametrize(
    "url",
    [
        "http://backend:8000/api/uploads/abc/content?token=x",
        "https://files.example/images",
        "https://files.example:443/images/ceos.tar.xz",
        "HTTPS://FILES.EXAMPLE/images/a",
    ],
)
def test_urls_under_a_prefix_are_allowed(url):
    assert check_url(url, PREFIXES) == url


@pytest.mark.parametrize(
    "url, reason",
    [
        ("http://backend:8000/api/other", "prefix"),
        ("http://backend:8001/api/uploads/x", "prefix"),  # other port
        ("https://backend:8000/api/uploads/x", "prefix"),  # other scheme
        ("http://backend:8000.evil.net/api/uploads/x", "port"),
        ("http://backend.evil.net:8000/api/uploads/x", "prefix"),
        ("https://files.example/images-evil/a", "prefix"),  # no segment boundary
        ("https://files.example/imagesx", "prefix"),
        ("http://backend:8000@evil.net/api/uploads/x", "user information"),
        ("http://evil.net#@backend:8000/api/uploads/x", "fragment"),
        ("http://backend:8000/api/uploads/../admin", ". or .."),
        ("http://backend:8000/api/uploads/%2e%2e/admin", ". or .."),
        ("http://backend:8000/api/uploads/..%2fadmin", ". or .."),
        ("http://backend:8000/api/uploads\\..\\admin", "backslash"),
        ("file:///etc/passwd", "http"),
        ("ftp://backend:8000/api/uploads/x", "http"),
        ("http:///api/uploads/x", "host"),
        ("http://backend:8000/api/uploads/x y", "whitespace"),
    ],
)
def test_urls_outside_every_prefix_are_refused_with_a_reason(url, reason):
    with pytest.raises(SourceRejected) as err:
        check_url(url, PREFIXES)
    assert err.value.code == ErrorCode.SOURCE_NOT_ALLOWED
    assert reason in err.value.message


def test_no_prefixes_configured_allows_no_url_sources():
    with pytest.raises(SourceRejected, match="allows no URL sources"):
        check_url("http://backend:8000/api/uploads/x", [])


def test_callback_urls_are_free_without_prefixes_but_still_must_be_http():
    assert check_callback_url("http://anything:9/cb", []) == "http://anything:9/cb"
    with pytest.raises(SourceRejected):
        check_callback_url("file:///tmp/x", [])
    with pytest.raises(SourceRejected):
        check_callback_url("http://other:9/cb", [parse_prefix("http://backend:8000/api/callbacks/")])


@pytest.mark.parametrize("prefix", ["http://h/x?q=1", "http://h/x#f", "ftp://h/", "http://u@h/"])
def test_unsafe_prefixes_are_refused_at_configuration_time(prefix):
    with pytest.raises(ValueError):
        parse_prefix(prefix)


def test_redaction_drops_query_and_user_info():
    assert redact_url("http://u:p@h:8000/a/b?token=secret") == "http://h:8000/a/b"


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "allowed"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "image.tar").write_bytes(b"x")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.tar").write_bytes(b"y")
    os.symlink(outside / "secret.tar", root / "escape.tar")
    os.symlink(outside, root / "escape-dir")
    os.symlink(root / "sub" / "image.tar", root / "inside-link.tar")
    return root, outside


def test_a_file_inside_a_root_resolves(tree):
    root, _ = tree
    assert resolve_path_source(str(root / "sub" / "image.tar"), [root]) == root / "sub" / "image.tar"


def test_a_symlink_that_stays_inside_is_followed(tree):
    root, _ = tree
    assert resolve_path_source(str(root / "inside-link.tar"), [root]) == root / "sub" / "image.tar"


@pytest.mark.parametrize("relative", ["escape.tar", "escape-dir/secret.tar"])
def test_a_symlink_escaping_the_root_is_refused(tree, relative):
    root, _ = tree
    with pytest.raises(SourceRejected, match="resolves outside") as err:
        resolve_path_source(str(root / relative), [root])
    assert err.value.code == ErrorCode.SOURCE_NOT_ALLOWED


def test_traversal_is_refused_before_the_file_system_is_asked(tree):
    root, outside = tree
    for text in (f"{root}/../outside/secret.tar", f"{root}/sub/../../outside/nothing-here"):
        with pytest.raises(SourceRejected, match="outside the allowed roots") as err:
            resolve_path_source(text, [root])
        assert err.value.code == ErrorCode.SOURCE_NOT_ALLOWED


@pytest.mark.parametrize(
    "text, code",
    [
        ("relative/image.tar", ErrorCode.SOURCE_NOT_ALLOWED),
        ("/etc/passwd", ErrorCode.SOURCE_NOT_ALLOWED),
        ("{root}/missing.tar", ErrorCode.SOURCE_NOT_FOUND),
        ("{root}/sub", ErrorCode.SOURCE_NOT_FOUND),
        ("{root}/a\x00b", ErrorCode.SOURCE_NOT_ALLOWED),
    ],
)
def test_bad_paths_get_their_code(tree, text, code):
    root, _ = tree
    with pytest.raises(SourceRejected) as err:
        resolve_path_source(text.format(root=root), [root])
    assert err.value.code == code


def test_no_roots_configured_allows_no_path_sources(tree):
    root, _ = tree
    with pytest.raises(SourceRejected, match="ALLOWED_ROOTS"):
        resolve_path_source(str(root / "sub" / "image.tar"), [])
