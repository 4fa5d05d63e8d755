"""Raster: binning, segments, splits, conversions; hypothesis property tests."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import spikefield as sf
from spikefield.errors import RasterError, ValidationError
from spikefield.raster import bin_spikes


def test_bin_counts_and_bool():
    rec = sf.Recording([[0.01, 0.015, 0.25], [0.5]], support=[[0.0, 1.0]])
    counts = rec.bin(0.1, dtype="counts")
    assert counts.shape == (10, 2)
    assert counts.to_numpy()[:, 0].tolist() == [2, 0, 1, 0, 0, 0, 0, 0, 0, 0]
    assert counts.to_numpy()[5, 1] == 1
    binary = rec.bin(0.1)
    assert binary.is_binary and binary.to_numpy()[0, 0]
    assert binary.spike_counts().tolist() == [2, 1]


def test_epochs_become_segments():
    rec = sf.Recording([np.linspace(0, 9.9, 100)], epochs={"trials": [[0, 2], [5, 6.5]]})
    raster = rec.bin(0.5, epoch="trials")
    assert raster.segments.tolist() == [[0, 4], [4, 7]]
    assert raster.segment_t_start.tolist() == [0.0, 5.0]
    assert raster.n_transitions == 3 + 2
    assert np.allclose(raster.bin_times()[4:], [5.0, 5.5, 6.0])


def test_iter_transitions_never_cross_segments():
    raster = sf.Raster(np.zeros((10, 2), bool), 0.1, segments=[4, 6])
    pairs = list(raster.iter_transitions(chunk_bins=3))
    assert pairs == [(0, 3), (4, 7), (7, 9)]
    assert sum(b - a for a, b in pairs) == raster.n_transitions


def test_from_array_spins_counts_and_conversions():
    spins = np.array([[1, -1], [-1, -1], [1, 1]])
    r = sf.Raster.from_array(spins, 0.01)
    assert r.is_binary and r.to_spins().tolist() == spins.tolist()
    t = r.to_torch(dtype=torch.float64)
    assert t.dtype == torch.float64 and t.tolist() == spins.tolist()
    assert r.to_torch(spins=False).tolist() == [[1, 0], [0, 0], [1, 1]]
    counts = sf.Raster.from_array(np.array([[0, 3], [2, 0]]), 0.01)
    assert not counts.is_binary and counts.to_numpy().max() == 3


def test_to_torch_integer_and_bool_dtypes():
    r = sf.Raster.from_array(np.array([[1, -1], [-1, 1]]), 0.01)
    assert r.to_torch(dtype=torch.int8).tolist() == [[1, -1], [-1, 1]]
    indicator = r.to_torch(dtype=torch.bool, spins=False)
    assert indicator.dtype == torch.bool and indicator.tolist() == [[True, False], [False, True]]
    with pytest.raises(ValidationError, match="spins=False"):
        r.to_torch(dtype=torch.bool)
    with pytest.raises(ValidationError, match="cannot hold ±1 spins"):
        r.to_torch(dtype=torch.uint8)


def test_numpy_integer_bin_size_is_accepted_everywhere():
    raster = bin_spikes([np.array([0.5, 1.5])], np.array([[0.0, 3.0]]), np.int64(1))
    assert raster.bin_size == 1.0 and isinstance(raster.bin_size, float)
    assert raster.to_numpy()[:, 0].tolist() == [1, 1, 0]
    with pytest.raises(ValidationError, match="bin_size"):
        bin_spikes([np.array([0.5])], np.array([[0.0, 3.0]]), True)


@pytest.mark.parametrize(
    ("array", "match"),
    [
        (np.zeros(5), r"2-D"),
        (np.array([[0.5, 1.0]]), r"non-integer values"),
        (np.array([[-1, 2]]), r"negative values"),
        (np.array([[np.nan, 1]]), r"NaN"),
        (np.array([[-1, 1], [1, 0]]), r"negative values.*got values \[0\]"),
    ],
)
def test_from_array_errors(array, match):
    with pytest.raises(RasterError, match=match):
        sf.Raster.from_array(array, 0.01)


def test_from_array_reads_every_row_of_a_large_array():
    # Regression: arrays of >= 5e7 entries were checked on their first 1e5 rows only, so a
    # count of 2 in a late row was silently binarised to 1.
    arr = np.zeros((500_000, 100), dtype=np.int8)
    arr[-1, -1] = 2
    raster = sf.Raster.from_array(arr, 0.01)
    assert not raster.is_binary and raster.spike_counts()[-1] == 2
    arr.fill(1)
    arr[0, 0], arr[-1, -1] = -1, -3  # spins everywhere but one late entry
    with pytest.raises(RasterError, match=r"negative values.*\[-3\]"):
        sf.Raster.from_array(arr, 0.01)


@pytest.mark.parametrize(
    ("trains", "match"),
    [
        ([np.array([-0.5, 1.0])], r"1 spike\(s\) of unit 'a' lie outside the support \(first at -0.5 s\)"),
        ([np.array([4.5])], r"first at 4.5 s"),  # in the gap between the two intervals
        ([np.array([10.5])], r"first at 10.5 s"),
    ],
)
def test_bin_spikes_rejects_spikes_outside_support(trains, match):
    # Such spikes used to be clipped into the first / previous segment's last bin.
    support = np.array([[0.0, 4.0], [5.0, 10.0]])
    with pytest.raises(RasterError, match=match):
        bin_spikes(trains, support, 0.1, unit_ids=["a"])


def test_bin_spikes_keeps_spikes_on_interval_edges():
    support = np.array([[0.0, 4.0], [5.0, 10.0]])
    raster = bin_spikes([np.array([0.0, 4.0, 5.0, 10.0])], support, 0.1, dtype="counts")
    assert raster.spike_counts().tolist() == [4]


@pytest.mark.parametrize(
    ("call", "exc", "match"),
    [
        (lambda r: r.split(1.5), ValidationError, r"fraction must be strictly between 0 and 1"),
        (lambda r: r.folds(1), ValidationError, r"k must be an integer >= 2"),
        (lambda r: r.folds(50), RasterError, r"needs at least 100 bins"),
        (lambda r: sf.Raster(np.zeros((4, 2), bool), 0.1, segments=[3, 3]), RasterError, r"sum to the number"),
        (lambda r: sf.Raster(np.zeros((4, 2), bool), 0.0), ValidationError, r"bin_size must be a positive"),
        (lambda r: sf.Raster(np.zeros((4, 2)), 0.1), RasterError, r"boolean or integer"),
        (lambda r: sf.Raster(np.array([[1, -1], [-1, 1]], np.int8), 0.1), RasterError,
         r"counts must be non-negative, got a minimum of -1"),
        (lambda r: r.take_rows([[0, 10], [5, 15]]), RasterError, r"take_rows: ranges must be sorted"),
        (lambda r: r.take_rows([[10, 20], [0, 5]]), RasterError, r"take_rows: ranges must be sorted"),
    ],
)
def test_raster_errors(call, exc, match):
    raster = sf.Raster(np.zeros((20, 3), bool), 0.1)
    with pytest.raises(exc, match=match):
        call(raster)


def test_sparse_storage_matches_dense():
    rng = np.random.default_rng(0)
    trains = [np.sort(rng.uniform(0, 10, rng.integers(0, 200))) for _ in range(7)]
    support = np.array([[0.0, 4.0], [5.0, 10.0]])
    trains = [t[(t <= 4) | (t >= 5)] for t in trains]
    dense = bin_spikes(trains, support, 0.01, dtype="counts")
    sparse = bin_spikes(trains, support, 0.01, dtype="counts", max_dense_bytes=0)
    assert sparse.is_sparse and not dense.is_sparse
    assert np.array_equal(dense.to_numpy(), sparse.to_numpy())
    a, b = sparse.split(0.3)
    assert a.is_sparse and np.array_equal(np.vstack([a.to_numpy(), b.to_numpy()]), dense.to_numpy())


# ---------------------------------------------------------------------- properties
@st.composite
def recordings(draw):
    n_units = draw(st.integers(1, 5))
    duration = draw(st.floats(0.5, 20.0))
    trains = [np.sort(np.array(draw(st.lists(st.floats(0.0, duration), max_size=40)), dtype=float))
              for _ in range(n_units)]
    return sf.Recording(trains, support=[[0.0, duration]])


@settings(max_examples=60, deadline=None)
@given(rec=recordings(), bin_size=st.floats(0.001, 3.0))
def test_binning_conserves_spikes(rec, bin_size):
    raster = rec.bin(bin_size, dtype="counts")
    assert raster.spike_counts().tolist() == rec.units["n_spikes"].tolist()
    assert raster.n_bins * bin_size >= rec.duration - 1e-9


@settings(max_examples=60, deadline=None)
@given(n_bins=st.integers(4, 300), lengths_seed=st.integers(0, 10_000), fraction=st.floats(0.05, 0.95))
def test_split_is_a_partition(n_bins, lengths_seed, fraction):
    rng = np.random.default_rng(lengths_seed)
    cuts = np.unique(rng.integers(1, n_bins, size=rng.integers(0, 5)))
    lengths = np.diff(np.r_[0, cuts, n_bins])
    data = rng.random((n_bins, 3)) < 0.3
    raster = sf.Raster(data, 0.01, segments=lengths)
    cut = int(round(n_bins * fraction))
    if cut < 2 or n_bins - cut < 2:
        with pytest.raises(RasterError):
            raster.split(fraction)
        return
    train, test = raster.split(fraction)
    assert train.n_bins + test.n_bins == n_bins
    assert np.array_equal(np.vstack([train.to_numpy(), test.to_numpy()]), data)
    # No train bin is a test bin, and bin times keep their original values.
    times = raster.bin_times()
    assert np.allclose(np.r_[train.bin_times(), test.bin_times()], times)
    # Segment boundaries of the original are preserved and the cut adds one.
    assert train.n_transitions + test.n_transitions == raster.n_transitions - (
        1 if any(a < cut < b for a, b in raster.segments) else 0)


@settings(max_examples=30, deadline=None)
@given(n_bins=st.integers(20, 200), k=st.integers(2, 6))
def test_folds_cover_each_bin_once(n_bins, k):
    raster = sf.Raster(np.arange(n_bins)[:, None] % 3 == 0, 0.01)
    seen = np.zeros(n_bins, int)
    for train, test in raster.folds(k):
        t_test = np.round(test.bin_times() / 0.01).astype(int)
        t_train = np.round(train.bin_times() / 0.01).astype(int)
        assert not set(t_test) & set(t_train)
        assert len(t_test) + len(t_train) == n_bins
        seen[t_test] += 1
        # Test block is contiguous.
        assert np.all(np.diff(t_test) == 1)
    assert np.all(seen == 1)
