"""Linearisation of a 2-D track trajectory, movement direction and laps on a linear track."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.ndimage import gaussian_filter1d

from ..errors import ValidationError
from ..timeseries import TimeSeries
from ._validation import fraction, positive

__all__ = ["linearize", "signed_velocity", "detect_laps"]


def _principal_axis(points: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Mean and unit first principal axis of ``points`` (sign fixed: largest component > 0)."""
    center = points.mean(axis=0)
    _, _, vt = np.linalg.svd(points - center, full_matrices=False)
    axis = vt[0]
    # The sign of an SVD axis is arbitrary; fix it so the same data always give the same direction.
    if axis[np.argmax(np.abs(axis))] < 0:
        axis = -axis
    return center, axis


def _project_on_polyline(points: NDArray[np.float64], polyline: NDArray[np.float64]) -> NDArray[np.float64]:
    """Arc length (from the polyline's first vertex) of each point's nearest point on the polyline."""
    a, b = polyline[:-1], polyline[1:]
    seg = b - a
    seg_len = np.linalg.norm(seg, axis=1)
    # (T, S) projection parameter of every point on every segment, clipped to the segment.
    rel = points[:, None, :] - a[None, :, :]
    u = np.clip(np.einsum("tsd,sd->ts", rel, seg) / seg_len**2, 0.0, 1.0)
    nearest = a[None] + u[..., None] * seg[None]
    dist = np.linalg.norm(points[:, None, :] - nearest, axis=2)
    best = np.argmin(dist, axis=1)
    start = np.concatenate([[0.0], np.cumsum(seg_len)[:-1]])
    rows = np.arange(points.shape[0])
    return start[best] + u[rows, best] * seg_len[best]


def linearize(position: TimeSeries, polyline: ArrayLike | None = None) -> TimeSeries:
    """Map a 2-D track trajectory onto one linear coordinate.

    Parameters
    ----------
    position : TimeSeries
        Position with two columns (x, y), any length unit.
    polyline : array of shape (M, 2), optional
        Vertices of the track's centre line in the same unit. Each sample is projected onto its
        nearest point on the polyline and the coordinate is the arc length from the first vertex.
        Without it the first principal axis of the valid samples is used, and the coordinate is
        shifted so the smallest valid value is 0 (positive direction: the axis component of
        largest magnitude increases).

    Returns
    -------
    TimeSeries
        One column ``"linear"`` in ``position.unit``; the valid mask is kept, and ``metadata``
        records the method (and the axis and centre for the principal-axis method).

    Examples
    --------
    >>> import numpy as np
    >>> from spikefield import TimeSeries
    >>> xy = TimeSeries(np.arange(3.0), [[0, 0], [3, 4], [6, 8]], unit="cm")
    >>> linearize(xy).values[:, 0].round(6).tolist()
    [0.0, 5.0, 10.0]
    """
    if not isinstance(position, TimeSeries):
        raise ValidationError(f"linearize: position must be a TimeSeries, got {type(position).__name__}.")
    if position.n_dims != 2:
        raise ValidationError(f"linearize: position must have 2 columns (x, y), got {position.n_dims}.")
    valid = position.valid_mask()
    if valid.sum() < 2:
        raise ValidationError(f"linearize: position has {int(valid.sum())} valid samples; need at least 2.")
    xy = position.values
    out = np.full(len(position), np.nan)
    if polyline is None:
        center, axis = _principal_axis(xy[valid])
        coordinate = (xy[valid] - center) @ axis
        offset = coordinate.min()
        out[valid] = coordinate - offset
        meta = {"linearization": "principal_axis", "axis": axis.tolist(),
                "origin": (center + offset * axis).tolist()}
    else:
        line = np.asarray(polyline, dtype=np.float64)
        if line.ndim != 2 or line.shape[1] != 2 or line.shape[0] < 2 or not np.all(np.isfinite(line)):
            raise ValidationError(f"linearize: polyline must be a finite (M, 2) array with M >= 2 vertices, "
                                  f"got shape {line.shape}.")
        if np.any(np.linalg.norm(np.diff(line, axis=0), axis=1) == 0):
            raise ValidationError("linearize: polyline has two identical consecutive vertices.")
        out[valid] = _project_on_polyline(xy[valid], line)
        meta = {"linearization": "polyline", "polyline": line.tolist()}
    return TimeSeries(position.timestamps, out, unit=position.unit, columns=("linear",),
                      valid=position.valid, name=position.name, metadata={**position.metadata, **meta})


def signed_velocity(position: TimeSeries, smooth: float = 0.25) -> NDArray[np.float64]:
    """Velocity (unit/s) of a 1-D position, NaN at invalid samples.

    Smoothed with a Gaussian of ``smooth`` seconds (s.d.) within runs of valid samples, like
    :meth:`TimeSeries.speed`, so a positive value means movement towards larger coordinates
    ("outbound") and a negative one towards smaller ("inbound").
    """
    if position.n_dims != 1:
        raise ValidationError(f"signed_velocity: position must be 1-D (linearise it first), "
                              f"got {position.n_dims} columns.")
    positive(smooth, "smooth", "signed_velocity", allow_zero=True)
    t, valid = position.timestamps, position.valid_mask()
    out = np.full(len(position), np.nan)
    if len(position) < 2:
        return out
    dt = float(np.median(np.diff(t)))
    edges = np.flatnonzero(np.diff(np.r_[0, valid.astype(np.int8), 0]))
    for start, stop in zip(edges[::2], edges[1::2], strict=True):
        if stop - start < 2:
            continue
        x = position.values[start:stop, 0]
        if smooth > 0 and dt > 0:
            x = gaussian_filter1d(x, sigma=smooth / dt, mode="nearest")
        step = np.maximum(np.gradient(t[start:stop]), dt / 2 if dt > 0 else 1e-9)
        out[start:stop] = np.gradient(x) / step
    return out


def detect_laps(position: TimeSeries, end_fraction: float = 0.15) -> NDArray[np.float64]:
    """Traversals of a linear track from one end zone to the other.

    The end zones are the lowest and highest ``end_fraction`` of the valid position range. A
    traversal starts when the animal last leaves one end zone and ends when it enters the other.

    Returns
    -------
    array of shape (K, 3)
        ``start`` (s), ``stop`` (s) and direction (+1 outbound towards larger coordinates, -1
        inbound), sorted by time.

    Examples
    --------
    >>> import numpy as np
    >>> from spikefield import TimeSeries
    >>> t = np.arange(0, 40, 0.1)
    >>> x = TimeSeries(t, 100 * np.abs(((t / 10) % 2) - 1), unit="cm")  # 10 s per traversal
    >>> detect_laps(x)[:, 2].tolist()
    [-1.0, 1.0, -1.0, 1.0]
    """
    if position.n_dims != 1:
        raise ValidationError(f"detect_laps: position must be 1-D (linearise it first), got {position.n_dims} columns.")
    fraction(end_fraction, "end_fraction", "detect_laps")
    if end_fraction >= 0.5:
        raise ValidationError(f"detect_laps: end_fraction must be < 0.5, got {end_fraction!r}.")
    valid = position.valid_mask()
    x, t = position.values[valid, 0], position.timestamps[valid]
    if x.size < 2:
        return np.zeros((0, 3))
    lo, hi = x.min(), x.max()
    low_cut, high_cut = lo + end_fraction * (hi - lo), hi - end_fraction * (hi - lo)
    zone = np.where(x <= low_cut, -1, np.where(x >= high_cut, 1, 0))
    laps = []
    last_zone, last_exit = 0, None
    for i in np.flatnonzero(zone != 0):
        if zone[i] != last_zone:
            if last_zone != 0 and last_exit is not None:
                laps.append((t[last_exit], t[i], float(zone[i])))
            last_zone = zone[i]
        last_exit = i
    return np.asarray(laps, dtype=np.float64).reshape(-1, 3)
