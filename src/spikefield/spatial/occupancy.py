"""Occupancy-normalised firing-rate maps (1-D and 2-D) from a Recording with position.

Every spike is given the position of its nearest position sample (as pynapple's
``value_from(mode="closest")`` does), and the same per-sample filter (valid tracking, epoch,
speed, direction) decides which samples count as occupancy and which spikes are counted, so
spikes and occupancy always come from the same time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.ndimage import gaussian_filter

from ..errors import ValidationError
from ..intervals import contains, intersect
from ..recording import Recording
from ..timeseries import TimeSeries
from ._validation import choice, positive
from .track import linearize as _linearize
from .track import signed_velocity

__all__ = ["RateMaps", "PositionSamples", "position_samples", "rate_maps", "spatial_bins", "smooth_maps"]

DIRECTIONS = (None, "outbound", "inbound")


@dataclass(frozen=True)
class PositionSamples:
    """Position samples of a recording after filtering, shared by maps, information and decoding.

    Attributes
    ----------
    times : (T,) sample times (s) of all samples inside the epoch.
    values : (T, D) positions (NaN where invalid).
    keep : (T,) True for samples that count (valid, in epoch, fast enough, right direction).
    sample_duration : float, seconds each kept sample stands for (median sampling interval).
    unit : position unit (``"cm"``, ``"px"``, ...).
    intervals : (K, 2) the epoch intervals (s) the samples were restricted to.
    """

    times: NDArray[np.float64]
    values: NDArray[np.float64]
    keep: NDArray[np.bool_]
    sample_duration: float
    unit: str
    intervals: NDArray[np.float64]

    def spike_sample(self, spikes: NDArray[np.float64], require_keep: bool = True) -> NDArray[np.int64]:
        """Index of each spike's nearest sample, or -1 when it is outside the epoch, in a tracking
        gap, or (with ``require_keep``) its sample is not kept."""
        t = self.times
        if t.size == 0:
            return np.full(spikes.shape, -1, dtype=np.int64)
        right = np.clip(np.searchsorted(t, spikes), 0, t.size - 1)
        left = np.clip(right - 1, 0, t.size - 1)
        nearest = np.where(np.abs(spikes - t[left]) <= np.abs(t[right] - spikes), left, right)
        # A spike far from any sample (a tracking gap) has no known position.
        ok = (np.abs(t[nearest] - spikes) <= 2.5 * self.sample_duration) & contains(self.intervals, spikes)
        if require_keep:
            ok &= self.keep[nearest]
        return np.where(ok, nearest, -1)


def _position_series(rec: Recording, linearize: bool | ArrayLike | None, where: str) -> TimeSeries:
    if not isinstance(rec, Recording):
        raise ValidationError(f"{where}: rec must be a spikefield Recording, got {type(rec).__name__}.")
    pos = rec.position
    if pos is None:
        raise ValidationError(f"{where}: the recording from {rec.source} has no 'position' series.")
    if linearize is None or linearize is False:
        return pos
    if pos.n_dims == 1:
        raise ValidationError(f"{where}: linearize was given but the position is already 1-D.")
    return _linearize(pos, polyline=None if linearize is True else linearize)


def position_samples(rec: Recording, *, epoch: str | ArrayLike | None = None, speed_threshold: float = 5.0,
                     direction: str | None = None, linearize: bool | ArrayLike | None = None,
                     speed_smooth: float = 0.25, where: str = "position_samples") -> PositionSamples:
    """Filter the position samples of ``rec`` (see :func:`rate_maps` for the arguments)."""
    pos = _position_series(rec, linearize, where)
    positive(speed_threshold, "speed_threshold", where, allow_zero=True)
    choice(direction, "direction", where, DIRECTIONS)
    intervals = rec.support if epoch is None else intersect(rec.support, rec.epoch_intervals(epoch))
    inside = contains(intervals, pos.timestamps)
    if inside.sum() < 2:
        raise ValidationError(f"{where}: fewer than 2 position samples fall inside epoch {epoch!r}.")
    t = pos.timestamps
    keep = pos.valid_mask()
    if speed_threshold > 0:
        with np.errstate(invalid="ignore"):
            keep &= pos.speed(smooth=speed_smooth) >= speed_threshold
    if direction is not None:
        if pos.n_dims != 1:
            raise ValidationError(f"{where}: direction={direction!r} needs 1-D position; pass linearize=True "
                                  "(principal axis) or linearize=<polyline> for a 2-D track.")
        velocity = signed_velocity(pos, smooth=speed_smooth)
        with np.errstate(invalid="ignore"):
            keep &= velocity > 0 if direction == "outbound" else velocity < 0
    values = np.where(pos.valid_mask()[:, None], pos.values, np.nan)[inside]
    dt = float(np.median(np.diff(t))) if t.size > 1 else 1.0
    return PositionSamples(t[inside], values, keep[inside], dt, pos.unit, intervals)


def spatial_bins(values: NDArray[np.float64], bin_size: float, bounds: ArrayLike | None,
                 where: str) -> tuple[NDArray[np.float64], ...]:
    """Bin edges per dimension: ``bin_size`` wide from the lower bound, covering the upper bound."""
    n_dims = values.shape[1]
    if bounds is None:
        finite = values[np.all(np.isfinite(values), axis=1)]
        if finite.shape[0] == 0:
            raise ValidationError(f"{where}: no valid position samples to set the spatial bounds.")
        bounds_arr = np.stack([finite.min(axis=0), finite.max(axis=0)], axis=1)
    else:
        bounds_arr = np.asarray(bounds, dtype=np.float64).reshape(-1, 2)
        if bounds_arr.shape[0] != n_dims or not np.all(bounds_arr[:, 1] > bounds_arr[:, 0]):
            raise ValidationError(f"{where}: bounds must be {n_dims} (low, high) pair(s) with low < high, "
                                  f"got {np.asarray(bounds).tolist()}.")
    edges = []
    for lo, hi in bounds_arr:
        n = max(1, int(np.ceil((hi - lo) / bin_size - 1e-9)))
        edges.append(lo + bin_size * np.arange(n + 1))
    return tuple(edges)


def bin_index(values: NDArray[np.float64], edges: tuple[NDArray[np.float64], ...]) -> NDArray[np.int64]:
    """Flat spatial-bin index of each row of ``values`` (-1 outside the bins or NaN)."""
    flat = np.zeros(values.shape[0], dtype=np.int64)
    ok = np.all(np.isfinite(values), axis=1)
    for d, e in enumerate(edges):
        x = values[:, d]
        with np.errstate(invalid="ignore"):
            ok &= (x >= e[0]) & (x <= e[-1])
            k = np.clip(np.floor((x - e[0]) / (e[1] - e[0])), 0, e.size - 2)
        flat = flat * (e.size - 1) + np.where(ok, k, 0).astype(np.int64)
    return np.where(ok, flat, -1)


def smooth_maps(arr: NDArray[np.float64], sigma_bins: float, n_spatial_dims: int) -> NDArray[np.float64]:
    """Gaussian smoothing over the last ``n_spatial_dims`` axes, zero outside the track.

    Zero padding (``mode="constant"``) is applied identically to spike counts and occupancy, so
    their ratio is a kernel-weighted rate estimate that is unbiased at the track ends.
    """
    if sigma_bins <= 0:
        return arr.astype(np.float64, copy=True)
    sigma = (0.0,) * (arr.ndim - n_spatial_dims) + (sigma_bins,) * n_spatial_dims
    return gaussian_filter(arr.astype(np.float64), sigma=sigma, mode="constant", cval=0.0, truncate=4.0)


@dataclass(frozen=True)
class RateMaps:
    """Firing-rate maps of a population.

    Attributes
    ----------
    maps : (N, *shape) float64
        Rate (Hz) per unit and spatial bin; NaN where occupancy is below ``min_occupancy``.
    spike_counts : (N, *shape) unsmoothed spike counts.
    occupancy : (*shape) unsmoothed time (s) spent in each bin.
    bin_edges : tuple of arrays, one per spatial dimension (position unit).
    unit : position unit (``"cm"``, ``"px"``, ...): every position and bin size is in it.
    unit_ids : (N,) the recording's unit ids.
    settings : the arguments that made the maps.
    """

    maps: NDArray[np.float64]
    spike_counts: NDArray[np.float64]
    occupancy: NDArray[np.float64]
    bin_edges: tuple[NDArray[np.float64], ...]
    unit: str
    unit_ids: NDArray[Any]
    settings: dict = field(default_factory=dict)

    @property
    def n_units(self) -> int:
        return int(self.maps.shape[0])

    @property
    def n_dims(self) -> int:
        return len(self.bin_edges)

    @property
    def shape(self) -> tuple[int, ...]:
        """Number of spatial bins per dimension."""
        return tuple(e.size - 1 for e in self.bin_edges)

    @property
    def bin_centers(self) -> tuple[NDArray[np.float64], ...]:
        return tuple(0.5 * (e[1:] + e[:-1]) for e in self.bin_edges)

    @property
    def bin_size(self) -> float:
        return float(self.bin_edges[0][1] - self.bin_edges[0][0])

    @property
    def mask(self) -> NDArray[np.bool_]:
        """Spatial bins with enough occupancy (the bins where ``maps`` is defined)."""
        return np.isfinite(self.maps[0]) if self.n_units else self.occupancy > 0

    def peak_rate(self) -> NDArray[np.float64]:
        """Maximum rate (Hz) of each unit's map (NaN for an all-NaN map)."""
        flat = self.maps.reshape(self.n_units, -1)
        out = np.full(self.n_units, np.nan)
        ok = np.any(np.isfinite(flat), axis=1)
        out[ok] = np.nanmax(flat[ok], axis=1)
        return out

    def peak_position(self) -> NDArray[np.float64]:
        """Position (bin centre, position unit) of each unit's maximum rate.

        Shape (N,) for 1-D maps and (N, 2) for 2-D maps; NaN for units that never fire in the
        mapped bins.
        """
        flat = np.where(np.isfinite(self.maps), self.maps, -np.inf).reshape(self.n_units, -1)
        arg = np.argmax(flat, axis=1)
        silent = ~(flat.max(axis=1) > 0)
        coords = np.unravel_index(arg, self.shape)
        out = np.stack([c[i] for c, i in zip(self.bin_centers, coords, strict=True)], axis=1)
        out[silent] = np.nan
        return out[:, 0] if self.n_dims == 1 else out

    def order(self) -> NDArray[np.int64]:
        """Unit indices sorted by peak position (1-D; silent units last)."""
        if self.n_dims != 1:
            raise ValidationError("RateMaps.order: ordering by peak needs 1-D maps.")
        peak = self.peak_position()
        return np.argsort(np.where(np.isfinite(peak), peak, np.inf), kind="stable")

    def mean_rate(self) -> NDArray[np.float64]:
        """Occupancy-weighted mean rate (Hz) of each unit over the mapped bins."""
        weights = np.where(self.mask, self.occupancy, 0.0)
        return np.nansum(self.maps * weights, axis=tuple(range(1, self.maps.ndim))) / weights.sum()


def rate_maps(rec: Recording, bin_size: float = 5.0, *, speed_threshold: float = 5.0, smooth: float = 0.0,
              min_occupancy: float = 0.0, direction: str | None = None, epoch: str | ArrayLike | None = None,
              linearize: bool | ArrayLike | None = None, bounds: ArrayLike | None = None,
              speed_smooth: float = 0.25) -> RateMaps:
    """Occupancy-normalised firing-rate maps, 1-D or 2-D.

    Spike counts and occupancy are binned, each smoothed with the same Gaussian, and divided
    (``rate = G*spikes / G*occupancy``), the estimator of Skaggs et al. (1996); bins whose raw
    occupancy is zero or below ``min_occupancy`` are NaN.

    Parameters
    ----------
    rec : Recording
        Must have a ``position`` series.
    bin_size : float
        Spatial bin width in position units (cm when the position is calibrated; pixels for an
        uncalibrated tracker: ``rec.position.unit`` is reported as ``RateMaps.unit``).
    speed_threshold : float
        Keep only samples (and their spikes) where the speed is at least this (position units/s);
        0 keeps all.
    smooth : float
        Gaussian s.d. in position units (0: no smoothing).
    min_occupancy : float
        Bins with less occupancy (s) are masked.
    direction : None, "outbound" or "inbound"
        Linear tracks only: keep samples moving towards larger (outbound) or smaller (inbound)
        linear coordinates.
    epoch : str or (K, 2) array, optional
        Restrict to an epoch (name or intervals in s).
    linearize : bool or (M, 2) array, optional
        For 2-D tracks: ``True`` projects on the principal axis, an array is a polyline of the
        track (see :func:`~spikefield.spatial.linearize`).
    bounds : sequence of (low, high), optional
        Spatial extent per dimension; default: range of all valid samples of the recording.
    speed_smooth : float
        Smoothing (s) of position before differentiating for speed and direction.

    Returns
    -------
    RateMaps

    Examples
    --------
    >>> import spikefield as sf
    >>> sim = sf.simulate.place_cells(n_cells=10, run_duration=120, seed=0)
    >>> rm = sf.spatial.rate_maps(sim.recording, bin_size=5.0, speed_threshold=5.0, smooth=5.0)
    >>> rm.maps.shape, rm.unit
    ((10, 40), 'cm')
    """
    where = "rate_maps"
    positive(bin_size, "bin_size", where)
    positive(smooth, "smooth", where, allow_zero=True)
    positive(min_occupancy, "min_occupancy", where, allow_zero=True)
    samples = position_samples(rec, epoch=epoch, speed_threshold=speed_threshold, direction=direction,
                               linearize=linearize, speed_smooth=speed_smooth, where=where)
    full = _position_series(rec, linearize, where)
    edges = spatial_bins(np.where(full.valid_mask()[:, None], full.values, np.nan), bin_size, bounds, where)
    return maps_from_samples(rec.spike_times, rec.unit_ids, samples, edges, smooth=smooth,
                             min_occupancy=min_occupancy,
                             settings=dict(bin_size=bin_size, speed_threshold=speed_threshold, smooth=smooth,
                                           min_occupancy=min_occupancy, direction=direction,
                                           epoch=epoch if isinstance(epoch, str | None) else "intervals",
                                           linearize=linearize if isinstance(linearize, bool | None) else "polyline"))


def maps_from_samples(spike_times: tuple[NDArray[np.float64], ...], unit_ids: NDArray[Any], samples: PositionSamples,
                      edges: tuple[NDArray[np.float64], ...], *, smooth: float, min_occupancy: float,
                      settings: dict | None = None) -> RateMaps:
    """Build :class:`RateMaps` from already filtered samples (used by decoding's folds)."""
    shape = tuple(e.size - 1 for e in edges)
    n_bins = int(np.prod(shape))
    sample_bin = np.where(samples.keep, bin_index(samples.values, edges), -1)
    occupancy = np.bincount(sample_bin[sample_bin >= 0], minlength=n_bins) * samples.sample_duration
    counts = np.zeros((len(spike_times), n_bins))
    for i, train in enumerate(spike_times):
        idx = samples.spike_sample(np.asarray(train))
        b = sample_bin[idx[idx >= 0]]
        counts[i] = np.bincount(b[b >= 0], minlength=n_bins)
    counts = counts.reshape(len(spike_times), *shape)
    occupancy = occupancy.reshape(shape)
    sigma = smooth / (edges[0][1] - edges[0][0])
    with np.errstate(invalid="ignore", divide="ignore"):
        maps = smooth_maps(counts, sigma, len(shape)) / smooth_maps(occupancy, sigma, len(shape))
    masked = (occupancy <= 0) | (occupancy < min_occupancy)
    maps[:, masked] = np.nan
    return RateMaps(maps, counts, occupancy, edges, samples.unit, np.asarray(unit_ids), dict(settings or {}))
