"""PNG pictures of one band on its grid.

With matplotlib (the ``plot`` extra; imported only here, only when drawing)
a picture has georeferenced axes, a colour bar and a title. Without it,
:func:`render` writes a plain greyscale PNG through GDAL's PNG driver
(rasterio, always installed): the same stretch, nodata transparent, the title
kept as the PNG's ``Title`` text, no axes.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from pyr.cli._common import crs_text, units_of
from pyr.errors import InvalidArgument, WriteError
from pyr.geobox import GeoBox

__all__ = ["check_png_path", "decimated_geobox", "has_matplotlib", "render"]


def check_png_path(out: str | Path) -> Path:
    """``out`` as a path, refusing a non-``.png`` name or a missing folder before any work is done."""
    path = Path(out)
    if path.suffix.lower() != ".png":
        raise InvalidArgument(f"{str(path)!r}: the picture must be a .png file.")
    if not path.parent.is_dir():
        raise WriteError(f"Cannot write {str(path)!r}: the folder {str(path.parent)!r} does not exist.")
    return path


def has_matplotlib() -> bool:
    """Whether matplotlib can be imported (else :func:`render` writes plain greyscale pictures)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def decimated_geobox(geobox: GeoBox, step: int) -> GeoBox:
    """The grid of every ``step``-th cell of ``geobox`` (cells ``step`` times larger)."""
    from affine import Affine

    h, w = geobox.shape
    return GeoBox((-(-h // step), -(-w // step)), geobox.transform @ Affine.scale(step), geobox.crs)


def _axes_scale(geobox: GeoBox) -> tuple[float, str]:
    units = units_of(geobox.crs)
    left, bottom, right, top = geobox.bounds
    if units == "m" and max(right - left, top - bottom) >= 5000:
        return 1000.0, "km"
    return 1.0, units


def _stretch(valid: np.ndarray, stretch: tuple[float, float]) -> tuple[float, float]:
    """The colour range: the ``stretch`` percentiles, clipped to keep outliers from flattening the picture.

    No wider than 3 interquartile ranges from the median and, for
    non-negative data, no higher than 4 times the median.

    Bright outliers covering more than the top percentiles (clouds over a
    dark landscape) saturate instead of squashing everything else to black.
    """
    sample = valid if valid.size <= 4_000_000 else valid[:: valid.size // 4_000_000 + 1]
    p_lo, q1, med, q3, p_hi = (float(v) for v in np.percentile(sample, [stretch[0], 25, 50, 75, stretch[1]]))
    spread = 3 * (q3 - q1)
    if spread <= 0:
        return p_lo, p_hi
    lo, hi = max(p_lo, med - spread), min(p_hi, med + spread)
    if p_lo >= 0 and med > 0:  # reflectance-like: clouds can fill a third of a date, cap at 4 x the median
        hi = min(hi, 4 * med)
    return lo, hi


def render(
    values: np.ndarray,
    geobox: GeoBox,
    out: str | Path,
    *,
    title: str,
    label: str,
    cmap: str = "gray",
    stretch: tuple[float, float] = (2.0, 98.0),
) -> tuple[int, int]:
    """Draw ``values`` (2-D, NaN where there is no data) on ``geobox`` into the PNG ``out``.

    The colour scale stretches the ``stretch`` percentiles of the valid
    values; axes are georeferenced (easting/northing or longitude/latitude,
    with the CRS named) for north-up grids, pixel numbers otherwise.
    Without matplotlib the picture is plain grey (see the module docstring)
    and ``cmap`` must be ``"gray"``. Returns the picture's ``(width, height)``
    in pixels.
    """
    path = check_png_path(out)
    arr = np.asarray(values, dtype="float64")
    valid = arr[np.isfinite(arr)]
    if valid.size:
        lo, hi = _stretch(valid, stretch)
        if hi <= lo:
            lo, hi = lo - 0.5, hi + 0.5
    else:
        lo, hi = 0.0, 1.0
        title += " (no valid pixels: all nodata)"
    if not has_matplotlib():
        if cmap != "gray":
            raise InvalidArgument(
                f"cmap={cmap!r}: colour maps need matplotlib (pip install 'pyr[plot]'); without it pictures are gray."
            )
        return _render_plain(arr, lo, hi, path, title=title)
    from matplotlib import colormaps
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    h, w = arr.shape
    aspect = h / max(w, 1)
    fig = Figure(figsize=(9.0, float(np.clip(7.2 * aspect + 1.2, 3.5, 12.0))), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    if cmap not in colormaps:
        raise InvalidArgument(f"cmap={cmap!r}: not a matplotlib colour map (e.g. gray, viridis, magma).")
    colours = colormaps[cmap].with_extremes(bad=(1.0, 1.0, 1.0, 0.0))
    kwargs: dict[str, Any] = {"cmap": colours, "vmin": lo, "vmax": hi, "interpolation": "antialiased"}
    t = geobox.transform
    if geobox.is_axis_aligned:
        scale, unit = _axes_scale(geobox)
        left, bottom, right, top = geobox.bounds
        kwargs["extent"] = (left / scale, right / scale, bottom / scale, top / scale)
        kwargs["origin"] = "upper" if t.e < 0 else "lower"
        if units_of(geobox.crs) == "deg":
            xlab, ylab = f"longitude ({unit})", f"latitude ({unit})"
        else:
            xlab, ylab = f"easting ({unit})", f"northing ({unit})"
        ax.set_xlabel(f"{xlab}, {crs_text(geobox.crs)}")
        ax.set_ylabel(ylab)
        ax.ticklabel_format(useOffset=False, style="plain")
    else:
        ax.set_xlabel("column (grid is rotated or not georeferenced)")
        ax.set_ylabel("row")
    image = ax.imshow(arr, **kwargs)
    bar = fig.colorbar(image, ax=ax, shrink=0.85, extend="both")
    bar.set_label(label)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    try:
        fig.savefig(path, facecolor="white")
    except OSError as err:
        raise WriteError(f"Cannot write {str(path)!r}: {err}") from err
    width, height = fig.canvas.get_width_height()
    return int(width), int(height)


def _render_plain(arr: np.ndarray, lo: float, hi: float, path: Path, *, title: str) -> tuple[int, int]:
    """``arr`` stretched from ``lo..hi`` to grey 0..255, NaN transparent, as a 2-band (grey, alpha) PNG."""
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning

    finite = np.isfinite(arr)
    grey = np.zeros(arr.shape, dtype="uint8")
    grey[finite] = np.round(np.clip((arr[finite] - lo) / (hi - lo), 0.0, 1.0) * 255).astype("uint8")
    alpha = np.where(finite, 255, 0).astype("uint8")
    h, w = arr.shape
    # No georeferencing and no .aux.xml sidecar: the picture is the one file asked for.
    with rasterio.Env(GDAL_PAM_ENABLED="NO"), warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        try:
            text = title.replace("\n", " - ")  # GDAL's PNG driver writes TITLE as the PNG text "Title"
            with rasterio.open(path, "w", driver="PNG", width=w, height=h, count=2, dtype="uint8", TITLE=text) as dst:
                dst.write(np.stack([grey, alpha]))
        except OSError as err:
            raise WriteError(f"Cannot write {str(path)!r}: {err}") from err
    return int(w), int(h)
