"""Run configuration: every choice a run makes, validated, loadable from TOML (or a run's JSON).

A :class:`RunConfig` is what ``spikefield fit`` and ``spikefield demo`` execute and what a run
folder stores as ``config.json``, so a run can be repeated exactly with
``spikefield fit --config RUN_DIR/config.json``.

Example TOML (every key optional; unknown keys are rejected with a suggestion)::

    data = "../shared/data/hc-linear-track"
    bin_size = 0.01          # s
    epoch = "run"
    min_rate = 0.1           # Hz, over the selected epoch
    l2 = 1e-3
    device = "auto"

    [simulation]             # only for `spikefield demo` without --data
    n_cells = 80
    run_duration = 600.0     # s
"""

from __future__ import annotations

import dataclasses
import json
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ValidationError, did_you_mean

__all__ = ["RunConfig", "SimulationConfig", "load_config", "MODELS", "ANALYSES"]

#: Models the CLI can fit (name -> ``spikefield`` attribute).
MODELS: dict[str, str] = {"kinetic_ising": "KineticIsing"}
#: Optional analysis sections spikefield itself registers (other packages may register more).
ANALYSES: tuple[str, ...] = ("spatial", "thermo", "memory")


@dataclass(frozen=True)
class SimulationConfig:
    """Parameters of the demo's simulated place-cell recording (see :func:`spikefield.simulate.place_cells`).

    Durations in seconds, lengths in cm, rates in Hz.
    """

    n_cells: int = 60
    run_duration: float = 480.0
    rest_duration: float = 240.0
    coupling_strength: float = 0.6
    n_replay_events: int = 40
    field_width: float = 8.0
    peak_rate: float = 15.0
    dt: float = 0.01
    seed: int = 0


@dataclass(frozen=True)
class RunConfig:
    """Everything a run does: data, binning, unit selection, model and validation settings.

    Parameters
    ----------
    data : str or None
        Recording path read with :func:`spikefield.read`; None means the built-in simulation. In a
        config file a relative path is relative to that file's folder, not to the working directory.
    bin_size : float
        Bin width in seconds.
    epoch : str or None
        Named epoch to fit (None: the whole recording).
    units : list of str or None
        Unit ids to keep (None: all).
    quality : list of str or None
        Keep units whose ``quality`` column is one of these labels (e.g. ``["good"]``).
    min_rate : float
        Drop units firing below this rate (Hz) in the selected epoch.
    model : str
        One of :data:`MODELS`.
    l2, l1 : float
        Regularisation strengths passed to the model.
    max_iter : int or None
        Solver iteration cap (None: the model's default).
    device : str
        ``"auto"``, ``"cpu"`` or ``"cuda"``.
    test_fraction : float
        Last fraction of bins held out (a contiguous block) for validation.
    n_sample_bins : int
        Bins sampled from the fitted model to compare predicted and observed correlations.
    pixels_per_cm : float or None
        Scale for uncalibrated (pixel) position.
    analyses : list of str or None
        Optional report sections to compute (names of registered sections, e.g. :data:`ANALYSES`);
        None computes all of them, ``[]`` none.
    seed : int
        Seed of every random step (sampling, shuffles).
    simulation : SimulationConfig
        Demo simulation parameters (used only when ``data`` is None).

    Examples
    --------
    >>> from spikefield.config import RunConfig
    >>> RunConfig(bin_size=0.02).replace(epoch="run").epoch
    'run'
    """

    data: str | None = None
    bin_size: float = 0.01
    epoch: str | None = None
    units: list[str] | None = None
    quality: list[str] | None = None
    min_rate: float = 0.0
    model: str = "kinetic_ising"
    l2: float = 1e-3
    l1: float = 0.0
    max_iter: int | None = None
    device: str = "auto"
    test_fraction: float = 0.2
    n_sample_bins: int = 20_000
    pixels_per_cm: float | None = None
    analyses: list[str] | None = None
    seed: int = 0
    simulation: SimulationConfig = field(default_factory=SimulationConfig)

    def __post_init__(self) -> None:
        _validate(self)

    def replace(self, **changes: Any) -> RunConfig:
        """A copy with some fields changed (validated again); ``None`` values are ignored."""
        changes = {k: v for k, v in changes.items() if v is not None}
        return from_mapping({**self.to_dict(), **changes}, source="options")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (what ``config.json`` holds)."""
        return dataclasses.asdict(self)


# ---------------------------------------------------------------------- validation
def _check_number(name: str, value: Any, *, low: float, low_open: bool, high: float | None = None,
                  high_open: bool = False, integer: bool = False) -> None:
    kind = "an integer" if integer else "a number"
    ok_type = isinstance(value, int) if integer else isinstance(value, int | float)
    if isinstance(value, bool) or not ok_type or (not integer and not math.isfinite(value)):
        raise ValidationError(f"config: {name} must be {kind}, got {value!r}.")
    too_low = value <= low if low_open else value < low
    too_high = high is not None and (value >= high if high_open else value > high)
    if too_low or too_high:
        lo = f"{'>' if low_open else '>='} {low}"
        hi = "" if high is None else f" and {'<' if high_open else '<='} {high}"
        raise ValidationError(f"config: {name} must be {lo}{hi}, got {value!r}.")


def _check_choice(name: str, value: Any, choices: Any) -> None:
    if value not in choices:
        raise ValidationError(f"config: {name}={value!r} is not one of {sorted(choices)}."
                              f"{did_you_mean(str(value), choices)}")


def _validate(cfg: RunConfig) -> None:
    _check_number("bin_size", cfg.bin_size, low=0, low_open=True)
    _check_number("min_rate", cfg.min_rate, low=0, low_open=False)
    _check_number("l2", cfg.l2, low=0, low_open=False)
    _check_number("l1", cfg.l1, low=0, low_open=False)
    _check_number("test_fraction", cfg.test_fraction, low=0, low_open=True, high=0.9, high_open=False)
    _check_number("n_sample_bins", cfg.n_sample_bins, low=100, low_open=False, integer=True)
    _check_number("seed", cfg.seed, low=0, low_open=False, integer=True)
    if cfg.max_iter is not None:
        _check_number("max_iter", cfg.max_iter, low=1, low_open=False, integer=True)
    if cfg.pixels_per_cm is not None:
        _check_number("pixels_per_cm", cfg.pixels_per_cm, low=0, low_open=True)
    _check_choice("model", cfg.model, MODELS)
    if not isinstance(cfg.device, str) or not (cfg.device in ("auto", "cpu") or cfg.device.startswith("cuda")):
        raise ValidationError(f"config: device must be 'auto', 'cpu' or 'cuda[:k]', got {cfg.device!r}.")
    for name in ("units", "quality", "analyses"):
        value = getattr(cfg, name)
        if value is not None and (not isinstance(value, list) or not all(isinstance(v, str) for v in value)):
            raise ValidationError(f"config: {name} must be a list of strings, got {value!r}.")
    for name in ("data", "epoch"):
        value = getattr(cfg, name)
        if value is not None and not isinstance(value, str):
            raise ValidationError(f"config: {name} must be a string, got {value!r}.")
    sim = cfg.simulation
    for name in ("n_cells", "n_replay_events", "seed"):
        _check_number(f"simulation.{name}", getattr(sim, name), low=1 if name == "n_cells" else 0,
                      low_open=False, integer=True)
    for name in ("run_duration", "field_width", "peak_rate", "dt"):
        _check_number(f"simulation.{name}", getattr(sim, name), low=0, low_open=True)
    for name in ("rest_duration", "coupling_strength"):
        _check_number(f"simulation.{name}", getattr(sim, name), low=0, low_open=False)


def _known_keys(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def _reject_unknown(mapping: Mapping[str, Any], cls: type, where: str) -> None:
    known = _known_keys(cls)
    for key in mapping:
        if key not in known:
            raise ValidationError(f"{where}: unknown key {key!r}.{did_you_mean(key, known)} "
                                  f"Valid keys: {', '.join(known)}.")


def _as_list(value: Any) -> Any:
    # A single string is a common shorthand in TOML (quality = "good"); lists stay lists.
    return [value] if isinstance(value, str) else (list(value) if isinstance(value, tuple) else value)


def from_mapping(mapping: Mapping[str, Any], source: str = "config") -> RunConfig:
    """Build a validated :class:`RunConfig` from a plain mapping (TOML/JSON document).

    Examples
    --------
    >>> from spikefield.config import from_mapping
    >>> from_mapping({"bin_size": 0.02, "quality": "good"}).quality
    ['good']
    """
    if not isinstance(mapping, Mapping):
        raise ValidationError(f"{source}: expected a table of settings, got {type(mapping).__name__}.")
    _reject_unknown(mapping, RunConfig, source)
    values = dict(mapping)
    sim = values.pop("simulation", None)
    if isinstance(sim, SimulationConfig):
        sim_cfg = sim
    else:
        if sim is not None and not isinstance(sim, Mapping):
            raise ValidationError(f"{source}: [simulation] must be a table, got {sim!r}.")
        _reject_unknown(sim or {}, SimulationConfig, f"{source} [simulation]")
        sim_cfg = SimulationConfig(**(sim or {}))
    for key in ("units", "quality", "analyses"):
        if key in values and values[key] is not None:
            values[key] = _as_list(values[key])
    if isinstance(values.get("bin_size"), int) and not isinstance(values.get("bin_size"), bool):
        values["bin_size"] = float(values["bin_size"])
    return RunConfig(**values, simulation=sim_cfg)


def load_config(path: str | Path) -> RunConfig:
    """Read a run configuration from a ``.toml`` file or a run folder's ``config.json``.

    Parameters
    ----------
    path : str or Path
        A TOML file, a JSON file, or a run folder (its ``config.json`` is read).

    Raises
    ------
    ValidationError
        The file is missing, not valid TOML/JSON, or holds unknown or ill-typed settings.

    Examples
    --------
    >>> from spikefield.config import load_config
    >>> cfg = load_config("my-run.toml")  # doctest: +SKIP
    """
    path = Path(path)
    if path.is_dir():
        path = path / "config.json"
    if not path.is_file():
        raise ValidationError(f"config file {path}: no such file; expected a .toml file or a run folder.")
    try:
        text = path.read_text(encoding="utf-8")
        document = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        kind = "JSON" if path.suffix == ".json" else "TOML"
        raise ValidationError(f"config file {path}: not valid {kind} ({exc}).") from exc
    # A run folder's config.json nests the settings under "config" next to provenance.
    if path.suffix == ".json" and isinstance(document, dict) and "config" in document:
        document = document["config"]
    config = from_mapping(document, source=f"config file {path}")
    # A relative data path means "next to this config file", so a config works from any working directory.
    if config.data is not None and not Path(config.data).expanduser().is_absolute():
        config = config.replace(data=str((path.parent / config.data).absolute()))
    return config
