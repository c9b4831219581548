"""``cloud_env``, ``GdalEnv``, ``configure`` and ``gdal_env``: GDAL options, applied where tasks run."""

from __future__ import annotations

import os
import pickle
import threading

import dask
import pytest
import rasterio
import servers
from dask.base import tokenize
from rasterio._env import get_gdal_config as _get_gdal_config

import pyr
from pyr import InvalidArgument, cloud_env, configure
from pyr.io.gdal import context, gate, messages
from pyr.io.gdal.env import CLOUD_DEFAULTS, NETWORK_DEFAULTS, GdalEnv, is_secret
from pyr.io.gdal.sources import SourceSpec

pytest_plugins = ["conftest_cloud"]

SECRET = "SECRET-c0ffee-42"


def get_gdal_config(key: str) -> str | None:
    """GDAL's value of a config option as GDAL sees it (thread-local, process-wide, environment)."""
    return _get_gdal_config(key, normalize=False)


# --- cloud_env ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("aws", "expected"),
    [
        ({"aws_unsigned": True}, {"AWS_NO_SIGN_REQUEST": "YES"}),
        ({"aws_unsigned": False}, {"AWS_NO_SIGN_REQUEST": "NO"}),
        ({"region": "eu-central-1"}, {"AWS_REGION": "eu-central-1", "AWS_DEFAULT_REGION": "eu-central-1"}),
        ({"profile": "work"}, {"AWS_PROFILE": "work", "AWS_NO_SIGN_REQUEST": "NO"}),
        ({"profile": "work", "aws_unsigned": True}, {"AWS_PROFILE": "work", "AWS_NO_SIGN_REQUEST": "YES"}),
        ({"endpoint": "minio:9000"}, {"AWS_S3_ENDPOINT": "minio:9000"}),
        ({"endpoint": "http://127.0.0.1:9000"}, {"AWS_S3_ENDPOINT": "127.0.0.1:9000", "AWS_HTTPS": "NO"}),
        ({"endpoint": "https://s3.example.org/"}, {"AWS_S3_ENDPOINT": "s3.example.org", "AWS_HTTPS": "YES"}),
        ({"endpoint": "http://h:1", "https": True}, {"AWS_S3_ENDPOINT": "h:1", "AWS_HTTPS": "YES"}),
        ({"https": True, "endpoint": "http://h:1"}, {"AWS_S3_ENDPOINT": "h:1", "AWS_HTTPS": "YES"}),
        ({"https": False}, {"AWS_HTTPS": "NO"}),
        ({"virtual_hosting": False}, {"AWS_VIRTUAL_HOSTING": "FALSE"}),
        ({"virtual_hosting": True}, {"AWS_VIRTUAL_HOSTING": "TRUE"}),
        ({"requester_pays": True}, {"AWS_REQUEST_PAYER": "requester"}),
        ({"requester_pays": False}, {}),
        (
            {"access_key_id": "AK", "secret_access_key": "SK", "session_token": "ST"},
            {
                "AWS_ACCESS_KEY_ID": "AK",
                "AWS_SECRET_ACCESS_KEY": "SK",
                "AWS_SESSION_TOKEN": "ST",
                "AWS_NO_SIGN_REQUEST": "NO",
            },
        ),
    ],
)
def test_aws_keys_map_to_gdal_options(aws, expected):
    assert dict(cloud_env(cloud_defaults=False, aws=aws)) == expected


def test_cloud_defaults_and_passthrough():
    env = cloud_env()
    assert dict(env) == dict(CLOUD_DEFAULTS)
    assert env["GDAL_DISABLE_READDIR_ON_OPEN"] == "EMPTY_DIR"
    assert "CPL_VSIL_CURL_ALLOWED_EXTENSIONS" not in env  # would make extension-less URLs unreadable
    assert cloud_env(GDAL_HTTP_MAX_RETRY=9)["GDAL_HTTP_MAX_RETRY"] == "9"  # extra options win
    assert cloud_env(CPL_DEBUG=True)["CPL_DEBUG"] == "YES"
    assert dict(cloud_env(cloud_defaults=False)) == {}


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"aws": {"secret_key": "x"}}, "unknown key; expected one of"),
        ({"aws": {"endpoint": "http://h/path"}}, "expected host"),
        ({"aws": {"endpoint": ""}}, "expected host"),
        ({"aws": {"region": None}}, "region"),
        ({"GDAL_HTTP_TIMEOUT": None}, "GDAL_HTTP_TIMEOUT has no value"),
    ],
)
def test_bad_options_are_refused_naming_them(kwargs, match):
    with pytest.raises(InvalidArgument, match=match):
        cloud_env(**kwargs)


def test_gdal_env_is_immutable_and_a_value():
    env = cloud_env(aws={"region": "r1"})
    with pytest.raises(AttributeError):
        env._items = ()  # type: ignore[misc]
    with pytest.raises(TypeError):
        env["AWS_REGION"] = "r2"  # type: ignore[index]
    assert env == cloud_env(aws={"region": "r1"}) == dict(env)
    assert hash(env) == hash(cloud_env(aws={"region": "r1"}))
    assert env != cloud_env(aws={"region": "r2"})
    assert pickle.loads(pickle.dumps(env)) == env
    assert isinstance(pickle.loads(pickle.dumps(env)), GdalEnv)
    assert tokenize(env) == tokenize(cloud_env(aws={"region": "r1"})) != tokenize(cloud_env(aws={"region": "r2"}))


@pytest.mark.parametrize(
    "key",
    [
        "AWS_SECRET_ACCESS_KEY",
        "AWS_ACCESS_KEY_ID",
        "AWS_SESSION_TOKEN",
        "GDAL_HTTP_HEADERS",
        "GDAL_HTTP_USERPWD",
        "GDAL_HTTP_BEARER",
        "GS_SECRET_ACCESS_KEY",
        "GS_OAUTH2_PRIVATE_KEY",
        "GS_OAUTH2_REFRESH_TOKEN",
        "AZURE_STORAGE_ACCESS_KEY",
        "AZURE_STORAGE_SAS_TOKEN",
        "AZURE_STORAGE_CONNECTION_STRING",
        "OSS_SECRET_ACCESS_KEY",
        "SWIFT_KEY",
        "GDAL_HTTP_KEYPASSWD",
        "GDAL_HTTP_PROXYUSERPWD",
    ],
)
def test_secrets_are_masked_in_repr_str_and_format(key):
    env = cloud_env(cloud_defaults=False, **{key: SECRET, "AWS_REGION": "eu-west-1"})
    assert is_secret(key)
    for text in (repr(env), str(env), f"{env}", repr([env]), repr({"env": env})):
        assert SECRET not in text
        assert "***" in text
        assert "eu-west-1" in text
    assert env.secrets() == (SECRET,)


@pytest.mark.parametrize("key", ["GDAL_HTTP_PROXY", "GDAL_HTTPS_PROXY"])
@pytest.mark.parametrize("scheme", ["", "http://"])
def test_credentials_inside_a_proxy_setting_are_masked(key, scheme):
    env = cloud_env(cloud_defaults=False, **{key: f"{scheme}puser:{SECRET}@proxy.example:3128"})
    for text in (repr(env), str(env)):
        assert SECRET not in text
        assert "puser" not in text
        assert f"{scheme}***@proxy.example:3128" in text  # the proxy itself is shown
    assert SECRET in env.secrets()
    assert messages.sanitize(f"proxy refused puser:{SECRET}", env.secrets()) == "proxy refused ***"


@pytest.fixture
def no_network_options():
    """None of NETWORK_DEFAULTS' options set anywhere GDAL looks (restored afterwards)."""
    with servers.no_network_options():
        yield


def test_network_reads_get_the_network_defaults_without_env(no_network_options):
    # Without env=, GDAL's own defaults are no retry, no timeout and listing the
    # URL's directory on open: a stalled server hung a read for good.
    url = "/vsicurl/http://127.0.0.1:9/a.tif"
    assert all(get_gdal_config(k) is None for k in NETWORK_DEFAULTS)
    with context.applied(url, None):
        assert {k: get_gdal_config(k) for k in NETWORK_DEFAULTS} == dict(NETWORK_DEFAULTS)
    assert get_gdal_config("GDAL_HTTP_TIMEOUT") is None  # only around the read
    with context.applied("/vsis3/bucket/a.tif", cloud_env(cloud_defaults=False, aws={"region": "eu-west-1"})):
        assert get_gdal_config("GDAL_HTTP_MAX_RETRY") == NETWORK_DEFAULTS["GDAL_HTTP_MAX_RETRY"]
    with context.applied("/data/a.tif", None):  # local files: nothing
        assert get_gdal_config("GDAL_HTTP_TIMEOUT") is None


def test_the_users_network_options_win_over_the_defaults(no_network_options):
    url = "/vsicurl/http://127.0.0.1:9/a.tif"
    with context.applied(url, {"GDAL_HTTP_TIMEOUT": "7"}):
        assert get_gdal_config("GDAL_HTTP_TIMEOUT") == "7"
        assert get_gdal_config("GDAL_HTTP_MAX_RETRY") == NETWORK_DEFAULTS["GDAL_HTTP_MAX_RETRY"]
    os.environ["GDAL_HTTP_MAX_RETRY"] = "1"  # os.environ, as configure() or the shell would set it
    with context.applied(url, None):
        assert get_gdal_config("GDAL_HTTP_MAX_RETRY") == "1"
    with rasterio.Env(GDAL_DISABLE_READDIR_ON_OPEN="FALSE"), context.applied(url, None):
        assert get_gdal_config("GDAL_DISABLE_READDIR_ON_OPEN") == "FALSE"


def test_non_secrets_are_shown():
    env = cloud_env()
    assert all(not is_secret(k) for k in env)
    assert "EMPTY_DIR" in repr(env)


# --- gdal_env ---------------------------------------------------------------------------


def test_gdal_env_applies_options_and_credentials_then_restores():
    env = cloud_env(cloud_defaults=False, aws={"access_key_id": "AKID", "secret_access_key": SECRET}, PYR_X="1")
    # rasterio.Env refuses AWS credentials as options; gdal_env hands them over as a session
    with context.gdal_env(env):
        assert get_gdal_config("PYR_X") == "1"
        assert get_gdal_config("AWS_ACCESS_KEY_ID") == "AKID"
        assert get_gdal_config("AWS_SECRET_ACCESS_KEY") == SECRET
        assert messages.sanitize(f"denied: {SECRET}") == "denied: ***"
    assert get_gdal_config("PYR_X") is None
    assert get_gdal_config("AWS_SECRET_ACCESS_KEY") != SECRET
    assert messages.sanitize(f"denied: {SECRET}") == f"denied: {SECRET}"  # only inside the env


def test_gdal_env_is_per_thread():
    # Two threads inside different envs at the same time each see their own value.
    barrier = threading.Barrier(2, timeout=10)
    seen: dict[str, str | None] = {}

    def run(value: str) -> None:
        with context.gdal_env({"PYR_THREAD_OPTION": value}):
            barrier.wait()
            seen[value] = get_gdal_config("PYR_THREAD_OPTION")
            barrier.wait()

    threads = [threading.Thread(target=run, args=(v,)) for v in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == {"a": "a", "b": "b"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("'/vsicurl/https://h/a.tif?sig=abc&se=1' not found", "'/vsicurl/https://h/a.tif?...' not found"),
        ("GET https://h/a.tif?X-Amz-Signature=abc failed", "GET https://h/a.tif?... failed"),
        ("Authorization: AWS4-HMAC-SHA256 Credential=x", "Authorization: *** Credential=x"),
        ("s3://b/k?versionId=1 gone", "s3://b/k?... gone"),
        ("plain message", "plain message"),
    ],
)
def test_sanitize(text, expected):
    assert messages.sanitize(text) == expected


def test_source_spec_repr_hides_signatures_and_secrets():
    spec = pyr.io.tiff.source_spec("https://h/a.tif?sig=" + SECRET, env=cloud_env(GDAL_HTTP_HEADERS=f"X-Key: {SECRET}"))
    assert SECRET not in repr(spec)
    assert "https://h/a.tif?..." in repr(spec)
    assert spec.path.endswith(SECRET)  # GDAL still gets the whole URL


# --- configure ----------------------------------------------------------------------------


def test_configure_applies_process_wide(fresh_environ):
    env = configure(aws={"region": "pyr-test-1"}, PYR_CONFIGURED="yes")
    assert os.environ["PYR_CONFIGURED"] == "yes"
    assert os.environ["AWS_REGION"] == "pyr-test-1"
    assert os.environ["GDAL_DISABLE_READDIR_ON_OPEN"] == "EMPTY_DIR"
    assert get_gdal_config("PYR_CONFIGURED") == "yes"
    assert env["PYR_CONFIGURED"] == "yes"
    # visible from another thread too, and under a rasterio env
    out: dict[str, str | None] = {}
    t = threading.Thread(target=lambda: out.update(v=get_gdal_config("PYR_CONFIGURED")))
    t.start()
    t.join()
    assert out == {"v": "yes"}
    with rasterio.Env(GDAL_CACHEMAX=64):
        assert get_gdal_config("PYR_CONFIGURED") == "yes"


def test_configure_again_wins_over_a_value_rasterio_restored(fresh_environ):
    configure(cloud_defaults=False, PYR_AGAIN="1")
    with rasterio.Env(PYR_AGAIN="tmp"):  # on exit rasterio writes "1" back process-wide
        pass
    configure(cloud_defaults=False, PYR_AGAIN="2")
    assert get_gdal_config("PYR_AGAIN") == "2"


def _probe(key: str) -> tuple[str | None, str | None, int]:
    return os.environ.get(key), get_gdal_config(key), os.getpid()


@pytest.mark.slow
def test_configure_reaches_processes_scheduler_workers(fresh_environ):
    assert "PYR_WORKER_PROBE" not in os.environ
    configure(PYR_WORKER_PROBE="seen-by-worker", aws={"region": "pyr-test-2"})
    tasks = [dask.delayed(_probe, pure=False)(k) for k in ("PYR_WORKER_PROBE", "AWS_REGION")]
    (probe, region) = dask.compute(*tasks, scheduler="processes", num_workers=1)
    assert probe[:2] == ("seen-by-worker", "seen-by-worker")
    assert region[:2] == ("pyr-test-2", "pyr-test-2")
    assert probe[2] != os.getpid()  # really another process


def _wait_until(cond, what: str) -> None:
    """Poll ``cond`` for up to 10 s (another thread's progress)."""
    for _ in range(1000):
        if cond():
            return
        threading.Event().wait(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def _header_spec(path: str, token: str) -> SourceSpec:
    """A source at ``path`` read with the header ``X-T: token`` (an access setting of its own)."""
    return SourceSpec(path, path.rsplit("/", 1)[-1], cloud_env(cloud_defaults=False, GDAL_HTTP_HEADERS=f"X-T: {token}"))


def test_network_gate_one_access_setting_at_a_time_and_no_starvation(monkeypatch):
    # A reads a URL under setting X; B (setting Y) must wait for it, and C (X
    # again) arriving after B queues behind B instead of joining A. Each
    # change of setting drops GDAL's cache of the path first.
    cleared: list[str] = []
    monkeypatch.setattr(gate, "clear_network_cache", lambda part: cleared.append(part) or True)
    path = "/vsicurl/http://127.0.0.1:9/gate-test.tif"
    x, y = _header_spec(path, "x"), _header_spec(path, "y")
    entered: list[str] = []
    inside = {n: threading.Event() for n in "ABC"}
    release = {n: threading.Event() for n in "ABC"}

    def use(name: str, s: SourceSpec) -> None:
        with gate.gated(s):
            entered.append(name)
            inside[name].set()
            assert release[name].wait(10)

    the_gate = gate._gate_for(path)
    threads = {n: threading.Thread(target=use, args=(n, s)) for n, s in (("A", x), ("B", y), ("C", x))}
    threads["A"].start()
    assert inside["A"].wait(10)
    threads["B"].start()
    _wait_until(lambda: gate._access(y.env) in the_gate.waiting, "B to wait")
    threads["C"].start()
    _wait_until(lambda: gate._access(x.env) in the_gate.waiting, "C to queue behind B")
    assert entered == ["A"]
    assert cleared == []
    release["A"].set()
    assert inside["B"].wait(10)
    assert entered == ["A", "B"]
    assert cleared == [path]
    assert gate._access(x.env) in the_gate.waiting  # C still waits for B
    release["B"].set()
    assert inside["C"].wait(10)
    release["C"].set()
    for t in threads.values():
        t.join(10)
    assert entered == ["A", "B", "C"]
    assert cleared == [path, path]
    assert the_gate.active == 0
    assert not the_gate.waiting
    assert the_gate.turn is None


def test_network_gate_lets_one_setting_share_and_a_thread_nest(monkeypatch):
    cleared: list[str] = []
    monkeypatch.setattr(gate, "clear_network_cache", lambda part: cleared.append(part) or True)
    path = "/vsicurl/http://127.0.0.1:9/shared.tif"
    x, y = _header_spec(path, "x"), _header_spec(path, "y")
    barrier = threading.Barrier(2, timeout=10)

    def share() -> None:
        with gate.gated(x):
            barrier.wait()  # both inside at once, or this times out

    threads = [threading.Thread(target=share) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(15)
    assert not barrier.broken
    assert cleared == []

    # A thread inside, another setting waiting: a nested open of the same
    # path by the thread inside must not queue behind the waiter (deadlock).
    the_gate = gate._gate_for(path)

    def wait_for_y() -> None:
        with gate.gated(y):
            pass

    def nest() -> None:
        waiter = threading.Thread(target=wait_for_y)
        with gate.gated(x):
            waiter.start()
            _wait_until(lambda: gate._access(y.env) in the_gate.waiting, "the other setting to wait")
            with gate.gated(x):  # returns at once
                done.append("nested")
        waiter.join(10)
        done.append("waiter" if not waiter.is_alive() else "waiter stuck")

    done: list[str] = []
    outer = threading.Thread(target=nest, daemon=True)  # a deadlock leaves it hanging, not the suite
    outer.start()
    outer.join(15)
    assert done == ["nested", "waiter"]
    assert the_gate.access == gate._access(y.env)
    assert the_gate.active == 0


def test_network_gate_passes_local_paths():
    with gate.gated(SourceSpec("/tmp/x.tif", "x.tif", None)):
        assert "/tmp/x.tif" not in gate._gates
