"""Grids across CRSs: ``GeoBox.from_bbox``, ``GeoBox.to_crs`` and the input window an output chunk needs.

Expected values come from rasterio (``transform_bounds``, ``transform``) and
arithmetic, never from pyr.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import rasterio
from affine import Affine
from hypothesis import given
from hypothesis import strategies as st
from rasterio.crs import CRS
from rasterio.warp import transform_bounds

from pyr import GeoBox, InvalidArgument
from pyr._gridding import source_window, source_windows, transform_points
from pyr._warp_plan import overview_geobox, pick_overview, plan_warps


def _is_multiple(value: float, step: float) -> bool:
    q = value / step
    return abs(q - round(q)) < 1e-6


bboxes = st.tuples(
    st.floats(-10, 10),  # lon
    st.floats(-60, 60),  # lat
    st.floats(0.01, 2),
    st.floats(0.01, 2),
).map(lambda t: (t[0], t[1], t[0] + t[2], t[1] + t[3]))


@given(bboxes, st.sampled_from(["EPSG:32631", "EPSG:3857", "EPSG:6933", "EPSG:4326"]), st.sampled_from([1, 30.0, 250]))
def test_from_bbox_covers_the_bbox_with_edges_on_multiples(bbox, crs, res):
    if crs == "EPSG:4326":
        res = res / 100_000
    gb = GeoBox.from_bbox(bbox, crs=crs, resolution=res)
    left, bottom, right, top = transform_bounds("EPSG:4326", crs, *bbox, densify_pts=101)
    assert gb.crs == CRS.from_user_input(crs)
    assert gb.resolution == (res, -res)
    gl, gbm, gr, gt = gb.bounds
    for edge in (gl, gbm, gr, gt):
        assert _is_multiple(edge, res)
    tol = res * 1e-6
    assert gl <= left + tol
    assert gr >= right - tol
    assert gbm <= bottom + tol
    assert gt >= top - tol
    # and not larger than needed: one cell less on any side would not cover
    assert gl > left - res
    assert gr < right + res
    assert gbm > bottom - res
    assert gt < top + res


def test_from_bbox_grids_of_neighbouring_areas_line_up():
    a = GeoBox.from_bbox((5.0, 45.0, 5.3, 45.2), crs="EPSG:32631", resolution=20)
    b = GeoBox.from_bbox((5.27, 45.13, 5.6, 45.4), crs="EPSG:32631", resolution=20)
    offset = ~a.transform @ (b.transform.c, b.transform.f)
    assert all(abs(v - round(v)) < 1e-9 for v in offset)


def test_from_bbox_center_anchor_puts_centres_on_multiples():
    gb = GeoBox.from_bbox((5.0, 45.0, 5.3, 45.2), crs="EPSG:32631", resolution=20, anchor="center")
    y, x = gb.coords()
    assert _is_multiple(float(x[0]), 20)
    assert _is_multiple(float(y[0]), 20)
    assert _is_multiple(gb.transform.c - 10, 20)


def test_from_bbox_same_crs_and_antimeridian():
    gb = GeoBox.from_bbox((0.05, 0.05, 0.95, 0.55), crs="EPSG:4326", resolution=0.25)
    assert gb.bounds == (0.0, 0.0, 1.0, 0.75)
    across = GeoBox.from_bbox((170, -20, -170, -10), crs="EPSG:4326", resolution=0.5)
    assert across.bounds == (170.0, -20.0, 190.0, -10.0)
    # In a projected CRS the bbox across the antimeridian is a narrow strip, not the whole world.
    utm1 = GeoBox.from_bbox((179, -20, -179, -10), crs="EPSG:32601", resolution=1000)
    assert utm1.width < 300


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"anchor": "corner"}, "anchor"),
        ({"resolution": 0}, "resolution"),
        ({"resolution": "ten"}, "resolution"),
        ({"crs": "EPSG:0"}, "crs"),
        ({"bbox": (1, 2, 3)}, "bbox"),
        ({"bbox": (5, 46, 6, 45)}, "bbox"),
    ],
)
def test_from_bbox_bad_arguments_name_the_argument(kwargs, name):
    args = {"bbox": (5, 45, 6, 46), "crs": "EPSG:32631", "resolution": 30, **kwargs}
    bbox = args.pop("bbox")
    with pytest.raises(InvalidArgument, match=name):
        GeoBox.from_bbox(bbox, **args)


def test_to_crs_same_footprint_similar_cell_area():
    utm = GeoBox.from_bounds((600_000, 5_000_000, 630_000, 5_030_000), 30, "EPSG:32631")
    for crs in ("EPSG:4326", "EPSG:3857", "EPSG:6933", "EPSG:3035"):
        other = utm.to_crs(crs)
        left, bottom, right, top = transform_bounds("EPSG:32631", crs, *utm.bounds, densify_pts=101)
        gl, gbm, gr, gt = other.bounds
        res = abs(other.resolution[0])
        assert gl <= left + 1e-9
        assert gr >= right - 1e-9
        assert gbm <= bottom + 1e-9
        assert gt >= top - 1e-9
        assert gl > left - res
        assert gt < top + res
        # about as many cells as the original covers the same area with (within a factor of 2)
        area_ratio = (right - left) * (top - bottom) / res**2 / (utm.width * utm.height)
        assert 0.5 < area_ratio < 2.0, (crs, area_ratio)
    assert utm.to_crs("EPSG:3857", resolution=(100, 50)).resolution == (100.0, -50.0)
    assert utm.to_crs("EPSG:32631") == utm


def test_to_crs_needs_a_crs():
    with pytest.raises(InvalidArgument, match="CRS"):
        GeoBox.from_bounds((0, 0, 10, 10), 1).to_crs("EPSG:4326")
    with pytest.raises(InvalidArgument, match="crs"):
        GeoBox.from_bounds((0, 0, 10, 10), 1, "EPSG:32631").to_crs("not a crs")


# --- the input window of an output chunk ---------------------------------------------


def _centres_in_source(dst: GeoBox, src: GeoBox) -> tuple[np.ndarray, np.ndarray]:
    """Source pixel (col, row) of every output cell centre, with plain rasterio."""
    y, x = dst.coords()
    xx, yy = np.meshgrid(x, y)
    sx, sy = transform_points(dst.crs, src.crs, xx.ravel(), yy.ravel())  # rasterio's, failures as NaN
    c, r = ~src.transform @ (np.asarray(sx), np.asarray(sy))
    return np.asarray(c), np.asarray(r)


CASES = [
    # (source grid, target CRS)
    (GeoBox.from_bounds((300_000, 4_990_000, 420_000, 5_100_000), 1000, "EPSG:32631"), "EPSG:4326"),
    (GeoBox.from_bounds((300_000, 4_990_000, 420_000, 5_100_000), 1000, "EPSG:32631"), "EPSG:3857"),
    (GeoBox.from_bounds((-2_000_000, -2_000_000, 2_000_000, 2_000_000), 50_000, "EPSG:3413"), "EPSG:4326"),
    (GeoBox.from_bounds((-180, 50, 180, 90), 1.0, "EPSG:4326"), "EPSG:3413"),
    (GeoBox.from_bounds((-180, -90, -60, -50), 1.0, "EPSG:4326"), "EPSG:3031"),
    (GeoBox.from_bounds((-2_000_000, 1_000_000, 2_000_000, 6_000_000), 50_000, "ESRI:54008"), "EPSG:4326"),
]


@pytest.mark.parametrize(("src", "crs"), CASES)
@pytest.mark.parametrize("chunk", [16, 41])
def test_every_cell_centre_falls_inside_its_chunks_window(src, crs, chunk):
    dst = src.to_crs(crs)
    rows = [*range(0, dst.height, chunk), dst.height]
    cols = [*range(0, dst.width, chunk), dst.width]
    windows = source_windows(dst, src, rows, cols)
    seen_inside = 0
    for (i, j), win in windows.items():
        sub = dst[rows[i] : rows[i + 1], cols[j] : cols[j + 1]]
        c, r = _centres_in_source(sub, src)
        ok = np.isfinite(c) & np.isfinite(r)
        inside = ok & (c >= 0) & (c < src.width) & (r >= 0) & (r < src.height)
        if win is None:
            assert not inside.any(), f"chunk {(i, j)} misses cells of the input"
            continue
        r0, r1, c0, c1 = win
        seen_inside += int(inside.sum())
        assert (c[inside] >= c0).all()
        assert (c[inside] < c1).all()
        assert (r[inside] >= r0).all()
        assert (r[inside] < r1).all()
    assert seen_inside > 0


def test_chunk_over_the_pole_of_a_geographic_input_reaches_its_top_row():
    src = GeoBox.from_bounds((-180, 80, 180, 90), 0.01, "EPSG:4326")
    # the pole is inside the chunk, a quarter of the way in on each axis: 23 km from its nearest
    # sample point (those are on the outline and on a grid at sixths of the chunk)
    pole = GeoBox.from_bounds((-50_000, -150_000, 150_000, 50_000), 500, "EPSG:3413")
    win = source_window(pole, src)
    assert win is not None
    r0, _r1, c0, c1 = win
    assert r0 == 0  # latitude 90 is row 0: no sample point of the chunk is there
    assert (c0, c1) == (0, src.width)  # every longitude meets at the pole


def test_window_of_a_chunk_outside_the_input_is_none_and_windows_are_clipped():
    src = GeoBox.from_bounds((0, 0, 100, 100), 10, "EPSG:32631")
    far = GeoBox.from_bounds((1000, 1000, 1100, 1100), 10, "EPSG:32631")
    assert source_window(far, src) is None
    half = GeoBox.from_bounds((50, 50, 150, 150), 10, "EPSG:32631")
    assert source_window(half, src) == (0, 7, 3, 10)


def test_margin_grows_with_the_kernel_and_the_downsampling_ratio():
    src = GeoBox.from_bounds((0, 0, 10_000, 10_000), 10, "EPSG:32631")
    chunk = GeoBox((10, 10), Affine(100, 0, 5000, 0, -100, 5000), "EPSG:32631")
    windows = {m: source_window(chunk, src, resampling=m) for m in ("nearest", "bilinear", "cubic", "average")}
    sizes = {m: w[1] - w[0] for m, w in windows.items() if w is not None}
    assert sizes["nearest"] >= 100
    assert sizes["cubic"] > sizes["bilinear"] >= sizes["nearest"]
    assert math.isclose(sizes["cubic"] - 100, 2 * (2 * 10 + 1), abs_tol=2)


def test_rotated_target_refused():
    src = GeoBox.from_bounds((0, 0, 100, 100), 10, "EPSG:32631")
    rotated = GeoBox((5, 5), Affine.rotation(10) @ Affine(10, 0, 0, 0, -10, 100), "EPSG:32631")
    with pytest.raises(InvalidArgument, match="north-up"):
        source_window(rotated, src)


def test_transform_points_marks_points_proj_refuses_as_nan():
    xs, ys = transform_points(
        CRS.from_epsg(4326), CRS.from_epsg(3857), np.array([0.0, 10, 0]), np.array([0.0, 45, -91])
    )
    assert np.isfinite(xs[:2]).all()
    assert np.isnan(xs[2])
    assert np.isnan(ys[2])
    assert xs[1] == pytest.approx(1113194.9079, rel=1e-9)


def test_from_bbox_with_a_projected_bbox_crs():
    bbox = (600_000, 5_000_000, 620_000, 5_010_000)
    gb = GeoBox.from_bbox(bbox, bbox_crs="EPSG:32631", crs="EPSG:3857", resolution=50)
    left, bottom, right, top = transform_bounds("EPSG:32631", "EPSG:3857", *bbox, densify_pts=101)
    gl, gbm, gr, gt = gb.bounds
    assert gl <= left < gl + 50
    assert gr - 50 < right <= gr
    assert gbm <= bottom < gbm + 50
    assert gt - 50 < top <= gt
    same = GeoBox.from_bbox(bbox, bbox_crs="EPSG:32631", crs="EPSG:32631", resolution=(20, 10))
    assert same.bounds == (600_000.0, 5_000_000.0, 620_000.0, 5_010_000.0)
    assert same.resolution == (20.0, -10.0)


# --- the warp plan shared with warped reads ------------------------------------------------------


def test_plan_warps_tiles_the_target_and_agrees_with_source_windows():
    src = GeoBox.from_bounds((600_000, 5_000_000, 660_000, 5_048_000), 1000, "EPSG:32631")
    dst = src.to_crs("EPSG:4326")
    ys = [20] * (dst.height // 20) + ([dst.height % 20] if dst.height % 20 else [])
    xs = [25] * (dst.width // 25) + ([dst.width % 25] if dst.width % 25 else [])
    plan = plan_warps(dst, src, ys, xs, resampling="cubic")
    assert len(plan) == len(ys) * len(xs)
    assert sum(c.grid.height * c.grid.width for c in plan) == dst.height * dst.width
    for chunk in plan:
        assert chunk.window == source_window(chunk.grid, src, resampling="cubic")
        if chunk.window is not None:
            r0, _, c0, _ = chunk.window
            assert chunk.source_grid(src).transform == src.transform @ Affine.translation(c0, r0)
    with pytest.raises(InvalidArgument, match="tile"):
        plan_warps(dst, src, [1], [1])


def test_pick_overview_is_the_coarsest_still_as_fine_as_the_output():
    assert pick_overview([2, 4, 8, 16], (1 / 5, 1 / 5)) == 1  # 4 <= 5 < 8
    assert pick_overview([2, 4, 8, 16], (1 / 4, 1 / 3)) == 0  # the finer axis decides: 3 < 4
    assert pick_overview([2, 4], (1 / 4, 1 / 4)) == 1
    assert pick_overview([2, 4], (0.9, 0.9)) is None
    assert pick_overview([], (0.1, 0.1)) is None


def test_overview_geobox_matches_gdals_overview_grid(real_data):
    path = real_data / "s2l2a_cog_29RKH_20200219" / "B04.tif"
    with rasterio.open(path) as src:
        base = GeoBox(src.shape, src.transform, src.crs)
        shapes = [(src.height // f + (src.height % f > 0), src.width // f + (src.width % f > 0)) for f in (2, 4)]
    for level, shape in enumerate(shapes):
        with rasterio.open(path, overview_level=level) as ov:
            assert ov.shape == shape
            assert overview_geobox(base, ov.shape).transform.almost_equals(ov.transform)
