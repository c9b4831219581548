"""``cloud_env`` and ``configure`` (the home is :mod:`pyr.io.gdal.env`)."""

from pyr.io.gdal.env import (
    CLOUD_DEFAULTS,
    NETWORK_DEFAULTS,
    GdalEnv,
    apply_process_wide,
    cloud_env,
    configure,
    is_secret,
)

__all__ = ["CLOUD_DEFAULTS", "NETWORK_DEFAULTS", "GdalEnv", "apply_process_wide", "cloud_env", "configure", "is_secret"]
