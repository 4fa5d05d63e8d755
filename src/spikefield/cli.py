"""The ``spikefield`` command line: ``demo``, ``fit``, ``report`` and ``info``.

Every verb prints one readable error line plus a hint and exits with status 1 on a spikefield or
file-system error; ``spikefield --debug VERB ...`` shows the traceback instead.
"""

from __future__ import annotations

import functools
import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from . import __version__
from .errors import DeviceError, ReaderError, RecordingError, SpikefieldError, ValidationError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="spikefield: recordings -> circuit models, spatial codes and memories.")

_STATE = {"debug": False}

# Options shared by several verbs.
_OutRequired = Annotated[Path, typer.Option("--out", "-o", help="Run folder to write (replaces an older run there).")]
_ConfigFile = Annotated[Path | None, typer.Option("--config", help="TOML file or a run's config.json.")]
_Device = Annotated[str | None, typer.Option(help="auto, cpu or cuda (default auto).")]
_Analyses = Annotated[list[str] | None, typer.Option(help="Optional sections to run: spatial, thermo, memory "
                                                            "(default all; comma-separated or repeated).")]
_Seed = Annotated[int | None, typer.Option(help="Seed of sampling and shuffles (default 0).")]
_Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars; print only the report path.")]
_Json = Annotated[bool, typer.Option("--json", help="Print the final metrics as JSON on stdout.")]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"spikefield {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit."),
          debug: bool = typer.Option(False, "--debug", help="Show the full traceback on errors.")) -> None:
    """spikefield command line: `spikefield demo` runs the whole pipeline on simulated data."""
    _STATE["debug"] = debug


def _hint(exc: BaseException) -> str:
    from .runs import RunFolderError

    if isinstance(exc, DeviceError):
        return "use --device cpu, or --device auto to pick what exists."
    if isinstance(exc, ReaderError):
        return "check the path; `spikefield info PATH` reads a recording without fitting."
    if isinstance(exc, RunFolderError):
        return "pass a new --out folder, or a folder written by `spikefield fit`/`demo`."
    if isinstance(exc, RecordingError):
        return "`spikefield info PATH` lists the recording's units, epochs and behaviour."
    if isinstance(exc, ValidationError):
        return "see `spikefield COMMAND --help` for valid options and config keys."
    if isinstance(exc, PermissionError):
        return "choose a folder you can write to (--out)."
    if isinstance(exc, OSError):
        return "check that the path exists and the disk has space."
    return "rerun with `spikefield --debug ...` for the full traceback."


def _handle_errors(func):
    """Turn spikefield and OS errors into one line + a hint and exit status 1 (unless --debug)."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except (SpikefieldError, OSError) as exc:
            if _STATE["debug"]:
                raise
            lines = str(exc).strip().splitlines() or [type(exc).__name__]
            typer.secho(f"Error: {lines[0]}", err=True, fg=typer.colors.RED)
            for line in lines[1:]:
                typer.echo(f"  {line}", err=True)
            typer.echo(f"Hint: {_hint(exc)}", err=True)
            raise typer.Exit(code=1) from None

    return wrapper


def _split(values: list[str] | None) -> list[str] | None:
    """``--units a,b --units c`` -> ``["a", "b", "c"]``."""
    if not values:
        return None
    return [item.strip() for value in values for item in value.split(",") if item.strip()]


# ---------------------------------------------------------------------- info
def _info_dict(rec, path: str, fmt: str) -> dict[str, Any]:
    import numpy as np

    units = rec.units
    rates = units["rate_hz"].to_numpy(float)
    behaviour = {}
    for name, ts in rec.series.items():
        valid = ts.valid_mask()
        behaviour[name] = {"n_samples": len(ts), "dims": list(ts.columns), "unit": ts.unit,
                           "valid_fraction": float(valid.mean()) if len(ts) else 0.0,
                           "t_start": float(ts.timestamps[0]) if len(ts) else None,
                           "t_stop": float(ts.timestamps[-1]) if len(ts) else None}
    extra = [c for c in units.columns if c not in ("unit_id", "n_spikes", "rate_hz")]
    return {
        "path": path, "format": fmt, "n_units": rec.n_units, "n_spikes": rec.n_spikes,
        "t_start": rec.t_start, "t_stop": rec.t_stop, "duration_s": rec.duration,
        "support": rec.support.tolist(),
        "rate_hz": {"min": float(np.min(rates)), "median": float(np.median(rates)), "max": float(np.max(rates))}
        if rates.size else None,
        "unit_columns": extra,
        "units": [{k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
                  for row in units.astype(object).where(units.notna(), None).to_dict("records")],
        "behaviour": behaviour,
        "epochs": {k: {"n_intervals": int(len(v)), "duration_s": float(np.sum(v[:, 1] - v[:, 0])),
                       "intervals": v.tolist()} for k, v in rec.epochs.items()},
    }


@app.command()
@_handle_errors
def info(path: Annotated[Path, typer.Argument(help="Recording file or folder (NWB, phy, MatClust, Moser).")],
         as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False) -> None:
    """Summarise a recording (units, duration, rates, behaviour, epochs) without fitting."""
    from .io import detect_format
    from .runs import read_recording

    fmt = detect_format(path)
    rec, read_warnings = read_recording(path)
    for warning in read_warnings:
        typer.echo(f"warning: {warning}", err=True)
    if as_json:
        typer.echo(json.dumps({**_info_dict(rec, str(path), fmt), "warnings": read_warnings}, indent=2, default=str))
        return
    typer.echo(f"format: {fmt}")
    typer.echo(rec.summary())
    table = rec.units
    with_cols = [c for c in ("unit_id", "n_spikes", "rate_hz", "area", "quality") if c in table.columns]
    typer.echo("\n" + table[with_cols].to_string(index=False, max_rows=20, float_format=lambda x: f"{x:.3g}"))


# ---------------------------------------------------------------------- shared run printing
def _number(value: Any, spec: str) -> str:
    """A metric from metrics.json, where NaN was stored as null."""
    return "n/a" if value is None else format(value, spec)


def _print_result(result, *, quiet: bool, as_json: bool, elapsed: float) -> None:
    metrics = result.metrics
    if as_json:
        typer.echo(json.dumps({"run_dir": str(result.folder), "report": str(result.report), **metrics}, indent=2))
        return
    if not quiet:
        ll = metrics["sections"].get("likelihood", {}).get("values", {})
        data, model = metrics["data"], metrics["model"]
        typer.echo(f"fitted {model['name']} to {data['n_units']} units x {data['n_train_bins']:,} bins "
                   f"({data['bin_size_s'] * 1e3:g} ms) in {model['fit_seconds']:.1f} s, "
                   f"converged={model['converged']} after {model['n_iter']} iterations")
        if ll:
            typer.echo(f"held-out log-likelihood {_number(ll.get('ll_test'), '.5f')} vs independent "
                       f"{_number(ll.get('ll_null_test'), '.5f')} nats/bin/unit "
                       f"(gain {_number(ll.get('ll_gain_test'), '+.2e')})")
        for name, entry in metrics["sections"].items():
            if entry["status"] != "ok":
                typer.echo(f"section {name} {entry['status']}: {entry['reason']}")
        for warning in metrics.get("warnings", []):
            typer.echo(f"warning: {warning}")
        typer.echo(f"run folder: {result.folder} ({elapsed:.1f} s)")
    typer.echo(f"report: {result.report}")


def _load_base_config(config_file: Path | None):
    from .config import RunConfig, load_config

    return load_config(config_file) if config_file is not None else RunConfig()


# ---------------------------------------------------------------------- fit
@app.command()
@_handle_errors
def fit(out: _OutRequired,
        path: Annotated[Path | None, typer.Argument(help="Recording file or folder (or `data` in --config).")] = None,
        bin_size: Annotated[float | None, typer.Option(help="Bin width in seconds (default 0.01).")] = None,
        epoch: Annotated[str | None, typer.Option(help="Named epoch to fit [default: whole recording].")] = None,
        units: Annotated[list[str] | None, typer.Option(help="Unit ids to keep (comma-separated or repeated).")] = None,
        quality: Annotated[list[str] | None, typer.Option(help="Keep units with these quality labels.")] = None,
        min_rate: Annotated[float | None, typer.Option(help="Drop units below this rate (Hz) (default 0).")] = None,
        model: Annotated[str | None, typer.Option(help="Model to fit (default kinetic_ising).")] = None,
        l2: Annotated[float | None, typer.Option(help="L2 penalty of the couplings (default 1e-3).")] = None,
        l1: Annotated[float | None, typer.Option(help="L1 penalty of the couplings (default 0).")] = None,
        max_iter: Annotated[int | None, typer.Option(help="Solver iteration cap [default: the model's].")] = None,
        device: _Device = None,
        test_fraction: Annotated[float | None, typer.Option(help="Held-out final fraction of bins (0.2).")] = None,
        pixels_per_cm: Annotated[float | None, typer.Option(help="Calibration for position in pixels.")] = None,
        analyses: _Analyses = None,
        seed: _Seed = None,
        config_file: _ConfigFile = None,
        quiet: _Quiet = False,
        as_json: _Json = False) -> None:
    """Read -> bin -> fit -> validate -> report, written to a run folder."""
    from .runs import execute_run

    base = _load_base_config(config_file)
    config = base.replace(data=str(path.absolute()) if path is not None else None, bin_size=bin_size, epoch=epoch,
                          units=_split(units), quality=_split(quality), min_rate=min_rate, model=model, l2=l2, l1=l1,
                          max_iter=max_iter, device=device, test_fraction=test_fraction,
                          pixels_per_cm=pixels_per_cm, analyses=_split(analyses), seed=seed)
    if config.data is None:
        raise ValidationError("fit: no recording given; pass PATH or set `data` in the --config file.")
    start = time.perf_counter()
    result = execute_run(config, out, progress=not (quiet or as_json), command=sys.argv)
    _print_result(result, quiet=quiet, as_json=as_json, elapsed=time.perf_counter() - start)


# ---------------------------------------------------------------------- demo
def simulate_demo(config) -> tuple[Any, dict[str, Any]]:
    """The demo's simulated recording and its ground truth, from ``config.simulation``."""
    from .simulate import place_cells

    sim_cfg = config.simulation
    sim = place_cells(sim_cfg.n_cells, run_duration=sim_cfg.run_duration, rest_duration=sim_cfg.rest_duration,
                      coupling_strength=sim_cfg.coupling_strength, n_replay_events=sim_cfg.n_replay_events,
                      field_width=sim_cfg.field_width, peak_rate=sim_cfg.peak_rate, dt=sim_cfg.dt,
                      seed=sim_cfg.seed)
    truth: dict[str, Any] = {"unit_ids": sim.recording.unit_ids, "field_centers": sim.field_centers}
    if abs(config.bin_size - sim.dt) < 1e-12:
        truth["couplings"] = sim.couplings  # comparable only at the generative time step
    return sim.recording, truth


@app.command()
@_handle_errors
def demo(out: Annotated[Path, typer.Option("--out", "-o", help="Run folder to write.")] = Path("spikefield-demo"),
         data: Annotated[Path | None, typer.Option(help="Run on this recording instead of simulated data.")] = None,
         config_file: _ConfigFile = None,
         device: _Device = None,
         analyses: _Analyses = None,
         seed: _Seed = None,
         quiet: _Quiet = False,
         as_json: _Json = False) -> None:
    """The whole pipeline in one command: simulated place cells (or --data / `data` in --config) -> fit -> report."""
    from ._device import resolve_device
    from .runs import execute_run, read_recording

    base = _load_base_config(config_file)
    start = time.perf_counter()
    if data is None and base.data is not None:
        # `data` in --config means the user's recording, as for `fit`; simulating instead would
        # store that path in config.json and the report while showing simulated results.
        data = Path(base.data)
    if data is not None:
        recording, read_warnings = read_recording(data)
        truth: dict[str, Any] = {}
        for warning in read_warnings:
            typer.echo(f"warning: {warning}", err=True)
        epoch = base.epoch or ("run" if "run" in recording.epochs else None)
        config = base.replace(data=str(data.absolute()), epoch=epoch, device=device, seed=seed,
                              analyses=_split(analyses))
    else:
        config = base.replace(epoch=base.epoch or "run", device=device, seed=seed, analyses=_split(analyses))
        resolve_device(config.device)  # a bad --device fails before the simulation, not after
        if not quiet and not as_json:
            sim = config.simulation
            typer.echo(f"simulating {sim.n_cells} place cells: {sim.run_duration:g} s running + "
                       f"{sim.rest_duration:g} s rest with {sim.n_replay_events} replay events ...", err=True)
        recording, truth = simulate_demo(config)
    result = execute_run(config, out, recording=recording, ground_truth=truth, progress=not (quiet or as_json),
                         command=sys.argv)
    _print_result(result, quiet=quiet, as_json=as_json, elapsed=time.perf_counter() - start)


# ---------------------------------------------------------------------- report
@app.command()
@_handle_errors
def report(run_dir: Annotated[Path, typer.Argument(help="A run folder written by `spikefield fit`/`demo`.")]) -> None:
    """(Re)build the HTML report of a run folder from its stored results."""
    from .runs import rebuild_report

    typer.echo(f"report: {rebuild_report(run_dir)}")


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
