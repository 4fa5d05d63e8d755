"""Frank-lab MatClust ``spikes.mat`` + Trodes ``.videoPositionTracking`` reader.

``spikes.mat`` holds one variable ``spikes`` nested as ``spikes{day}{epoch}{tetrode}{cluster}``;
each used cluster slot is a struct with ``time`` (n x 1 seconds), ``timerange`` (1 x 2) and
``meanrate``. The Trodes camera file is an ASCII header (``<Start settings>`` ...
``<End settings>``) followed by packed little-endian records described by its ``Fields:`` line.
See ``docs/formats.md`` for the quirks handled here.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from ..errors import ReaderError
from ..recording import Recording
from ..timeseries import TimeSeries
from ._matlab import is_mat_file, load_mat

__all__ = ["read_matclust", "read_video_position_tracking", "frozen_mask", "sniff"]

_HEADER_START = b"<Start settings>"
_HEADER_END = b"<End settings>\n"
_TRODES_TYPES = {"uint8": "u1", "uint16": "u2", "uint32": "u4", "uint64": "u8", "int8": "i1",
                 "int16": "i2", "int32": "i4", "int64": "i8", "single": "f4", "double": "f8",
                 "float": "f4", "float32": "f4", "float64": "f8"}


def sniff(path: Path) -> bool:
    """True for a ``spikes.mat`` file, or a folder holding one or a ``.videoPositionTracking`` file."""
    if path.is_dir():
        return (path / "spikes.mat").is_file() or any(path.glob("*.videoPositionTracking"))
    return path.suffix.lower() == ".mat" and path.name.lower().startswith("spikes") and is_mat_file(path)


# ---------------------------------------------------------------------------------------- spikes
def _cells(node: Any) -> list[Any]:
    """Children of a MATLAB cell node, robust to how scipy squeezed it.

    A cell array is an object ndarray (any shape, MATLAB column order); an empty cell (``[]``) is
    a numeric array of size 0; a struct standing where a one-slot cell was (``squeeze_me=True``
    collapses ``{struct}``) is returned as a single child.
    """
    arr = np.asarray(node) if not isinstance(node, np.ndarray) else node
    if arr.dtype.names is not None:
        return [arr]
    if arr.dtype == object:
        return list(arr.reshape(-1, order="F"))
    if arr.size == 0:
        return []
    raise ReaderError(f"unexpected {arr.dtype} array of shape {arr.shape} where a cell array was expected")


def _field(struct: np.ndarray, name: str) -> Any:
    value = struct[name]
    while isinstance(value, np.ndarray) and value.dtype == object and value.size == 1:
        value = value.reshape(-1)[0]
    return value


def _cluster_times(struct: np.ndarray, where: str) -> NDArray[np.float64]:
    names = struct.dtype.names or ()
    if "time" in names:
        raw = np.asarray(_field(struct, "time"))
    elif "data" in names:  # older Frank-lab files: data(:,1) = spike times
        raw = np.asarray(_field(struct, "data"))
        raw = raw[:, 0] if raw.ndim == 2 and raw.size else raw
    else:
        raise ReaderError(f"{where}: cluster struct has fields {list(names)}; expected 'time' (or 'data').")
    # Zero-spike clusters store time as a 0x1 uint8 array: cast whatever came to float64 seconds.
    return np.asarray(raw, dtype=np.float64).reshape(-1)


def _scalar(struct: np.ndarray, name: str) -> float:
    if name not in (struct.dtype.names or ()):
        return float("nan")
    value = np.asarray(_field(struct, name), dtype=np.float64).reshape(-1)
    return float(value[0]) if value.size else float("nan")


def _pick_session(spikes: Any, path: Path, day: int | None, epoch_index: int | None) -> list[Any]:
    """The tetrode list of the one (day, epoch) holding data, or the one asked for."""
    found = []
    for d, day_node in enumerate(_cells(spikes)):
        for e, epoch_node in enumerate(_cells(day_node)):
            if len(_cells(epoch_node)):
                found.append((d, e, epoch_node))
    chosen = [f for f in found if (day is None or f[0] == day) and (epoch_index is None or f[1] == epoch_index)]
    if len(chosen) == 1:
        return _cells(chosen[0][2])
    pairs = [(d, e) for d, e, _ in found]
    if not chosen:
        raise ReaderError(f"{path}: no spikes for day={day}, epoch_index={epoch_index}; (day, epoch) "
                          f"pairs holding data: {pairs or 'none'}.")
    raise ReaderError(f"{path}: holds several (day, epoch) recordings {pairs}; choose one with "
                      "day=... and epoch_index=... (0-based).")


def _read_spikes(path: Path, day: int | None, epoch_index: int | None) -> tuple[list[dict], list[tuple]]:
    variables = load_mat(path)
    if "spikes" not in variables:
        raise ReaderError(f"{path}: no variable 'spikes' (found {sorted(variables) or 'none'}); expected a "
                          "MatClust/Frank-lab file with spikes{day}{epoch}{tetrode}{cluster}.")
    tetrodes = _pick_session(variables["spikes"], path, day, epoch_index)
    units, empty = [], []
    for t, tetrode in enumerate(tetrodes):
        for c, slot in enumerate(_cells(tetrode)):
            slot = np.asarray(slot)
            if slot.dtype.names is None:  # an unused slot ([] in MATLAB)
                if slot.size:
                    raise ReaderError(f"{path}: tetrode {t} cluster {c} holds a {slot.dtype} array; "
                                      "expected a struct with field 'time' or an empty slot.")
                continue
            struct = slot.reshape(-1)[0:1]
            times = _cluster_times(struct, f"{path}: tetrode {t} cluster {c}")
            info = {"tetrode": t, "cluster": c, "times": times, "meanrate_hz": _scalar(struct, "meanrate")}
            if "timerange" in (struct.dtype.names or ()):
                info["timerange"] = np.asarray(_field(struct, "timerange"), dtype=np.float64).reshape(-1)
            if times.size:
                units.append(info)
            else:
                empty.append((t, c))
    return units, empty


def _support(units: list[dict], path: Path) -> NDArray[np.float64]:
    ranges = [u["timerange"] for u in units if u.get("timerange") is not None and u["timerange"].size == 2]
    firsts = [u["times"][0] for u in units if u["times"].size]
    lasts = [u["times"][-1] for u in units if u["times"].size]
    if not ranges:
        return np.array([[min(firsts), max(lasts)]]) if firsts else np.zeros((0, 2))
    start = min(r[0] for r in ranges)
    stop = max(r[1] for r in ranges)
    if firsts and (min(firsts) < start or max(lasts) > stop):
        # Never drop spikes: the support grows to cover them, and the user is told.
        warnings.warn(f"{path}: spikes lie outside the file's timerange [{start}, {stop}] s "
                      f"(first {min(firsts)}, last {max(lasts)}); the support was widened to keep them.",
                      UserWarning, stacklevel=3)
        start, stop = min(start, min(firsts)), max(stop, max(lasts))
    return np.array([[start, stop]])


# ---------------------------------------------------------------------------------------- position
def _parse_header(head: bytes, path: Path) -> tuple[dict[str, str], np.dtype, int]:
    if not head.startswith(_HEADER_START):
        raise ReaderError(f"{path}: does not start with '<Start settings>'; expected a Trodes "
                          ".videoPositionTracking file.")
    end = head.find(_HEADER_END)
    if end < 0:
        raise ReaderError(f"{path}: header has no '<End settings>' line; the file is truncated or not a "
                          "Trodes position file.")
    text = head[:end].decode("ascii", errors="replace")
    settings = {}
    for line in text.splitlines()[1:]:
        key, _, value = line.partition(":")
        settings[key.strip().lower()] = value.strip()
    fields = re.findall(r"<(\w+)\s+(\w+)>", settings.get("fields", ""))
    if not fields:
        raise ReaderError(f"{path}: header has no 'Fields: <name type>...' line; cannot decode the records.")
    unknown = [kind for _, kind in fields if kind.lower() not in _TRODES_TYPES]
    if unknown:
        raise ReaderError(f"{path}: header field type {unknown[0]!r} is not one of {sorted(_TRODES_TYPES)}.")
    dtype = np.dtype([(name, "<" + _TRODES_TYPES[kind.lower()]) for name, kind in fields])
    return settings, dtype, end + len(_HEADER_END)


def _header_number(settings: dict[str, str], key: str, path: Path) -> float | None:
    if key not in settings:
        return None
    match = re.match(r"[-+0-9.eE]+", settings[key])
    if match is None:
        raise ReaderError(f"{path}: header '{key}: {settings[key]}' is not a number.")
    return float(match.group())


def read_video_position_tracking(path: str | Path) -> tuple[dict[str, str], NDArray]:
    """Read a Trodes ``.videoPositionTracking`` file.

    Returns the header settings (lower-cased keys) and the records as a numpy structured array
    with the fields named in the header (``time``, ``xloc``, ``yloc``, ...), every record kept.

    Examples
    --------
    >>> settings, records = read_video_position_tracking("trajectory.videoPositionTracking")  # doctest: +SKIP
    >>> float(settings["clockrate"]), records["time"][:2]  # doctest: +SKIP
    """
    path = Path(path)
    if not path.is_file():
        raise ReaderError(f"{path}: no such file; expected a Trodes .videoPositionTracking file.")
    data = path.read_bytes()
    settings, dtype, offset = _parse_header(data[:65536], path)
    n_bytes = len(data) - offset
    if n_bytes % dtype.itemsize:
        raise ReaderError(f"{path}: {n_bytes:,} bytes of records is not a multiple of the {dtype.itemsize}-byte "
                          "record size; the file is truncated or corrupt: copy it again from its source.")
    return settings, np.frombuffer(data, dtype=dtype, offset=offset)


def frozen_mask(timestamps: ArrayLike, xy: ArrayLike, min_duration: float = 20.0) -> NDArray[np.bool_]:
    """True for records inside a frozen stretch: a maximal run of identical ``xy`` rows lasting
    at least ``min_duration`` seconds from its first to its last timestamp (how Trodes encodes
    "not tracked").

    Examples
    --------
    >>> t = np.arange(6) * 10.0
    >>> xy = np.array([[1, 1], [1, 1], [1, 1], [5, 6], [7, 8], [7, 8]])
    >>> frozen_mask(t, xy).tolist()
    [True, True, True, False, False, False]
    """
    t = np.asarray(timestamps, dtype=np.float64)
    xy = np.asarray(xy)
    if len(t) == 0:
        return np.zeros(0, dtype=bool)
    change = np.r_[True, np.any(xy[1:] != xy[:-1], axis=1)]
    run_id = np.cumsum(change) - 1
    starts = np.flatnonzero(change)
    stops = np.r_[starts[1:], len(t)] - 1
    frozen_runs = (t[stops] - t[starts]) >= min_duration
    return frozen_runs[run_id]


def _runs(mask: NDArray[np.bool_], t: NDArray[np.float64]) -> NDArray[np.float64]:
    """[first, last] timestamps of each maximal run of True in ``mask`` (zero-length runs skipped)."""
    edges = np.flatnonzero(np.diff(np.r_[0, mask.astype(np.int8), 0]))
    out = [(t[a], t[b - 1]) for a, b in zip(edges[::2], edges[1::2], strict=True) if t[b - 1] > t[a]]
    return np.asarray(out, dtype=np.float64).reshape(-1, 2)


def _position(path: Path, pixels_per_cm: float | None, frozen_seconds: float) -> tuple[TimeSeries, dict]:
    if pixels_per_cm is not None and not (np.isfinite(pixels_per_cm) and pixels_per_cm > 0):
        # Checked before the header's scale: 0 must not silently mean "uncalibrated" here.
        raise ReaderError(f"pixels_per_cm must be a positive number, got {pixels_per_cm!r}.")
    settings, records = read_video_position_tracking(path)
    clockrate = _header_number(settings, "clockrate", path)
    if not clockrate or clockrate <= 0:
        raise ReaderError(f"{path}: header has no positive 'clockrate' (found {settings.get('clockrate')!r}).")
    names = records.dtype.names
    if "time" not in names or "xloc" not in names or "yloc" not in names:
        raise ReaderError(f"{path}: records have fields {list(names)}; expected time, xloc and yloc.")
    t = records["time"].astype(np.float64) / clockrate
    xy = np.column_stack([records["xloc"], records["yloc"]]).astype(np.float64)
    frozen = frozen_mask(t, xy, frozen_seconds)
    scale = pixels_per_cm if pixels_per_cm is not None else _header_number(settings, "pixel scale", path)
    meta = {"file": str(path), "clockrate": clockrate, "settings": dict(settings)}
    position = TimeSeries(t, xy, unit="px", columns=("x", "y"), valid=~frozen, name="position", metadata=meta)
    if scale:  # "pixel scale: 0 pix/cm" means uncalibrated
        position = position.scaled(1.0 / scale, "cm")
    epochs = {"tracked": _runs(~frozen, t), "untracked": _runs(frozen, t)}
    return position, epochs


def _find_files(path: Path, position_file: str | Path | None) -> tuple[Path, Path | None]:
    if path.is_dir():
        spikes_file = path / "spikes.mat"
        if not spikes_file.is_file():
            candidates = sorted(p.name for p in path.glob("*.mat"))
            raise ReaderError(f"{path}: no spikes.mat in this folder (found .mat files: {candidates or 'none'}); "
                              "pass the spikes file itself.")
        folder = path
    else:
        spikes_file, folder = path, path.parent
    if position_file is not None:
        position = Path(position_file)
        if not position.is_file():
            raise ReaderError(f"position_file={str(position)!r}: no such file.")
        return spikes_file, position
    tracking = sorted(folder.glob("*.videoPositionTracking"))
    if len(tracking) > 1:
        raise ReaderError(f"{folder}: several .videoPositionTracking files {[p.name for p in tracking]}; "
                          "choose one with position_file=....")
    return spikes_file, (tracking[0] if tracking else None)


def read_matclust(
    path: str | Path,
    position_file: str | Path | None = None,
    pixels_per_cm: float | None = None,
    epochs: Mapping[str, ArrayLike] | None = None,
    *,
    include_empty: bool = False,
    frozen_seconds: float = 20.0,
    day: int | None = None,
    epoch_index: int | None = None,
) -> Recording:
    """Read a MatClust-sorted recording (Frank-lab ``spikes.mat``) with its Trodes position.

    Parameters
    ----------
    path : str or Path
        A folder holding ``spikes.mat`` (and usually one ``.videoPositionTracking`` file), or the
        spikes file itself.
    position_file : str or Path, optional
        The Trodes camera file; by default the one ``.videoPositionTracking`` next to the spikes.
    pixels_per_cm : float, optional
        Spatial calibration. Without it position stays in pixels (``unit="px"``) unless the
        header's ``pixel scale`` is non-zero.
    epochs : mapping of str to (K, 2) arrays, optional
        Extra named intervals (seconds), added to ``tracked`` / ``untracked``.
    include_empty : bool
        Keep clusters whose struct holds no spikes as zero-spike units. By default they are left
        out and listed in a ``UserWarning`` (they are never dropped silently).
    frozen_seconds : float
        Minimum span (s) of a run of identical (x, y) records to count as "not tracked".
    day, epoch_index : int, optional
        0-based ``spikes{day}{epoch}`` to read when the file holds several.

    Returns
    -------
    Recording
        Units ``t{tetrode}c{cluster}`` (0-based, tetrode-major order) with columns ``tetrode``,
        ``cluster``, ``meanrate_hz`` (the file's ``meanrate``); support = the file's
        ``timerange``; ``position`` keeps every record, with ``valid`` False in frozen stretches;
        epochs ``tracked`` and ``untracked`` ([first, last] record times of each run). For the
        ``hc-linear-track`` data set, running = ``tracked`` and rest = the last ``untracked``
        interval.

    Examples
    --------
    >>> import spikefield as sf
    >>> rec = sf.read("../shared/data/hc-linear-track")  # doctest: +SKIP
    >>> rec.n_units, rec.position.unit, rec.epochs["tracked"]  # doctest: +SKIP
    (31, 'px', array([[4422.88..., 5382.23...]]))
    """
    path = Path(path)
    if not path.exists():
        raise ReaderError(f"{path}: no such file or folder; expected a MatClust folder or spikes.mat.")
    spikes_file, tracking_file = _find_files(path, position_file)
    units, empty = _read_spikes(spikes_file, day, epoch_index)
    if empty and not include_empty:
        listed = ", ".join(f"(tetrode {t}, cluster {c})" for t, c in empty)
        warnings.warn(f"{spikes_file}: {len(empty)} cluster struct(s) hold no spikes and are not units: {listed}; "
                      "pass include_empty=True to keep them as zero-spike units.", UserWarning, stacklevel=2)
    if include_empty and empty:
        units = units + [{"tetrode": t, "cluster": c, "times": np.zeros(0), "meanrate_hz": 0.0} for t, c in empty]
        units.sort(key=lambda u: (u["tetrode"], u["cluster"]))
    support = _support(units, spikes_file)
    series, all_epochs = {}, {}
    if tracking_file is not None:
        series["position"], all_epochs = _position(tracking_file, pixels_per_cm, frozen_seconds)
    elif pixels_per_cm is not None:
        raise ReaderError(f"{path}: pixels_per_cm was given but there is no .videoPositionTracking file.")
    for name, intervals in (epochs or {}).items():
        if name in all_epochs:
            raise ReaderError(f"epochs: name {name!r} is already used by the reader ({sorted(all_epochs)}); "
                              "choose another name.")
        all_epochs[name] = intervals
    table = pd.DataFrame({"tetrode": [u["tetrode"] for u in units], "cluster": [u["cluster"] for u in units],
                          "meanrate_hz": [u["meanrate_hz"] for u in units]})
    return Recording([u["times"] for u in units], [f"t{u['tetrode']}c{u['cluster']}" for u in units],
                     units=table, series=series, epochs=all_epochs, support=support, source=str(spikes_file))
