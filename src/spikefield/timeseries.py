"""Behavioural time series (position and friends) attached to a Recording."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.ndimage import gaussian_filter1d

from .errors import RecordingError
from .intervals import contains

#: Units that mean "physical length"; anything else (``px``, ``unknown``) is uncalibrated.
LENGTH_UNITS = ("cm", "m", "mm")


def _readonly(arr: NDArray) -> NDArray:
    arr = np.array(arr, copy=True)
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True)
class TimeSeries:
    """A sampled behavioural variable, e.g. the animal's position.

    Parameters
    ----------
    timestamps : array, shape (T,)
        Sample times in seconds, non-decreasing (trackers repeat frames; duplicates are kept).
    values : array, shape (T, D) or (T,)
        The samples. A 1-D input becomes one column.
    unit : str
        Unit of ``values``: ``"cm"`` when the source says so, else ``"px"`` or ``"unknown"``.
    columns : tuple of str
        One name per column (``("x", "y")`` for 2-D position).
    valid : array of bool, shape (T,), optional
        False where the source marks the sample as not tracked. Invalid samples are kept (never
        dropped) and excluded from analyses by :meth:`valid_samples`.
    name : str
        Name of the series in its Recording (``"position"``).
    """

    timestamps: NDArray[np.float64]
    values: NDArray[np.float64]
    unit: str = "unknown"
    columns: tuple[str, ...] = ()
    valid: NDArray[np.bool_] | None = None
    name: str = "position"
    metadata: dict = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        where = f"time series {self.name!r}"
        t = np.asarray(self.timestamps, dtype=np.float64)
        v = np.asarray(self.values, dtype=np.float64)
        if v.ndim == 1:
            v = v[:, None]
        if t.ndim != 1 or v.ndim != 2 or v.shape[0] != t.shape[0]:
            raise RecordingError(
                f"{where}: expected timestamps of shape (T,) and values of shape (T, D); "
                f"got {t.shape} and {np.asarray(self.values).shape}."
            )
        if not np.all(np.isfinite(t)):
            raise RecordingError(f"{where}: timestamps contain NaN or inf; expected finite seconds.")
        if t.size > 1 and np.any(np.diff(t) < 0):
            i = int(np.flatnonzero(np.diff(t) < 0)[0])
            raise RecordingError(
                f"{where}: timestamps decrease at sample {i + 1} ({t[i]!r} -> {t[i + 1]!r}); "
                "expected non-decreasing times."
            )
        columns = tuple(self.columns) or tuple("xyz"[: v.shape[1]] if v.shape[1] <= 3 else
                                                (f"c{i}" for i in range(v.shape[1])))
        if len(columns) != v.shape[1]:
            raise RecordingError(
                f"{where}: {len(columns)} column names for {v.shape[1]} columns of values."
            )
        valid = None
        if self.valid is not None:
            valid = np.asarray(self.valid, dtype=bool)
            if valid.shape != t.shape:
                raise RecordingError(f"{where}: valid mask has shape {valid.shape}, expected {t.shape}.")
            valid = _readonly(valid)
        object.__setattr__(self, "timestamps", _readonly(t))
        object.__setattr__(self, "values", _readonly(v))
        object.__setattr__(self, "columns", columns)
        object.__setattr__(self, "valid", valid)

    # ------------------------------------------------------------------ basic views
    def __len__(self) -> int:
        return int(self.timestamps.shape[0])

    @property
    def n_dims(self) -> int:
        """Number of columns (1 for a linearised track, 2 for an open field)."""
        return int(self.values.shape[1])

    @property
    def is_calibrated(self) -> bool:
        """True when ``unit`` is a physical length (cm, m, mm)."""
        return self.unit in LENGTH_UNITS

    def valid_mask(self) -> NDArray[np.bool_]:
        """Samples that are tracked (all True when the source marks none invalid)."""
        valid = np.ones(len(self), dtype=bool) if self.valid is None else self.valid.copy()
        return valid & np.all(np.isfinite(self.values), axis=1)

    def __repr__(self) -> str:
        span = (f"{self.timestamps[0]:.3f}-{self.timestamps[-1]:.3f} s" if len(self) else "empty")
        return (f"TimeSeries({self.name!r}, {len(self)} samples x {self.columns}, unit={self.unit!r}, "
                f"{span}, {self.valid_mask().mean() * 100 if len(self) else 0:.1f}% valid)")

    # ------------------------------------------------------------------ derived series
    def scaled(self, factor: float, unit: str) -> TimeSeries:
        """Return a copy with ``values * factor`` in ``unit`` (e.g. px -> cm with 1/px_per_cm)."""
        if not np.isfinite(factor) or factor <= 0:
            raise RecordingError(f"scale factor must be a positive finite number, got {factor!r}.")
        return TimeSeries(self.timestamps, self.values * factor, unit=unit, columns=self.columns,
                          valid=self.valid, name=self.name, metadata=dict(self.metadata))

    def restrict(self, intervals: NDArray[np.float64]) -> TimeSeries:
        """Samples whose timestamps fall inside ``intervals`` (``(K, 2)`` seconds)."""
        keep = contains(intervals, self.timestamps)
        return TimeSeries(self.timestamps[keep], self.values[keep], unit=self.unit,
                          columns=self.columns,
                          valid=None if self.valid is None else self.valid[keep],
                          name=self.name, metadata=dict(self.metadata))

    def speed(self, smooth: float = 0.25) -> NDArray[np.float64]:
        """Speed in ``unit``/s at each sample (NaN where tracking is invalid).

        Positions are Gaussian-smoothed over ``smooth`` seconds (s.d.; 0 disables) within each
        run of valid samples before a central difference, so tracker jitter does not inflate
        speed.
        """
        t = self.timestamps
        out = np.full(len(self), np.nan)
        valid = self.valid_mask()
        if len(self) < 2:
            return out
        dt = float(np.median(np.diff(t))) if len(t) > 1 else 1.0
        # Runs of consecutive valid samples: smoothing never mixes tracked and untracked data.
        edges = np.flatnonzero(np.diff(np.r_[0, valid.astype(np.int8), 0]))
        for start, stop in zip(edges[::2], edges[1::2], strict=True):
            if stop - start < 2:
                continue
            xy = self.values[start:stop]
            if smooth > 0 and dt > 0:
                xy = gaussian_filter1d(xy, sigma=smooth / dt, axis=0, mode="nearest")
            tt = t[start:stop]
            # np.gradient fails on repeated timestamps; treat a zero step as one frame interval.
            step = np.maximum(np.gradient(tt), dt / 2 if dt > 0 else 1e-9)
            vel = np.gradient(xy, axis=0) / step[:, None]
            out[start:stop] = np.sqrt(np.sum(vel**2, axis=1))
        return out

    def at(self, times: ArrayLike) -> NDArray[np.float64]:
        """Values linearly interpolated at ``times`` (NaN outside the tracked span or at invalid
        samples' neighbourhood)."""
        times = np.asarray(times, dtype=np.float64)
        valid = self.valid_mask()
        out = np.full((times.shape[0], self.n_dims), np.nan)
        if valid.sum() < 2:
            return out
        tv = self.timestamps[valid]
        for d in range(self.n_dims):
            out[:, d] = np.interp(times, tv, self.values[valid, d], left=np.nan, right=np.nan)
        # Do not interpolate across untracked stretches: mark times whose nearest sample is invalid.
        nearest = np.clip(np.searchsorted(self.timestamps, times), 0, len(self) - 1)
        out[~valid[nearest]] = np.nan
        return out
