"""NWB 2.x reader (via pynwb): Units table, Position/SpatialSeries and TimeIntervals."""

from __future__ import annotations

import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from hdmf.common import VectorIndex
from numpy.typing import NDArray

from ..errors import ReaderError, did_you_mean
from ..recording import Recording
from ..timeseries import TimeSeries

__all__ = ["read_nwb", "sniff"]

_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
#: Units-table columns that are not per-unit scalars (or are handled separately).
_SKIP_COLUMNS = {"spike_times", "obs_intervals", "waveform_mean", "waveform_sd", "waveforms", "electrodes",
                 "electrode_group"}
#: Length units converted to cm; any other unit is kept as written in the file.
_TO_CM = {"m": 100.0, "meter": 100.0, "meters": 100.0, "metre": 100.0, "metres": 100.0,
          "cm": 1.0, "centimeter": 1.0, "centimeters": 1.0, "mm": 0.1, "millimeter": 0.1, "millimeters": 0.1}


def sniff(path: Path) -> bool:
    """True for a ``.nwb`` file, or any HDF5 file whose root carries an ``nwb_version`` attribute."""
    if not path.is_file():
        return False
    if path.suffix.lower() == ".nwb":
        return True
    try:
        with path.open("rb") as handle:
            if handle.read(8) != _HDF5_MAGIC:
                return False
        import h5py

        with h5py.File(path, "r") as handle:
            return "nwb_version" in handle.attrs
    except OSError:
        return False


def _open_error(path: Path, exc: Exception) -> ReaderError:
    size = path.stat().st_size
    with path.open("rb") as handle:
        head = handle.read(8)
    if head != _HDF5_MAGIC:
        what = "it is not an HDF5 file (NWB 2.x files are HDF5)"
    else:
        what = "the HDF5 structure is damaged, typically a truncated copy"
    return ReaderError(f"{path}: cannot be opened as NWB ({size:,} bytes; {what}: {type(exc).__name__}: "
                       f"{str(exc).splitlines()[0] if str(exc) else ''}); copy the file again from its source.")


def _cell(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, np.generic):
        return value.item()
    return value


def _spike_trains(units: Any, path: Path) -> list[NDArray[np.float64]]:
    ragged = units["spike_times"]  # a VectorIndex over the flat spike_times VectorData
    data = np.asarray(ragged.target.data[:], dtype=np.float64)
    # The index may be stored as uint16/uint32 (the real pynapple file does): widen before use.
    index = np.asarray(ragged.data[:], dtype=np.int64)
    bounds = np.r_[0, index]
    ids = units.id[:]
    trains = []
    for k, uid in enumerate(ids):
        train = data[bounds[k]:bounds[k + 1]]
        if not np.all(np.isfinite(train)):
            bad = float(train[~np.isfinite(train)][0])
            raise ReaderError(f"{path}: units/spike_times of unit id {uid} contains {bad!r}; expected finite "
                              "spike times in seconds.")
        if train.size > 1 and np.any(np.diff(train) < 0):
            warnings.warn(f"{path}: spike times of unit id {uid} are not sorted in the file; sorted on reading "
                          "(no spike removed).", UserWarning, stacklevel=4)
            train = np.sort(train)
        trains.append(train)
    return trains


def _units_table(units: Any, n_units: int) -> pd.DataFrame:
    table: dict[str, list] = {}
    for name in units.colnames:
        if name in _SKIP_COLUMNS or isinstance(units[name], VectorIndex):
            continue  # ragged columns hold several values per unit: not a units-table column
        try:
            values = units[name].data[:]
        except (TypeError, ValueError, KeyError):
            continue
        if len(values) == n_units and np.ndim(values) == 1:
            table[name] = [_cell(v) for v in values]
    if "electrode_group" in units.colnames:
        groups = units["electrode_group"].data[:]
        table["electrode_group"] = [getattr(g, "name", _cell(g)) for g in groups]
        if "location" not in table or not any(table["location"]):
            table["location"] = [getattr(g, "location", "") for g in groups]
    if "electrodes" in units.colnames:
        area = _electrode_areas(units["electrodes"], n_units)
        if area is not None:
            table["brain_area"] = area
    return pd.DataFrame(table, index=range(n_units))


def _electrode_areas(ragged: Any, n_units: int) -> list | None:
    """Most frequent electrode ``location`` per unit (the brain area of its channels)."""
    region = getattr(ragged, "target", ragged)  # VectorIndex -> DynamicTableRegion
    table = getattr(region, "table", None)
    if table is None or "location" not in table.colnames:
        return None
    location = [_cell(v) for v in table["location"].data[:]]
    # Region entries are row positions in the electrodes table, not electrode ids.
    positions = np.asarray(region.data[:], dtype=np.int64)
    bounds = np.r_[0, np.asarray(ragged.data[:], dtype=np.int64)] if ragged is not region else np.arange(n_units + 1)
    areas = []
    for k in range(n_units):
        names = [location[p] for p in positions[bounds[k]:bounds[k + 1]] if 0 <= p < len(location)]
        areas.append(Counter(names).most_common(1)[0][0] if names else None)
    return areas


def _spatial_series(nwbfile: Any) -> dict[str, Any]:
    """Every SpatialSeries under processing (any module) or acquisition, by a unique name."""
    from pynwb.behavior import CompassDirection, Position, SpatialSeries

    found: dict[str, Any] = {}

    def visit(container: Any, where: str) -> None:
        if isinstance(container, SpatialSeries):
            found.setdefault(container.name, (container, where, "position"))
        elif isinstance(container, Position | CompassDirection):
            kind = "position" if isinstance(container, Position) else "direction"
            for series in container.spatial_series.values():
                found.setdefault(series.name, (series, f"{where}/{container.name}", kind))

    for module_name, module in nwbfile.processing.items():
        for obj in module.data_interfaces.values():
            visit(obj, f"processing/{module_name}")
    for obj in nwbfile.acquisition.values():
        visit(obj, "acquisition")
    return found


def _to_timeseries(series: Any, name: str, where: str) -> TimeSeries:
    timestamps = np.asarray(series.get_timestamps(), dtype=np.float64)
    # NWB stores raw values: value in `unit` = data * conversion + offset (offset since NWB 2.5).
    offset = getattr(series, "offset", None)
    values = np.asarray(series.data[:], dtype=np.float64) * float(series.conversion or 1.0) + float(offset or 0.0)
    values = values.reshape(len(values), -1)
    unit = str(series.unit or "unknown")
    factor = _TO_CM.get(unit.strip().lower())
    if factor is not None:
        values, unit = values * factor, "cm"
    columns = ("x", "y", "z")[: values.shape[1]] if values.shape[1] <= 3 else ()
    if unit.lower() in ("radians", "radian", "rad"):
        unit = "rad"
    return TimeSeries(timestamps, values, unit=unit, columns=columns, name=name,
                      metadata={"nwb_path": f"{where}/{series.name}", "nwb_unit": series.unit,
                                "reference_frame": getattr(series, "reference_frame", None)})


def _behaviour(nwbfile: Any, position: str | None, path: Path) -> dict[str, TimeSeries]:
    found = _spatial_series(nwbfile)
    if position is not None and position not in found:
        raise ReaderError(f"{path}: position={position!r}: no SpatialSeries of that name; available: {sorted(found)}."
                          f"{did_you_mean(position, found)}")
    chosen = position or next((n for n, (_, _, kind) in found.items() if kind == "position"), None)
    series = {}
    for name, (obj, where, kind) in found.items():
        key = "position" if name == chosen else ("head_direction" if kind == "direction"
                                                 and "head_direction" not in series else name)
        series[key] = _to_timeseries(obj, key, where)
    return series


def _add_interval(epochs: dict[str, list], name: str, start: float, stop: float) -> None:
    epochs.setdefault(name, []).append((float(start), float(stop)))


def _intervals(nwbfile: Any, path: Path) -> dict[str, NDArray[np.float64]]:
    """Named epochs: rows of ``epochs`` by tag, other TimeIntervals tables by table name."""
    raw: dict[str, list] = {}
    tables = dict(nwbfile.intervals or {}) if nwbfile.intervals is not None else {}
    for table_name, table in tables.items():
        frame = table.to_dataframe()
        for row in frame.itertuples():
            tags = getattr(row, "tags", None) if table_name == "epochs" else None
            tags = [] if tags is None else [t for t in np.atleast_1d(tags).tolist() if str(t)]
            for label in tags or [table_name]:
                _add_interval(raw, str(label), row.start_time, row.stop_time)
    epochs = {}
    for name, pairs in raw.items():
        # An interval set is a union of time: sort and merge strict overlaps. Rows that only touch
        # (back-to-back trials) stay separate, so each remains its own Raster segment and no
        # dynamical model pairs bins across a trial boundary.
        empty = [p for p in pairs if not p[1] > p[0]]
        pairs = sorted(p for p in pairs if p[1] > p[0])
        merged: list[list[float]] = []
        n_overlaps = 0
        for start, stop in pairs:
            if merged and start < merged[-1][1]:
                n_overlaps += 1
                merged[-1][1] = max(merged[-1][1], stop)
            else:
                merged.append([start, stop])
        if empty or n_overlaps:  # the file's rows are changed: say so, never silently
            dropped = f" and {len(empty)} row(s) with stop <= start left out (first {empty[0]})" if empty else ""
            warnings.warn(f"{path}: intervals {name!r}: {n_overlaps} overlapping row(s) merged into their "
                          f"union{dropped}.", UserWarning, stacklevel=4)
        if merged:
            epochs[name] = np.asarray(merged)
    return epochs


def read_nwb(path: str | Path, position: str | None = None) -> Recording:
    """Read an NWB 2.x file's sorted units, position and epochs.

    Parameters
    ----------
    path : str or Path
        The ``.nwb`` (HDF5) file.
    position : str, optional
        Name of the SpatialSeries to expose as ``rec.position`` when the file holds several
        (default: the first found under ``processing``, then ``acquisition``).

    Returns
    -------
    Recording
        Unit ids from the Units table's ``id`` column; unit columns from the table's scalar
        columns (``location``, ``quality``, ``group``, ``depth``, ...), ``electrode_group`` (name)
        and ``brain_area`` (most common ``location`` of the unit's electrodes) when present.
        Position in cm when its ``unit`` is a length (meters are multiplied by 100), else as
        written. Epochs: each tag of the ``epochs`` table, and every other TimeIntervals table by
        its name (``trials``, ``invalid_times``, ...), as its sorted rows (touching rows kept as
        separate intervals, i.e. separate Raster segments; overlapping rows merged and rows with
        stop <= start left out, each with a ``UserWarning``).

    Examples
    --------
    >>> import spikefield as sf
    >>> rec = sf.read("../shared/data/nwb-psb-neuropixels/A8604-211122.nwb")  # doctest: +SKIP
    >>> rec.unit_ids.tolist(), list(rec.epochs)  # doctest: +SKIP
    ([6, 191, 206], ['wake'])
    """
    from pynwb import NWBHDF5IO

    path = Path(path)
    if not path.is_file():
        raise ReaderError(f"{path}: no such file; expected an NWB (.nwb) file.")
    io = None
    try:
        io = NWBHDF5IO(str(path), "r", load_namespaces=True)
        nwbfile = io.read()
    except Exception as exc:  # h5py/hdmf raise OSError, KeyError, ValueError... on damaged files
        if io is not None:  # opened but unreadable: do not leak the HDF5 handle
            io.close()
        raise _open_error(path, exc) from exc
    try:
        units = nwbfile.units
        if units is None or len(units.id) == 0:
            raise ReaderError(f"{path}: NWB file has no Units table (or it is empty); spikefield needs sorted "
                              "units (nwbfile.units with spike_times). Add them with nwbfile.add_unit().")
        if "spike_times" not in units.colnames:
            raise ReaderError(f"{path}: Units table has columns {list(units.colnames)}; expected 'spike_times'.")
        ids = [_cell(v) for v in units.id[:]]
        trains = _spike_trains(units, path)
        table = _units_table(units, len(ids))
        series = _behaviour(nwbfile, position, path)
        epochs = _intervals(nwbfile, path)
    finally:
        io.close()
    return Recording(trains, ids, units=table, series=series, epochs=epochs, source=str(path))
