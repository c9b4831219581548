"""``to_gdal_path`` and ``display_name``: user-facing sources to the paths GDAL opens."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyr import InvalidArgument
from pyr.io.gdal.sources import display_name, to_gdal_path

TABLE = [
    # (source, GDAL path)
    ("https://host/a/B04.tif", "/vsicurl/https://host/a/B04.tif"),
    ("http://127.0.0.1:8080/B04.tif", "/vsicurl/http://127.0.0.1:8080/B04.tif"),
    ("HTTPS://Host/B04.TIF", "/vsicurl/HTTPS://Host/B04.TIF"),
    ("https://h/B04.tif?se=2030&sig=a%2Fb==", "/vsicurl/https://h/B04.tif?se=2030&sig=a%2Fb=="),
    ("https://h/download?id=7&format=tif", "/vsicurl/https://h/download?id=7&format=tif"),
    ("s3://sentinel-cogs/a/B04.tif", "/vsis3/sentinel-cogs/a/B04.tif"),
    ("S3://bucket/key with space.tif", "/vsis3/bucket/key with space.tif"),
    ("gs://bucket/dir/B04.tif", "/vsigs/bucket/dir/B04.tif"),
    ("gcs://bucket/B04.tif", "/vsigs/bucket/B04.tif"),
    ("az://container/dir/B04.tif", "/vsiaz/container/dir/B04.tif"),
    ("file:///tmp/a/B04.tif", "/tmp/a/B04.tif"),
    ("file:///tmp/with%20space.tif", "/tmp/with space.tif"),
    ("file://localhost/tmp/B04.tif", "/tmp/B04.tif"),
    ("/vsicurl/https://h/B04.tif", "/vsicurl/https://h/B04.tif"),
    ("/vsis3/bucket/B04.tif", "/vsis3/bucket/B04.tif"),
    ("/vsizip//vsicurl/https://h/a.zip/B04.tif", "/vsizip//vsicurl/https://h/a.zip/B04.tif"),
    ("/data/B04.tif", "/data/B04.tif"),
    ("relative/B04.tif", "relative/B04.tif"),
    ("C:\\data\\B04.tif", "C:\\data\\B04.tif"),
    (Path("/data/B04.tif"), "/data/B04.tif"),
    (PurePosixPath("/vsis3/b/B04.tif"), "/vsis3/b/B04.tif"),
]


@pytest.mark.parametrize(("source", "expected"), TABLE, ids=[str(s) for s, _ in TABLE])
def test_to_gdal_path(source, expected):
    assert to_gdal_path(source) == expected


@pytest.mark.parametrize(
    ("source", "match"),
    [
        ("ftp://host/a.tif", "unsupported URL scheme 'ftp'"),
        ("s3://", "no bucket"),
        ("gs:///", "no bucket"),
        ("https:///a.tif", "no host"),
        ("", "expected a path or URL"),
        (None, "expected a path or URL"),
        (42, "expected a path or URL"),
    ],
)
def test_bad_sources_are_refused_naming_them(source, match):
    with pytest.raises(InvalidArgument, match=match):
        to_gdal_path(source)


def test_bad_url_messages_never_show_the_query_string():
    with pytest.raises(InvalidArgument) as info:
        to_gdal_path("ftp://host/a.tif?sig=SECRET-c0ffee-42")
    assert "SECRET" not in str(info.value)
    assert "ftp://host/a.tif?..." in str(info.value)


@pytest.mark.parametrize(
    ("source", "shown"),
    [
        ("https://h/B04.tif?sig=abc", "https://h/B04.tif?..."),
        ("https://h/B04.tif", "https://h/B04.tif"),
        ("/vsicurl/https://h/B04.tif?X-Amz-Signature=abc", "/vsicurl/https://h/B04.tif?..."),
        (Path("/d/B04.tif"), "/d/B04.tif"),
        # credentials inside the URL
        ("https://me:pa55w0rd@h/B04.tif", "https://***@h/B04.tif"),
        ("http://token@h:8080/B04.tif?sig=abc", "http://***@h:8080/B04.tif?..."),
        ("/vsicurl/https://me:p%40ss@h/B04.tif", "/vsicurl/https://***@h/B04.tif"),
        ("https://h/a@b/B04.tif", "https://h/a@b/B04.tif"),  # an @ in the path is not a user
        ("/d/me@home/B04.tif", "/d/me@home/B04.tif"),
    ],
)
def test_display_name_elides_query_strings_and_credentials(source, shown):
    assert display_name(source) == shown


def test_bad_urls_with_credentials_never_show_them():
    with pytest.raises(InvalidArgument) as info:
        to_gdal_path("ftp://me:pa55w0rd@host/a.tif")
    assert "pa55w0rd" not in str(info.value)


_segment = st.text(st.characters(codec="utf-8", exclude_characters="/?#\x00"), min_size=1, max_size=12)


@given(
    bucket=st.from_regex(r"[a-z0-9][a-z0-9.-]{2,20}", fullmatch=True),
    parts=st.lists(_segment, min_size=1, max_size=3),
)
def test_object_store_urls_keep_bucket_and_key(bucket, parts):
    key = "/".join(parts)
    for scheme, prefix in (("s3", "/vsis3/"), ("gs", "/vsigs/"), ("az", "/vsiaz/")):
        assert to_gdal_path(f"{scheme}://{bucket}/{key}") == f"{prefix}{bucket}/{key}"


@given(
    path=st.lists(st.from_regex(r"[A-Za-z0-9_.-]{1,10}", fullmatch=True), min_size=1, max_size=3),
    query=st.from_regex(r"[A-Za-z0-9=&%_.-]{0,30}", fullmatch=True),
)
def test_http_urls_are_kept_whole(path, query):
    url = "https://example.org/" + "/".join(path) + (f"?{query}" if query else "")
    assert to_gdal_path(url) == "/vsicurl/" + url
    assert "?" not in display_name(url).replace("?...", "")
