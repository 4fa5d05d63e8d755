"""Moser-lab grid-cell reader: the real Stensola et al. session and the Sargolini et al. layouts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest
import scipy.io

import spikefield as sf
from spikefield.errors import ReaderError
from spikefield.io.moser import find_sessions, read_cell_sheet, read_moser


@pytest.fixture(scope="module")
def real(mec_grid_cells: Path) -> sf.Recording:
    return sf.read(mec_grid_cells)


# ------------------------------------------------------------------------------------------ real data
@pytest.mark.realdata
def test_real_units_match_readme(real: sf.Recording, mec_grid_cells: Path) -> None:
    units = real.units
    assert real.n_units == 65
    assert units.groupby("tetrode").size().to_dict() == {1: 6, 2: 6, 3: 8, 4: 10, 6: 6, 7: 6, 8: 7, 9: 3, 10: 6,
                                                          12: 7}
    assert (units.n_spikes.min(), units.n_spikes.median(), units.n_spikes.max()) == (332, 2371, 38_425)
    assert real.n_spikes == 341_838
    assert units.set_index("unit_id").n_spikes[["T08C6", "T03C4"]].tolist() == [332, 38_425]
    # Natural (tetrode, cell) order, as in the lab sheet and cells.csv, not the lexicographic listing.
    sheet = pd.read_csv(mec_grid_cells / "cells.csv")
    assert units.file.tolist() == sheet.file.tolist()
    assert units.n_spikes.tolist() == sheet.n_spikes.tolist()
    lexicographic = [Path(line).name for line in (mec_grid_cells / "cell_filenames").read_text().split()]
    assert sorted(units.file) == sorted(lexicographic) and units.file.tolist() != lexicographic


@pytest.mark.realdata
def test_real_times_match_readme(real: sf.Recording) -> None:
    first = min(t[0] for t in real.spike_times)
    last = max(t[-1] for t in real.spike_times)
    assert first == pytest.approx(-0.032296, abs=1e-9) and last == pytest.approx(1252.920804, abs=1e-9)
    assert real.support.tolist() == [[first, last]]  # the 27 spikes outside the position span are kept
    post = real.position.timestamps
    outside = sum(int(np.sum((t < post[0]) | (t > post[-1]))) for t in real.spike_times)
    negative = sum(int(np.sum(t < 0)) for t in real.spike_times)
    assert (outside, negative) == (27, 22)
    short = np.array([np.mean(np.diff(t) < 0.002) for t in real.spike_times])
    assert round(short.max() * 100, 1) == 5.5 and real.unit_ids[short.argmax()] == "T09C1"
    assert int(np.sum(short == 0)) == 2
    rates = real.units.rate_hz
    assert round(rates.min(), 3) == 0.265 and round(rates.median(), 3) == 1.892 and round(rates.max(), 2) == 30.67


@pytest.mark.realdata
def test_real_position_and_head_direction(real: sf.Recording, mec_grid_cells: Path) -> None:
    pos, hd = real.position, real.series["head_direction"]
    assert len(pos) == 31_325 and pos.unit == "unknown" and pos.valid_mask().all()
    assert pos.timestamps[-1] == pytest.approx(1252.829637)
    steps = np.diff(pos.timestamps)
    assert steps.min() == pytest.approx(0.039261, abs=1e-6) and np.median(steps) == pytest.approx(0.039996, abs=1e-6)
    raw = scipy.io.loadmat(mec_grid_cells / "BEN_pos.mat")
    np.testing.assert_array_equal(pos.values[:, 0], (raw["posx"][0] + raw["posx2"][0]) / 2)
    distance = np.hypot(raw["posx2"][0] - raw["posx"][0], raw["posy2"][0] - raw["posy"][0])
    assert np.median(distance) == pytest.approx(8.1, abs=0.05)
    np.testing.assert_allclose(np.cos(hd.values[:, 0]) * distance, raw["posx2"][0] - raw["posx"][0], atol=1e-9)
    assert hd.unit == "rad" and np.all(np.abs(hd.values) <= np.pi)
    speed = pos.speed(smooth=0)
    assert np.nanmedian(speed) == pytest.approx(24.5, rel=0.1)


@pytest.mark.realdata
def test_real_cell_sheet(real: sf.Recording) -> None:
    units = real.units.set_index("unit_id")
    assert units.module.value_counts().sort_index().to_dict() == {1: 8, 2: 6, 3: 11}
    interneurons = units.index[units.notes.fillna("").str.contains("Putative interneuron")].tolist()
    assert interneurons == ["T02C2", "T02C6", "T03C4", "T04C2", "T09C1"]
    assert units.loc["T01C1", "area"] == "Most likely PaS" and units.loc["T01C3", "clean"] == "Almost"
    assert units.sheet_index.tolist() == list(range(1, 66))
    assert units.loc["T06C3", "notes"] == "38 is effectively negative"


@pytest.mark.realdata
def test_real_options(mec_grid_cells: Path) -> None:
    rec = read_moser(mec_grid_cells / "BEN_T01C1.mat", position_unit="cm", cell_sheet=False)
    assert rec.n_units == 65 and rec.position.unit == "cm" and "module" not in rec.units.columns


# ------------------------------------------------------------------------------------------ written files
def _pos(t: np.ndarray, two_leds: bool = True, names=("post", "posx", "posy", "posx2", "posy2")) -> dict:
    x = np.cos(t)[None, :] * 50
    y = np.sin(t)[None, :] * 50
    out = {names[0]: t[None, :], names[1]: x, names[2]: y}
    if two_leds:
        out[names[3]], out[names[4]] = x + 4.0, y.copy()
    return out


def _write(folder: Path, files: dict[str, dict]) -> Path:
    folder.mkdir(exist_ok=True)
    for name, variables in files.items():
        scipy.io.savemat(folder / name, variables)
    return folder


def test_stensola_layout_natural_order(tmp_path: Path) -> None:
    t = np.arange(0, 10, 0.04)
    folder = _write(tmp_path / "s", {
        "SES_pos.mat": _pos(t),
        "SES_T01C10.mat": {"cellTS": np.array([[0.5], [1.5]])},
        "SES_T01C2.mat": {"cellTS": np.array([[-0.1], [2.0], [10.5]])},
        "SES_T02C1.mat": {"cellTS": np.array([[3.0]])},
        "SES_EEG.mat": {"EEG": np.ones((1, 5))},
    })
    rec = sf.read(folder)
    assert rec.unit_ids.tolist() == ["T01C2", "T01C10", "T02C1"]
    assert rec.units.tetrode.tolist() == [1, 1, 2] and rec.units.cell.tolist() == [2, 10, 1]
    assert rec.support.tolist() == [[-0.1, 10.5]]
    np.testing.assert_allclose(rec.position.values[:, 0], np.cos(t) * 50 + 2.0)
    np.testing.assert_allclose(rec.series["head_direction"].values[:, 0], 0.0, atol=1e-12)


def test_support_extends_one_interval_past_last_sample(tmp_path: Path) -> None:
    t = np.arange(0, 10, 0.5) + 1.0
    folder = _write(tmp_path / "s", {"A_pos.mat": _pos(t, two_leds=False), "A_T1C1.mat": {"cellTS": [[2.0]]}})
    rec = sf.read(folder)
    assert rec.support.tolist() == [[0.0, 11.0]]  # starts at 0, ends at last sample + median step
    assert "head_direction" not in rec.series and rec.position.values.shape == (20, 2)


def test_sargolini_grid_cell_layout(tmp_path: Path) -> None:
    t = np.arange(0, 600, 0.02)
    folder = _write(tmp_path / "g", {
        "11084-03020501_POS.mat": _pos(t),
        "11084-03020501_T2C1.mat": {"cellTS": np.array([[1.0], [2.0]])},
        "11084-03020501_T2C3.mat": {"cellTS": np.array([[4.0]])},
        "11207-21060501+02_T6C1.mat": {"cellTS": np.array([[5.0]])},
        "11207-21060501+02_POS.mat": _pos(t[:10]),
    })
    assert sorted(find_sessions(folder)) == ["11084-03020501", "11207-21060501+02"]
    with pytest.raises(ReaderError, match=r"holds 2 sessions \['11084-03020501', '11207-21060501\+02'\]"):
        sf.read(folder, format="moser")
    rec = sf.read(folder, format="moser", session="11084-03020501")
    assert rec.unit_ids.tolist() == ["T02C1", "T02C3"] and len(rec.position) == t.size
    other = sf.read(folder / "11207-21060501+02_T6C1.mat", format="moser")
    assert other.unit_ids.tolist() == ["T06C1"] and len(other.position) == 10


def test_sargolini_sample_layout_position_in_cell_files(tmp_path: Path) -> None:
    t = np.arange(0, 20, 0.02)
    pos = _pos(t, names=("t", "x1", "y1", "x2", "y2"))
    pos["x1"][0, 5] = np.nan  # LED 1 lost: the midpoint falls back to LED 2 there
    pos["x2"][0, 6] = pos["y2"][0, 6] = np.nan
    pos["x1"][0, 7] = pos["x2"][0, 7] = np.nan
    folder = _write(tmp_path / "p", {
        "11084-03020501_t2c1.mat": {**pos, "ts": np.array([[0.5], [1.0]])},
        "11084-03020501_t2c2.mat": {**pos, "ts": np.array([[3.0]])},
    })
    rec = sf.read(folder)
    assert rec.unit_ids.tolist() == ["T02C1", "T02C2"] and rec.units.n_spikes.tolist() == [2, 1]
    assert len(rec.position) == t.size
    assert rec.position.values[5, 0] == pytest.approx(pos["x2"][0, 5])
    assert rec.position.values[6, 0] == pytest.approx(pos["x1"][0, 6])
    assert rec.position.valid_mask().tolist()[5:8] == [True, True, False]
    assert np.isnan(rec.series["head_direction"].values[5:8, 0]).all()


def _write_sheet(path: Path) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["N:\\some\\path"])
    sheet.append([])
    sheet.append(["TT", "Area (estimated)", "Cell", "#", "Theta modulation", "Clean", None, None, None, None, None,
                  None, None, None, None, None, "Module"])
    sheet.append([1, "mEC LII", 1, 1, "Y", "Y", "Putative interneuron"] + [None] * 9 + [None])
    sheet.append([None, None, 2, 2, "N", "Almost", None, None, None, "Exclude?"] + [None] * 6 + [3])
    sheet.append([2, "PaS", 1, 3, "Y", "Y"] + [None] * 10 + [1])
    sheet.append([])
    sheet.append([None, "Total counts:", "3 cells"])
    book.save(path)


def test_cell_sheet(tmp_path: Path) -> None:
    _write_sheet(tmp_path / "X.xlsx")
    table = read_cell_sheet(tmp_path / "X.xlsx")
    assert table.tetrode.tolist() == [1, 1, 2] and table.area.tolist() == ["mEC LII", "mEC LII", "PaS"]
    assert table.module.tolist() == [pd.NA, 3, 1] or table.module.isna().tolist() == [True, False, False]
    assert table.notes.tolist()[:2] == ["Putative interneuron", "Exclude?"]
    folder = _write(tmp_path, {"X_pos.mat": _pos(np.arange(0, 5, 0.04)), "X_T1C1.mat": {"cellTS": [[1.0]]},
                               "X_T1C2.mat": {"cellTS": [[2.0]]}, "X_T2C1.mat": {"cellTS": [[3.0]]}})
    rec = sf.read(folder)
    assert rec.units.module.iloc[1:].tolist() == [3, 1] and rec.units.theta_modulation.tolist() == ["Y", "N", "Y"]


@pytest.mark.parametrize(("files", "kwargs", "message"), [
    ({"S_T1C1.mat": {"spikes": [[1.0]]}}, {}, r"S_T1C1\.mat: no variable 'cellTS' or 'ts' \(spike times"),
    ({"S_T1C1.mat": {"cellTS": [[2.0], [1.0]]}}, {}, r"cellTS is not sorted"),
    ({"S_T1C1.mat": {"cellTS": [[1.0]]}, "S_pos.mat": {"post": [[0, 1, 2]], "posx": [[0, 1]], "posy": [[0, 1, 2]]}},
     {}, r"S_pos\.mat: position variable for 'x' has 2 samples but the time vector has 3"),
    ({"S_T1C1.mat": {"cellTS": [[1.0]]}, "S_pos.mat": {"posx": [[0, 1]]}}, {}, r"no variable 'post' or 't'"),
    ({"S_T1C1.mat": {"cellTS": [[1.0]]}}, {"session": "T"}, r"session='T' is not in .*sessions: \['S'\]"),
    ({"S_T1C1.mat": {"cellTS": [[1.0]]}}, {"cell_sheet": "nope.xlsx"}, r"cell_sheet='nope\.xlsx': no such file"),
])
def test_errors_table(tmp_path: Path, files: dict, kwargs: dict, message: str) -> None:
    folder = _write(tmp_path / "e", files)
    with pytest.raises(ReaderError, match=message):
        read_moser(folder, **kwargs)


def test_matlab_v73_hdf5_cell_file(tmp_path: Path) -> None:
    import struct

    import h5py

    path = tmp_path / "A_T3C2.mat"
    with h5py.File(path, "w", userblock_size=512) as handle:
        handle["cellTS"] = np.array([[0.5, 1.5, 2.5]])  # MATLAB's 3x1 column, stored transposed by HDF5
    header = b"MATLAB 7.3 MAT-file, written by the spikefield tests".ljust(116) + b"\0" * 8
    header = (header + struct.pack("<H", 0x0200) + b"IM").ljust(512, b"\0")
    path.write_bytes(header + path.read_bytes()[512:])
    rec = sf.read(tmp_path)
    assert rec.unit_ids.tolist() == ["T03C2"] and rec.spike_times[0].tolist() == [0.5, 1.5, 2.5]
