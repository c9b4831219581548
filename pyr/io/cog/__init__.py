"""pyr's own reader of the common COG: tiled, DEFLATE or ZSTD (or uncompressed), any predictor, any overview.

For such a file a chunk's tiles are fetched at once (local ``os.pread``, or
concurrent HTTP range requests with many in flight per process, see
:mod:`pyr.io.cog.http`, also to public S3 buckets, see
:mod:`pyr.io.cog.s3`), decoded with imagecodecs in the calling thread and
assembled into exactly the window GDAL returns. Everything else declines
and GDAL reads it (:func:`pyr.io.tiff.read_window` tries this path first).

Modules, one job each: :mod:`~pyr.io.cog.layout` (the tile index from the
header), :mod:`~pyr.io.cog.fetch` (where the bytes come from),
:mod:`~pyr.io.cog.http` (the per-process HTTP fetcher),
:mod:`~pyr.io.cog.s3` (the URL of a public S3 object),
:mod:`~pyr.io.cog.georef` (whether a file's own tags give the planned grid),
:mod:`~pyr.io.cog.decode` (codec and predictor), :mod:`~pyr.io.cog.read`
(the window read and the per-process layout cache).

It needs imagecodecs (the ``pyr[native]`` extra), and aiohttp for URLs;
without them, or with the environment variable ``PYR_NATIVE=0``, GDAL reads
everything (without aiohttp, every URL).
"""

from pyr.io.cog.read import enabled, prefetch, read_native

__all__ = ["enabled", "prefetch", "read_native"]
