"""MatClust spikes.mat + Trodes .videoPositionTracking reader: real data set and written files."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from hypothesis import given, settings
from hypothesis import strategies as st

import spikefield as sf
from spikefield.errors import ReaderError
from spikefield.io.matclust import frozen_mask, read_matclust, read_video_position_tracking

# README of hc-linear-track: (0-based tetrode, 0-based cluster slot) -> spike count.
README_UNITS = {
    (0, 0): 1748, (0, 1): 106, (0, 3): 352, (0, 4): 88, (0, 5): 875, (0, 8): 305, (0, 9): 145, (0, 10): 113,
    (0, 13): 408, (0, 14): 557, (0, 16): 1613, (0, 18): 491, (0, 19): 270, (0, 21): 984, (2, 13): 1381,
    (3, 9): 7959, (8, 9): 931, (8, 19): 71, (9, 0): 477, (9, 1): 1183, (9, 4): 487, (9, 5): 816, (9, 9): 479,
    (9, 10): 44, (9, 13): 1065, (9, 14): 92, (9, 16): 41, (9, 17): 2127, (9, 19): 901, (12, 6): 1179,
    (12, 9): 1541,
}
EMPTY_STRUCTS = [(0, 20), (9, 3), (9, 6), (9, 8), (9, 18), (9, 21)]
HEADER = (b"<Start settings>\nthreshold: 199\ndark: 0\nclockrate: 30000\ncamera resolution: 640x480\n"
          b"pixel scale: 0 pix/cm\nFields: <time uint32><xloc uint16><yloc uint16><xloc2 uint16><yloc2 uint16>\n"
          b"<End settings>\n")
RECORD = np.dtype([("time", "<u4"), ("x", "<u2"), ("y", "<u2"), ("x2", "<u2"), ("y2", "<u2")])


@pytest.fixture(scope="module")
def real(hc_linear_track: Path) -> sf.Recording:
    with pytest.warns(UserWarning, match="6 cluster struct"):
        return sf.read(hc_linear_track)


# ------------------------------------------------------------------------------------------ real data
@pytest.mark.realdata
def test_real_units_match_readme(real: sf.Recording) -> None:
    units = real.units
    assert real.n_units == 31
    assert units.groupby("tetrode").size().to_dict() == {0: 14, 2: 1, 3: 1, 8: 2, 9: 11, 12: 2}
    counts = {(int(t), int(c)): int(n) for t, c, n in zip(units.tetrode, units.cluster, units.n_spikes, strict=True)}
    assert counts == README_UNITS
    assert list(units.unit_id) == [f"t{t}c{c}" for t, c in README_UNITS]  # tetrode-major order
    assert real.n_spikes == 28_829
    assert (units.n_spikes.min(), units.n_spikes.median(), units.n_spikes.max()) == (41, 491, 7959)


@pytest.mark.realdata
def test_real_times_and_rates_match_readme(real: sf.Recording) -> None:
    first = min(t[0] for t in real.spike_times)
    last = max(t[-1] for t in real.spike_times)
    assert first == pytest.approx(4397.0023, abs=5e-5) and last == pytest.approx(6365.1473, abs=5e-5)
    assert real.support.tolist() == [[4396.9975, 6365.2707]]
    assert real.duration == pytest.approx(1968.2732, abs=1e-9)
    rates = real.units.rate_hz
    assert rates.min() == pytest.approx(0.0208, abs=5e-5)
    assert rates.median() == pytest.approx(0.2495, abs=5e-5)
    assert rates.max() == pytest.approx(4.0436, abs=5e-5)
    np.testing.assert_allclose(rates, real.units.meanrate_hz, rtol=1e-6)  # equals the file's meanrate
    assert all(np.all(np.diff(t) > 0) for t in real.spike_times)  # strictly increasing, no duplicates
    short = [np.mean(np.diff(t) < 0.002) for t in real.spike_times]
    assert np.median(short) == 0 and round(max(short) * 100, 1) == 2.3  # README: ISIs < 2 ms
    # The 30 kHz acquisition grid survives reading (no float32 round trip).
    ticks = np.concatenate(real.spike_times) * 30000
    assert np.max(np.abs(ticks - np.round(ticks))) < 1e-3


@pytest.mark.realdata
def test_real_position_matches_readme(real: sf.Recording) -> None:
    pos = real.position
    assert len(pos) == 118_965 and pos.unit == "px" and pos.columns == ("x", "y")
    assert pos.timestamps[0] == pytest.approx(131_910_951 / 30000) and pos.timestamps[-1] == pytest.approx(
        191_383_668 / 30000)
    assert pos.timestamps[-1] - pos.timestamps[0] == pytest.approx(1982.4239, abs=1e-4)
    assert np.median(np.diff(pos.timestamps)) * 30000 == pytest.approx(500)
    assert pos.timestamps[45597] == pos.timestamps[45598]  # the duplicated record is kept
    valid = pos.valid_mask()
    assert valid.sum() == 57_582
    assert np.flatnonzero(valid)[[0, -1]].tolist() == [1550, 59131]
    weighted = np.sum(np.diff(pos.timestamps)[valid[:-1]])
    assert weighted == pytest.approx(959.37, abs=0.02)
    xy = pos.values[valid]
    assert xy.min(axis=0).tolist() == [133, 1] and xy.max(axis=0).tolist() == [554, 414]
    np.testing.assert_allclose(np.percentile(xy, [0.5, 99.5], axis=0), [[137, 122], [476, 408]], atol=1)
    before = sum(int(np.sum(t < pos.timestamps[0])) for t in real.spike_times)
    after = sum(int(np.sum(t > pos.timestamps[-1])) for t in real.spike_times)
    assert (before, after) == (4, 0)


@pytest.mark.realdata
def test_real_epochs(real: sf.Recording) -> None:
    np.testing.assert_allclose(real.epochs["tracked"], [[4422.8884, 5382.2374]], atol=1e-3)
    np.testing.assert_allclose(real.epochs["untracked"], [[4397.0317, 4422.8712], [5382.2539, 6379.4556]],
                               atol=1e-4)
    rest = real.select(epoch=real.epochs["untracked"][-1:])
    assert rest.t_stop == pytest.approx(6365.2707)  # clipped to the spikes' timerange
    run = real.select(epoch="tracked")
    assert 0 < run.n_spikes < real.n_spikes


@pytest.mark.realdata
def test_real_include_empty_and_calibration(hc_linear_track: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rec = read_matclust(hc_linear_track, include_empty=True, pixels_per_cm=2.0)
    empty = rec.units[rec.units.n_spikes == 0]
    assert [(int(t), int(c)) for t, c in zip(empty.tetrode, empty.cluster, strict=True)] == EMPTY_STRUCTS
    assert rec.n_units == 37 and rec.position.unit == "cm"
    assert rec.position.values[0].tolist() == [477 / 2, 479 / 2]


@pytest.mark.realdata
def test_real_spikes_file_alone(hc_linear_track: Path, tmp_path: Path) -> None:
    target = tmp_path / "spikes.mat"
    target.write_bytes((hc_linear_track / "spikes.mat").read_bytes())
    with pytest.warns(UserWarning):
        rec = sf.read(target)
    assert rec.n_units == 31 and rec.position is None and dict(rec.epochs) == {}


# ------------------------------------------------------------------------------------------ written files
def _cluster(times: list[float], timerange=(0.0, 100.0)) -> dict:
    t = np.asarray(times, dtype=np.float64).reshape(-1, 1)
    if t.size == 0:
        return {"time": np.zeros((0, 1), np.uint8), "timerange": np.array([timerange]), "meanrate": np.uint8(0)}
    return {"time": t, "timerange": np.array([timerange]), "meanrate": len(times) / (timerange[1] - timerange[0])}


def _cells(*items) -> np.ndarray:
    arr = np.empty((1, len(items)), dtype=object)
    for k, item in enumerate(items):
        arr[0, k] = item
    return arr


def _write_spikes(path: Path, tetrodes: list) -> Path:
    scipy.io.savemat(path, {"spikes": _cells(_cells(_cells(*tetrodes)))})
    return path


def _write_tracking(path: Path, ticks, xy, header: bytes = HEADER) -> Path:
    rec = np.zeros(len(ticks), dtype=RECORD)
    rec["time"], rec["x"], rec["y"] = ticks, np.asarray(xy)[:, 0], np.asarray(xy)[:, 1]
    path.write_bytes(header + rec.tobytes())
    return path


def test_written_nesting_quirks(tmp_path: Path) -> None:
    # tetrode 0: two slots (unit + unused); tetrode 1 unsorted; tetrode 2 a bare struct (squeezed
    # one-slot cell); tetrode 3 a one-slot cell holding a zero-spike struct.
    _write_spikes(tmp_path / "spikes.mat", [
        _cells(_cluster([1.0, 2.0, 3.0]), np.zeros((1, 0))),
        np.zeros((1, 0)),
        _cluster([5.0, 50.0]),
        _cells(_cluster([])),
    ])
    with pytest.warns(UserWarning, match=r"\(tetrode 3, cluster 0\)"):
        rec = sf.read(tmp_path)
    assert rec.unit_ids.tolist() == ["t0c0", "t2c0"]
    assert rec.units.n_spikes.tolist() == [3, 2]
    assert rec.units.rate_hz.tolist() == pytest.approx([0.03, 0.02])
    assert rec.units.meanrate_hz.tolist() == pytest.approx([0.03, 0.02])
    assert rec.support.tolist() == [[0.0, 100.0]]


def test_written_position_frozen_rule(tmp_path: Path) -> None:
    _write_spikes(tmp_path / "spikes.mat", [_cells(_cluster([1.0, 40.0]))])
    t = np.arange(0, 90, 0.5)  # 2 Hz for 90 s
    xy = np.column_stack([np.arange(t.size) % 50 + 10, np.arange(t.size) % 7 + 20])
    xy[0:50] = (477, 479)          # frozen 24.5 s: not tracked
    xy[100:130] = (300, 300)       # frozen 14.5 s: a still animal, valid
    xy[150:] = (522, 8)            # frozen to the end (14.5 s): valid by the >= 20 s rule
    _write_tracking(tmp_path / "a.videoPositionTracking", np.round(t * 30000).astype(np.uint32), xy)
    rec = sf.read(tmp_path)
    valid = rec.position.valid_mask()
    assert valid.tolist() == [False] * 50 + [True] * (t.size - 50)
    np.testing.assert_allclose(rec.epochs["untracked"], [[0.0, 24.5]])
    np.testing.assert_allclose(rec.epochs["tracked"], [[25.0, 89.5]])
    assert rec.position.unit == "px"


@pytest.mark.parametrize(("times", "xy", "expected"), [
    ([0, 10, 20, 30], [[1, 1], [1, 1], [1, 1], [2, 2]], [True, True, True, False]),
    ([0, 10, 19.9, 30], [[1, 1], [1, 1], [1, 1], [2, 2]], [False, False, False, False]),
    ([0, 30, 31], [[1, 1], [2, 2], [1, 1]], [False, False, False]),
    ([], np.zeros((0, 2)), []),
])
def test_frozen_mask_table(times, xy, expected) -> None:
    assert frozen_mask(np.asarray(times, float), np.asarray(xy)).tolist() == expected


def test_header_clockrate_and_calibration(tmp_path: Path) -> None:
    header = HEADER.replace(b"clockrate: 30000", b"clockrate: 1000").replace(b"pixel scale: 0", b"pixel scale: 4")
    _write_tracking(tmp_path / "a.videoPositionTracking", [1000, 2000, 3000], [[8, 4], [12, 4], [16, 8]], header)
    _write_spikes(tmp_path / "spikes.mat", [_cells(_cluster([1.5]))])
    rec = sf.read(tmp_path)
    assert rec.position.timestamps.tolist() == [1.0, 2.0, 3.0]
    assert rec.position.unit == "cm" and rec.position.values.tolist() == [[2, 1], [3, 1], [4, 2]]
    settings, records = read_video_position_tracking(tmp_path / "a.videoPositionTracking")
    assert settings["clockrate"] == "1000" and records.dtype.names == ("time", "xloc", "yloc", "xloc2", "yloc2")


def test_user_epochs_and_options(tmp_path: Path) -> None:
    _write_spikes(tmp_path / "spikes.mat", [_cells(_cluster([1.0, 2.0]))])
    rec = read_matclust(tmp_path, epochs={"sleep": [[10.0, 20.0]]})
    assert rec.epochs["sleep"].tolist() == [[10.0, 20.0]]


@pytest.mark.parametrize(("setup", "kwargs", "message"), [
    ("no_spikes_var", {}, r"no variable 'spikes' \(found \['other'\]\)"),
    ("two_tracking", {}, r"several \.videoPositionTracking files"),
    ("truncated_tracking", {}, r"not a multiple of the 12-byte record size"),
    ("bad_header", {}, r"does not start with '<Start settings>'"),
    ("ok", {"epochs": {"tracked": [[0, 1]]}}, r"name 'tracked' is already used"),
    ("ok", {"position_file": "missing.videoPositionTracking"}, r"position_file=.*no such file"),
    # 0 used to be taken as "uncalibrated" and silently ignored.
    ("ok", {"pixels_per_cm": 0}, r"pixels_per_cm must be a positive number, got 0"),
    ("spike_outside", {}, None),
])
def test_errors_table(tmp_path: Path, setup: str, kwargs: dict, message: str | None) -> None:
    spikes = tmp_path / "spikes.mat"
    if setup == "no_spikes_var":
        scipy.io.savemat(spikes, {"other": np.ones(3)})
    elif setup == "spike_outside":
        _write_spikes(spikes, [_cells(_cluster([1.0, 150.0]))])
    else:
        _write_spikes(spikes, [_cells(_cluster([1.0, 2.0]))])
    tracking = _write_tracking(tmp_path / "a.videoPositionTracking", [30000, 60000], [[1, 1], [2, 2]])
    if setup == "two_tracking":
        _write_tracking(tmp_path / "b.videoPositionTracking", [30000], [[1, 1]])
    elif setup == "truncated_tracking":
        tracking.write_bytes(tracking.read_bytes()[:-5])
    elif setup == "bad_header":
        tracking.write_bytes(b"garbage" + tracking.read_bytes())
    if message is None:  # a spike beyond timerange: support widens, nothing dropped, user told
        with pytest.warns(UserWarning, match="outside the file's timerange"):
            rec = read_matclust(tmp_path)
        assert rec.n_spikes == 2 and rec.t_stop == 150.0
        return
    with pytest.raises(ReaderError, match=message):
        read_matclust(tmp_path, **kwargs)


def _frozen_reference(t: np.ndarray, xy: np.ndarray, min_duration: float) -> list[bool]:
    """Plain-loop statement of the README rule, independent of the vectorised implementation."""
    out = [False] * len(t)
    start = 0
    for k in range(1, len(t) + 1):
        if k == len(t) or tuple(xy[k]) != tuple(xy[start]):
            if t[k - 1] - t[start] >= min_duration:
                out[start:k] = [True] * (k - start)
            start = k
    return out


@settings(max_examples=60, deadline=None)
@given(steps=st.lists(st.floats(0.0, 15.0), min_size=1, max_size=40),
       coords=st.lists(st.integers(0, 2), min_size=40, max_size=40))
def test_frozen_mask_matches_reference(steps: list[float], coords: list[int]) -> None:
    t = np.cumsum(steps)
    xy = np.column_stack([coords[: t.size], np.zeros(t.size, int)])
    assert frozen_mask(t, xy, 20.0).tolist() == _frozen_reference(t, xy, 20.0)
