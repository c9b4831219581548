"""pyr's own reader of the common COG: tiled, DEFLATE or ZSTD (or uncompressed), any predictor, any overview.

For such a file a chunk's tiles are fetched at once (local ``os.pread``, or
concurrent HTTP range requests with many in flight per process, see
:mod:`pyr.io.cog.http`, also to S3, see :mod:`pyr.io.cog.s3`: public
buckets with unsigned requests, and, signed per request, objects read with
GDAL's static keys, a session token, requester pays, a custom endpoint),
decoded with imagecodecs in the calling thread and assembled into exactly
the window GDAL returns. Everything else declines and GDAL reads it
(:func:`pyr.io.tiff.read_window` tries this path first); so do S3 objects
whose credentials GDAL resolves itself (a profile or credentials file, web
identity, instance metadata), and a bucket S3 says is in another region.

Modules, one job each: :mod:`~pyr.io.cog.layout` (the tile index from the
header), :mod:`~pyr.io.cog.fetch` (where the bytes come from),
:mod:`~pyr.io.cog.http` (the per-process HTTP fetcher),
:mod:`~pyr.io.cog.held` (the ranges it fetched ahead, until a read takes them),
:mod:`~pyr.io.cog.s3` (the URL of an S3 object and the signer of its requests),
:mod:`~pyr.io.cog.georef` (whether a file's own tags give the planned grid),
:mod:`~pyr.io.cog.decode` (codec and predictor), :mod:`~pyr.io.cog.cache`
(the layouts this process knows, and those read ahead),
:mod:`~pyr.io.cog.read` (the window read), :mod:`~pyr.io.cog.ahead`
(fetching ahead of reads: the next dates' tiles, layouts in background
threads).

It needs imagecodecs (the ``pyr[native]`` extra), aiohttp for URLs, and
botocore (installed with the ``pyr[s3]`` extra) for signed S3 requests;
without them, or with the environment variable ``PYR_NATIVE=0``, GDAL reads
everything (without aiohttp, every URL; without botocore, signed S3).
"""

from pyr.io.cog.ahead import layouts_ahead, prefetch
from pyr.io.cog.read import enabled, read_native

__all__ = ["enabled", "layouts_ahead", "prefetch", "read_native"]
