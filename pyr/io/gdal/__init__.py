"""pyr's GDAL layer: everything between a source the user names and the dataset a task reads.

Modules, each one job (each imports only those above it)::

    env         GdalEnv, cloud_env, configure, the network and cloud defaults, what is secret
    sources     source -> GDAL path (/vsicurl/, /vsis3/ ...), display names, SourceSpec
    messages    GDAL's messages without query strings, credentials or secrets; GDAL's reason
    context     the options around one open or read (env, network defaults, block cache cap)
    gate        one access setting per network path at a time; dropping GDAL's cache of a path
    handles     the one capped, process-wide cache of open datasets; ``dataset(spec)``

Nothing here is imported by ``import pyr`` beyond ``sources`` and ``env``
(neither imports rasterio).
"""
