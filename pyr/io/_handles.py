"""Per-process, per-thread cache of open rasterio datasets, and the GDAL env around them.

A dataset handle is never shared between threads (GDAL handles are not
thread-safe) and never crosses a fork (the cache is keyed by process id).
Task graphs hold only the picklable :class:`SourceSpec`, never a handle.

GDAL's network file systems (``/vsicurl/``, ``/vsis3/``, ...) keep a cache
per process, keyed by URL, of file properties (existence, size) and of
downloaded ranges, failures included: one 404 or exhausted 503 would make
the URL unreadable for the rest of a worker's life, and bytes fetched with
one set of credentials would be served to a task holding other (or no)
credentials. So this module drops GDAL's cache for a path after a failed
open or read, and lets threads use a network path under one access setting
(credentials, endpoint, headers) at a time, dropping the cache when the
setting changes (:class:`_Gate`; :func:`dataset` is the way in).
"""

from __future__ import annotations

import ctypes
import functools
import glob
import logging
import os
import re
import threading
from collections import OrderedDict, deque
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import attrs
import rasterio
import rasterio.env
import rasterio.errors
from rasterio.env import set_gdal_config
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from rasterio.session import DummySession, Session

from pyr._malloc import tune_once as tune_malloc_once
from pyr._warnings import quiet
from pyr.errors import InvalidArgument, PyrError, ReadError
from pyr.io.env import GdalEnv, is_secret

__all__ = ["SourceSpec", "close_all", "dataset", "forget", "gdal_env", "open_dataset", "sanitize"]

MAX_HANDLES_PER_THREAD = 64
_local = threading.local()

# rasterio.Env refuses these as options ("credentials are handled by boto3");
# they go to GDAL through a session instead.
_CREDENTIAL_OPTIONS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
# Network file systems whose per-process cache GDAL's VSICurlPartialClearCache drops.
_NETWORK_PREFIXES = (
    "/vsicurl/",
    "/vsis3/",
    "/vsigs/",
    "/vsiaz/",
    "/vsiadls/",
    "/vsioss/",
    "/vsiswift/",
    "/vsiwebhdfs/",
)
# Options that decide what a URL resolves to or who may read it.
_ACCESS_PREFIXES = ("AWS_", "GS_", "GOOGLE_", "AZURE_", "OSS_", "SWIFT_", "CPL_AWS_", "CPL_GS_", "GDAL_HTTP_AUTH")
_ACCESS_OPTIONS = ("GDAL_HTTP_HEADERS", "GDAL_HTTP_HEADER_FILE", "GDAL_HTTP_USERPWD", "GDAL_HTTP_BEARER")


@attrs.frozen(repr=False)
class SourceSpec:
    """What a task needs to open one source: picklable, no handle inside.

    Its ``repr`` shows the display name (query string elided) and masks
    secrets in the env, so signed URLs and credentials stay out of task
    reprs, logs and dashboards.
    """

    path: str  # the GDAL path
    name: str  # the user-facing name for messages (query string elided)
    env: GdalEnv | None = None
    overview: int | None = None

    def key(self) -> tuple[Any, ...]:
        return (self.path, self.overview, self.env)

    def __repr__(self) -> str:
        return f"SourceSpec({self.name!r}, env={self.env!r}, overview={self.overview!r})"


class _Credentials(Session):  # type: ignore[misc]  # rasterio is untyped
    """A rasterio session that hands GDAL the credential options it was given."""

    def __init__(self, options: Mapping[str, str]) -> None:
        self._options = dict(options)

    @property
    def credentials(self) -> dict[str, str]:
        return {}  # never exposed through rasterio

    def get_credential_options(self) -> dict[str, str]:
        return dict(self._options)

    def __repr__(self) -> str:
        return "_Credentials(***)"


@contextmanager
def gdal_env(env: Mapping[str, str] | None) -> Iterator[None]:
    """Apply ``env`` (GDAL config options) for the duration of the block.

    Credentials (``AWS_ACCESS_KEY_ID`` ...) go to GDAL through a rasterio
    session; no boto3 lookup happens. The values of secret options are
    remembered for the block so that :func:`sanitize` removes them from
    error messages.
    """
    _local.notes = deque(maxlen=4)  # GDAL's network warnings of this block (see _reason)
    if not env:
        with _detached_errors():
            yield
        return
    options: dict[str, Any] = dict(env)
    if "GDAL_CACHEMAX" in options:
        options["GDAL_CACHEMAX"] = cachemax_bytes(options["GDAL_CACHEMAX"])
    creds = {k: options.pop(k) for k in _CREDENTIAL_OPTIONS if k in options}
    secrets = tuple(v for k, v in env.items() if is_secret(k) and v)
    outer = getattr(_local, "secrets", ())
    _local.secrets = outer + secrets
    try:
        with rasterio.Env(session=_Credentials(creds) if creds else DummySession(), **options), _detached_errors():
            yield
    finally:
        _local.secrets = outer


@contextmanager
def _detached_errors() -> Iterator[None]:
    """Let pyr's errors leave the block without the rasterio exceptions they replaced.

    ``raise ReadError(...) from None`` hides the chain from tracebacks but
    keeps it in ``__context__``; ``distributed`` pickles that chain with the
    error, fails to unpickle rasterio's exceptions, and would hand the user a
    bare ``Exception`` instead of the ``ReadError``.
    """
    try:
        yield
    except PyrError as err:
        err.__context__ = None
        err.__cause__ = None
        raise


def cachemax_bytes(value: str | int) -> int:
    """GDAL's ``GDAL_CACHEMAX`` as bytes: ``"64"`` is MB (below 100000), ``"5%"`` of RAM.

    rasterio applies this option with ``GDALSetCacheMax``, which takes bytes.
    """
    text = str(value).strip()
    try:
        if text.endswith("%"):
            ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
            return int(ram * float(text[:-1]) / 100)
        number = int(float(text))
    except ValueError:
        raise InvalidArgument(f"GDAL_CACHEMAX={value!r}: expected MB, bytes or a percentage.") from None
    return number * 2**20 if number < 100_000 else number


#: GDAL's block cache in processes where pyr reads, unless GDAL_CACHEMAX is set.
DEFAULT_CACHEMAX = 64 * 2**20
_capped_pid: int | None = None


def _cap_block_cache(env: Mapping[str, str] | None) -> None:
    """Cap GDAL's block cache once per process, unless the user set GDAL_CACHEMAX.

    pyr reads each block once (chunks are whole multiples of the blocks), so
    GDAL's default cache (5% of RAM per process) only holds memory: about
    1.2 GB of a 10-date median's peak on a 24 GB machine.
    """
    global _capped_pid
    if _capped_pid == os.getpid():
        return
    _capped_pid = os.getpid()
    if (env and "GDAL_CACHEMAX" in env) or "GDAL_CACHEMAX" in os.environ or "GDAL_CACHEMAX" in _rasterio_env():
        return
    set_gdal_config("GDAL_CACHEMAX", DEFAULT_CACHEMAX)


def _rasterio_env() -> dict[str, Any]:
    """Options of the user's active ``rasterio.Env`` (empty when none is active)."""
    try:
        return dict(rasterio.env.getenv())
    except rasterio.errors.EnvError:
        return {}


def _cache() -> OrderedDict[tuple[Any, ...], tuple[Any, tuple[int, int, int] | None]]:
    cache = getattr(_local, "handles", None)
    if cache is None or getattr(_local, "pid", None) != os.getpid():
        cache = OrderedDict()
        _local.handles = cache
        _local.pid = os.getpid()
    return cache


def open_dataset(spec: SourceSpec) -> Any:
    """The cached dataset for ``spec`` in this thread, opened on first use.

    Use it through :func:`dataset` (which applies the env and the path's
    gate), or inside ``gdal_env(spec.env)`` when ``spec`` is local. Raises :class:`ReadError`
    naming the source when GDAL cannot open it.
    """
    cache = _cache()
    key = spec.key()
    stamp = _file_stamp(spec.path)
    entry = cache.get(key)
    if entry is not None:
        ds, opened_stamp = entry
        if not ds.closed and opened_stamp == stamp:
            cache.move_to_end(key)
            return ds
        del cache[key]  # the file was replaced since it was opened: reopen
        ds.close()
    _cap_block_cache(spec.env)
    tune_malloc_once()
    kwargs = {} if spec.overview is None else {"overview_level": spec.overview}
    try:
        with quiet(NotGeoreferencedWarning):
            ds = rasterio.open(spec.path, **kwargs)
    except (RasterioError, OSError) as err:
        clear_network_cache(spec.path)
        raise ReadError(f"Cannot open {spec.name!r}: {_reason(err, spec)}") from None
    cache[key] = (ds, stamp)
    while len(cache) > MAX_HANDLES_PER_THREAD:
        _, (old, _) = cache.popitem(last=False)
        old.close()
    return ds


def _file_stamp(path: str) -> tuple[int, int, int] | None:
    """Identity of a local file's content (inode, size, mtime); ``None`` for GDAL virtual paths."""
    if path.startswith("/vsi"):
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def forget(spec: SourceSpec) -> None:
    """Close and drop this thread's handle for ``spec``, and GDAL's cache of it (after a failed read)."""
    entry = _cache().pop(spec.key(), None)
    if entry is not None:
        entry[0].close()
    clear_network_cache(spec.path)


def close_all() -> None:
    """Close this thread's handles."""
    cache = _cache()
    while cache:
        cache.popitem()[1][0].close()


# --- GDAL's network cache -----------------------------------------------------------

Access = tuple[tuple[str, str], ...]


def _access(env: Mapping[str, str] | None) -> Access:
    """The options of ``env`` that decide what a URL resolves to or who may read it, sorted."""
    if not env:
        return ()
    if isinstance(env, GdalEnv):
        return _access_of(env)  # once per env value: every network read asks
    return tuple(
        sorted((k, v) for k, v in env.items() if k.startswith(_ACCESS_PREFIXES) or k in _ACCESS_OPTIONS or is_secret(k))
    )


@functools.lru_cache(maxsize=256)
def _access_of(env: GdalEnv) -> Access:
    return _access(dict(env))


def _network_part(path: str) -> str | None:
    """The ``/vsicurl/...``-like part of ``path`` (also inside chained paths), or ``None``."""
    hits = [i for i in (path.find(p) for p in _NETWORK_PREFIXES) if i >= 0]
    return path[min(hits) :] if hits else None


class _Gate:
    """Who may use one network path in this process now: one access setting at a time.

    GDAL's cache of a path is shared by every thread of the process, failures
    included. While one thread reads under one access setting, a thread under
    another (other credentials, endpoint or headers) waits; the first thread
    under a new setting drops GDAL's cache of the path before it goes on. So a
    task never reads bytes fetched with another task's credentials, and one
    task's 403 is never a cached failure for a task that holds the token.
    Threads under the same setting share the path freely; once a thread under
    another setting waits, newcomers under the current one queue behind it,
    and when the path falls idle the setting that has waited longest goes next
    (so neither side starves the other).
    """

    __slots__ = ("access", "active", "cond", "turn", "waiting")

    def __init__(self) -> None:
        self.cond = threading.Condition(threading.Lock())
        self.access: Access | None = None  # the setting of the last (or current) users
        self.active = 0  # threads inside now
        self.waiting: dict[Access, int] = {}  # threads waiting, by setting, oldest setting first
        self.turn: Access | None = None  # the setting that goes next, once set

    def may_enter(self, access: Access) -> bool:
        if self.turn is not None:
            return access == self.turn and (self.active == 0 or self.access == access)
        if self.active == 0:
            return True
        return self.access == access and not any(a != access for a in self.waiting)

    def enter(self, access: Access) -> None:
        """Wait for ``access``'s turn and go in (call with ``cond`` held)."""
        if not self.may_enter(access):
            self.waiting[access] = self.waiting.get(access, 0) + 1
            try:
                self.cond.wait_for(lambda: self.may_enter(access))
            finally:
                self.waiting[access] -= 1
                if not self.waiting[access]:
                    del self.waiting[access]
        if self.turn == access and access not in self.waiting:
            self.turn = None  # every thread that waited for this turn is in
        self.active += 1

    def leave(self) -> None:
        """Go out; the last one out hands the path to the setting waiting longest (call with ``cond`` held)."""
        self.active -= 1
        if self.active == 0 and self.waiting:
            self.turn = next(iter(self.waiting))
        self.cond.notify_all()


_gates: OrderedDict[str, _Gate] = OrderedDict()
_gates_lock = threading.Lock()
MAX_GATES = 4096


def _gate_for(part: str) -> _Gate:
    with _gates_lock:
        gate = _gates.get(part)
        if gate is None:
            gate = _gates[part] = _Gate()
            if len(_gates) > MAX_GATES:  # forget the oldest idle gate (its next user clears the cache)
                for old, g in _gates.items():
                    if g.active == 0 and not g.waiting and old != part:
                        del _gates[old]
                        break
        else:
            _gates.move_to_end(part)
        return gate


@contextmanager
def _gated(spec: SourceSpec) -> Iterator[None]:
    """Hold ``spec``'s network path under ``spec``'s access setting (see :class:`_Gate`).

    Local paths pass straight through; a thread already inside for this path
    (a nested open) does not wait for itself.
    """
    part = _network_part(spec.path)
    held: set[str] = _local.__dict__.setdefault("gated", set())
    if part is None or part in held:
        yield
        return
    access = _access(spec.env)
    gate = _gate_for(part)
    with gate.cond:
        gate.enter(access)
        if gate.access is not None and gate.access != access:
            clear_network_cache(part)
        gate.access = access
    held.add(part)
    try:
        yield
    finally:
        held.discard(part)
        with gate.cond:
            gate.leave()


@contextmanager
def dataset(spec: SourceSpec) -> Iterator[Any]:
    """The dataset for ``spec`` (this thread's), inside ``spec``'s GDAL env and its path's gate.

    Everything that touches the dataset (reads, and :func:`forget` after a
    failed one) belongs inside the block.
    """
    with _gated(spec), gdal_env(spec.env):
        yield open_dataset(spec)


@functools.cache
def _libgdal() -> Any:
    """The libgdal that rasterio loaded, through ctypes (``None`` when it cannot be found)."""
    candidates: list[str] = []
    try:
        with open("/proc/self/maps") as maps:  # Linux: exactly the library in use
            candidates += sorted({line.split()[-1] for line in maps if "libgdal" in line and "/" in line})
    except OSError:
        pass
    root = os.path.dirname(os.path.dirname(rasterio.__file__))
    for pattern in ("rasterio.libs/libgdal*", "rasterio/.dylibs/libgdal*"):  # wheels (Linux, macOS)
        candidates += sorted(glob.glob(os.path.join(root, pattern)))
    for path in candidates:
        try:
            lib = ctypes.CDLL(path)
            fn = lib.VSICurlPartialClearCache
        except (OSError, AttributeError):
            continue
        fn.argtypes = [ctypes.c_char_p]
        fn.restype = None
        return lib
    return None


def clear_network_cache(path: str) -> bool:
    """Drop GDAL's per-process cache (file properties, ranges) of a network ``path``.

    Returns whether a cache was cleared (``False`` for local paths, or when
    libgdal cannot be reached through ctypes).
    """
    part = _network_part(path)
    lib = None if part is None else _libgdal()
    if lib is None or part is None:
        return False
    lib.VSICurlPartialClearCache(part.encode("utf-8", "surrogateescape"))
    return True


# --- messages -----------------------------------------------------------------------

_QUERY = re.compile(r"((?:https?|s3|gs|az)://[^\s'\"?]*|/vsi\w+/[^\s'\"?]*)\?[^\s'\"]*", re.IGNORECASE)
_BARE_QUERY = re.compile(r"\?[\w.%-]+=[^\s'\"]*")  # a query string after a file name ("B04.tif?sig=...")
_AUTH = re.compile(r"((?:authorization|x-amz-security-token|x-amz-signature|signature|sig|token)\s*[:=]\s*)\S+", re.I)


def sanitize(text: str, secrets: tuple[str, ...] = ()) -> str:
    """``text`` without query strings of URLs, auth headers, or any of ``secrets`` (and the env's).

    >>> sanitize("'/vsicurl/https://h/a.tif?X-Amz-Signature=abc' not found")
    "'/vsicurl/https://h/a.tif?...' not found"
    >>> sanitize("B04.tif?se=2030&sig=abc, band 1: failed")
    'B04.tif?... band 1: failed'
    >>> sanitize("denied for key s3cr3t", ("s3cr3t",))
    'denied for key ***'
    """
    text = _QUERY.sub(r"\1?...", text)
    text = _BARE_QUERY.sub("?...", text)
    text = _AUTH.sub(r"\1***", text)
    for secret in (*secrets, *getattr(_local, "secrets", ())):
        if secret and len(secret) >= 3:
            text = text.replace(secret, "***")
    return text


def _reason(err: BaseException, spec: SourceSpec | None = None) -> str:
    """GDAL's reason, first line, with the GDAL path shown as the source's name and secrets removed.

    When GDAL's error is only a consequence ("TIFFReadEncodedTile() failed")
    of a network failure it reported as a warning (the last HTTP status,
    after its retries), that warning is added.
    """
    text = str(err).strip() or type(err).__name__
    if spec is not None:
        text = text.replace(spec.path, spec.name)
        if spec.env is not None:
            text = sanitize(text, spec.env.secrets())
    text = sanitize(text.splitlines()[0])[:300]
    notes = getattr(_local, "notes", None)
    if notes and not _NETWORK.search(text):
        note = _RETRYING.sub("", notes[-1]).strip()
        if spec is not None:
            note = note.replace(spec.path, spec.name)
        text = f"{text} (after: {note[:200]})"
    return text


_NETWORK = re.compile(r"HTTP|curl|timed? ?out|connect|resolve|SSL|S3|response_code|403|404|5\d\d", re.IGNORECASE)
_RETRYING = re.compile(r"\.?\s*Retrying again in [\d.]+ secs?\.?", re.IGNORECASE)


class _GdalLogFilter(logging.Filter):
    """Removes query strings and secrets from GDAL's messages logged by rasterio; keeps network ones as notes."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is not ours to fix
            return True
        clean = sanitize(message)
        if clean != message:
            record.msg, record.args = clean, ()
        notes = getattr(_local, "notes", None)
        if notes is not None and _NETWORK.search(clean):
            notes.append(clean)
        return True


def _install_log_filter() -> None:
    for name in ("rasterio._env", "rasterio._err", "rasterio._io", "rasterio._base"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _GdalLogFilter) for f in logger.filters):
            logger.addFilter(_GdalLogFilter())


_install_log_filter()
