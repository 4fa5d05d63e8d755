"""Interoperability with pynapple (optional extra: ``pip install spikefield[pynapple]``).

``to_pynapple(rec)`` gives pynapple objects (TsGroup with the units table as metadata, TsdFrame
position, IntervalSet epochs); ``from_pynapple(tsgroup, ...)`` builds a Recording back.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ReaderError, ValidationError
from ..recording import Recording
from ..timeseries import TimeSeries

__all__ = ["from_pynapple", "to_pynapple"]

_INSTALL_HINT = "pynapple is not installed; install the optional extra with: pip install spikefield[pynapple]"
#: Columns the Recording computes itself; pynapple's own ``rate`` is recomputed too.
_COMPUTED = ("unit_id", "n_spikes", "rate_hz", "rate")


def _nap() -> Any:
    try:
        return importlib.import_module("pynapple")
    except ImportError as exc:
        raise ImportError(_INSTALL_HINT) from exc


def _intervals(value: Any, name: str) -> np.ndarray:
    """(K, 2) start/stop array from an IntervalSet or anything array-like."""
    values = getattr(value, "values", value)
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim == 1 and arr.size == 2:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValidationError(f"epochs[{name!r}]: expected an IntervalSet or (K, 2) start/stop array; "
                              f"got shape {arr.shape}.")
    return arr


def _position_series(position: Any, unit: str, name: str) -> TimeSeries:
    if isinstance(position, TimeSeries):
        return position
    timestamps = getattr(position, "index", None)
    if timestamps is None:
        raise ValidationError(f"{name}: expected a pynapple Tsd/TsdFrame or a spikefield TimeSeries; "
                              f"got {type(position).__name__}.")
    values = np.asarray(getattr(position, "values", position), dtype=np.float64)
    columns = getattr(position, "columns", None)
    columns = tuple(str(c) for c in columns) if columns is not None and values.ndim == 2 else ()
    return TimeSeries(np.asarray(timestamps, dtype=np.float64), values, unit=unit, columns=columns, name=name)


def from_pynapple(tsgroup: Any, position: Any = None, epochs: Mapping[str, Any] | None = None,
                  *, position_unit: str = "unknown", series: Mapping[str, Any] | None = None,
                  source: str = "<pynapple>") -> Recording:
    """Build a Recording from a pynapple TsGroup.

    Parameters
    ----------
    tsgroup : pynapple.TsGroup
        One Ts per unit (seconds). Its metadata become units-table columns; a ``unit_id``
        column (as written by :func:`to_pynapple`) gives the unit ids, else the group's keys.
        Its ``time_support`` becomes the Recording's support.
    position : pynapple.TsdFrame or Tsd, optional
        The animal's position, in ``position_unit``.
    epochs : mapping of str to IntervalSet or (K, 2) array, optional
    position_unit : str
        Unit of ``position`` (pynapple does not store one): ``"cm"``, ``"px"`` or ``"unknown"``.
    series : mapping of str to Tsd/TsdFrame, optional
        Further behavioural series (unit ``"unknown"``).

    Examples
    --------
    >>> import numpy as np, pynapple as nap  # doctest: +SKIP
    >>> group = nap.TsGroup({0: nap.Ts(t=np.array([0.1, 0.4])), 1: nap.Ts(t=np.array([0.2]))})  # doctest: +SKIP
    >>> from_pynapple(group).units.n_spikes.tolist()  # doctest: +SKIP
    [2, 1]
    """
    nap = _nap()
    if not isinstance(tsgroup, nap.TsGroup):
        raise ValidationError(f"from_pynapple: tsgroup must be a pynapple.TsGroup; got {type(tsgroup).__name__}.")
    keys = list(tsgroup.keys())
    trains = [np.asarray(tsgroup[k].index, dtype=np.float64) for k in keys]
    meta = tsgroup.metadata.reindex(keys) if len(tsgroup.metadata_columns) else pd.DataFrame(index=keys)
    ids = list(meta["unit_id"]) if "unit_id" in meta.columns else [int(k) for k in keys]
    table = meta.drop(columns=[c for c in _COMPUTED if c in meta.columns]).reset_index(drop=True)
    all_series = {}
    if position is not None:
        all_series["position"] = _position_series(position, position_unit, "position")
    for name, value in (series or {}).items():
        all_series[name] = _position_series(value, "unknown", name)
    named = {name: _intervals(value, name) for name, value in (epochs or {}).items()}
    support = np.asarray(tsgroup.time_support.values, dtype=np.float64)
    return Recording(trains, ids, units=table, series=all_series, epochs=named,
                     support=support if len(support) else None, source=source)


def to_pynapple(recording: Recording) -> dict[str, Any]:
    """Convert a Recording to pynapple objects.

    Returns
    -------
    dict
        ``"units"``: TsGroup (keys 0..N-1, time support = the Recording's support, metadata =
        the units table including ``unit_id``); ``"position"``: TsdFrame with every sample (or
        None); ``"position_valid"``: boolean Tsd (False where tracking was lost; pynapple has no
        validity mask) or None; ``"series"``: the other series as TsdFrames; ``"epochs"``: name ->
        IntervalSet; ``"support"``: IntervalSet.

    Examples
    --------
    >>> import spikefield as sf  # doctest: +SKIP
    >>> sim = sf.simulate.place_cells(n_cells=5, run_duration=10, seed=0)  # doctest: +SKIP
    >>> objects = to_pynapple(sim.recording); objects["units"]  # doctest: +SKIP
    """
    nap = _nap()
    if not isinstance(recording, Recording):
        raise ValidationError(f"to_pynapple: expected a spikefield Recording; got {type(recording).__name__}.")
    support = recording.support
    if not len(support):
        raise ReaderError(f"{recording.source}: empty support; nothing to convert to pynapple.")
    time_support = nap.IntervalSet(start=support[:, 0], end=support[:, 1])
    metadata = recording.units.set_index(pd.RangeIndex(recording.n_units))
    # Each Ts gets the support explicitly: pynapple otherwise derives it from the spikes (and
    # warns for one-spike units).
    group = nap.TsGroup({k: nap.Ts(t=np.asarray(t), time_support=time_support)
                         for k, t in enumerate(recording.spike_times)},
                        time_support=time_support, metadata=metadata.drop(columns=["rate_hz"]))

    def frame(ts: TimeSeries) -> Any:
        return nap.TsdFrame(t=ts.timestamps, d=ts.values, columns=list(ts.columns))

    position = recording.position
    return {
        "units": group,
        "position": None if position is None else frame(position),
        "position_valid": None if position is None else nap.Tsd(t=position.timestamps, d=position.valid_mask()),
        "series": {name: frame(ts) for name, ts in recording.series.items() if name != "position"},
        "epochs": {name: nap.IntervalSet(start=iv[:, 0], end=iv[:, 1]) for name, iv in recording.epochs.items()},
        "support": time_support,
    }
