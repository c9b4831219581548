"""Carry GDAL options to the workers of a ``distributed`` cluster.

Worker processes started after :func:`pyr.configure` inherit its options
through ``os.environ``. Workers that already run (a cluster started before,
or elsewhere) get them from :class:`GdalEnvPlugin`, a worker plugin that
applies the options in every worker when it is registered and in every
worker that joins or restarts later. :func:`pyr.configure` registers it with
the current client by itself; :func:`configure_workers` does it for a given
client.

This module imports ``distributed``; ``import pyr`` never imports it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from distributed import Client
from distributed.diagnostics.plugin import WorkerPlugin

from pyr.io.gdal.env import GdalEnv, apply_process_wide, cloud_env

__all__ = ["GdalEnvPlugin", "configure_workers", "register_with_current_client"]

PLUGIN_NAME = "pyr-gdal-env"


class GdalEnvPlugin(WorkerPlugin):
    """Apply GDAL options process-wide in each worker (``os.environ`` and GDAL's config).

    Registered under one name, so registering again replaces the options.

    >>> GdalEnvPlugin({"AWS_SECRET_ACCESS_KEY": "abc", "AWS_REGION": "eu-west-1"})
    GdalEnvPlugin(GdalEnv({'AWS_REGION': 'eu-west-1', 'AWS_SECRET_ACCESS_KEY': ***}))
    """

    name = PLUGIN_NAME
    idempotent = False

    def __init__(self, env: Mapping[str, Any]) -> None:
        self.env = env if isinstance(env, GdalEnv) else GdalEnv(env)

    def setup(self, worker: Any) -> None:
        """Apply the options in this worker process."""
        apply_process_wide(self.env)

    def __repr__(self) -> str:
        return f"GdalEnvPlugin({self.env!r})"


def configure_workers(
    client: Client, *, cloud_defaults: bool = True, aws: Mapping[str, Any] | None = None, **gdal_options: Any
) -> GdalEnv:
    """Apply :func:`pyr.cloud_env` in every worker of ``client``, now and later joining.

    Parameters
    ----------
    client
        A ``distributed.Client``.
    cloud_defaults, aws, **gdal_options
        As for :func:`pyr.cloud_env`.

    Returns
    -------
    GdalEnv
        The options applied.

    Examples
    --------
    >>> from distributed import Client  # doctest: +SKIP
    >>> configure_workers(Client(), aws={"aws_unsigned": True})  # doctest: +SKIP
    """
    env = cloud_env(cloud_defaults=cloud_defaults, aws=aws, **gdal_options)
    client.register_plugin(GdalEnvPlugin(env), name=PLUGIN_NAME)
    return env


def register_with_current_client(env: Mapping[str, Any]) -> bool:
    """Register :class:`GdalEnvPlugin` with the current client, if there is one.

    Returns whether it was registered. Inside a worker (``client.run(pyr.configure)``)
    nothing is registered: the call applies to that worker only, and a
    blocking call from the worker's event loop could deadlock.
    """
    from distributed import get_worker

    try:
        get_worker()
    except ValueError:  # not inside a worker: good
        pass
    else:
        return False
    try:
        client = Client.current()
    except ValueError:  # no client in this process
        return False
    if getattr(client, "asynchronous", False):  # an async client cannot be driven from here
        return False
    client.register_plugin(GdalEnvPlugin(env), name=PLUGIN_NAME)
    return True
