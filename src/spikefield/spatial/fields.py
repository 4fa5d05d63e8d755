"""Place-field detection (1-D and 2-D) and grid score of 2-D rate maps."""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy import ndimage
from scipy.signal import fftconvolve

from ..errors import ValidationError
from ._validation import fraction, positive, positive_int
from .occupancy import RateMaps

__all__ = ["place_fields", "autocorrelogram", "grid_score"]


def place_fields(maps: RateMaps, *, threshold: float = 0.2, min_peak_rate: float = 1.0,
                 min_size: float | None = None, max_size: float | None = None) -> pd.DataFrame:
    """Place fields: contiguous regions where a unit's rate exceeds a fraction of its peak.

    A region is a connected set of bins (neighbours along an axis) with rate >= ``threshold``
    x the unit's peak rate; it is a field when its own peak is at least ``min_peak_rate`` and
    its size is within ``[min_size, max_size]``. Masked (NaN) bins split fields.

    Parameters
    ----------
    maps : RateMaps
        1-D or 2-D maps (smoothing them first is advisable).
    threshold : float in (0, 1)
        Fraction of the unit's peak rate.
    min_peak_rate : float
        Hz; weaker regions are ignored.
    min_size, max_size : float, optional
        Size limits in position units (length for 1-D, area in unit^2 for 2-D).

    Returns
    -------
    pandas.DataFrame
        One row per field: ``unit_id``, ``unit_index``, ``field`` (0 = strongest of the unit),
        ``peak_rate_hz``, ``center`` (position of the field's peak; ``center_x``/``center_y`` in
        2-D), ``center_of_mass`` (rate-weighted; ``_x``/``_y`` in 2-D), ``size``, and for 1-D
        ``start``/``stop`` (bin edges). ``attrs["unit"]`` is the position unit.

    Examples
    --------
    >>> import spikefield as sf
    >>> sim = sf.simulate.place_cells(n_cells=5, run_duration=200, fraction_place=1.0, seed=3)
    >>> rm = sf.spatial.rate_maps(sim.recording, bin_size=4.0, smooth=4.0)
    >>> fields = sf.spatial.place_fields(rm)
    >>> fields.groupby("unit_index").size().tolist()
    [1, 1, 1, 1, 1]
    """
    where = "place_fields"
    if not isinstance(maps, RateMaps):
        raise ValidationError(f"{where}: maps must be a RateMaps (from rate_maps), got {type(maps).__name__}.")
    fraction(threshold, "threshold", where)
    positive(min_peak_rate, "min_peak_rate", where, allow_zero=True)
    lo = 0.0 if min_size is None else positive(min_size, "min_size", where, allow_zero=True)
    hi = np.inf if max_size is None else positive(max_size, "max_size", where)
    bin_measure = float(np.prod([e[1] - e[0] for e in maps.bin_edges]))
    centers = np.meshgrid(*maps.bin_centers, indexing="ij")
    rows = []
    for unit in range(maps.n_units):
        rate = maps.maps[unit]
        if not np.any(np.isfinite(rate)) or not np.nanmax(rate) > 0:
            continue
        above = np.nan_to_num(rate, nan=-np.inf) >= threshold * np.nanmax(rate)
        labels, n_regions = ndimage.label(above)
        unit_fields = []
        for region in range(1, n_regions + 1):
            inside = labels == region
            size = inside.sum() * bin_measure
            peak = float(rate[inside].max())
            if peak < min_peak_rate or not (lo <= size <= hi):
                continue
            peak_at = np.unravel_index(np.argmax(np.where(inside, rate, -np.inf)), rate.shape)
            weights = rate[inside] / rate[inside].sum()
            row = {"unit_id": maps.unit_ids[unit], "unit_index": unit, "peak_rate_hz": peak, "size": size}
            if maps.n_dims == 1:
                idx = np.flatnonzero(inside)
                row.update(center=float(maps.bin_centers[0][peak_at[0]]),
                           center_of_mass=float(np.sum(weights * maps.bin_centers[0][idx])),
                           start=float(maps.bin_edges[0][idx[0]]), stop=float(maps.bin_edges[0][idx[-1] + 1]))
            else:
                for axis, name in enumerate("xy"[: maps.n_dims]):
                    row[f"center_{name}"] = float(maps.bin_centers[axis][peak_at[axis]])
                    row[f"center_of_mass_{name}"] = float(np.sum(weights * centers[axis][inside]))
            unit_fields.append(row)
        unit_fields.sort(key=lambda r: -r["peak_rate_hz"])
        for k, row in enumerate(unit_fields):
            rows.append({**row, "field": k})
    columns = ["unit_id", "unit_index", "field", "peak_rate_hz"]
    columns += (["center", "center_of_mass", "size", "start", "stop"] if maps.n_dims == 1 else
                ["center_x", "center_y", "center_of_mass_x", "center_of_mass_y", "size"])
    table = pd.DataFrame(rows, columns=columns)
    table.attrs["unit"] = maps.unit
    return table


def autocorrelogram(rate_map: NDArray[np.float64], min_overlap: int = 20) -> NDArray[np.float64]:
    """Spatial autocorrelogram of a 2-D rate map (Pearson r at every lag; Sargolini et al. 2006).

    NaN bins are left out of every sum, so the correlation at a lag uses only pairs of defined
    bins; lags with fewer than ``min_overlap`` pairs are NaN. Shape ``(2 nx - 1, 2 ny - 1)``,
    zero lag at the centre. Computed with FFT convolutions of the masked sums.
    """
    rate_map = np.asarray(rate_map, dtype=np.float64)
    if rate_map.ndim != 2:
        raise ValidationError(f"autocorrelogram: rate_map must be 2-D, got shape {rate_map.shape}.")
    positive_int(min_overlap, "min_overlap", "autocorrelogram")
    mask = np.isfinite(rate_map).astype(np.float64)
    x = np.where(mask > 0, rate_map, 0.0)

    def corr(a, b):
        return fftconvolve(a, b[::-1, ::-1], mode="full")

    n = np.round(corr(mask, mask))
    sx, sy = corr(x, mask), corr(mask, x)
    sxy, sxx, syy = corr(x, x), corr(x * x, mask), corr(mask, x * x)
    with np.errstate(invalid="ignore", divide="ignore"):
        numerator = n * sxy - sx * sy
        denominator = np.sqrt(np.clip(n * sxx - sx**2, 0, None) * np.clip(n * syy - sy**2, 0, None))
        r = numerator / denominator
    r[(n < min_overlap) | ~(denominator > 1e-12 * np.maximum(n, 1) ** 2)] = np.nan
    return r


def _ring_correlations(acorr: NDArray[np.float64], radius: NDArray[np.float64], inner: float,
                       outers: NDArray[np.float64], angle: float) -> NDArray[np.float64]:
    """Pearson r between ``acorr`` and its rotation by ``angle`` within ``inner <= radius <= outer``
    for every outer radius at once: one rotation, then cumulative sums over sorted radius."""
    filled = np.nan_to_num(acorr)
    defined = np.isfinite(acorr)
    rotated = ndimage.rotate(filled, angle, reshape=False, order=1)
    rotated_defined = ndimage.rotate(defined.astype(np.float64), angle, reshape=False, order=1) > 0.99
    use = defined & rotated_defined & (radius >= inner)
    order = np.argsort(radius[use], kind="stable")
    r_sorted = radius[use][order]
    a, b = acorr[use][order], rotated[use][order]
    sums = np.cumsum(np.stack([np.ones_like(a), a, b, a * a, b * b, a * b]), axis=1)
    k = np.searchsorted(r_sorted, outers, side="right") - 1
    out = np.full(outers.shape, np.nan)
    ok = k >= 3
    n, sa, sb, saa, sbb, sab = sums[:, k[ok]]
    with np.errstate(invalid="ignore", divide="ignore"):
        out[ok] = (n * sab - sa * sb) / np.sqrt((n * saa - sa**2) * (n * sbb - sb**2))
    return out


def grid_score(maps: RateMaps | NDArray[np.float64], min_overlap: int = 20) -> NDArray[np.float64]:
    """Grid score of 2-D rate maps (hexagonal rotational symmetry of the autocorrelogram).

    ``score = min(r60, r120) - max(r30, r90, r150)``, where ``r_a`` correlates the
    autocorrelogram with itself rotated by ``a`` degrees inside an annulus that excludes the
    central peak (inner radius: first radius where the radially averaged autocorrelogram
    falls below zero). As in Langston et al. (2010) the outer radius is swept and the largest
    score kept. Scores range from -2 to 2; grid cells typically exceed ~0.3.

    Parameters
    ----------
    maps : RateMaps with 2-D maps, or an array (nx, ny) or (N, nx, ny) of rates (NaN masked).

    Returns
    -------
    array (N,) of grid scores (NaN where undefined).

    Examples
    --------
    >>> import numpy as np
    >>> x, y = np.meshgrid(np.arange(40.0), np.arange(40.0), indexing="ij")
    >>> k = [4 * np.pi / (np.sqrt(3) * 12) * np.array([np.cos(a), np.sin(a)]) for a in (0, np.pi / 3, 2 * np.pi / 3)]
    >>> hexagonal = sum(np.cos(v[0] * x + v[1] * y) for v in k)
    >>> bool(grid_score(hexagonal)[0] > 0.8)
    True
    """
    arr = maps.maps if isinstance(maps, RateMaps) else np.asarray(maps, dtype=np.float64)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3:
        raise ValidationError(f"grid_score: maps must be 2-D rate maps (N, nx, ny), got shape {arr.shape}.")
    scores = np.full(arr.shape[0], np.nan)
    for unit, rate in enumerate(arr):
        acorr = autocorrelogram(rate, min_overlap=min_overlap)
        cx, cy = (np.array(acorr.shape) - 1) / 2
        gx, gy = np.meshgrid(np.arange(acorr.shape[0]) - cx, np.arange(acorr.shape[1]) - cy, indexing="ij")
        radius = np.hypot(gx, gy)
        max_radius = int(min(acorr.shape) // 2)
        ring_index = np.floor(radius).astype(np.int64)
        finite = np.isfinite(acorr) & (ring_index < max_radius)
        totals = np.bincount(ring_index[finite], weights=acorr[finite], minlength=max_radius)
        counts = np.bincount(ring_index[finite], minlength=max_radius)
        with np.errstate(invalid="ignore", divide="ignore"):
            profile = totals / counts
        below = np.flatnonzero(profile < 0)
        if below.size == 0:
            continue
        inner = int(below[0])
        outers = np.arange(inner + 3, max_radius + 1, dtype=np.float64)
        if outers.size == 0:
            continue
        r = {angle: _ring_correlations(acorr, radius, inner, outers, angle) for angle in (30, 60, 90, 120, 150)}
        score = np.minimum(r[60], r[120]) - np.maximum(np.maximum(r[30], r[90]), r[150])
        scores[unit] = np.nanmax(score) if np.any(np.isfinite(score)) else np.nan
    return scores
