"""pynapple interop: round trips, agreement with pynapple's own restriction, optional-extra error."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import spikefield as sf
from spikefield.errors import ValidationError
from spikefield.io.pynapple import from_pynapple, to_pynapple


def test_missing_pynapple_names_the_extra(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "pynapple", None)  # makes `import pynapple` raise ImportError
    rec = sf.Recording([[0.1]])
    with pytest.raises(ImportError, match=r"pip install spikefield\[pynapple\]"):
        to_pynapple(rec)
    with pytest.raises(ImportError, match=r"pip install spikefield\[pynapple\]"):
        from_pynapple(object())


@pytest.fixture(scope="module")
def nap():
    return pytest.importorskip("pynapple", reason="pynapple is an optional extra (pip install spikefield[pynapple])")


@pytest.fixture(scope="module")
def simulated() -> sf.Recording:
    return sf.simulate.place_cells(n_cells=8, run_duration=20.0, rest_duration=10.0, seed=3).recording


def test_round_trip_simulated(nap, simulated: sf.Recording) -> None:
    objects = to_pynapple(simulated)
    group = objects["units"]
    assert isinstance(group, nap.TsGroup) and len(group) == simulated.n_units
    assert group.metadata["unit_id"].tolist() == simulated.unit_ids.tolist()
    np.testing.assert_allclose(group.time_support.values, simulated.support)
    assert isinstance(objects["position"], nap.TsdFrame)
    assert set(objects["epochs"]) == set(simulated.epochs)
    back = from_pynapple(group, position=objects["position"], epochs=objects["epochs"], position_unit="cm")
    assert back.unit_ids.tolist() == simulated.unit_ids.tolist()
    for a, b in zip(simulated.spike_times, back.spike_times, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(back.position.values, simulated.position.values)
    for name, intervals in simulated.epochs.items():
        np.testing.assert_allclose(back.epochs[name], intervals)
    pd.testing.assert_frame_equal(back.units, simulated.units)


def test_epoch_counts_agree_with_pynapple(nap, simulated: sf.Recording) -> None:
    # An independent implementation of restricting spikes to an epoch: pynapple's own.
    objects = to_pynapple(simulated)
    for name in simulated.epochs:
        ours = simulated.select(epoch=name).units.n_spikes.tolist()
        theirs = [len(ts) for ts in objects["units"].restrict(objects["epochs"][name]).values()]
        assert ours == theirs


def test_from_user_tsgroup(nap) -> None:
    support = nap.IntervalSet(start=0.0, end=2.0)
    group = nap.TsGroup({4: nap.Ts(t=np.array([0.1, 0.5, 0.9]), time_support=support),
                         11: nap.Ts(t=np.array([0.3]), time_support=support)}, time_support=support,
                        metadata=pd.DataFrame({"area": ["CA1", "CA3"]}, index=[4, 11]))
    position = nap.TsdFrame(t=np.arange(0, 2, 0.5), d=np.arange(8.0).reshape(4, 2), columns=["x", "y"])
    rec = from_pynapple(group, position=position, epochs={"run": nap.IntervalSet(0.0, 1.0)}, position_unit="px")
    assert rec.unit_ids.tolist() == [4, 11] and rec.units.area.tolist() == ["CA1", "CA3"]
    assert rec.units.n_spikes.tolist() == [3, 1] and rec.duration == 2.0
    assert rec.position.unit == "px" and rec.position.columns == ("x", "y")
    assert rec.select(epoch="run").n_spikes == 4


@pytest.mark.realdata
def test_round_trip_real_keeps_every_sample(nap, hc_linear_track: Path) -> None:
    with pytest.warns(UserWarning):
        rec = sf.read(hc_linear_track)
    objects = to_pynapple(rec)
    assert len(objects["position"]) == 118_965  # duplicates and samples past the support kept
    assert int(objects["position_valid"].values.sum()) == 57_582
    back = from_pynapple(objects["units"], position=objects["position"], epochs=objects["epochs"],
                         position_unit="px")
    assert back.n_spikes == 28_829 and back.units.tetrode.tolist() == rec.units.tetrode.tolist()


@pytest.mark.parametrize(("call", "message"), [
    (lambda: from_pynapple([1, 2]), r"tsgroup must be a pynapple\.TsGroup; got list"),
    (lambda: to_pynapple("rec"), r"expected a spikefield Recording; got str"),
])
def test_errors_table(nap, call, message) -> None:
    with pytest.raises(ValidationError, match=message):
        call()


def test_bad_epoch_shape(nap) -> None:
    support = nap.IntervalSet(0.0, 1.0)
    group = nap.TsGroup({0: nap.Ts(t=np.array([0.1]), time_support=support)}, time_support=support)
    with pytest.raises(ValidationError, match=r"epochs\['run'\]: expected an IntervalSet .* got shape \(3,\)"):
        from_pynapple(group, epochs={"run": [0.0, 0.5, 1.0]})


def test_recording_methods_delegate_to_the_interop_module():
    pytest.importorskip("pynapple", reason="pynapple is an optional extra (pip install spikefield[pynapple])")
    rec = sf.Recording([[0.1, 0.4], [0.2]], unit_ids=["a", "b"], epochs={"run": [[0.0, 0.3]]})
    objs = rec.to_pynapple()
    back = sf.Recording.from_pynapple(objs["units"], epochs=objs["epochs"])
    assert back.unit_ids.tolist() == ["a", "b"]
    assert [t.tolist() for t in back.spike_times] == [[0.1, 0.4], [0.2]]
    assert back.epochs["run"].tolist() == [[0.0, 0.3]]
