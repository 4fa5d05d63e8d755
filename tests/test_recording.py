"""Recording: construction, validation, selection, summaries."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import spikefield as sf
from spikefield.errors import RecordingError


@pytest.fixture
def rec() -> sf.Recording:
    pos_t = np.arange(0, 10, 0.1)
    return sf.Recording(
        [[0.5, 1.5, 2.5, 7.0], [3.0, 8.0], []],
        unit_ids=["a", "b", "c"],
        units=pd.DataFrame({"area": ["CA1", "CA1", "CA3"]}),
        series={"position": sf.TimeSeries(pos_t, pos_t * 10.0, unit="cm", columns=("x",))},
        epochs={"run": [[0.0, 5.0]], "rest": [[5.0, 10.0]]},
    )


def test_units_table(rec):
    table = rec.units
    assert table.columns.tolist()[:3] == ["unit_id", "n_spikes", "rate_hz"]
    assert table["n_spikes"].tolist() == [4, 2, 0]
    assert table["area"].tolist() == ["CA1", "CA1", "CA3"]
    assert np.allclose(table["rate_hz"], np.array([4, 2, 0]) / rec.duration)
    assert rec.duration == pytest.approx(10.0)  # epochs extend the support to 10 s


def test_recording_is_immutable(rec):
    with pytest.raises(ValueError):
        rec.spike_times[0][0] = 99.0
    table = rec.units
    table.loc[0, "n_spikes"] = 1000
    assert rec.units.loc[0, "n_spikes"] == 4


def test_user_arrays_are_not_modified():
    times = np.array([0.1, 0.2, 0.3])
    sf.Recording([times])
    times[0] = 0.05  # still writable: the Recording copied, not froze, the user's array
    assert times.flags.writeable


def test_select_epoch_and_units(rec):
    run = rec.select(epoch="run")
    assert run.units["n_spikes"].tolist() == [3, 1, 0]
    assert run.duration == pytest.approx(5.0)
    assert run.position.timestamps.max() < 5.0 + 1e-9
    only_b = rec.select(units=["b"], t_start=2.0, t_stop=9.0)
    assert only_b.unit_ids.tolist() == ["b"]
    assert only_b.units["n_spikes"].tolist() == [2]
    assert only_b.units["area"].tolist() == ["CA1"]
    assert set(only_b.epochs) == {"run", "rest"}


def test_select_with_mask_and_explicit_intervals(rec):
    sub = rec.select(units=np.array([True, False, True]), epoch=[[0.0, 1.0], [7.0, 7.5]])
    assert sub.units["n_spikes"].tolist() == [2, 0]
    assert sub.duration == pytest.approx(1.5)


def test_from_arrays_flat_labels():
    times = np.array([0.3, 0.1, 0.2, 0.5])
    labels = np.array([2, 1, 1, 2])
    rec = sf.Recording.from_arrays(times, labels, position=(np.arange(5.0), np.zeros((5, 2))))
    assert rec.unit_ids.tolist() == [1, 2]
    assert [t.tolist() for t in rec.spike_times] == [[0.1, 0.2], [0.3, 0.5]]
    assert rec.position.unit == "unknown"
    assert rec.position.n_dims == 2


def test_spikes_flat_is_sorted(rec):
    times, index = rec.spikes()
    assert np.all(np.diff(times) >= 0)
    assert index.tolist() == [0, 0, 0, 1, 0, 1]


def test_position_scale_and_speed():
    t = np.arange(0, 20, 1 / 50)
    rec = sf.Recording([[1.0]], series={"position": sf.TimeSeries(t, 5.0 * t, unit="px")})
    scaled = rec.with_position_scale(pixels_per_unit=2.5, unit="cm")
    assert scaled.position.unit == "cm"
    speed = scaled.position.speed(smooth=0.0)
    assert np.allclose(speed, 2.0)  # 5 px/s / 2.5 px/cm


def test_summary_and_repr(rec):
    text = rec.summary()
    assert "3 (6 spikes)" in text and "epoch 'run'" in text and "position" in text
    assert repr(rec).startswith("<Recording 3 units, 6 spikes")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(spike_times=[[0.2, 0.1]]), r"unit 0.*not sorted.*np\.sort"),
        (dict(spike_times=[[0.1, np.nan]]), r"unit 0.*index 1 is nan"),
        (dict(spike_times=[[0.1], [0.2]], unit_ids=["x", "x"]), r"unit id 'x' appears more than once"),
        (dict(spike_times=[[0.1], [0.2]], unit_ids=[1, "1"]), r"unit id '1' appears more than once"),
        (dict(spike_times=[[0.1]], unit_ids=["x", "y"]), r"2 unit_ids for 1 spike trains"),
        (dict(spike_times=[[0.1]], epochs={"run": [[2.0, 1.0]]}), r"epoch 'run'.*stop <= start"),
        (dict(spike_times=[[0.1]], epochs={"run": [[0, 2], [1, 3]]}), r"must not overlap"),
        (dict(spike_times=[[0.1, 5.0]], support=[[0.0, 1.0]]), r"1 spikes of unit 0 lie outside"),
        (dict(spike_times=np.array([0.1, 0.2])), r"from_arrays"),
        (dict(spike_times=[[[0.1, 0.2], [0.3, 0.4]]]), r"expected a 1-D array"),
    ],
)
def test_bad_recordings(kwargs, match):
    with pytest.raises(RecordingError, match=match):
        sf.Recording(**kwargs)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda r: r.select(epoch="rnu"), r"no epoch named 'rnu'.*Did you mean 'run'"),
        (lambda r: r.select(units=["z"]), r"unit 'z', which does not exist"),
        (lambda r: r.select(t_start=50.0, t_stop=60.0), r"does not overlap"),
        (lambda r: r.select(t_start=5.0, t_stop=1.0), r"t_stop .* must be greater"),
        (lambda r: r.select(units=np.array([True])), r"boolean mask has shape"),
        (lambda r: r.bin(-0.01), r"bin_size must be a positive"),
        (lambda r: r.bin(0.1, epoch="sleep"), r"no epoch named 'sleep'"),
        (lambda r: r.with_position_scale(0), r"pixels_per_unit must be a positive finite number, got 0"),
        (lambda r: r.with_position_scale(-2.0), r"pixels_per_unit must be .* got -2.0"),
    ],
)
def test_bad_selections(rec, call, match):
    with pytest.raises(sf.SpikefieldError, match=match):
        call(rec)


def test_timeseries_validation():
    with pytest.raises(RecordingError, match="timestamps decrease at sample 2"):
        sf.TimeSeries(np.array([0.0, 1.0, 0.5]), np.zeros(3))
    with pytest.raises(RecordingError, match=r"shape \(T,\).*\(T, D\)"):
        sf.TimeSeries(np.arange(3.0), np.zeros((4, 2)))


def test_spike_on_a_shared_epoch_boundary_belongs_to_both_epochs():
    # Documented behaviour of intervals.contains: every interval is closed on the right.
    rec = sf.Recording([[1.0, 5.0, 9.0]], epochs={"run": [[0.0, 5.0]], "rest": [[5.0, 10.0]]})
    assert rec.select(epoch="run").spike_times[0].tolist() == [1.0, 5.0]
    assert rec.select(epoch="rest").spike_times[0].tolist() == [5.0, 9.0]
