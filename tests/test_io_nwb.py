"""NWB reader: the real pynapple Neuropixels file and NWB files written here with pynwb."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pynwb import NWBHDF5IO
from pynwb.behavior import CompassDirection, Position, SpatialSeries
from pynwb.testing.mock.ecephys import mock_ElectrodeGroup
from pynwb.testing.mock.file import mock_NWBFile

import spikefield as sf
from spikefield.errors import ReaderError
from spikefield.io.nwb import read_nwb

# unit id -> spikes, first, last (s), rate over the epoch (Hz), ISIs < 1 ms, ISIs < 2 ms
README = {6: (11_020, 0.030333, 1087.352833, 10.133, 0, 0), 191: (4_690, 0.874333, 1087.258000, 4.313, 71, 113),
          206: (5_644, 0.028133, 1087.221833, 5.190, 6, 20)}


# ------------------------------------------------------------------------------------------ real data
@pytest.mark.realdata
def test_real_file_matches_readme(nwb_psb: Path) -> None:
    rec = sf.read(nwb_psb)
    assert rec.unit_ids.tolist() == [6, 191, 206]  # phy cluster ids from the id column, not 0..2
    assert rec.n_spikes == 21_354
    for uid, train, rate in zip(rec.unit_ids, rec.spike_times, rec.units.rate_hz, strict=True):
        n, first, last, hz, below_1ms, below_2ms = README[int(uid)]
        assert train.size == n and train[0] == first and train[-1] == last
        assert round(rate, 3) == hz
        isi = np.diff(train)
        assert (int(np.sum(isi < 0.001)), int(np.sum(isi < 0.002))) == (below_1ms, below_2ms)
        assert np.all(np.diff(train) > 0)
    assert rec.epochs["wake"].tolist() == [[0.0, 1087.5289]]
    assert rec.support.tolist() == [[0.0, 1087.5289]]
    assert rec.position is None and dict(rec.series) == {}
    units = rec.units
    assert units.group.tolist() == [0, 0, 0] and units.location.tolist() == ["", "", ""]
    assert units.electrode_group.tolist() == ["group0_psb"] * 3


# ------------------------------------------------------------------------------------------ written files
def _write(nwbfile, path: Path) -> Path:
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwbfile)
    return path


def _units_file(tmp_path: Path, *, position: bool = True, module: str = "behavior") -> Path:
    nwbfile = mock_NWBFile()
    group = mock_ElectrodeGroup(nwbfile=nwbfile)
    for k, area in enumerate(["CA1", "CA1", "CA3"]):
        nwbfile.add_electrode(group=group, location=area, id=10 + k)
    nwbfile.add_unit_column(name="quality", description="sorter label")
    nwbfile.add_unit_column(name="depth", description="um")
    nwbfile.add_unit(id=17, spike_times=[0.5, 1.5, 2.5], quality="good", depth=120.0, electrodes=[0, 1])
    nwbfile.add_unit(id=3, spike_times=[0.25], quality="mua", depth=300.0, electrodes=[2])
    nwbfile.add_epoch(0.0, 2.0, ["run", "maze"])
    nwbfile.add_epoch(2.0, 4.0, ["rest"])
    nwbfile.add_epoch(4.0, 6.0, ["run"])
    nwbfile.add_trial(start_time=0.5, stop_time=1.0)
    nwbfile.add_trial(start_time=0.9, stop_time=1.5)  # overlaps the previous trial: merged in the set
    if position:
        xy = np.column_stack([np.linspace(0, 1, 50), np.full(50, 0.5)])
        spatial = SpatialSeries(name="led", data=xy, reference_frame="corner", unit="meters",
                                timestamps=np.arange(50) * 0.1)
        heading = SpatialSeries(name="heading", data=np.linspace(0, 3, 50), reference_frame="east",
                                unit="radians", rate=10.0, starting_time=0.0)
        behaviour = nwbfile.create_processing_module(module, "behaviour")
        behaviour.add(Position(spatial_series=[spatial]))
        behaviour.add(CompassDirection(spatial_series=[heading]))
    return _write(nwbfile, tmp_path / "written.nwb")


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> sf.Recording:
    with pytest.warns(UserWarning, match=r"intervals 'trials': 1 overlapping row\(s\) merged"):
        return sf.read(_units_file(tmp_path_factory.mktemp("nwb")))


def test_interval_rows_changed_on_reading_are_reported(tmp_path: Path) -> None:
    nwbfile = mock_NWBFile()
    nwbfile.add_unit(spike_times=[1.0])
    nwbfile.add_trial(start_time=0.0, stop_time=1.0)
    nwbfile.add_trial(start_time=1.0, stop_time=2.0)  # touching: kept as its own trial (own segment)
    nwbfile.add_trial(start_time=3.0, stop_time=3.0)  # zero length: left out, and reported
    path = _write(nwbfile, tmp_path / "trials.nwb")
    with pytest.warns(UserWarning, match=r"0 overlapping row\(s\) merged .* and 1 row\(s\) with stop <= start"):
        rec = read_nwb(path)
    assert rec.epochs["trials"].tolist() == [[0.0, 1.0], [1.0, 2.0]]
    # Back-to-back trials stay separate segments: no transition pairs bins across the boundary.
    raster = rec.bin(0.5, epoch="trials")
    assert raster.segments.tolist() == [[0, 2], [2, 4]] and raster.n_transitions == 2


def test_written_units_columns_and_ids(written: sf.Recording) -> None:
    rec = written
    assert rec.unit_ids.tolist() == [17, 3]
    assert rec.units.n_spikes.tolist() == [3, 1]
    assert rec.units.quality.tolist() == ["good", "mua"] and rec.units.depth.tolist() == [120.0, 300.0]
    assert rec.units.brain_area.tolist() == ["CA1", "CA3"]  # from the electrodes table
    assert rec.spike_times[0].tolist() == [0.5, 1.5, 2.5]


def test_written_epochs_by_tag_and_table(written: sf.Recording) -> None:
    rec = written
    assert rec.epochs["run"].tolist() == [[0.0, 2.0], [4.0, 6.0]]
    assert rec.epochs["rest"].tolist() == [[2.0, 4.0]] and rec.epochs["maze"].tolist() == [[0.0, 2.0]]
    assert rec.epochs["trials"].tolist() == [[0.5, 1.5]]
    assert rec.select(epoch="run").units.n_spikes.tolist() == [2, 1]


@pytest.mark.parametrize("module", ["behavior", "tracking"])
def test_written_position_meters_to_cm(tmp_path: Path, module: str) -> None:
    with pytest.warns(UserWarning, match="overlapping"):
        rec = sf.read(_units_file(tmp_path, module=module))
    pos = rec.position
    assert pos.unit == "cm" and pos.columns == ("x", "y") and len(pos) == 50
    np.testing.assert_allclose(pos.values[:, 0], np.linspace(0, 100, 50))
    np.testing.assert_allclose(pos.values[:, 1], 50.0)
    assert pos.metadata["nwb_path"] == f"processing/{module}/Position/led"
    hd = rec.series["head_direction"]
    assert hd.unit == "rad" and hd.timestamps[1] == pytest.approx(0.1)


def test_position_in_acquisition_other_unit(tmp_path: Path) -> None:
    nwbfile = mock_NWBFile()
    nwbfile.add_unit(spike_times=[1.0, 2.0])
    nwbfile.add_acquisition(SpatialSeries(name="pixels", data=np.ones((5, 2)) * 7, reference_frame="frame",
                                          unit="pixels", conversion=2.0, offset=-4.0,
                                          timestamps=np.arange(5.0)))
    rec = read_nwb(_write(nwbfile, tmp_path / "a.nwb"))
    # NWB: value = data * conversion + offset
    assert rec.position.unit == "pixels" and rec.position.values.tolist() == [[10.0, 10.0]] * 5
    assert rec.unit_ids.tolist() == [0]


def test_choose_position_by_name(tmp_path: Path) -> None:
    nwbfile = mock_NWBFile()
    nwbfile.add_unit(spike_times=[1.0])
    for name, scale in (("first", 1.0), ("second", 2.0)):
        nwbfile.add_acquisition(SpatialSeries(name=name, data=np.ones((3, 2)) * scale, reference_frame="f",
                                              unit="cm", timestamps=np.arange(3.0)))
    path = _write(nwbfile, tmp_path / "b.nwb")
    assert read_nwb(path).position.values[0, 0] == 1.0
    rec = read_nwb(path, position="second")
    assert rec.position.values[0, 0] == 2.0 and "first" in rec.series
    with pytest.raises(ReaderError, match=r"\.nwb: position='secnd': no SpatialSeries .* Did you mean 'second'\?"):
        read_nwb(path, position="secnd")


def test_unsorted_spikes_sorted_with_warning(tmp_path: Path) -> None:
    nwbfile = mock_NWBFile()
    nwbfile.add_unit(spike_times=[3.0, 1.0, 2.0])
    with pytest.warns(UserWarning, match="not sorted in the file"):
        rec = read_nwb(_write(nwbfile, tmp_path / "u.nwb"))
    assert rec.spike_times[0].tolist() == [1.0, 2.0, 3.0]


@pytest.mark.parametrize(("case", "message"), [
    ("no_units", r"no Units table .* Add them with nwbfile\.add_unit\(\)"),
    ("nan_spike", r"units/spike_times of unit id 0 contains nan"),
    ("truncated", r"cannot be opened as NWB \(.* bytes; the HDF5 structure is damaged"),
    ("not_hdf5", r"cannot be opened as NWB \(.* bytes; it is not an HDF5 file"),
])
def test_errors_table(tmp_path: Path, case: str, message: str) -> None:
    path = tmp_path / "bad.nwb"
    nwbfile = mock_NWBFile()
    if case == "nan_spike":
        nwbfile.add_unit(spike_times=[1.0, np.nan])
    elif case != "no_units":
        nwbfile.add_unit(spike_times=[1.0])
    _write(nwbfile, path)
    if case == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif case == "not_hdf5":
        path.write_text("not an nwb file\n")
    with pytest.raises(ReaderError, match=message):
        sf.read(path)
