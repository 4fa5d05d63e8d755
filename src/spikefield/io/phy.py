"""phy / Kilosort output folders: ``spike_times.npy`` (samples) + ``spike_clusters.npy`` + labels."""

from __future__ import annotations

import ast
import csv
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from ..errors import ReaderError
from ..recording import Recording

__all__ = ["read_phy", "read_params", "sniff"]

#: Columns of cluster_info.tsv copied to the units table (phy's names), when present.
_INFO_COLUMNS = ("depth", "ch", "amp", "sh", "fr", "KSLabel", "ContamPct", "Amplitude")


def sniff(path: Path) -> bool:
    """True for a folder holding ``spike_times.npy`` and ``spike_clusters.npy`` (or ``spike_templates.npy``)."""
    return path.is_dir() and (path / "spike_times.npy").is_file() and (
        (path / "spike_clusters.npy").is_file() or (path / "spike_templates.npy").is_file())


def read_params(path: str | Path) -> dict[str, Any]:
    """Parse phy's ``params.py`` safely: literal assignments only (``ast.literal_eval``, no code run).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "params.py"
    >>> _ = p.write_text("dat_path = 'a.bin'\\nn_channels_dat = 4\\nsample_rate = 30000.0\\n")
    >>> read_params(p)["sample_rate"]
    30000.0
    """
    path = Path(path)
    try:
        tree = ast.parse(path.read_text(encoding="utf-8", errors="replace"), filename=str(path))
    except SyntaxError as exc:
        raise ReaderError(f"{path}: is not valid Python ({exc.msg}, line {exc.lineno}); expected phy's "
                          "params.py with lines such as 'sample_rate = 30000.'.") from exc
    params: dict[str, Any] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                params[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                continue  # an expression (e.g. os.path.join(...)) is not needed here and never run
    return params


def _load_vector(path: Path, what: str) -> NDArray:
    try:
        arr = np.load(path, allow_pickle=False, mmap_mode=None)
    except (ValueError, OSError, EOFError) as exc:
        raise ReaderError(f"{path}: cannot be read as a .npy array ({exc}); the file is truncated or corrupt: "
                          "re-export it from Kilosort/phy.") from exc
    if arr.ndim == 2 and 1 in arr.shape:
        arr = arr.reshape(-1)  # Kilosort 1-3 write (n, 1) column vectors
    if arr.ndim != 1:
        raise ReaderError(f"{path}: {what} has shape {arr.shape}; expected (n,) or (n, 1).")
    if arr.dtype.kind not in "iuf":
        raise ReaderError(f"{path}: {what} has dtype {arr.dtype}; expected integers.")
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr) & (arr == np.round(arr))):
        # Float files are accepted only when they hold whole numbers: a fractional or NaN sample
        # index / cluster label would otherwise be truncated or cast to garbage silently.
        k = int(np.flatnonzero(~(np.isfinite(arr) & (arr == np.round(arr))))[0])
        raise ReaderError(f"{path}: {what} holds {float(arr[k])!r} at index {k}; expected whole numbers "
                          "(sample indices / cluster ids).")
    return arr


def _read_tsv(path: Path) -> pd.DataFrame:
    try:
        with path.open(newline="", encoding="utf-8", errors="replace") as handle:
            rows = list(csv.reader(handle, delimiter="\t"))
    except OSError as exc:
        raise ReaderError(f"{path}: cannot be read ({exc}).") from exc
    if not rows or not rows[0]:
        return pd.DataFrame()
    header = [h.strip() for h in rows[0]]
    body = [r + [""] * (len(header) - len(r)) for r in rows[1:] if any(cell.strip() for cell in r)]
    frame = pd.DataFrame([r[: len(header)] for r in body], columns=header)
    key = "cluster_id" if "cluster_id" in frame.columns else ("id" if "id" in frame.columns else None)
    if key is None:
        raise ReaderError(f"{path}: header {header} has no 'cluster_id' column; expected phy's cluster_*.tsv.")
    try:
        frame.index = frame.pop(key).astype(np.int64)
    except ValueError as exc:
        raise ReaderError(f"{path}: column {key!r} holds non-integer cluster ids ({exc}).") from exc
    return frame


def _numeric(series: pd.Series) -> pd.Series:
    converted = pd.to_numeric(series, errors="coerce")
    return converted if converted.notna().sum() >= series.astype(str).str.strip().ne("").sum() else series


def _labels(folder: Path) -> pd.DataFrame:
    """Per-cluster labels: ``quality`` from cluster_group.tsv (else cluster_info.tsv ``group``), extras."""
    table = pd.DataFrame()
    info_path = folder / "cluster_info.tsv"
    if info_path.is_file():
        info = _read_tsv(info_path)
        keep = {c: c.lower() for c in _INFO_COLUMNS if c in info.columns}
        table = info[list(keep)].rename(columns=keep).apply(_numeric)
        if "group" in info.columns:
            table["quality"] = info["group"].str.strip()
    group_path = folder / "cluster_group.tsv"
    if group_path.is_file():  # phy's own save of manual labels: authoritative over cluster_info
        groups = _read_tsv(group_path)
        column = "group" if "group" in groups.columns else (groups.columns[0] if len(groups.columns) else None)
        if column is not None:
            table = table.reindex(table.index.union(groups.index))
            table.loc[groups.index, "quality"] = groups[column].str.strip()
    return table


def _duration(folder: Path, params: dict[str, Any], sample_rate: float) -> float | None:
    """Length of the raw recording (s) from params' dat_path, when that file is next to the output."""
    dat = params.get("dat_path")
    if isinstance(dat, list | tuple):
        dat = dat[0] if len(dat) == 1 else None
    n_channels = params.get("n_channels_dat")
    if not isinstance(dat, str) or not isinstance(n_channels, int) or n_channels <= 0:
        return None
    dat_path = Path(dat) if Path(dat).is_absolute() else folder / dat
    if not dat_path.is_file():
        return None
    try:
        itemsize = np.dtype(params.get("dtype", "int16")).itemsize
    except TypeError:
        return None
    n_bytes = dat_path.stat().st_size - int(params.get("offset", 0) or 0)
    return n_bytes / (itemsize * n_channels) / sample_rate


def _sample_rate(folder: Path, params: dict[str, Any], sample_rate: float | None) -> float:
    rate = sample_rate if sample_rate is not None else params.get("sample_rate")
    if rate is None:
        where = "params.py has no 'sample_rate'" if (folder / "params.py").is_file() else "there is no params.py"
        raise ReaderError(f"{folder}: {where}; pass sample_rate=... (Hz) to convert spike_times from samples.")
    if not isinstance(rate, int | float) or not np.isfinite(rate) or rate <= 0:
        raise ReaderError(f"{folder}: sample_rate is {rate!r}; expected a positive number of samples per second.")
    return float(rate)


def read_phy(path: str | Path, good_only: bool = False, sample_rate: float | None = None,
             *, include_empty: bool = True) -> Recording:
    """Read a phy / Kilosort output folder.

    Parameters
    ----------
    path : str or Path
        Folder holding ``spike_times.npy`` (sample indices) and ``spike_clusters.npy`` (falls
        back to ``spike_templates.npy`` for Kilosort output never opened in phy).
    good_only : bool
        Keep only clusters labelled ``good`` (cluster_group.tsv / cluster_info.tsv).
    sample_rate : float, optional
        Samples per second; by default ``sample_rate`` from ``params.py`` (parsed without
        executing it).
    include_empty : bool
        Clusters listed in a label file but owning no spike are kept as zero-spike units (and
        reported in a ``UserWarning``); ``False`` leaves them out (still reported).

    Returns
    -------
    Recording
        Unit ids = cluster ids (sorted); columns ``quality`` (phy label) and ``depth``, ``ch``,
        ``amp``, ``sh``, ``fr``, ``kslabel`` ... from cluster_info.tsv when present. Support
        starts at 0 s and ends at the raw file's end (from params' ``dat_path`` when that file is
        present) or the last spike.

    Examples
    --------
    >>> import spikefield as sf
    >>> rec = sf.read("kilosort_output/", good_only=True)  # doctest: +SKIP
    >>> rec.units[["unit_id", "quality", "depth"]]  # doctest: +SKIP
    """
    folder = Path(path)
    if not folder.is_dir():
        raise ReaderError(f"{folder}: no such folder; expected a phy/Kilosort output folder.")
    if not (folder / "spike_times.npy").is_file():
        raise ReaderError(f"{folder}: no spike_times.npy; expected a phy/Kilosort output folder.")
    params = read_params(folder / "params.py") if (folder / "params.py").is_file() else {}
    rate = _sample_rate(folder, params, sample_rate)
    samples = _load_vector(folder / "spike_times.npy", "spike_times")
    cluster_file = folder / "spike_clusters.npy"
    if not cluster_file.is_file():
        cluster_file = folder / "spike_templates.npy"
        if not cluster_file.is_file():
            raise ReaderError(f"{folder}: no spike_clusters.npy (nor spike_templates.npy) next to spike_times.npy.")
    clusters = _load_vector(cluster_file, "spike clusters").astype(np.int64)
    if clusters.size != samples.size:
        raise ReaderError(f"{folder}: spike_times.npy has {samples.size:,} spikes but {cluster_file.name} has "
                          f"{clusters.size:,} labels; expected one cluster label per spike (files from "
                          "different runs?).")
    times = samples.astype(np.float64) / rate
    order = np.lexsort((times, clusters))  # group by cluster, time-sorted within each (no spike lost)
    ids, starts = np.unique(clusters[order], return_index=True)
    trains = dict(zip(ids.tolist(), np.split(times[order], starts[1:]), strict=True)) if ids.size else {}
    labels = _labels(folder)
    empty = sorted(set(labels.index.tolist()) - set(trains))
    if empty:
        warnings.warn(f"{folder}: {len(empty)} cluster(s) listed in the label files own no spikes: {empty[:20]}"
                      f"{' ...' if len(empty) > 20 else ''}; " + ("kept as zero-spike units." if include_empty
                      else "left out (include_empty=False)."), UserWarning, stacklevel=2)
        if include_empty:
            trains.update({cid: np.zeros(0) for cid in empty})
    unit_ids = sorted(trains)
    table = labels.reindex(unit_ids).reset_index(drop=True)
    if good_only:
        if "quality" not in table.columns:
            raise ReaderError(f"{folder}: good_only=True but there is no cluster_group.tsv or cluster_info.tsv "
                              "with labels; label clusters in phy first or use good_only=False.")
        keep = (table["quality"] == "good").to_numpy()
        unit_ids = [u for u, k in zip(unit_ids, keep, strict=True) if k]
        table = table.loc[keep].reset_index(drop=True)
    last = max((float(t[-1]) for t in trains.values() if t.size), default=0.0)
    stop = max(_duration(folder, params, rate) or 0.0, last)
    support = np.array([[min(0.0, float(times.min()) if times.size else 0.0), stop if stop > 0 else 1e-6]])
    return Recording([trains[u] for u in unit_ids], unit_ids, units=table, support=support, source=str(folder))
