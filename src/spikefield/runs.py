"""Runs: read → select → bin → fit → validate → analyses, written as one run folder.

A run folder holds::

    config.json     everything needed to rerun (``spikefield fit --config RUN/config.json``)
    metrics.json    headline numbers and every section's values (``status: complete``)
    model.npz       the fitted model (``KineticIsing.load``)
    results/        each report section's arrays (so the report can be redrawn)
    figures/        the report's figures as PNG
    report.html     one self-contained page

It is built in a hidden sibling folder (``.NAME.partial-XXXX``) and renamed into place only when
complete, so an interrupted run never leaves a folder that looks finished, and a rerun replaces
an old result only once the new one is whole.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import os
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from .config import MODELS, RunConfig
from .errors import RecordingError, SpikefieldError, ValidationError, did_you_mean

__all__ = ["RunFolderError", "RunResult", "atomic_directory", "execute_run", "rebuild_report", "load_run",
           "read_recording", "select_units", "is_run_folder"]

_MARKER_FILES = ("config.json", "metrics.json")


class RunFolderError(SpikefieldError):
    """A run folder is missing, incomplete, or the output path holds something that is not a run."""


@dataclass
class RunResult:
    """What :func:`execute_run` returns: the folder, its metrics and the fitted model."""

    folder: Path
    metrics: dict[str, Any]
    model: Any = field(repr=False, default=None)

    @property
    def report(self) -> Path:
        """Path of ``report.html``."""
        return self.folder / "report.html"


# ---------------------------------------------------------------------- run folders
def is_run_folder(path: str | Path) -> bool:
    """True when ``path`` is a complete spikefield run folder."""
    path = Path(path)
    return all((path / name).is_file() for name in _MARKER_FILES)


@contextlib.contextmanager
def atomic_directory(out: str | Path) -> Iterator[Path]:
    """Yield a fresh hidden folder next to ``out``; on success it replaces ``out``.

    On an exception the partial folder is removed and ``out`` is untouched. An existing ``out``
    is replaced only when it is a spikefield run folder (or empty): user data is never deleted.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "run"
    >>> with atomic_directory(target) as tmp:
    ...     _ = (tmp / "config.json").write_text("{}")
    >>> sorted(p.name for p in target.iterdir())
    ['config.json']
    """
    out = Path(out).absolute()
    _check_replaceable(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _check_replaceable(out)
    if out.exists():
        # Two renames: the old run moves aside, the new one moves in; at no time is a
        # half-written folder visible under the final name.
        trash = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
        os.rename(out, trash / out.name)
        os.rename(tmp, out)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.rename(tmp, out)


def _check_replaceable(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise RunFolderError(f"--out {out}: is a file; expected a folder for the run.")
    if out.is_dir() and any(out.iterdir()) and not is_run_folder(out):
        raise RunFolderError(f"--out {out}: folder exists and is not a spikefield run (no config.json/metrics.json);"
                             " refusing to replace it; choose a new or empty folder.")


def load_run(path: str | Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Read a run folder's ``(config.json, metrics.json)`` documents."""
    path = Path(path)
    if not path.is_dir():
        raise RunFolderError(f"{path}: no such run folder.")
    missing = [name for name in _MARKER_FILES if not (path / name).is_file()]
    if missing:
        raise RunFolderError(f"{path}: not a complete spikefield run (missing {', '.join(missing)}).")
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
        metrics = json.loads((path / "metrics.json").read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise RunFolderError(f"{path}: config.json or metrics.json is not valid JSON ({exc}).") from exc
    return config, metrics


# ---------------------------------------------------------------------- pipeline steps
def read_recording(path: str | Path) -> tuple[Any, list[str]]:
    """``spikefield.read(path)`` with the reader's warnings collected (shown by the CLI, kept in metrics)."""
    from .io import read

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        recording = read(path)
    return recording, [f"{w.category.__name__}: {w.message}" for w in caught]


def select_units(recording, config: RunConfig):
    """Apply the config's unit ids, quality labels, epoch and minimum rate; returns the selection.

    Units with no spike in the selected epoch are always left out (a silent unit has no finite
    maximum-likelihood field); how many were dropped and why is recorded in the run's metrics.
    """
    rec = recording
    if config.pixels_per_cm is not None and rec.position is not None and rec.position.unit == "px":
        rec = rec.with_position_scale(config.pixels_per_cm, "cm")
    if config.units is not None:
        rec = rec.select(units=config.units)
    if config.quality is not None:
        if "quality" not in rec.units.columns:
            raise RecordingError(f"{rec.source}: --quality needs a 'quality' column in the units table; the columns "
                                 f"are {list(rec.units.columns)}.")
        labels = rec.units["quality"].astype(str)
        rec = rec.select(units=labels.isin(config.quality).to_numpy())
    if config.epoch is not None:
        rec = rec.select(epoch=config.epoch)
    rates = rec.units["rate_hz"].to_numpy()
    keep = (rates >= config.min_rate) & (rec.units["n_spikes"].to_numpy() > 0)
    if keep.sum() < 2:
        raise RecordingError(f"{rec.source}: {int(keep.sum())} unit(s) left after selection (epoch={config.epoch!r}, "
                             f"min_rate={config.min_rate} Hz, quality={config.quality}); at least 2 are needed. "
                             "Lower --min-rate or choose another epoch.")
    return rec.select(units=keep) if not keep.all() else rec


def _check_analyses(config: RunConfig) -> None:
    from .report import sections

    optional = [s.name for s in sections() if s.optional]
    for name in config.analyses or []:
        if name not in optional:
            raise ValidationError(f"config: analyses: unknown section {name!r}.{did_you_mean(name, optional)} "
                                  f"Registered optional sections: {', '.join(optional)}.")


def _make_model(config: RunConfig):
    import spikefield as sf

    cls = getattr(sf, MODELS[config.model])
    accepted = inspect.signature(cls).parameters
    kwargs = {"l2": config.l2, "device": config.device}
    if config.l1:
        kwargs["l1"] = config.l1
    if config.max_iter is not None:
        kwargs["max_iter"] = config.max_iter
    unknown = [k for k in kwargs if k not in accepted]
    if unknown:
        raise ValidationError(f"model {config.model!r} does not take {', '.join(unknown)}; it accepts "
                              f"{', '.join(p for p in accepted if p != 'self')}.")
    return cls(**kwargs)


def _save_model(model, path: Path) -> None:
    if hasattr(model, "save"):
        model.save(path)
    else:  # a model without its own format: keep the parameters at least
        np.savez(path, h=np.asarray(model.h_), J=np.asarray(model.J_))


def _tqdm_progress(enabled: bool) -> Callable[..., Any]:
    from tqdm.auto import tqdm

    def progress(iterable, **kwargs):
        return tqdm(iterable, disable=not enabled, file=sys.stderr, leave=False, **kwargs)

    return progress


def _headline(metrics: Mapping[str, Any]) -> list[tuple[str, str]]:
    sec = metrics.get("sections", {})
    ll = sec.get("likelihood", {}).get("values", {})
    out = [(f"{metrics['data']['n_units']} units", "fitted"),
           (f"{metrics['data']['n_bins']:,} bins", f"{metrics['data']['bin_size_s'] * 1e3:g} ms each")]
    if ll.get("ll_gain_test") is not None:
        out.append((f"{ll['ll_gain_test']:+.2e}", "held-out gain over independent (nats/bin/unit)"))
    if ll.get("fraction_units_improved") is not None:
        out.append((f"{100 * ll['fraction_units_improved']:.0f}%", "units better predicted than independent"))
    coup = sec.get("couplings", {}).get("values", {})
    if coup.get("J_true_correlation") is not None:
        out.append((f"{coup['J_true_correlation']:.2f}", "correlation of fitted with true couplings"))
    model = metrics.get("model", {})
    out.append(("yes" if model.get("converged") else "NO", f"fit converged ({model.get('n_iter')} iterations)"))
    return out


def _write_report(folder: Path, config_doc: Mapping[str, Any], metrics: Mapping[str, Any]) -> Path:
    from . import __version__
    from .report import load_results, write_report

    records = load_results(folder, metrics.get("sections", {}))
    cfg = config_doc.get("config", {})
    source = cfg.get("data") or "simulated place cells (spikefield.simulate.place_cells)"
    subtitle = [f"data: {source}", f"created {metrics.get('created_utc', '?')} · spikefield {__version__} · "
                                   f"model {cfg.get('model', '?')} on {metrics.get('model', {}).get('device', '?')}"]
    return write_report(folder, records, title="spikefield run report", subtitle=subtitle, headline=_headline(metrics),
                        config=dict(config_doc),
                        footer="Generated by spikefield; rebuild with `spikefield report RUN_DIR`.")


def rebuild_report(run_dir: str | Path) -> Path:
    """Redraw the figures and ``report.html`` of a run folder from its stored results.

    The new figures and page are written next to the old ones and swapped in only when complete.

    Examples
    --------
    >>> rebuild_report("runs/demo")  # doctest: +SKIP
    PosixPath('runs/demo/report.html')
    """
    run_dir = Path(run_dir)
    config_doc, metrics = load_run(run_dir)
    _remove_stale_staging(run_dir)
    staging = Path(tempfile.mkdtemp(prefix=_REPORT_STAGING_PREFIX, dir=run_dir))
    try:
        if (run_dir / "results").is_dir():
            os.symlink((run_dir / "results").absolute(), staging / "results")
        _write_report(staging, config_doc, metrics)
        old_figures = run_dir / "figures"
        trash = staging / "old-figures"
        if old_figures.exists():
            os.rename(old_figures, trash)
        try:
            os.rename(staging / "figures", old_figures)
        except OSError:
            if trash.exists():  # put the old figures back rather than lose them with the staging folder
                os.rename(trash, old_figures)
            raise
        os.replace(staging / "report.html", run_dir / "report.html")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return run_dir / "report.html"


_REPORT_STAGING_PREFIX = ".report-"


def _remove_stale_staging(run_dir: Path) -> None:
    """Delete staging folders left by a rebuild that was killed (the ``finally`` above never ran).

    They hold only regenerated figures and, possibly, the previous figures of a rebuild that was
    interrupted between its two renames; in that case the figures are moved back first.
    """
    for stale in run_dir.glob(f"{_REPORT_STAGING_PREFIX}*"):
        if not stale.is_dir():
            continue
        orphaned = stale / "old-figures"
        if orphaned.is_dir() and not (run_dir / "figures").exists():
            os.rename(orphaned, run_dir / "figures")
        shutil.rmtree(stale, ignore_errors=True)


def execute_run(config: RunConfig, out: str | Path, *, recording=None, ground_truth: Mapping[str, Any] | None = None,
                progress: bool = True, strict: bool = False, command: list[str] | None = None) -> RunResult:
    """Run the whole pipeline and write the run folder ``out`` atomically.

    Parameters
    ----------
    config : RunConfig
    out : str or Path
        Run folder to create (an existing run folder there is replaced when this run succeeds).
    recording : Recording, optional
        Use this recording instead of reading ``config.data``.
    ground_truth : mapping, optional
        Known parameters of simulated data (``couplings``, ``field_centers``) for recovery figures.
    progress : bool
        Show progress bars on stderr.
    strict : bool
        Re-raise failures of optional analysis sections (tests) instead of reporting them.
    command : list of str, optional
        The command line, stored in ``config.json`` for provenance.

    Returns
    -------
    RunResult

    Examples
    --------
    >>> from spikefield.config import RunConfig
    >>> result = execute_run(RunConfig(data="../shared/data/hc-linear-track"), "runs/hc")  # doctest: +SKIP
    """
    from . import __version__
    from ._device import resolve_device
    from .report import RunContext, compute_sections, save_results
    from .report.builder import metrics_json

    device = resolve_device(config.device)  # fail before reading and binning, not after
    _check_analyses(config)
    started = time.perf_counter()
    timings: dict[str, float] = {}
    track = _tqdm_progress(progress)
    stages = track(None, desc="read", total=5, unit="stage")
    first = [True]

    def stage(name: str) -> None:
        if not first[0]:
            stages.update(1)
        first[0] = False
        stages.set_description(name)

    with stages, atomic_directory(out) as folder:
        t = time.perf_counter()
        stage("read")
        read_warnings: list[str] = []
        if recording is None:
            recording, read_warnings = read_recording(config.data)
        full = recording
        rec = select_units(full, config)
        timings["read_select_s"] = time.perf_counter() - t

        t = time.perf_counter()
        stage("bin")
        raster = rec.bin(config.bin_size)
        train, test = raster.split(1.0 - config.test_fraction)
        timings["bin_s"] = time.perf_counter() - t

        t = time.perf_counter()
        stage(f"fit {config.model}")
        model = _make_model(config)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model.fit(train)
        timings["fit_s"] = time.perf_counter() - t
        _save_model(model, folder / "model.npz")

        t = time.perf_counter()
        stage("validate and analyse")
        ctx = RunContext(recording=rec, full_recording=full, raster=raster, train=train, test=test, model=model,
                         config=config, ground_truth=dict(ground_truth or {}), progress=track)
        with warnings.catch_warnings(record=True) as caught_in_sections:
            warnings.simplefilter("always")
            records = compute_sections(ctx, include=config.analyses, strict=strict)
        timings["sections_s"] = time.perf_counter() - t

        created = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        config_doc = {"config": config.to_dict(), "spikefield_version": __version__, "created_utc": created,
                      "command": command or [], "source": rec.source}
        metrics: dict[str, Any] = {
            "status": "complete", "spikefield_version": __version__, "created_utc": created,
            "data": {"source": rec.source, "n_units": rec.n_units, "n_units_in_file": full.n_units,
                     "n_bins": raster.n_bins, "n_train_bins": train.n_bins, "n_test_bins": test.n_bins,
                     "bin_size_s": raster.bin_size, "epoch": config.epoch,
                     "unit_ids": [str(u) for u in rec.unit_ids]},
            "model": {"name": config.model, "converged": bool(getattr(model, "converged_", False)),
                      "n_iter": int(getattr(model, "n_iter_", -1)), "fit_seconds": timings["fit_s"],
                      "device": str(device)},
            "warnings": read_warnings + sorted({f"{w.category.__name__}: {w.message}"
                                                for w in [*caught, *caught_in_sections]}),
        }
        metrics["sections"] = save_results(records, folder)
        stage("report")
        t = time.perf_counter()
        (folder / "config.json").write_text(json.dumps(config_doc, indent=2, default=str), encoding="utf-8")
        _write_report(folder, config_doc, json.loads(metrics_json(metrics)))
        timings["report_s"] = time.perf_counter() - t
        timings["total_s"] = time.perf_counter() - started
        metrics["timings"] = timings
        # metrics.json is written last: its presence marks the run complete.
        (folder / "metrics.json").write_text(metrics_json(metrics), encoding="utf-8")
        stages.update(1)
    final = Path(out)
    return RunResult(final, json.loads((final / "metrics.json").read_text(encoding="utf-8")), model)
