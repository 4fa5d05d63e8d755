"""Rate maps, linearisation, laps, spatial information and stability (spikefield.spatial)."""

from __future__ import annotations

import numpy as np
import pytest

import spikefield as sf
from spikefield.errors import RecordingError, ValidationError
from spikefield.spatial import linearize, rate_maps

DT = 0.01


@pytest.fixture(scope="module")
def sim():
    return sf.simulate.place_cells(n_cells=40, run_duration=240, seed=11)


def _uneven_recording(duration: float = 200.0) -> sf.Recording:
    """Back-and-forth runs on a 100 cm track with speed varying along it (uneven occupancy),
    one cell firing once per position sample (100 Hz) regardless of position."""
    t = np.arange(0, duration, DT)
    phase = (t / 10.0) % 2  # 10 s per traversal
    u = np.where(phase < 1, phase, 2 - phase)
    x = 100 * u**2  # slow near 0, fast near 100 cm
    spikes = t + DT / 4
    position = sf.TimeSeries(t, x, unit="cm", columns=("x",))
    return sf.Recording([spikes], ["regular"], series={"position": position})


def test_rate_map_of_position_independent_cell_is_flat_even_when_smoothed():
    rec = _uneven_recording()
    for smooth in (0.0, 5.0):
        rm = rate_maps(rec, 5.0, speed_threshold=0.0, smooth=smooth)
        assert rm.occupancy.max() > 3 * rm.occupancy.min()  # the test needs uneven occupancy
        finite = rm.maps[0][np.isfinite(rm.maps[0])]
        # Smoothing spikes and occupancy separately then dividing keeps 100 Hz even at the ends
        # (smoothing the rate map itself with zero padding would lower the end bins).
        np.testing.assert_allclose(finite, 1 / DT, rtol=1e-9)


def test_occupancy_sums_to_kept_time_and_min_occupancy_masks(sim):
    rec = sim.recording
    rm = rate_maps(rec, 5.0, speed_threshold=0.0)
    assert rm.occupancy.sum() == pytest.approx(len(rec.position) * DT, rel=1e-9)
    assert rm.spike_counts.sum() == rec.n_spikes
    masked = rate_maps(rec, 5.0, speed_threshold=0.0, min_occupancy=6.0)
    np.testing.assert_array_equal(np.isfinite(masked.maps[0]), masked.occupancy >= 6.0)
    assert 0 < np.isnan(masked.maps[0]).sum() < masked.maps.shape[1]


def test_direction_split_partitions_running_samples(sim):
    rec = sim.recording
    both = rate_maps(rec, 5.0, speed_threshold=5.0)
    outbound = rate_maps(rec, 5.0, speed_threshold=5.0, direction="outbound")
    inbound = rate_maps(rec, 5.0, speed_threshold=5.0, direction="inbound")
    np.testing.assert_allclose(outbound.occupancy + inbound.occupancy, both.occupancy)
    np.testing.assert_allclose(outbound.spike_counts + inbound.spike_counts, both.spike_counts)
    assert 0.3 < outbound.occupancy.sum() / both.occupancy.sum() < 0.7


def test_peak_position_recovers_simulated_field_centres(sim):
    rm = rate_maps(sim.recording, 4.0, smooth=4.0)
    has_field = np.isfinite(sim.field_centers)
    error = np.abs(rm.peak_position()[has_field] - sim.field_centers[has_field])
    assert np.mean(error <= 4.0) >= 0.9
    order = rm.order()
    assert np.all(np.diff(rm.peak_position()[order][: has_field.sum()]) >= 0)


def test_linearize_principal_axis_and_polyline():
    rng = np.random.default_rng(0)
    s = rng.uniform(0, 300, 500)
    direction = np.array([0.8, 0.6])
    xy = 50 + s[:, None] * direction + rng.normal(0, 0.5, (500, 1)) * np.array([-0.6, 0.8])
    lin = linearize(sf.TimeSeries(np.arange(500.0), xy, unit="px"))
    assert lin.unit == "px" and lin.columns == ("linear",)
    np.testing.assert_allclose(lin.values[:, 0], s - s.min(), atol=1e-9 + 2.0)
    assert np.corrcoef(lin.values[:, 0], s)[0, 1] > 0.9999
    # L-shaped track: arc length along the polyline.
    polyline = np.array([[0.0, 0.0], [100.0, 0.0], [100.0, 50.0]])
    points = np.array([[10.0, 1.0], [100.5, 20.0], [99.0, 50.0]])
    on_track = linearize(sf.TimeSeries(np.arange(3.0), points, unit="cm"), polyline=polyline)
    np.testing.assert_allclose(on_track.values[:, 0], [10.0, 120.0, 149.0 + 1.0], atol=1e-9)


def test_detect_laps_alternates_direction():
    t = np.arange(0, 100, 0.05)
    x = 100 * np.abs(((t / 10) % 2) - 1)
    laps = sf.spatial.detect_laps(sf.TimeSeries(t, x, unit="cm"))
    assert len(laps) == 10
    assert np.all(laps[:, 2][1:] == -laps[:, 2][:-1])
    assert np.all(laps[:, 1] > laps[:, 0])


def test_spatial_information_place_cells_versus_non_place_cells():
    sim = sf.simulate.place_cells(n_cells=30, run_duration=240, fraction_place=0.6, seed=4)
    table = sf.spatial.spatial_information(sim.recording, 5.0, smooth=5.0, n_shuffles=200, seed=0)
    has_field = np.isfinite(sim.field_centers)
    assert (table["p_value"][has_field] < 0.01).mean() >= 0.9
    assert (table["p_value"][~has_field] < 0.01).mean() <= 0.2
    assert table["bits_per_spike"][has_field].min() > table["bits_per_spike"][~has_field].max()
    assert table["sparsity"][has_field].max() < table["sparsity"][~has_field].min()
    again = sf.spatial.spatial_information(sim.recording, 5.0, smooth=5.0, n_shuffles=200, seed=0)
    np.testing.assert_array_equal(table["p_value"], again["p_value"])  # seeded


def test_skaggs_information_closed_forms():
    occupancy = np.ones(8)
    uniform = np.full((1, 8), 3.0)
    bits, bits_s = sf.spatial.skaggs_information(uniform, occupancy)
    assert bits[0] == pytest.approx(0.0) and bits_s[0] == pytest.approx(0.0)
    one_bin = np.zeros((1, 8))
    one_bin[0, 3] = 8.0
    bits, bits_s = sf.spatial.skaggs_information(one_bin, occupancy)
    assert bits[0] == pytest.approx(3.0)  # log2(8 bins)
    assert bits_s[0] == pytest.approx(3.0 * 1.0)  # mean rate 1 Hz
    assert sf.spatial.sparsity(one_bin, occupancy)[0] == pytest.approx(1 / 8)


def test_stability_halves_and_laps(sim):
    halves = sf.spatial.stability(sim.recording, 5.0, smooth=5.0)
    laps = sf.spatial.stability(sim.recording, 5.0, smooth=5.0, method="laps")
    has_field = np.isfinite(sim.field_centers)
    assert halves[has_field].median() > 0.8 and laps[has_field].median() > 0.8


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(bin_size=-1.0), ValidationError, "bin_size must be a positive"),
    (dict(bin_size=5.0, smooth=-2), ValidationError, "smooth must be a non-negative"),
    (dict(bin_size=5.0, direction="north"), ValidationError, "direction must be one of"),
    (dict(bin_size=5.0, linearize=True), ValidationError, "already 1-D"),
    (dict(bin_size=5.0, epoch="sleep"), RecordingError, "no epoch named 'sleep'"),
    (dict(bin_size=5.0, bounds=[(10, 0)]), ValidationError, "bounds must be 1"),
    (dict(bin_size=5.0, speed_threshold=float("nan")), ValidationError, "speed_threshold"),
])
def test_rate_maps_rejects_bad_arguments(sim, kwargs, error, match):
    with pytest.raises(error, match=match):
        rate_maps(sim.recording, **kwargs)


@pytest.mark.parametrize("call, match", [
    (lambda: rate_maps(sf.Recording([[0.5]]), 5.0), "has no 'position' series"),
    (lambda: rate_maps("rec.mat", 5.0), "rec must be a spikefield Recording"),
    (lambda: linearize(sf.TimeSeries(np.arange(3.0), np.arange(3.0))), "must have 2 columns"),
    (lambda: linearize(sf.TimeSeries(np.arange(3.0), np.ones((3, 2))), polyline=[[0, 0]]), "polyline must be"),
    (lambda: sf.spatial.detect_laps(sf.TimeSeries(np.arange(3.0), np.ones(3)), end_fraction=0.7),
     "end_fraction must be < 0.5"),
    (lambda: sf.spatial.stability(_uneven_recording(), 5.0, method="thirds"), "method must be one of"),
])
def test_spatial_functions_reject_bad_inputs(call, match):
    with pytest.raises(ValidationError, match=match):
        call()


def test_rate_maps_direction_on_2d_position_asks_for_linearize():
    xy = sf.TimeSeries(np.arange(100) * 0.1, np.c_[np.arange(100.0), np.arange(100.0)], unit="cm")
    rec = sf.Recording([[1.0, 2.0]], series={"position": xy})
    with pytest.raises(ValidationError, match="pass linearize=True"):
        rate_maps(rec, 5.0, direction="outbound")
    assert rate_maps(rec, 5.0, direction="outbound", linearize=True).n_dims == 1
    assert rate_maps(rec, 10.0).maps.shape[1:] == (10, 10)


# ---------------------------------------------------------------------- pynapple cross-check
def _pynapple_maps(nap, rec, edges, epoch=None):
    pos = rec.position
    keep = pos.valid_mask()
    ts = pos.timestamps[keep]
    values = pos.values[keep]
    feature = nap.Tsd(ts, values[:, 0]) if pos.n_dims == 1 else nap.TsdFrame(ts, values, columns=["x", "y"])
    group = nap.TsGroup({i: nap.Ts(np.asarray(t)) for i, t in enumerate(rec.spike_times)})
    kwargs = {} if epoch is None else {"epochs": nap.IntervalSet(epoch[:, 0], epoch[:, 1])}
    fs = 1.0 / np.median(np.diff(pos.timestamps))
    return nap.compute_tuning_curves(group, feature, bins=list(edges), fs=fs, **kwargs)


def test_rate_maps_match_pynapple_on_simulated_track(sim):
    nap = pytest.importorskip("pynapple", reason="pynapple not installed (pip install pynapple)")
    ours = rate_maps(sim.recording, 5.0, speed_threshold=0.0)
    theirs = np.asarray(_pynapple_maps(nap, sim.recording, ours.bin_edges))
    np.testing.assert_allclose(ours.occupancy.sum(), len(sim.recording.position) * DT)
    np.testing.assert_allclose(ours.maps, theirs, rtol=1e-9, atol=1e-12)


def test_rate_maps_match_pynapple_on_real_linear_track(hc_linear_track):
    nap = pytest.importorskip("pynapple", reason="pynapple not installed (pip install pynapple)")
    rec = sf.read(hc_linear_track)
    epoch = rec.epochs["tracked"]
    ours = rate_maps(rec, 20.0, speed_threshold=0.0, epoch="tracked")
    theirs = np.asarray(_pynapple_maps(nap, rec, ours.bin_edges, epoch))
    both = np.isfinite(ours.maps) & np.isfinite(theirs)
    np.testing.assert_array_equal(np.isfinite(ours.maps), np.isfinite(theirs))
    # The only deliberate difference: spikes farther than 2.5 frames from any position sample
    # (tracking gaps) have no position here, while pynapple gives them the nearest sample.
    close = np.isclose(ours.maps[both], theirs[both], rtol=1e-9, atol=1e-12)
    assert close.mean() > 0.99
    np.testing.assert_allclose(ours.maps[both], theirs[both], rtol=0.15, atol=0.02)


# ---------------------------------------------------------------------- real data
def test_real_linear_track_has_many_spatially_informative_units(hc_linear_track):
    rec = sf.read(hc_linear_track)
    table = sf.spatial.spatial_information(rec, 10.0, epoch="tracked", linearize=True, speed_threshold=15.0,
                                           smooth=10.0, n_shuffles=200, seed=0)
    assert table.attrs["unit"] == "px"
    n_informative = int((table["p_value"] < 0.01).sum())
    # README: 21 of 31 units beat the 95th percentile of 50 shifts with its own binning.
    assert 15 <= n_informative <= 26
    stable = sf.spatial.stability(rec, 10.0, epoch="tracked", linearize=True, speed_threshold=15.0, smooth=10.0)
    assert stable[table["p_value"] < 0.01].median() > 0.4
