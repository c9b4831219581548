"""read_stac over s3:// hrefs (moto's S3 server on loopback), equal to the same items read locally."""

from __future__ import annotations

import numpy as np
import pytest
from servers import put_object, s3_env
from test_stac import C2

import pyr
from pyr.testing.stac_items import stac_item

pytest_plugins = ["conftest_cloud"]
pytestmark = [pytest.mark.network, pytest.mark.usefixtures("offline_aws_module"), pytest.mark.timeout(120)]


def test_read_stac_from_s3_equals_local(real_data, s3_endpoint, bucket):
    files = {"sr_b4": real_data / C2.format("SR_B4"), "qa_pixel": real_data / C2.format("QA_PIXEL")}
    hrefs = {k: put_object(s3_endpoint, bucket, f"c2l2/{p.name}", p.read_bytes()) for k, p in files.items()}
    opts = {"factors": {"sr_b4": (2.75e-5, -0.2)}, "nodata": {"qa_pixel": 1}}
    remote = stac_item("LC08_001062_20201031", "2020-10-31T14:10:00Z", files, hrefs=hrefs, **opts)
    local = stac_item("LC08_001062_20201031", "2020-10-31T14:10:00Z", files, **opts)
    assert remote["assets"]["sr_b4"]["href"].startswith("s3://")
    cube = pyr.read_stac(remote, bands=["sr_b4", "qa_pixel"], env=s3_env(s3_endpoint), chunks=128)
    expected = pyr.read_stac(local, bands=["sr_b4", "qa_pixel"], chunks=128)
    assert cube.geobox == expected.geobox
    np.testing.assert_array_equal(cube.data.compute(), expected.data.compute())
