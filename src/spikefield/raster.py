"""Raster: binned population activity (T bins x N units) split into contiguous segments."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from numpy.typing import ArrayLike, NDArray

from .errors import RasterError, ValidationError

__all__ = ["Raster", "bin_spikes", "default_max_dense_bytes"]


def default_max_dense_bytes() -> int:
    """Largest dense raster (bytes) built before switching to sparse storage.

    The rule: dense while ``T * N * itemsize`` is at most a quarter of the machine's physical
    memory (capped at 16 GiB); sparse CSR above that. A 10^6 x 1000 boolean raster (1 GB) is
    dense on a 24 GiB machine.
    """
    try:
        physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # non-POSIX: assume 8 GiB
        physical = 8 << 30
    return int(min(physical // 4, 16 << 30))


def _as_segments(segments: ArrayLike | None, n_bins: int) -> NDArray[np.int64]:
    """Validate segments given as row ranges ``(K, 2)`` or as segment lengths ``(K,)``."""
    if segments is None:
        return np.array([[0, n_bins]], dtype=np.int64) if n_bins else np.zeros((0, 2), np.int64)
    arr = np.asarray(segments)
    if arr.ndim == 1:
        lengths = arr.astype(np.int64)
        if np.any(lengths <= 0) or lengths.sum() != n_bins:
            raise RasterError(
                f"segments given as lengths must be positive and sum to the number of bins "
                f"({n_bins}); got lengths summing to {int(lengths.sum())} (min {int(lengths.min(initial=0))})."
            )
        stops = np.cumsum(lengths)
        return np.stack([stops - lengths, stops], axis=1)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise RasterError(f"segments must be (K, 2) row ranges or (K,) lengths, got shape {arr.shape}.")
    arr = arr.astype(np.int64)
    ok = (len(arr) > 0 and arr[0, 0] == 0 and arr[-1, 1] == n_bins and np.all(arr[:, 1] > arr[:, 0])
          and np.all(arr[1:, 0] == arr[:-1, 1]))
    if not ok and n_bins > 0:
        raise RasterError(
            f"segments must tile the rows 0..{n_bins} in order without gaps or overlaps "
            f"(e.g. [[0, 500], [500, {n_bins}]]); got {arr.tolist()[:5]}."
        )
    return arr


class Raster:
    """Binned population activity with contiguous segments.

    Parameters
    ----------
    data : array (T, N) or scipy.sparse matrix
        Spikes per bin: boolean, or non-negative integer counts.
    bin_size : float
        Bin width in seconds.
    t_start : float
        Start time (s) of the first bin.
    unit_ids : sequence, optional
        One id per column (default ``0..N-1``).
    segments : (K, 2) row ranges or (K,) lengths, optional
        Contiguous stretches of bins. Dynamical models never pair a bin with one in another
        segment (gaps between epochs, trials, train/test cuts). Default: one segment.
    segment_t_start : (K,) array, optional
        Start time (s) of each segment's first bin (default: ``t_start + row * bin_size``).

    Notes
    -----
    Storage is dense (numpy) unless the dense array would exceed
    :func:`default_max_dense_bytes`, in which case binning produces a CSR sparse matrix;
    every method works on both, and models read rows in chunks.
    """

    def __init__(self, data: Any, bin_size: float, t_start: float = 0.0,
                 unit_ids: Sequence[Any] | None = None, segments: ArrayLike | None = None,
                 segment_t_start: ArrayLike | None = None) -> None:
        if not (isinstance(bin_size, int | float | np.floating | np.integer) and not isinstance(bin_size, bool)
                and np.isfinite(bin_size) and bin_size > 0):
            raise ValidationError(f"bin_size must be a positive number of seconds, got {bin_size!r}.")
        if sp.issparse(data):
            data = sp.csr_array(data)
        else:
            data = np.asarray(data)
        if data.ndim != 2:
            raise RasterError(f"raster data must be 2-D (bins x units), got shape {data.shape}.")
        if not sp.issparse(data) and data.dtype != bool and not np.issubdtype(data.dtype, np.integer):
            raise RasterError(f"raster data must be boolean or integer counts, got dtype {data.dtype}; "
                              "use Raster.from_array for 0/1 floats or +-1 spins.")
        if data.dtype.kind == "i" and data.size and data.min() < 0:
            # Signed +-1 spins passed here would otherwise be read as counts of -1.
            raise RasterError(f"raster counts must be non-negative, got a minimum of {int(data.min())}; "
                              "use Raster.from_array for +-1 spins.")
        self._data = data
        self.bin_size = float(bin_size)
        self.t_start = float(t_start)
        n_bins, n_units = data.shape
        self._unit_ids = np.arange(n_units) if unit_ids is None else np.asarray(unit_ids)
        if self._unit_ids.shape != (n_units,):
            raise RasterError(f"{self._unit_ids.size} unit_ids for {n_units} columns.")
        self._segments = _as_segments(segments, n_bins)
        if segment_t_start is None:
            segment_t_start = self.t_start + self._segments[:, 0] * self.bin_size
        self._segment_t_start = np.asarray(segment_t_start, dtype=np.float64).reshape(-1)
        if self._segment_t_start.shape[0] != self._segments.shape[0]:
            raise RasterError("segment_t_start needs one start time per segment.")

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_array(cls, array: ArrayLike, bin_size: float, t_start: float = 0.0,
                   segments: ArrayLike | None = None, unit_ids: Sequence[Any] | None = None) -> Raster:
        """Build a Raster from a T x N array of booleans, 0/1 values, +-1 spins or counts.

        +-1 input (any -1 present and only -1/+1 values) is read as spins: +1 = spike.
        """
        arr = np.asarray(array)
        if arr.ndim != 2:
            raise RasterError(f"Raster.from_array: expected a 2-D (bins x units) array, got shape {arr.shape}.")
        if arr.dtype == bool:
            return cls(arr, bin_size, t_start, unit_ids, segments)
        if not np.issubdtype(arr.dtype, np.number):
            raise RasterError(f"Raster.from_array: expected numbers, got dtype {arr.dtype}.")
        if arr.size and not np.all(np.isfinite(arr)):
            raise RasterError("Raster.from_array: array contains NaN or inf.")
        # Every check reads the whole array (no sampling): a value seen only in late rows must
        # never be silently binarised or accepted.
        lo, hi = (arr.min(), arr.max()) if arr.size else (0, 0)
        if lo < 0:
            if not np.all((arr == 1) | (arr == -1)):
                bad = arr[(arr != 1) & (arr != -1)][:6]
                raise RasterError(
                    "Raster.from_array: negative values found; expected 0/1 spikes, counts or "
                    f"+-1 spins, got values {np.unique(bad).tolist()}."
                )
            return cls(arr > 0, bin_size, t_start, unit_ids, segments)
        if np.issubdtype(arr.dtype, np.inexact):
            fractional = arr != np.round(arr)
            if np.any(fractional):
                raise RasterError(
                    f"Raster.from_array: non-integer values (e.g. {arr[fractional][0]!r}); "
                    "expected booleans, 0/1, counts or +-1 spins."
                )
        if hi <= 1:
            return cls(arr > 0, bin_size, t_start, unit_ids, segments)
        counts = arr.astype(np.min_scalar_type(int(hi)))
        return cls(counts, bin_size, t_start, unit_ids, segments)

    # ------------------------------------------------------------------ properties
    @property
    def shape(self) -> tuple[int, int]:
        """``(n_bins, n_units)``."""
        return tuple(self._data.shape)  # type: ignore[return-value]

    @property
    def n_bins(self) -> int:
        """Number of time bins T."""
        return int(self._data.shape[0])

    @property
    def n_units(self) -> int:
        """Number of units N."""
        return int(self._data.shape[1])

    @property
    def unit_ids(self) -> NDArray:
        """Unit identifier of each column."""
        return self._unit_ids.copy()

    @property
    def segments(self) -> NDArray[np.int64]:
        """``(K, 2)`` row ranges ``[start, stop)`` of the contiguous segments."""
        return self._segments.copy()

    @property
    def segment_t_start(self) -> NDArray[np.float64]:
        """Start time (s) of each segment's first bin."""
        return self._segment_t_start.copy()

    @property
    def is_sparse(self) -> bool:
        """True when stored as a scipy CSR matrix."""
        return sp.issparse(self._data)

    @property
    def is_binary(self) -> bool:
        """True when entries are spike/no-spike (boolean)."""
        return self._data.dtype == bool

    @property
    def duration(self) -> float:
        """Total binned time in seconds."""
        return self.n_bins * self.bin_size

    @property
    def n_transitions(self) -> int:
        """Number of (t-1, t) bin pairs inside segments: what a dynamical model is fitted on."""
        lengths = self._segments[:, 1] - self._segments[:, 0]
        return int(np.sum(np.maximum(lengths - 1, 0)))

    def __len__(self) -> int:
        return self.n_bins

    def __repr__(self) -> str:
        kind = "counts" if not self.is_binary else "binary"
        store = "sparse" if self.is_sparse else "dense"
        return (f"<Raster {self.n_bins} bins x {self.n_units} units, bin {self.bin_size * 1e3:g} ms, "
                f"{len(self._segments)} segment(s), {kind}, {store}>")

    # ------------------------------------------------------------------ access
    def rows(self, start: int, stop: int) -> NDArray:
        """Dense rows ``[start, stop)`` as a numpy array (bool or counts)."""
        block = self._data[start:stop]
        return block.toarray() if sp.issparse(block) else np.asarray(block)

    def to_numpy(self) -> NDArray:
        """The whole raster as a dense array (bool or counts)."""
        return self.rows(0, self.n_bins)

    def to_spins(self, dtype: Any = np.int8) -> NDArray:
        """Dense ``+1`` (at least one spike) / ``-1`` (silent) array."""
        binary = self.to_numpy() > 0
        return (2 * binary.astype(dtype) - 1).astype(dtype)

    def to_torch(self, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
                 spins: bool = True, start: int = 0, stop: int | None = None) -> torch.Tensor:
        """Rows ``[start, stop)`` as a torch tensor, as +-1 spins (default) or 0/1 spikes.

        ``dtype=torch.bool`` gives the spike indicator (True = at least one spike); it has no spin
        form, so it requires ``spins=False``.
        """
        block = self.rows(start, self.n_bins if stop is None else stop) > 0
        if dtype == torch.bool:
            if spins:
                raise ValidationError("to_torch(dtype=torch.bool) holds 0/1 spike indicators, not ±1 spins; "
                                      "pass spins=False or a floating dtype.")
            return torch.from_numpy(np.ascontiguousarray(block)).to(device=device)
        if spins and not dtype.is_signed:
            raise ValidationError(f"to_torch(dtype={dtype}) cannot hold ±1 spins; use a floating or signed "
                                  "integer dtype, or spins=False.")
        out = torch.from_numpy(np.ascontiguousarray(block)).to(device=device, dtype=dtype)
        return out.mul_(2).sub_(1) if spins else out

    def bin_times(self) -> NDArray[np.float64]:
        """Start time (s) of every bin."""
        out = np.empty(self.n_bins)
        for (a, b), t0 in zip(self._segments, self._segment_t_start, strict=True):
            out[a:b] = t0 + np.arange(b - a) * self.bin_size
        return out

    def spike_counts(self) -> NDArray[np.int64]:
        """Total spikes (or spike-bins for a binary raster) per unit."""
        return np.asarray(self._data.sum(axis=0)).reshape(-1).astype(np.int64)

    def mean_activity(self) -> NDArray[np.float64]:
        """Fraction of bins with at least one spike, per unit."""
        if self.n_bins == 0:
            return np.zeros(self.n_units)
        nonzero = (self._data > 0)
        return np.asarray(nonzero.sum(axis=0)).reshape(-1) / self.n_bins

    def iter_transitions(self, chunk_bins: int = 65536) -> Iterator[tuple[int, int]]:
        """Yield ``(prev_start, prev_stop)`` row ranges of previous states, at most ``chunk_bins``
        long, never crossing a segment boundary: targets are rows ``prev_start+1 .. prev_stop``."""
        if chunk_bins < 1:
            raise ValidationError(f"chunk_bins must be a positive integer, got {chunk_bins!r}.")
        for a, b in self._segments:
            for s in range(int(a), int(b) - 1, chunk_bins):
                yield s, min(s + chunk_bins, int(b) - 1)

    # ------------------------------------------------------------------ subsets
    def select_units(self, units: Sequence[int] | NDArray) -> Raster:
        """Columns by position (integer indices or boolean mask)."""
        idx = np.asarray(units)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        data = self._data[:, idx]
        return Raster(data, self.bin_size, self.t_start, self._unit_ids[idx], self._segments,
                      self._segment_t_start)

    def take_rows(self, ranges: ArrayLike) -> Raster:
        """Rows in the ``(K, 2)`` ``[start, stop)`` ranges, splitting segments at every cut."""
        ranges = np.asarray(ranges, dtype=np.int64).reshape(-1, 2)
        if np.any(ranges[:, 1] < ranges[:, 0]) or np.any(ranges[1:, 0] < ranges[:-1, 1]):
            # Overlapping or unsorted ranges would duplicate or reorder bins.
            raise RasterError(f"take_rows: ranges must be sorted, non-overlapping [start, stop) row ranges "
                              f"with start <= stop; got {ranges.tolist()[:5]}.")
        pieces, seg_t0 = [], []
        for lo, hi in ranges:
            for (a, b), t0 in zip(self._segments, self._segment_t_start, strict=True):
                s, e = max(a, lo), min(b, hi)
                if s < e:
                    pieces.append((s, e))
                    seg_t0.append(t0 + (s - a) * self.bin_size)
        if not pieces:
            raise RasterError(f"take_rows: ranges {ranges.tolist()} select no bins of a {self.n_bins}-bin raster.")
        if self.is_sparse:
            data = sp.vstack([self._data[s:e] for s, e in pieces], format="csr")
        else:
            data = np.concatenate([self._data[s:e] for s, e in pieces], axis=0)
        lengths = [e - s for s, e in pieces]
        return Raster(data, self.bin_size, seg_t0[0], self._unit_ids, np.asarray(lengths), seg_t0)

    def split(self, fraction: float = 0.8) -> tuple[Raster, Raster]:
        """Split into (first ``fraction`` of bins, the rest) as contiguous blocks."""
        if not 0 < fraction < 1:
            raise ValidationError(f"split: fraction must be strictly between 0 and 1, got {fraction!r}.")
        cut = int(round(self.n_bins * fraction))
        if cut < 2 or self.n_bins - cut < 2:
            raise RasterError(f"split({fraction}) of {self.n_bins} bins leaves fewer than 2 bins on a side.")
        return self.take_rows([[0, cut]]), self.take_rows([[cut, self.n_bins]])

    def folds(self, k: int = 5) -> list[tuple[Raster, Raster]]:
        """``k`` (train, test) pairs; fold i tests on the i-th contiguous block of bins."""
        if not isinstance(k, int | np.integer) or k < 2:
            raise ValidationError(f"folds: k must be an integer >= 2, got {k!r}.")
        if self.n_bins < 2 * k:
            raise RasterError(f"folds({k}) needs at least {2 * k} bins, raster has {self.n_bins}.")
        edges = np.linspace(0, self.n_bins, k + 1).round().astype(np.int64)
        out = []
        for i in range(k):
            test = [[edges[i], edges[i + 1]]]
            train = [[0, edges[i]], [edges[i + 1], self.n_bins]]
            train = [r for r in train if r[1] > r[0]]
            out.append((self.take_rows(train), self.take_rows(test)))
        return out


# ---------------------------------------------------------------------- binning
def _bins_per_interval(support: NDArray[np.float64], bin_size: float) -> NDArray[np.int64]:
    # ceil, with a tolerance for float error, so every spike in [start, stop] gets a bin.
    return np.maximum(np.ceil((support[:, 1] - support[:, 0]) / bin_size - 1e-9), 1).astype(np.int64)


def bin_spikes(spike_times: Sequence[NDArray[np.float64]], support: NDArray[np.float64],
               bin_size: float, unit_ids: Sequence[Any] | None = None, dtype: Any = bool,
               max_dense_bytes: int | None = None) -> Raster:
    """Bin per-unit spike trains on each support interval into a :class:`Raster`.

    Each interval ``[start, stop]`` becomes one segment of ``ceil((stop-start)/bin_size)`` bins
    starting at ``start`` (the last bin may extend past ``stop``), so every spike inside the
    support lands in exactly one bin.

    Parameters
    ----------
    spike_times : sequence of arrays
        Sorted spike times (s), one array per unit, all inside ``support`` (a spike outside it
        raises :class:`~spikefield.errors.RasterError`; it is never moved into a nearby bin).
    support : (K, 2) array
        Intervals (s) to bin.
    bin_size : float
        Bin width in seconds.
    dtype : ``bool`` or ``"counts"``
        Spike/no-spike per bin, or the number of spikes (smallest unsigned integer type that
        holds the maximum count).
    max_dense_bytes : int, optional
        Override :func:`default_max_dense_bytes`.
    """
    if not (isinstance(bin_size, int | float | np.floating | np.integer) and not isinstance(bin_size, bool)
            and np.isfinite(bin_size) and bin_size > 0):
        raise ValidationError(f"bin_size must be a positive number of seconds, got {bin_size!r}.")
    bin_size = float(bin_size)
    counts = dtype in ("counts", "count", int, np.int64, np.integer) or (
        isinstance(dtype, type) and dtype is not bool and issubclass(dtype, np.integer))
    if dtype is not bool and dtype != np.bool_ and not counts:
        raise ValidationError(f"dtype must be bool or 'counts', got {dtype!r}.")
    support = np.asarray(support, dtype=np.float64).reshape(-1, 2)
    n_per = _bins_per_interval(support, bin_size)
    offsets = np.concatenate([[0], np.cumsum(n_per)])
    n_bins, n_units = int(offsets[-1]), len(spike_times)
    # Per unit: the (sorted) rows that hold spikes and how many spikes each holds. Spike
    # times are sorted, so run-length encoding is O(spikes) with no O(bins) temporaries.
    rows, counts_per_row = [], []
    for j, train in enumerate(spike_times):
        k = np.clip(np.searchsorted(support[:, 0], train, side="right") - 1, 0, len(support) - 1)
        # A spike before the support or in a gap would otherwise be clipped into a neighbouring
        # bin (silently moved); the support is closed on the right, as in intervals.contains.
        outside = (train < support[k, 0]) | (train > support[k, 1]) if len(support) else train == train
        if outside.any():
            uid = j if unit_ids is None else unit_ids[j]
            raise RasterError(
                f"bin_spikes: {int(outside.sum())} spike(s) of unit {uid!r} lie outside the support "
                f"(first at {float(train[outside][0])} s); expected every spike inside an interval "
                "of support. Restrict the trains first (Recording.select does)."
            )
        local = np.floor((train - support[k, 0]) / bin_size).astype(np.int64)
        row = offsets[k] + np.clip(local, 0, n_per[k] - 1)
        first = np.flatnonzero(np.r_[True, row[1:] != row[:-1]]) if row.size else np.zeros(0, np.int64)
        rows.append(row[first])
        counts_per_row.append(np.diff(np.r_[first, row.size]))
    max_count = max((int(c.max()) for c in counts_per_row if c.size), default=1) if counts else 1
    store_dtype = np.dtype(bool) if not counts else np.min_scalar_type(max(max_count, 1))
    limit = default_max_dense_bytes() if max_dense_bytes is None else int(max_dense_bytes)
    if n_bins * n_units * store_dtype.itemsize <= limit:
        # Unit-major (Fortran) storage: each unit's bins are contiguous, so filling is a
        # streaming write per unit rather than a strided scatter over a T x N array.
        data = np.zeros((n_bins, n_units), dtype=store_dtype, order="F")
        for j, (row, cnt) in enumerate(zip(rows, counts_per_row, strict=True)):
            data[row, j] = cnt if counts else True
    else:
        col = np.repeat(np.arange(n_units), [r.size for r in rows])
        row = np.concatenate([*rows, np.zeros(0, np.int64)])
        values = np.concatenate([*counts_per_row, np.zeros(0, np.int64)])
        data = sp.csr_array(sp.coo_array((values.astype(store_dtype) if counts else values > 0, (row, col)),
                                         shape=(n_bins, n_units)))
    return Raster(data, bin_size, float(support[0, 0]) if len(support) else 0.0, unit_ids,
                  n_per, support[:, 0])
