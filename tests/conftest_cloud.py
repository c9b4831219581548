"""Fixtures for the cloud tests: loopback servers, a COG, an offline AWS environment.

Loaded by the cloud test modules with ``pytest_plugins = ["conftest_cloud"]``
(their helpers come from :mod:`servers`); they opt in to the offline AWS
environment with ``pytestmark = pytest.mark.usefixtures("offline_aws_module")``.
Nothing here is autouse, so other modules are untouched. Servers start once
per session; each test uses its own file names or bucket.

PYTEST_DONT_REWRITE: ``--doctest-modules`` imports this file before a test
module registers it as a plugin; it has no asserts to rewrite, and this
marker keeps pytest from warning that it cannot rewrite it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from servers import RangeServer, cog_array, moto_s3, offline_aws, restored_environ, s3_client, write_cog


@pytest.fixture(scope="module")
def offline_aws_module() -> Iterator[None]:
    """``offline_aws`` for a whole module: ``pytestmark = pytest.mark.usefixtures("offline_aws_module")``."""
    with offline_aws():
        yield


@pytest.fixture
def fresh_environ() -> Iterator[None]:
    """For tests that call ``configure``: everything it sets is undone afterwards."""
    with restored_environ():
        yield


# --- servers --------------------------------------------------------------------------


@pytest.fixture(scope="session")
def http_server() -> Iterator[RangeServer]:
    """One Range-capable HTTP server on loopback for the session (use unique file names)."""
    with RangeServer() as srv:
        yield srv


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 server on loopback: ``127.0.0.1:port``."""
    with moto_s3() as endpoint:
        yield endpoint


@pytest.fixture
def bucket(s3_endpoint: str) -> str:
    """A new, empty bucket on the moto server."""
    name = f"pyr-{uuid.uuid4().hex[:12]}"
    s3_client(s3_endpoint).create_bucket(Bucket=name)
    return name


@pytest.fixture(scope="session")
def cog(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    """A 768 x 1024 uint16 COG with 256 x 256 tiles (3 x 4 tiles) and its pixels."""
    data = cog_array((768, 1024))
    path = write_cog(tmp_path_factory.mktemp("cog") / "cog.tif", data)
    return path, data
