"""Recording: spike trains, a units table, behavioural time series and named epochs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from .errors import RecordingError, did_you_mean
from .intervals import as_intervals, contains, intersect, total_duration
from .timeseries import TimeSeries

__all__ = ["Recording"]


def _spike_train(values: ArrayLike, unit_id: Any, source: str) -> NDArray[np.float64]:
    where = f"{source}: unit {unit_id!r}"
    try:
        # Always copy: the Recording freezes its arrays and must never freeze or alias the user's.
        arr = np.array(values, dtype=np.float64, copy=True)
    except (TypeError, ValueError) as exc:
        raise RecordingError(f"{where}: spike times are not numbers ({exc}).") from exc
    arr = arr.reshape(-1) if arr.ndim == 2 and 1 in arr.shape else arr
    if arr.ndim != 1:
        raise RecordingError(f"{where}: expected a 1-D array of spike times, got shape {arr.shape}.")
    if not np.all(np.isfinite(arr)):
        k = int(np.flatnonzero(~np.isfinite(arr))[0])
        raise RecordingError(
            f"{where}: spike time at index {k} is {float(arr[k])}; expected finite times in seconds."
        )
    if arr.size > 1 and np.any(np.diff(arr) < 0):
        k = int(np.flatnonzero(np.diff(arr) < 0)[0])
        raise RecordingError(
            f"{where}: spike times are not sorted (index {k + 1}: {float(arr[k + 1])} < {float(arr[k])}); "
            "sort them (np.sort) before building a Recording."
        )
    arr.setflags(write=False)
    return arr


class Recording:
    """An immutable set of simultaneously recorded spike trains with behaviour and epochs.

    Parameters
    ----------
    spike_times : sequence of arrays
        One sorted array of spike times (seconds) per unit.
    unit_ids : sequence, optional
        One unique identifier per unit (default ``0..N-1``).
    units : pandas.DataFrame, optional
        Extra per-unit columns from the source (brain area, quality label, depth, ...), one row
        per unit in the same order. ``unit_id``, ``n_spikes`` and ``rate_hz`` are computed.
    series : mapping of str to TimeSeries, optional
        Behavioural time series; ``"position"`` is exposed as :attr:`position`.
    epochs : mapping of str to (K, 2) arrays, optional
        Named intervals (seconds), e.g. ``{"run": [[0, 600]], "rest": [[600, 1200]]}``.
    support : (K, 2) array, optional
        Time support: the intervals during which the recording is valid. By default the span
        from the earliest to the latest of spikes, behaviour samples and epochs, so that no
        spike ever falls outside it.
    source : str, optional
        Where the data came from (a path), used in messages and summaries.

    Examples
    --------
    >>> import spikefield as sf
    >>> rec = sf.Recording([[0.1, 0.5, 0.9], [0.2]], unit_ids=["a", "b"],
    ...                    epochs={"run": [[0.0, 0.6]]})
    >>> rec.n_units, rec.units["n_spikes"].tolist()
    (2, [3, 1])
    >>> rec.select(epoch="run").units["n_spikes"].tolist()
    [2, 1]
    """

    def __init__(
        self,
        spike_times: Sequence[ArrayLike],
        unit_ids: Sequence[Any] | None = None,
        *,
        units: pd.DataFrame | None = None,
        series: Mapping[str, TimeSeries] | None = None,
        epochs: Mapping[str, ArrayLike] | None = None,
        support: ArrayLike | None = None,
        source: str | None = None,
    ) -> None:
        self._source = source or "<arrays>"
        if isinstance(spike_times, np.ndarray) and spike_times.dtype != object:
            raise RecordingError(
                f"{self._source}: spike_times must be a sequence of per-unit arrays; for one flat "
                "array of times with per-spike unit labels use Recording.from_arrays(times, labels)."
            )
        trains = list(spike_times)
        ids = list(range(len(trains))) if unit_ids is None else list(unit_ids)
        if len(ids) != len(trains):
            raise RecordingError(
                f"{self._source}: {len(ids)} unit_ids for {len(trains)} spike trains."
            )
        # Ids are compared as text (select() matches them that way), so 1 and "1" collide.
        as_text = pd.Series([str(u) for u in ids])
        if as_text.duplicated().any():
            dup = ids[int(np.flatnonzero(as_text.duplicated().to_numpy())[0])]
            raise RecordingError(
                f"{self._source}: unit id {dup!r} appears more than once (ids are compared as text); "
                "expected unique unit_ids."
            )
        self._trains = tuple(_spike_train(t, u, self._source) for t, u in zip(trains, ids, strict=True))
        self._unit_ids = np.asarray(ids)
        self._series = MappingProxyType(dict(series or {}))
        for key, ts in self._series.items():
            if not isinstance(ts, TimeSeries):
                raise RecordingError(f"{self._source}: series {key!r} must be a TimeSeries, got "
                                     f"{type(ts).__name__}.")
        self._epochs = MappingProxyType(
            {str(k): as_intervals(v, name=f"epoch {k!r}") for k, v in (epochs or {}).items()}
        )
        self._support = self._resolve_support(support)
        self._units = self._build_units_table(units)

    # ------------------------------------------------------------------ construction helpers
    def _resolve_support(self, support: ArrayLike | None) -> NDArray[np.float64]:
        if support is not None:
            sup = as_intervals(support, name=f"{self._source}: support")
            for uid, train in zip(self._unit_ids.tolist(), self._trains, strict=True):
                outside = ~contains(sup, train)
                if outside.any():
                    raise RecordingError(
                        f"{self._source}: {int(outside.sum())} spikes of unit {uid!r} lie outside "
                        f"the given support (first at {float(train[outside][0])} s); spikes are never "
                        "dropped silently: widen the support or select() a time window explicitly."
                    )
            return sup
        firsts = [t[0] for t in self._trains if t.size]
        lasts = [t[-1] for t in self._trains if t.size]
        for ts in self._series.values():
            if len(ts):
                firsts.append(ts.timestamps[0])
                lasts.append(ts.timestamps[-1])
        for iv in self._epochs.values():
            if len(iv):
                firsts.append(iv[0, 0])
                lasts.append(iv[-1, 1])
        if not firsts:
            return np.zeros((0, 2))
        start, stop = float(min(firsts)), float(max(lasts))
        if stop <= start:  # a single spike: give it a tiny but valid support
            stop = start + 1e-6
        return np.array([[start, stop]])

    def _build_units_table(self, extra: pd.DataFrame | None) -> pd.DataFrame:
        duration = self.duration
        n_spikes = np.array([t.size for t in self._trains], dtype=np.int64)
        table = pd.DataFrame({
            "unit_id": self._unit_ids,
            "n_spikes": n_spikes,
            "rate_hz": n_spikes / duration if duration > 0 else np.full(len(n_spikes), np.nan),
        })
        if extra is not None:
            if len(extra) != len(table):
                raise RecordingError(
                    f"{self._source}: units table has {len(extra)} rows for {len(table)} units."
                )
            extra = extra.reset_index(drop=True).drop(
                columns=[c for c in ("unit_id", "n_spikes", "rate_hz") if c in extra.columns]
            )
            table = pd.concat([table, extra], axis=1)
        return table

    @classmethod
    def from_arrays(
        cls,
        spike_times: ArrayLike | Sequence[ArrayLike],
        unit_ids: ArrayLike | None = None,
        *,
        position: tuple[ArrayLike, ArrayLike] | TimeSeries | None = None,
        position_unit: str = "unknown",
        epochs: Mapping[str, ArrayLike] | None = None,
        units: pd.DataFrame | None = None,
        support: ArrayLike | None = None,
        source: str | None = None,
    ) -> Recording:
        """Build a Recording from plain arrays.

        ``spike_times`` is either a list of per-unit arrays (then ``unit_ids`` has one id per
        unit) or one flat array of spike times with ``unit_ids`` giving each spike's unit label
        (same length; units are ordered by sorted label). ``position`` is ``(timestamps,
        coords)`` with coords of shape (T,) or (T, D) in ``position_unit``.
        """
        flat = isinstance(spike_times, np.ndarray) and spike_times.dtype != object
        if flat:
            times = np.asarray(spike_times, dtype=np.float64).reshape(-1)
            if unit_ids is None:
                raise RecordingError("from_arrays: a flat spike_times array needs per-spike unit_ids.")
            labels = np.asarray(unit_ids).reshape(-1)
            if labels.shape != times.shape:
                raise RecordingError(
                    f"from_arrays: spike_times has {times.size} entries but unit_ids has "
                    f"{labels.size}; expected one unit label per spike."
                )
            ids, inverse = np.unique(labels, return_inverse=True)
            order = np.argsort(inverse, kind="stable")
            bounds = np.searchsorted(inverse[order], np.arange(len(ids) + 1))
            trains = [times[order[bounds[k]:bounds[k + 1]]] for k in range(len(ids))]
            unit_list: list[Any] = ids.tolist()
        else:
            trains = list(spike_times)  # type: ignore[arg-type]
            unit_list = None if unit_ids is None else list(unit_ids)  # type: ignore[arg-type]
        series = {}
        if position is not None:
            if isinstance(position, TimeSeries):
                series["position"] = position
            else:
                ts, coords = position
                series["position"] = TimeSeries(np.asarray(ts), np.asarray(coords), unit=position_unit)
        return cls(trains, unit_list, units=units, series=series, epochs=epochs,
                   support=support, source=source)

    @classmethod
    def from_pynapple(cls, tsgroup: Any, position: Any = None, epochs: Mapping[str, Any] | None = None,
                      **options: Any) -> Recording:
        """Build a Recording from a pynapple ``TsGroup`` (needs the ``pynapple`` extra).

        See :func:`spikefield.io.pynapple.from_pynapple` for the options.
        """
        from .io.pynapple import from_pynapple

        return from_pynapple(tsgroup, position=position, epochs=epochs, **options)

    def to_pynapple(self) -> dict[str, Any]:
        """Convert to pynapple objects (``TsGroup``, ``TsdFrame``, ``IntervalSet``s).

        See :func:`spikefield.io.pynapple.to_pynapple` for the returned mapping.
        """
        from .io.pynapple import to_pynapple

        return to_pynapple(self)

    # ------------------------------------------------------------------ read-only views
    @property
    def spike_times(self) -> tuple[NDArray[np.float64], ...]:
        """Per-unit sorted spike times in seconds (read-only arrays)."""
        return self._trains

    @property
    def unit_ids(self) -> NDArray:
        """Unit identifiers, in the order of :attr:`spike_times`."""
        return self._unit_ids.copy()

    @property
    def units(self) -> pd.DataFrame:
        """One row per unit: ``unit_id``, ``n_spikes``, ``rate_hz`` and source columns (a copy)."""
        return self._units.copy()

    @property
    def n_units(self) -> int:
        """Number of units."""
        return len(self._trains)

    @property
    def n_spikes(self) -> int:
        """Total number of spikes."""
        return int(sum(t.size for t in self._trains))

    @property
    def support(self) -> NDArray[np.float64]:
        """``(K, 2)`` intervals (seconds) during which the recording is defined."""
        return self._support.copy()

    @property
    def t_start(self) -> float:
        """Start of the support in seconds."""
        return float(self._support[0, 0]) if len(self._support) else 0.0

    @property
    def t_stop(self) -> float:
        """End of the support in seconds."""
        return float(self._support[-1, 1]) if len(self._support) else 0.0

    @property
    def duration(self) -> float:
        """Total duration of the support in seconds (gaps between intervals excluded)."""
        return total_duration(self._support)

    @property
    def epochs(self) -> Mapping[str, NDArray[np.float64]]:
        """Named epochs: name -> ``(K, 2)`` intervals in seconds."""
        return self._epochs

    @property
    def series(self) -> Mapping[str, TimeSeries]:
        """Named behavioural time series."""
        return self._series

    @property
    def position(self) -> TimeSeries | None:
        """The animal's position, or None when the source has none."""
        return self._series.get("position")

    @property
    def source(self) -> str:
        """Path or description of the data's origin."""
        return self._source

    def spikes(self) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
        """All spikes as one time-sorted array with the index (0..N-1) of each spike's unit."""
        times = np.concatenate([*self._trains, np.zeros(0)])
        index = np.repeat(np.arange(self.n_units), [t.size for t in self._trains])
        order = np.argsort(times, kind="stable")
        return times[order], index[order]

    # ------------------------------------------------------------------ derivation
    def with_position_scale(self, pixels_per_unit: float, unit: str = "cm") -> Recording:
        """Return a copy whose position is divided by ``pixels_per_unit`` and labelled ``unit``."""
        if self.position is None:
            raise RecordingError(f"{self._source}: has no position to scale.")
        if not (isinstance(pixels_per_unit, int | float | np.integer | np.floating)
                and np.isfinite(pixels_per_unit) and pixels_per_unit > 0):
            raise RecordingError(
                f"with_position_scale: pixels_per_unit must be a positive finite number, got {pixels_per_unit!r}."
            )
        series = dict(self._series)
        series["position"] = self.position.scaled(1.0 / float(pixels_per_unit), unit)
        return self._replace(series=series)

    def _replace(self, **changes: Any) -> Recording:
        kwargs = dict(spike_times=self._trains, unit_ids=list(self._unit_ids),
                      units=self._units.drop(columns=["unit_id", "n_spikes", "rate_hz"]),
                      series=dict(self._series), epochs=dict(self._epochs),
                      support=self._support, source=self._source)
        kwargs.update(changes)
        return Recording(**kwargs)

    def epoch_intervals(self, epoch: str | ArrayLike) -> NDArray[np.float64]:
        """Intervals of a named epoch (or validate a ``(K, 2)`` array given directly)."""
        if isinstance(epoch, str):
            if epoch not in self._epochs:
                raise RecordingError(
                    f"{self._source}: no epoch named {epoch!r}; available epochs: "
                    f"{sorted(self._epochs) or 'none'}.{did_you_mean(epoch, self._epochs)}"
                )
            return self._epochs[epoch]
        return as_intervals(epoch, name="epoch")

    def _unit_mask(self, units: Any) -> NDArray[np.bool_]:
        if units is None:
            return np.ones(self.n_units, dtype=bool)
        arr = np.asarray(units)
        if arr.dtype == bool:
            if arr.shape != (self.n_units,):
                raise RecordingError(
                    f"select(units=...): boolean mask has shape {arr.shape}, expected ({self.n_units},)."
                )
            return arr
        wanted = [str(u) for u in np.atleast_1d(arr)]
        have = [str(u) for u in self._unit_ids]
        missing = [u for u in wanted if u not in have]
        if missing:
            raise RecordingError(
                f"{self._source}: select(units=...) names unit {missing[0]!r}, which does not exist."
                f"{did_you_mean(missing[0], have)} Valid ids: {have[:10]}{' ...' if len(have) > 10 else ''}"
            )
        wanted_set = set(wanted)
        return np.array([u in wanted_set for u in have])

    def select(
        self,
        units: Any = None,
        epoch: str | ArrayLike | None = None,
        t_start: float | None = None,
        t_stop: float | None = None,
    ) -> Recording:
        """Restrict to some units and/or a time window; returns a new Recording.

        Parameters
        ----------
        units : sequence of unit ids or boolean mask over units, optional
        epoch : str or (K, 2) array, optional
            A named epoch or explicit intervals (seconds).
        t_start, t_stop : float, optional
            Clip the support to ``[t_start, t_stop]`` (seconds).
        """
        mask = self._unit_mask(units)
        support = self._support
        if epoch is not None:
            support = intersect(support, self.epoch_intervals(epoch))
        if t_start is not None or t_stop is not None:
            lo = self.t_start if t_start is None else float(t_start)
            hi = self.t_stop if t_stop is None else float(t_stop)
            if not hi > lo:
                raise RecordingError(f"select: t_stop ({hi}) must be greater than t_start ({lo}).")
            support = intersect(support, np.array([[lo, hi]]))
        if len(support) == 0:
            raise RecordingError(
                f"{self._source}: the selection (epoch={epoch!r}, t_start={t_start}, t_stop={t_stop}) "
                f"does not overlap the recording's support {self._support.tolist()}."
            )
        trains = [t[contains(support, t)] for t, keep in zip(self._trains, mask, strict=True) if keep]
        series = {k: ts.restrict(support) for k, ts in self._series.items()}
        epochs = {}
        for name, iv in self._epochs.items():
            clipped = intersect(iv, support)
            if len(clipped):
                epochs[name] = clipped
        extra = self._units.loc[mask].drop(columns=["unit_id", "n_spikes", "rate_hz"])
        return Recording(trains, list(self._unit_ids[mask]), units=extra, series=series,
                         epochs=epochs, support=support, source=self._source)

    def bin(self, bin_size: float, epoch: str | ArrayLike | None = None, dtype: Any = bool,
            *, max_dense_bytes: int | None = None):
        """Bin spikes into a :class:`~spikefield.Raster` (see :func:`spikefield.raster.bin_spikes`)."""
        from .raster import bin_spikes

        rec = self if epoch is None else self.select(epoch=epoch)
        return bin_spikes(rec.spike_times, rec._support, bin_size, unit_ids=rec.unit_ids,
                          dtype=dtype, max_dense_bytes=max_dense_bytes)

    # ------------------------------------------------------------------ text
    def summary(self) -> str:
        """A multi-line human-readable summary."""
        u = self._units
        lines = [
            f"Recording from {self._source}",
            f"  units: {self.n_units} ({self.n_spikes:,} spikes)",
            f"  support: {self.t_start:.3f}-{self.t_stop:.3f} s in {len(self._support)} interval(s), "
            f"{self.duration:.1f} s",
        ]
        if self.n_units:
            r = u["rate_hz"].to_numpy()
            lines.append(f"  rate (Hz) min/median/max: {np.nanmin(r):.3g} / {np.nanmedian(r):.3g} / "
                         f"{np.nanmax(r):.3g}")
        extra = [c for c in u.columns if c not in ("unit_id", "n_spikes", "rate_hz")]
        if extra:
            lines.append(f"  unit columns: {', '.join(map(str, extra))}")
        for name, ts in self._series.items():
            lines.append(f"  {name}: {ts!r}")
        if not self._series:
            lines.append("  behaviour: none")
        for name, iv in self._epochs.items():
            lines.append(f"  epoch {name!r}: {len(iv)} interval(s), {total_duration(iv):.1f} s")
        return "\n".join(lines)

    def __repr__(self) -> str:
        beh = ", ".join(self._series) or "no behaviour"
        ep = ", ".join(self._epochs) or "no epochs"
        return (f"<Recording {self.n_units} units, {self.n_spikes:,} spikes, {self.duration:.1f} s "
                f"({self.t_start:.3f}-{self.t_stop:.3f} s); {beh}; epochs: {ep}>")
