"""Moser-lab (Kavli Institute, NTNU) grid-cell MAT files.

Three layouts of this lab's public data are recognised (file names case-insensitive):

* Stensola et al. 2012 (``mec-grid-cells``): ``<session>_pos.mat`` (``post``, ``posx``, ``posy``,
  ``posx2``, ``posy2``) and one ``<session>_T<tt>C<c>.mat`` per cell holding ``cellTS``;
* Sargolini et al. 2006 grid-cell data: ``<rat>-<date>_POS.mat`` and ``<rat>-<date>_T<t>C<c>.mat``
  with the same variables;
* Sargolini et al. 2006 sample files: one ``<rat>-<session>_t<t>c<c>.mat`` per cell holding the
  spikes ``ts`` and that session's position ``t``, ``x1``, ``y1``, ``x2``, ``y2`` (no position file).

A lab cell sheet ``<session>.xlsx`` (as ``BEN.xlsx``) adds module, area and quality columns.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from ..errors import ReaderError, did_you_mean
from ..recording import Recording
from ..timeseries import TimeSeries
from ._matlab import as_vector, is_mat_file, load_mat, require

__all__ = ["read_moser", "sniff", "find_sessions"]

_CELL_FILE = re.compile(r"^(?P<session>.+)_t(?P<tetrode>\d+)c(?P<cell>\d+)\.mat$", re.IGNORECASE)
_POS_FILE = re.compile(r"^(?P<session>.+)_pos\.mat$", re.IGNORECASE)
_SPIKE_VARS = ("cellTS", "ts")
_TIME_VARS = ("post", "t")
_X_VARS, _Y_VARS = ("posx", "x1"), ("posy", "y1")
_X2_VARS, _Y2_VARS = ("posx2", "x2"), ("posy2", "y2")


def sniff(path: Path) -> bool:
    """True for a folder (or a file inside one) holding ``<session>_T<t>C<c>.mat`` cell files."""
    folder = path if path.is_dir() else path.parent
    if path.is_file() and not (_CELL_FILE.match(path.name) or _POS_FILE.match(path.name)):
        return False
    return any(_CELL_FILE.match(p.name) and is_mat_file(p) for p in folder.glob("*.mat"))


def find_sessions(folder: str | Path) -> dict[str, dict[str, Any]]:
    """Sessions in ``folder``: name -> {"cells": [(tetrode, cell, Path)] in natural order, "pos": Path|None}.

    Examples
    --------
    >>> sorted(find_sessions("../shared/data/mec-grid-cells"))  # doctest: +SKIP
    ['BEN']
    """
    folder = Path(folder)
    sessions: dict[str, dict[str, Any]] = {}
    for p in folder.glob("*.mat"):
        cell, pos = _CELL_FILE.match(p.name), _POS_FILE.match(p.name)
        if cell:
            entry = sessions.setdefault(cell["session"], {"cells": [], "pos": None})
            entry["cells"].append((int(cell["tetrode"]), int(cell["cell"]), p))
        elif pos:
            sessions.setdefault(pos["session"], {"cells": [], "pos": None})["pos"] = p
    for entry in sessions.values():
        # Natural (tetrode, cell) order: T04C10 after T04C9, unlike a lexicographic listing.
        entry["cells"].sort(key=lambda item: (item[0], item[1]))
    return {k: v for k, v in sorted(sessions.items()) if v["cells"]}


def _choose_session(path: Path, session: str | None) -> tuple[str, dict[str, Any]]:
    folder = path if path.is_dir() else path.parent
    sessions = find_sessions(folder)
    if session is None and path.is_file():
        match = _CELL_FILE.match(path.name) or _POS_FILE.match(path.name)
        session = match["session"] if match else None
    if not sessions:
        raise ReaderError(f"{folder}: no Moser-lab cell files (<session>_T<t>C<c>.mat) found.")
    if session is None:
        if len(sessions) > 1:
            raise ReaderError(f"{folder}: holds {len(sessions)} sessions {list(sessions)}; choose one with "
                              "session=....")
        session = next(iter(sessions))
    if session not in sessions:
        raise ReaderError(f"session={session!r} is not in {folder}; sessions: {list(sessions)}."
                          f"{did_you_mean(session, sessions)}")
    return session, sessions[session]


def _optional(variables: dict[str, Any], names: tuple[str, ...], path: Path) -> NDArray[np.float64] | None:
    for name in names:
        if name in variables:
            return as_vector(variables[name], path, name)
    return None


def _position_arrays(variables: dict[str, Any], path: Path) -> dict[str, NDArray[np.float64]]:
    arrays = {}
    for key, names, what in (("t", _TIME_VARS, "position sample times, s"), ("x", _X_VARS, "LED 1 x"),
                             ("y", _Y_VARS, "LED 1 y")):
        name, value = require(variables, path, names, what)
        arrays[key] = as_vector(value, path, name)
    for key, names in (("x2", _X2_VARS), ("y2", _Y2_VARS)):
        value = _optional(variables, names, path)
        if value is not None:
            arrays[key] = value
    n = arrays["t"].size
    for key, arr in arrays.items():
        if arr.size != n:
            raise ReaderError(f"{path}: position variable for {key!r} has {arr.size} samples but the time "
                              f"vector has {n}; expected equal lengths.")
    return arrays


def _position(arrays: dict[str, NDArray[np.float64]], unit: str, source: Path) -> dict[str, TimeSeries]:
    t, x, y = arrays["t"], arrays["x"], arrays["y"]
    meta = {"file": str(source)}
    if "x2" in arrays and "y2" in arrays:
        x2, y2 = arrays["x2"], arrays["y2"]
        with warnings.catch_warnings():  # all-NaN rows are expected where both LEDs were lost
            warnings.simplefilter("ignore", RuntimeWarning)
            mid = np.column_stack([np.nanmean([x, x2], axis=0), np.nanmean([y, y2], axis=0)])
        heading = np.arctan2(y2 - y, x2 - x)
        series = {
            "position": TimeSeries(t, mid, unit=unit, columns=("x", "y"), name="position",
                                   metadata={**meta, "definition": "midpoint of the two LEDs"}),
            "head_direction": TimeSeries(t, heading, unit="rad", columns=("angle",), name="head_direction",
                                         metadata={**meta, "definition": "atan2(y2 - y1, x2 - x1), LED 1 -> LED 2"}),
        }
        return series
    return {"position": TimeSeries(t, np.column_stack([x, y]), unit=unit, columns=("x", "y"), name="position",
                                   metadata=meta)}


def _spike_times(variables: dict[str, Any], path: Path) -> NDArray[np.float64]:
    name, value = require(variables, path, _SPIKE_VARS, "spike times in seconds")
    times = as_vector(value, path, name)
    if times.size > 1 and np.any(np.diff(times) < 0):
        raise ReaderError(f"{path}: {name} is not sorted (first decrease at index "
                          f"{int(np.flatnonzero(np.diff(times) < 0)[0]) + 1}); expected increasing spike times.")
    return times


def _sheet_path(folder: Path, session: str, cell_sheet: str | Path | None | bool) -> Path | None:
    if cell_sheet is False:
        return None
    if cell_sheet not in (None, True):
        sheet = Path(cell_sheet)
        if not sheet.is_file():
            raise ReaderError(f"cell_sheet={str(sheet)!r}: no such file.")
        return sheet
    candidate = folder / f"{session}.xlsx"
    return candidate if candidate.is_file() else None


def read_cell_sheet(path: str | Path) -> pd.DataFrame:
    """Parse a Moser-lab cell sheet (``BEN.xlsx`` style) into one row per (tetrode, cell).

    The header row holds ``TT``, ``Area ...``, ``Cell``, ``#``, ``Theta modulation``, ``Clean``
    and ``Module``; ``TT`` and ``Area`` are filled down; unlabelled columns become ``notes``.

    Examples
    --------
    >>> read_cell_sheet("../shared/data/mec-grid-cells/BEN.xlsx").module.value_counts()  # doctest: +SKIP
    """
    import openpyxl

    path = Path(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "Workbook contains no default style"
        try:
            book = openpyxl.load_workbook(path, read_only=True, data_only=True)
            # max_col: the lab's sheet declares 1,025 styled columns; reading them all takes seconds.
            rows = list(book.worksheets[0].iter_rows(values_only=True, max_col=64))
        except Exception as exc:  # openpyxl raises zipfile/KeyError/InvalidFileException variously
            raise ReaderError(f"{path}: cannot be read as an .xlsx cell sheet ({type(exc).__name__}: {exc}).") from exc
    book.close()
    header_at = next((i for i, r in enumerate(rows) if r and r[0] == "TT" and "Cell" in r), None)
    if header_at is None:
        raise ReaderError(f"{path}: no header row with 'TT' and 'Cell' in the first sheet; expected a Moser-lab "
                          "cell sheet.")
    header = [str(h) if h is not None else None for h in rows[header_at]]
    col = {name.split(" (")[0].strip().lower(): k for k, name in enumerate(header) if name}
    labelled = set(col.values())
    records, tetrode, area = [], None, None
    for row in rows[header_at + 1:]:
        cell = row[col["cell"]] if len(row) > col["cell"] else None
        if not isinstance(cell, int | float):
            break  # the per-cell block ends at the first row without a cell number
        tetrode = row[col["tt"]] if row[col["tt"]] is not None else tetrode
        area = row[col["area"]] if "area" in col and row[col["area"]] is not None else area
        notes = [str(v) for k, v in enumerate(row) if k not in labelled and v is not None and k < 16]
        module = row[col["module"]] if "module" in col else None
        records.append({"tetrode": int(tetrode), "cell": int(cell),
                        "sheet_index": row[col["#"]] if "#" in col else None,
                        "module": int(module) if isinstance(module, int | float) else pd.NA,
                        "area": area, "theta_modulation": row[col.get("theta modulation", -1)] if
                        "theta modulation" in col else None,
                        "clean": row[col["clean"]] if "clean" in col else None,
                        "notes": "; ".join(notes) or None})
    table = pd.DataFrame.from_records(records)
    table["module"] = table["module"].astype("Int64")
    return table


def _support(post: NDArray[np.float64] | None, trains: list[NDArray[np.float64]]) -> NDArray[np.float64]:
    firsts = [t[0] for t in trains if t.size]
    lasts = [t[-1] for t in trains if t.size]
    start = min([0.0, *firsts])
    stop = max(lasts, default=start)
    if post is not None and post.size:
        step = float(np.median(np.diff(post))) if post.size > 1 else 0.0
        stop = max(stop, float(post[-1]) + step)
    return np.array([[start, stop if stop > start else start + 1e-6]])


def read_moser(
    path: str | Path,
    session: str | None = None,
    position_unit: str = "unknown",
    *,
    cell_sheet: str | Path | bool | None = None,
) -> Recording:
    """Read one Moser-lab session (a folder of per-cell MAT files) as a Recording.

    Parameters
    ----------
    path : str or Path
        The session folder (or any cell/position file inside it).
    session : str, optional
        Session prefix (``"BEN"``, ``"11084-03020501"``) when the folder holds several.
    position_unit : str
        Unit of the coordinates, ``"unknown"`` by default because the lab does not document it
        (``"cm"`` when you know it).
    cell_sheet : path, bool or None
        The lab's ``.xlsx`` cell sheet; ``None`` uses ``<session>.xlsx`` when present, ``False``
        ignores it.

    Returns
    -------
    Recording
        Units ``T<tt>C<c>`` in natural (tetrode, cell) order with columns ``tetrode``, ``cell``,
        ``file`` (+ ``module``, ``area``, ``theta_modulation``, ``clean``, ``notes``,
        ``sheet_index`` from the sheet); ``position`` = LED midpoint, ``head_direction`` (rad) when
        two LEDs exist. Support = [min(0, first spike), max(last sample + median interval, last
        spike)], so spikes outside the tracked span are kept.

    Examples
    --------
    >>> import spikefield as sf
    >>> rec = sf.read("../shared/data/mec-grid-cells")  # doctest: +SKIP
    >>> rec.n_units, rec.units.module.value_counts().sort_index().tolist()  # doctest: +SKIP
    (65, [8, 6, 11])
    """
    path = Path(path)
    if not path.exists():
        raise ReaderError(f"{path}: no such file or folder; expected a Moser-lab session folder.")
    folder = path if path.is_dir() else path.parent
    session, files = _choose_session(path, session)
    trains, rows, embedded = [], [], None
    for tetrode, cell, cell_path in files["cells"]:
        variables = load_mat(cell_path)
        trains.append(_spike_times(variables, cell_path))
        rows.append({"tetrode": tetrode, "cell": cell, "file": cell_path.name})
        if files["pos"] is None and embedded is None and any(v in variables for v in _TIME_VARS):
            embedded = (_position_arrays(variables, cell_path), cell_path)
    series: dict[str, TimeSeries] = {}
    post = None
    if files["pos"] is not None:
        arrays = _position_arrays(load_mat(files["pos"]), files["pos"])
        series, post = _position(arrays, position_unit, files["pos"]), arrays["t"]
    elif embedded is not None:  # Sargolini sample layout: every cell file repeats the position
        series, post = _position(embedded[0], position_unit, embedded[1]), embedded[0]["t"]
    units = pd.DataFrame(rows)
    sheet = _sheet_path(folder, session, cell_sheet)
    if sheet is not None:
        units = units.merge(read_cell_sheet(sheet), on=["tetrode", "cell"], how="left")
    ids = [f"T{r['tetrode']:02d}C{r['cell']}" for r in rows]
    return Recording(trains, ids, units=units, series=series, support=_support(post, trains),
                     source=str(folder / session))
