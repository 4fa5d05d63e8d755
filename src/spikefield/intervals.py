"""Interval arithmetic on ``(K, 2)`` arrays of ``(start, stop)`` times in seconds.

Epochs, time supports and raster segments are all sets of disjoint, sorted intervals; these
small pure functions are the one place that arithmetic lives.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .errors import RecordingError


def as_intervals(value: ArrayLike, *, name: str = "intervals") -> NDArray[np.float64]:
    """Validate and return intervals as a float64 ``(K, 2)`` array.

    Accepts one ``(start, stop)`` pair or a sequence of them. Intervals must be finite, have
    ``start < stop``, be sorted by start and not overlap; the user's order is never changed.

    Raises
    ------
    RecordingError
        Naming ``name`` and the first offending row.
    """
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise RecordingError(f"{name}: expected (start, stop) pairs in seconds, got {value!r}.") from exc
    if arr.ndim == 1 and arr.shape[0] == 2:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise RecordingError(
            f"{name}: expected an array of shape (K, 2) of (start, stop) times in seconds, "
            f"got shape {arr.shape}."
        )
    if not np.all(np.isfinite(arr)):
        row = int(np.flatnonzero(~np.isfinite(arr).all(axis=1))[0])
        raise RecordingError(f"{name}: row {row} is not finite ({arr[row].tolist()}).")
    bad = np.flatnonzero(arr[:, 1] <= arr[:, 0])
    if bad.size:
        r = int(bad[0])
        raise RecordingError(
            f"{name}: row {r} has stop <= start ({arr[r, 0]!r} >= {arr[r, 1]!r}); "
            "each interval must have start < stop."
        )
    if arr.shape[0] > 1:
        overlap = np.flatnonzero(arr[1:, 0] < arr[:-1, 1])
        if overlap.size:
            r = int(overlap[0]) + 1
            raise RecordingError(
                f"{name}: row {r} ({arr[r].tolist()}) starts before row {r - 1} "
                f"({arr[r - 1].tolist()}) ends; intervals must be sorted and must not overlap."
            )
    return arr


def intersect(a: NDArray[np.float64], b: NDArray[np.float64]) -> NDArray[np.float64]:
    """Intersection of two valid interval sets (each sorted, disjoint)."""
    out = []
    i = j = 0
    while i < len(a) and j < len(b):
        start = max(a[i, 0], b[j, 0])
        stop = min(a[i, 1], b[j, 1])
        if start < stop:
            out.append((start, stop))
        if a[i, 1] < b[j, 1]:
            i += 1
        else:
            j += 1
    return np.asarray(out, dtype=np.float64).reshape(-1, 2)


def contains(intervals: NDArray[np.float64], times: NDArray[np.float64]) -> NDArray[np.bool_]:
    """Boolean mask of ``times`` that fall in some closed ``[start, stop]`` of ``intervals``.

    Every interval is closed on the right, so that the last spike of a recording whose support
    ends at that spike is not lost. A consequence: a time exactly on the boundary shared by two
    adjacent epochs (``run`` = [0, 5], ``rest`` = [5, 10]) belongs to both.
    """
    if len(intervals) == 0:
        return np.zeros(times.shape, dtype=bool)
    k = np.searchsorted(intervals[:, 0], times, side="right") - 1
    inside = k >= 0
    kk = np.clip(k, 0, None)
    inside &= times <= intervals[kk, 1]
    return inside


def total_duration(intervals: NDArray[np.float64]) -> float:
    """Summed length of the intervals, in seconds."""
    return float(np.sum(intervals[:, 1] - intervals[:, 0])) if len(intervals) else 0.0
