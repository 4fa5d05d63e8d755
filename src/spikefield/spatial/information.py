"""Spatial information (Skaggs), sparsity, shuffle significance and map stability."""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from ..errors import ValidationError
from ..intervals import intersect
from ..recording import Recording
from ._validation import choice, positive, positive_int
from .occupancy import _position_series, bin_index, position_samples, rate_maps, smooth_maps, spatial_bins
from .track import detect_laps

__all__ = ["skaggs_information", "sparsity", "spatial_information", "stability"]


def _occupancy_probability(maps: NDArray[np.float64], occupancy: NDArray[np.float64], n_spatial: int):
    axes = tuple(range(maps.ndim - n_spatial, maps.ndim))
    valid = np.isfinite(maps)
    p = np.where(valid, occupancy, 0.0)
    p = p / p.sum(axis=axes, keepdims=True)
    rate = np.where(valid, maps, 0.0)
    return p, rate, axes


def skaggs_information(maps: NDArray[np.float64], occupancy: NDArray[np.float64],
                      n_spatial_dims: int | None = None) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Skaggs et al. (1993) spatial information of rate maps.

    ``I_s = Σ_i p_i λ_i log2(λ_i / λ̄)`` (bits/s) and ``I = I_s / λ̄`` (bits/spike), with
    ``p_i`` the occupancy probability of bin ``i`` over the bins where ``maps`` is finite and
    ``λ̄ = Σ_i p_i λ_i``.

    Parameters
    ----------
    maps : (..., *spatial) rates (Hz), NaN where masked; leading axes (units, shuffles) broadcast.
    occupancy : (*spatial) time (s) per bin.
    n_spatial_dims : number of trailing spatial axes (default ``occupancy.ndim``).

    Returns
    -------
    bits_per_spike, bits_per_second : arrays of the leading shape (NaN for a silent unit).

    Examples
    --------
    >>> import numpy as np
    >>> bits, _ = skaggs_information(np.array([[2.0, 0.0]]), np.array([1.0, 1.0]))
    >>> float(bits[0])  # fires in half of the track: exactly 1 bit per spike
    1.0
    """
    n_spatial = occupancy.ndim if n_spatial_dims is None else n_spatial_dims
    p, rate, axes = _occupancy_probability(maps, occupancy, n_spatial)
    mean = np.sum(p * rate, axis=axes, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = rate / mean
        terms = np.where(rate > 0, p * rate * np.log2(ratio), 0.0)
    bits_per_second = terms.sum(axis=axes)
    mean = np.squeeze(mean, axis=axes)
    with np.errstate(divide="ignore", invalid="ignore"):
        bits_per_spike = np.where(mean > 0, bits_per_second / mean, np.nan)
    return bits_per_spike, np.where(mean > 0, bits_per_second, np.nan)


def sparsity(maps: NDArray[np.float64], occupancy: NDArray[np.float64],
             n_spatial_dims: int | None = None) -> NDArray[np.float64]:
    """Skaggs sparsity ``(Σ p_i λ_i)^2 / Σ p_i λ_i^2`` in (0, 1]; small = compact field.

    Examples
    --------
    >>> import numpy as np
    >>> float(sparsity(np.array([[2.0, 0.0, 0.0, 0.0]]), np.ones(4))[0])
    0.25
    """
    n_spatial = occupancy.ndim if n_spatial_dims is None else n_spatial_dims
    p, rate, axes = _occupancy_probability(maps, occupancy, n_spatial)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.sum(p * rate, axis=axes) ** 2 / np.sum(p * rate**2, axis=axes)


def spatial_information(rec: Recording, bin_size: float = 5.0, *, n_shuffles: int = 500, min_shift: float = 20.0,
                        seed: int | None = 0, speed_threshold: float = 5.0, smooth: float = 0.0,
                        min_occupancy: float = 0.0, direction: str | None = None,
                        epoch: str | ArrayLike | None = None, linearize: bool | ArrayLike | None = None,
                        bounds: ArrayLike | None = None, shuffle_chunk: int = 100) -> pd.DataFrame:
    """Spatial information of every unit with a circular-shift shuffle test.

    Each shuffle shifts a unit's spikes circularly in time against the position samples of the
    epoch by a random offset of at least ``min_shift`` seconds (the same offsets for every
    unit), rebuilds the rate map with identical settings and recomputes the information. The
    p-value is ``(1 + #{shuffle >= observed}) / (1 + n_shuffles)``. All shuffles of a unit are
    binned at once (one ``bincount`` over shuffle x bin).

    Parameters
    ----------
    rec, bin_size, speed_threshold, smooth, min_occupancy, direction, epoch, linearize, bounds
        As in :func:`rate_maps`.
    n_shuffles : int
        Number of circular shifts (0 skips the test; p-values are then NaN).
    min_shift : float
        Smallest shift (s) in either direction.
    seed : int or None
        Seed of the shuffle offsets (a private ``numpy.random.Generator``).
    shuffle_chunk : int
        Shuffles processed together (memory ~ chunk x units x bins).

    Returns
    -------
    pandas.DataFrame
        One row per unit (index ``unit_id``): ``bits_per_spike``, ``bits_per_second``,
        ``p_value``, ``sparsity``, ``mean_rate_hz``, ``peak_rate_hz``, ``n_spikes`` (spikes used).
        ``attrs["unit"]`` is the position unit.

    Examples
    --------
    >>> import spikefield as sf
    >>> sim = sf.simulate.place_cells(n_cells=8, run_duration=120, fraction_place=1.0, seed=1)
    >>> table = sf.spatial.spatial_information(sim.recording, bin_size=5.0, n_shuffles=50, seed=0)
    >>> bool((table["p_value"] < 0.05).all())
    True
    """
    where = "spatial_information"
    n_shuffles = positive_int(n_shuffles, "n_shuffles", where, minimum=0)
    positive(min_shift, "min_shift", where, allow_zero=True)
    shuffle_chunk = positive_int(shuffle_chunk, "shuffle_chunk", where)
    observed = rate_maps(rec, bin_size, speed_threshold=speed_threshold, smooth=smooth, min_occupancy=min_occupancy,
                         direction=direction, epoch=epoch, linearize=linearize, bounds=bounds)
    n_spatial = observed.n_dims
    bits, bits_s = skaggs_information(observed.maps, observed.occupancy)
    table = pd.DataFrame({
        "bits_per_spike": bits, "bits_per_second": bits_s, "p_value": np.nan,
        "sparsity": sparsity(observed.maps, observed.occupancy), "mean_rate_hz": observed.mean_rate(),
        "peak_rate_hz": observed.peak_rate(),
        "n_spikes": observed.spike_counts.reshape(observed.n_units, -1).sum(axis=1).astype(np.int64),
    }, index=pd.Index(observed.unit_ids, name="unit_id"))
    table.attrs["unit"] = observed.unit
    if n_shuffles == 0:
        return table
    samples = position_samples(rec, epoch=epoch, speed_threshold=speed_threshold, direction=direction,
                               linearize=linearize, where=where)
    n_samples = samples.times.size
    shift_min = int(np.ceil(min_shift / samples.sample_duration))
    if n_samples - 2 * shift_min < 1:
        raise ValidationError(f"{where}: the epoch ({n_samples * samples.sample_duration:.1f} s) is too short "
                              f"for min_shift={min_shift} s; lower min_shift.")
    rng = np.random.default_rng(seed)
    shifts = rng.integers(shift_min, n_samples - shift_min + 1, size=n_shuffles)
    sample_bin = np.where(samples.keep, bin_index(samples.values, observed.bin_edges), -1)
    n_bins = int(np.prod(observed.shape))
    sigma = smooth / observed.bin_size
    smoothed_occupancy = smooth_maps(observed.occupancy, sigma, n_spatial)
    masked = ~observed.mask
    spike_samples = [samples.spike_sample(np.asarray(t), require_keep=False) for t in rec.spike_times]
    spike_samples = [s[s >= 0] for s in spike_samples]
    exceed = np.zeros(observed.n_units)
    for start in range(0, n_shuffles, shuffle_chunk):
        chunk = shifts[start:start + shuffle_chunk]
        counts = np.zeros((chunk.size, observed.n_units, n_bins))
        rows = np.arange(chunk.size)[:, None]
        for unit, idx in enumerate(spike_samples):
            b = sample_bin[(idx[None, :] + chunk[:, None]) % n_samples]
            flat = (rows * n_bins + b)[b >= 0]
            counts[:, unit] = np.bincount(flat, minlength=chunk.size * n_bins).reshape(chunk.size, n_bins)
        counts = counts.reshape(chunk.size, observed.n_units, *observed.shape)
        with np.errstate(invalid="ignore", divide="ignore"):
            maps = smooth_maps(counts, sigma, n_spatial) / smoothed_occupancy
        maps[..., masked] = np.nan
        shuffled, _ = skaggs_information(maps, observed.occupancy)
        exceed += np.sum(shuffled >= bits[None, :], axis=0)
    table["p_value"] = np.where(np.isfinite(bits), (1 + exceed) / (1 + n_shuffles), np.nan)
    return table


def _laps_intervals(rec: Recording, linearize: bool | ArrayLike | None, parity: int) -> NDArray[np.float64]:
    pos = _position_series(rec, linearize, "stability")
    if pos.n_dims != 1:
        raise ValidationError("stability: method='laps' needs 1-D position; pass linearize=True for a 2-D track.")
    laps = detect_laps(pos)
    # A lap is a round trip (two traversals) so that both halves contain both running directions.
    trips = [(laps[k, 0], laps[k + 1, 1]) for k in range(0, len(laps) - 1, 2)]
    if len(trips) < 2:
        raise ValidationError(f"stability: found {len(trips)} round-trip laps; need at least 2 for odd/even maps.")
    return np.asarray(trips[parity::2], dtype=np.float64)


def stability(rec: Recording, bin_size: float = 5.0, *, method: str = "halves", speed_threshold: float = 5.0,
              smooth: float = 0.0, min_occupancy: float = 0.0, direction: str | None = None,
              epoch: str | ArrayLike | None = None, linearize: bool | ArrayLike | None = None,
              bounds: ArrayLike | None = None) -> pd.Series:
    """Pearson correlation between rate maps of two halves of the data.

    ``method="halves"``: first versus second half of the kept running time; ``"laps"``: odd
    versus even round-trip laps of a linear track (see :func:`detect_laps`). Bins defined in
    both maps are compared.

    Returns
    -------
    pandas.Series of r per unit (index ``unit_id``; NaN for a unit silent in either half).

    Examples
    --------
    >>> import spikefield as sf
    >>> sim = sf.simulate.place_cells(n_cells=6, run_duration=200, fraction_place=1.0, seed=2)
    >>> r = sf.spatial.stability(sim.recording, bin_size=5.0, smooth=5.0)
    >>> bool(r.median() > 0.5)
    True
    """
    where = "stability"
    choice(method, "method", where, ("halves", "laps"))
    base = rec.support if epoch is None else intersect(rec.support, rec.epoch_intervals(epoch))
    if method == "halves":
        samples = position_samples(rec, epoch=epoch, speed_threshold=speed_threshold, direction=direction,
                                   linearize=linearize, where=where)
        kept = samples.times[samples.keep]
        if kept.size < 4:
            raise ValidationError(f"{where}: only {kept.size} position samples pass the filters.")
        middle = float(np.median(kept))
        parts = [np.array([[base[0, 0], middle]]), np.array([[middle, base[-1, 1]]])]
    else:
        parts = [_laps_intervals(rec, linearize, 0), _laps_intervals(rec, linearize, 1)]
    pos = _position_series(rec, linearize, where)
    edges = spatial_bins(np.where(pos.valid_mask()[:, None], pos.values, np.nan), bin_size, bounds, where)
    bounds = [(e[0], e[-1]) for e in edges]
    halves = [rate_maps(rec, bin_size, speed_threshold=speed_threshold, smooth=smooth, min_occupancy=min_occupancy,
                        direction=direction, epoch=intersect(base, part), linearize=linearize, bounds=bounds).maps
              for part in parts]
    a, b = (h.reshape(h.shape[0], -1) for h in halves)
    both = np.isfinite(a) & np.isfinite(b)
    r = np.full(a.shape[0], np.nan)
    for i in range(a.shape[0]):
        x, y = a[i, both[i]], b[i, both[i]]
        if x.size > 2 and x.std() > 0 and y.std() > 0:
            r[i] = np.corrcoef(x, y)[0, 1]
    return pd.Series(r, index=pd.Index(rec.unit_ids, name="unit_id"), name="stability_r")
