"""Signed S3 reads by pyr's own COG reader, against a moto server that checks every signature.

The server (tests/_moto_auth_server.py, its own process) holds an IAM user
with an access key and a role whose assumed credentials carry a session
token; once set up, moto recomputes the signature of every request from the
headers it received and the secret it holds (a wrong secret is a 403
``SignatureDoesNotMatch``, assumed-role keys without their token a 403
``InvalidAccessKeyId``). A layer in front of moto answers as S3 does where
moto does not (requester-pays buckets, buckets in another region) and logs
each request's user agent and headers: aiohttp's requests are the native
reader's, GDAL's are GDAL's.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from servers import FAST, tile_ranges

import pyr
from pyr import ReadError, cloud_env
from pyr.io.cog import read as cog_read
from pyr.io.cog.s3 import SigV4, s3_request
from pyr.io.tiff import read_header, source_spec
from pyr.testing import assert_raster_equal

pytest_plugins = ["conftest_cloud"]
pytestmark = [pytest.mark.network, pytest.mark.usefixtures("offline_aws_module"), pytest.mark.timeout(120)]
pytest.importorskip("imagecodecs")
pytest.importorskip("aiohttp")
pytest.importorskip("botocore")

WRONG = "WRONG-s3cr3t-7f3a9c"
BUCKET, PAYER, WEST = "pyr-signed", "pyr-payer", "pyr-west"
FULL = (0, 768, 0, 1024)  # the whole of the session's COG


class SignedS3:
    """The auth-checking moto server: its URL, two sets of credentials, and its request log."""

    def __init__(self, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.keys: dict[str, str] = {}
        self.role: dict[str, str] = {}

    def client(self, service: str, region: str = "us-east-1", **creds: str) -> Any:
        import boto3

        creds = creds or {"aws_access_key_id": "AKIAPYRSETUP", "aws_secret_access_key": "setup"}
        return boto3.client(service, endpoint_url=self.url, region_name=region, **creds)

    def call(self, path: str, body: bytes | None = None) -> Any:
        request = urllib.request.Request(
            self.url + path, data=body, method="GET" if body is None else "POST", headers={"Content-Type": "text/plain"}
        )
        with urllib.request.urlopen(request, timeout=10) as resp:
            return json.loads(resp.read() or b"null")

    def put(self, bucket: str, data: bytes, region: str = "us-east-1", name: str = "B04.tif") -> str:
        """A new object of ``data`` in ``bucket`` (put with the user's key, signature checked); its ``s3://`` URL."""
        key = f"{uuid.uuid4().hex[:8]}/{name}"
        creds = {
            "aws_access_key_id": self.keys["access_key_id"],
            "aws_secret_access_key": self.keys["secret_access_key"],
        }
        self.client("s3", region, **creds).put_object(Bucket=bucket, Key=key, Body=data)
        return f"s3://{bucket}/{key}"

    def env(self, creds: dict[str, str], **aws: Any) -> Any:
        """The read's env: this server, path-style, plain HTTP, ``creds`` (and ``aws``), fast retries."""
        where = {"endpoint": self.url, "virtual_hosting": False, "region": "us-east-1"}
        return cloud_env(aws={**where, **creds, **aws}, **FAST)

    def log(self, url: str) -> list[dict[str, Any]]:
        """The logged requests for the object of ``url``."""
        path = "/" + url.removeprefix("s3://")
        return [e for e in self.call("/_pyr/log") if e["path"] == path]

    def reset(self) -> None:
        self.call("/_pyr/reset", b"")


@pytest.fixture(scope="module")
def signed_s3() -> Iterator[SignedS3]:
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("_moto_auth_server.py"))], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("PORT "), f"the server did not start: {line!r}"
        srv = SignedS3(int(line.split()[1]))
        iam, sts, s3 = srv.client("iam"), srv.client("sts"), srv.client("s3")
        # set up with auth off: a user with a key, a role to assume, buckets; all allowed s3:*
        allow = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
        policy = iam.create_policy(PolicyName="s3-all", PolicyDocument=json.dumps(allow))["Policy"]["Arn"]
        iam.create_user(UserName="pyr-reader")
        iam.attach_user_policy(UserName="pyr-reader", PolicyArn=policy)
        key = iam.create_access_key(UserName="pyr-reader")["AccessKey"]
        srv.keys = {"access_key_id": key["AccessKeyId"], "secret_access_key": key["SecretAccessKey"]}
        trust = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}],
        }
        role = iam.create_role(RoleName="pyr-role", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
        iam.attach_role_policy(RoleName="pyr-role", PolicyArn=policy)
        temp = sts.assume_role(RoleArn=role, RoleSessionName="pyr-test")["Credentials"]
        srv.role = {
            "access_key_id": temp["AccessKeyId"],
            "secret_access_key": temp["SecretAccessKey"],
            "session_token": temp["SessionToken"],
        }
        for bucket in (BUCKET, PAYER, WEST):
            s3.create_bucket(Bucket=bucket)
        srv.call(f"/_pyr/requester-pays/{PAYER}", b"")
        srv.call(f"/_pyr/region/{WEST}/eu-west-1", b"")
        srv.call("/moto-api/reset-auth", b"0")  # from now on every request's signature is checked
        yield srv
    finally:
        proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


@pytest.fixture
def cog_bytes(cog) -> tuple[bytes, np.ndarray, Path]:
    path, data = cog
    return path.read_bytes(), data, path


def _by_aiohttp(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The requests the native reader made (GDAL's user agent is ``GDAL/...``)."""
    return [e for e in entries if "aiohttp" in e["agent"]]


def _no_gdal_open(spec: Any) -> Any:
    raise AssertionError(f"GDAL opened {spec.name}: the native path was to read it alone")


def test_the_server_checks_signatures_and_session_tokens(signed_s3):
    from botocore.exceptions import ClientError

    url = signed_s3.put(BUCKET, b"0123456789")
    bucket, _, key = url.removeprefix("s3://").partition("/")
    creds = {"aws_access_key_id": signed_s3.keys["access_key_id"]}
    good = signed_s3.client("s3", **creds, aws_secret_access_key=signed_s3.keys["secret_access_key"])
    assert good.get_object(Bucket=bucket, Key=key)["Body"].read() == b"0123456789"
    with pytest.raises(ClientError, match="SignatureDoesNotMatch"):
        signed_s3.client("s3", **creds, aws_secret_access_key=WRONG).get_object(Bucket=bucket, Key=key)
    role = signed_s3.role
    no_token = {"aws_access_key_id": role["access_key_id"], "aws_secret_access_key": role["secret_access_key"]}
    with pytest.raises(ClientError, match="InvalidAccessKeyId"):
        signed_s3.client("s3", **no_token).get_object(Bucket=bucket, Key=key)
    with pytest.raises(ClientError, match="InvalidToken"):
        signed_s3.client("s3", **no_token, aws_session_token="not-the-token").get_object(Bucket=bucket, Key=key)


def test_a_signed_read_goes_native_and_equals_the_local_read(signed_s3, cog_bytes):
    blob, data, path = cog_bytes
    url = signed_s3.put(BUCKET, blob, name="a b+c=d,e;f:g@h(i)!.tif")  # sent exactly as signed, not re-quoted
    env = signed_s3.env(signed_s3.keys)
    spec = source_spec(url, env=env)
    got = cog_read.read_native(spec, (1,), FULL, read_header, expect=read_header(spec))
    assert got is not None  # the native path read it
    np.testing.assert_array_equal(got[0][0], data)
    r = pyr.read(url, chunks=256, env=env)  # planned (GDAL opens the file once)
    signed_s3.reset()
    np.testing.assert_array_equal(r.data.compute(scheduler="threads")[0], data)
    entries = signed_s3.log(url)
    assert entries, "no request reached the server"
    assert entries == _by_aiohttp(entries), {e["agent"] for e in entries}  # every tile fetched by aiohttp, none by GDAL
    for e in entries:
        assert e["status"] == 206
        assert {"host", "range", "x-amz-date", "x-amz-content-sha256"} <= set(e["signed"]), e
        assert not e["token"]
        assert e["payer"] is None
    assert_raster_equal(pyr.read(url, env=env), pyr.read(path))


def test_a_wrong_secret_is_a_read_error_naming_the_file_never_the_secret(signed_s3, cog_bytes):
    blob, _, _ = cog_bytes
    url = signed_s3.put(BUCKET, blob)
    planned = read_header(source_spec(url, env=signed_s3.env(signed_s3.keys)))
    wrong = signed_s3.env({**signed_s3.keys, "secret_access_key": WRONG})
    signed_s3.reset()
    with pytest.raises(ReadError) as native:  # the native path alone (no GDAL open: the plan's header agrees)
        cog_read.read_native(source_spec(url, env=wrong), (1,), FULL, _no_gdal_open, expect=planned)
    message = str(native.value)
    assert url in message
    assert "403" in message
    assert "SignatureDoesNotMatch" in message  # moto's verdict
    assert [e["status"] for e in _by_aiohttp(signed_s3.log(url))] == [403]
    with pytest.raises(ReadError, match=url.replace(".", r"\.")) as through_pyr:  # the same through pyr.read
        pyr.read(url, env=wrong).data.compute()
    for err in (native.value, through_pyr.value):
        assert WRONG not in str(err)
        assert WRONG not in repr(err)


def _read_natively(signed_s3, url, env, data):
    """Read all of ``url`` natively under ``env`` (GDAL's header planned first): its header and the server's log
    entries of aiohttp's requests (at least one), the pixels checked against ``data``."""
    spec = source_spec(url, env=env)
    planned = read_header(spec)
    signed_s3.reset()
    got = cog_read.read_native(spec, (1,), FULL, _no_gdal_open, expect=planned)
    assert got is not None
    np.testing.assert_array_equal(got[0][0], data)
    entries = _by_aiohttp(signed_s3.log(url))
    assert entries
    return planned, entries


def test_a_session_token_is_sent_and_signed(signed_s3, cog_bytes):
    blob, data, _ = cog_bytes
    url = signed_s3.put(BUCKET, blob)
    role = signed_s3.role
    planned, entries = _read_natively(signed_s3, url, signed_s3.env(role), data)
    assert all(e["token"] and "x-amz-security-token" in e["signed"] and e["status"] == 206 for e in entries)
    # the server does check it: the same keys without their token are refused
    without = signed_s3.env({k: v for k, v in role.items() if k != "session_token"})
    with pytest.raises(ReadError, match="403 \\(InvalidAccessKeyId\\)") as info:
        cog_read.read_native(source_spec(url, env=without), (1,), FULL, _no_gdal_open, expect=planned)
    assert role["session_token"] not in str(info.value)
    assert role["secret_access_key"] not in str(info.value)


def test_requester_pays_header_is_sent_and_signed(signed_s3, cog_bytes):
    blob, data, _ = cog_bytes
    url = signed_s3.put(PAYER, blob)
    planned, entries = _read_natively(signed_s3, url, signed_s3.env(signed_s3.keys, requester_pays=True), data)
    assert all(e["payer"] == "requester" and "x-amz-request-payer" in e["signed"] for e in entries)
    # the bucket does need it: without requester pays the same read is refused
    unpaid = signed_s3.env(signed_s3.keys)
    with pytest.raises(ReadError, match="403 \\(AccessDenied\\)"):
        cog_read.read_native(source_spec(url, env=unpaid), (1,), FULL, _no_gdal_open, expect=planned)


def test_without_botocore_gdal_reads_signed_objects(signed_s3, cog_bytes, monkeypatch):
    blob, data, _ = cog_bytes
    url = signed_s3.put(BUCKET, blob)
    env = signed_s3.env(signed_s3.keys)
    for name in ("botocore", "botocore.auth", "botocore.awsrequest", "botocore.credentials"):
        monkeypatch.setitem(sys.modules, name, None)  # import botocore... raises ImportError
    spec = source_spec(url, env=env)
    assert s3_request(spec.path, env) is None
    assert cog_read.read_native(spec, (1,), FULL, read_header) is None
    r = pyr.read(url, chunks=256, env=env)
    signed_s3.reset()
    np.testing.assert_array_equal(r.data.compute(scheduler="threads")[0], data)
    entries = signed_s3.log(url)
    assert entries, "no request reached the server"
    assert all(e["agent"].startswith("GDAL/") and e["status"] in (200, 206) for e in entries), entries


def test_a_bucket_in_another_region_is_left_to_gdal_which_follows_s3_there(signed_s3, cog_bytes):
    blob, data, _ = cog_bytes
    url = signed_s3.put(WEST, blob, region="eu-west-1")
    env = signed_s3.env(signed_s3.keys)  # us-east-1: S3 answers with the bucket's region
    spec = source_spec(url, env=env)
    signed_s3.reset()
    assert cog_read.read_native(spec, (1,), FULL, read_header) is None  # declined, and remembered
    assert cog_read.read_native(spec, (1,), FULL, read_header) is None
    refused = _by_aiohttp(signed_s3.log(url))
    assert [(e["status"], e["range"]) for e in refused] == [(400, "bytes=0-65535")]  # one try for the header
    signed_s3.reset()
    np.testing.assert_array_equal(pyr.read(url, chunks=256, env=env).data.compute(scheduler="threads")[0], data)
    entries = signed_s3.log(url)
    assert entries, "no request reached the server"
    assert all(e["agent"].startswith("GDAL/") and e["status"] == 206 for e in entries), entries  # signed for eu-west-1


def test_ranges_fetched_ahead_with_one_key_are_not_taken_by_a_read_with_another(signed_s3, cog_bytes):
    from pyr.io.cog.fetch import open_source
    from pyr.io.cog.layout import HEAD_BYTES

    blob, _, path = cog_bytes
    url = signed_s3.put(BUCKET, blob)
    good, wrong = signed_s3.env(signed_s3.keys), signed_s3.env({**signed_s3.keys, "secret_access_key": WRONG})
    planned = read_header(source_spec(url, env=good))
    spec = source_spec(url, env=good)
    with open_source(spec.path, spec.name, good) as source:  # everything a full read needs, held for later reads
        assert source is not None
        source.prefetch([(0, HEAD_BYTES), *tile_ranges(path).values()])
    with pytest.raises(ReadError, match="SignatureDoesNotMatch"):  # held for the right key only
        cog_read.read_native(source_spec(url, env=wrong), (1,), FULL, _no_gdal_open, expect=planned)


def test_static_keys_are_found_where_gdal_finds_them():
    import os

    from rasterio._env import del_gdal_config
    from servers import restored_environ

    names = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_DEFAULT_REGION")
    with restored_environ():
        for name in (*names, "AWS_NO_SIGN_REQUEST", "AWS_REQUEST_PAYER", "AWS_S3_ENDPOINT", "AWS_HTTPS"):
            del_gdal_config(name)
            os.environ.pop(name, None)
        # only in os.environ, which GDAL's config lookup falls back to; AWS_DEFAULT_REGION wins, as in GDAL
        os.environ.update(zip(names, ("AKIDENV", "env-s3cr3t", "env-token", "eu-west-1", "ap-south-1"), strict=True))
        url, sign = s3_request("/vsis3/bkt/a/b.tif", {"AWS_VIRTUAL_HOSTING": "FALSE"}) or (None, None)
        assert url == "https://s3.ap-south-1.amazonaws.com/bkt/a/b.tif"
        assert sign == SigV4("AKIDENV", "env-s3cr3t", "env-token", "ap-south-1")
        assert "s3cr3t" not in repr(sign)
        assert "token" not in repr(sign)
        # the read's env wins over the environment; an empty secret there means GDAL's other sources: decline
        assert s3_request("/vsis3/bkt/a/b.tif", {"AWS_SECRET_ACCESS_KEY": ""}) is None
        del os.environ["AWS_SECRET_ACCESS_KEY"]
        os.environ["AWS_PROFILE"] = "default"
        assert s3_request("/vsis3/bkt/a/b.tif", None) is None  # a profile: GDAL reads it
