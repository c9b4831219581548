"""Shared fixtures and hypothesis profiles.

Profiles: ``ci`` (default, fast) and ``thorough`` (``HYPOTHESIS_PROFILE=thorough``).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
settings.register_profile("thorough", max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# The real third-party rasters live beside the checkout (../shared/data/real);
# PYR_REAL_DATA points elsewhere. Tests that need them skip when they are absent.
REAL = Path(os.environ.get("PYR_REAL_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"))


@pytest.fixture(scope="session")
def real_data() -> Path:
    """The folder of real third-party rasters (../shared/data/real)."""
    if not REAL.is_dir():
        pytest.skip(f"real data folder {REAL} not found")
    return REAL
