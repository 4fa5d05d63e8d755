"""Tidy tables of EP: per epoch/condition and brain area, and EP against population size."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ValidationError, did_you_mean
from ..raster import Raster
from ..recording import Recording
from .api import METHODS, entropy_production

__all__ = ["ep_by_condition", "ep_vs_population_size"]

_MODEL_METHODS = ("model", "meanfield")  # methods that need model_factory


def _estimate(raster: Raster, method: str, model_factory: Callable[[Raster], Any] | None,
              options: dict[str, Any]) -> dict[str, Any]:
    model = model_factory(raster) if method in _MODEL_METHODS else None
    result = entropy_production(model, raster, method=method, **options)
    row = result.summary()
    for key in ("converged", "capped", "stopped_by"):
        if key in result.details:
            row[key] = result.details[key]
    return row


def ep_by_condition(recording: Recording, bin_size: float, *, epochs: Sequence[str] | None = None,
                    by: str | None = None, pairs: bool = False, method: str = "maxent",
                    model_factory: Callable[[Raster], Any] | None = None, min_rate: float = 0.0,
                    min_units: int = 2, **options: Any) -> pd.DataFrame:
    """EP per epoch (condition), optionally per area and per pair of areas, as one tidy table.

    Parameters
    ----------
    recording : Recording
        Spikes, a units table and named epochs.
    bin_size : float
        Bin width in seconds.
    epochs : sequence of str, optional
        Epoch names (default: all of ``recording.epochs``).
    by : str, optional
        A column of ``recording.units`` (e.g. ``"area"``): EP of each group's units on their own.
    pairs : bool
        With ``by``: also the EP of the union of every pair of groups.
    method : {"maxent", "newton", "tur", "model", "meanfield"}
        Estimator (see :func:`entropy_production`).
    model_factory : callable, optional
        For ``method="model"`` or ``"meanfield"``: ``raster -> fitted model`` (e.g.
        ``lambda X: sf.KineticIsing().fit(X)``), called once per row. The model is fitted and
        evaluated on the same raster, so this EP is an in-sample value, biased upward (on
        hc-linear-track about 2x the held-out value at 10 ms); for held-out EP fit on
        ``raster.split()[0]`` and call :func:`entropy_production` on the other part.
    min_rate : float
        Drop units below this rate (Hz) within the epoch, counted on the binary raster: bins
        with a spike per second, which is below the spike rate when spikes share bins.
    min_units : int
        Skip groups with fewer units (the row is kept with NaN values and a ``note``).
    **options
        Passed to the estimator.

    Returns
    -------
    DataFrame
        One row per (epoch, group): ``epoch, group, n_units, duration_s, ep_per_bin,
        ep_per_second, ep_per_spike, stderr, ci_low, ci_high, ...``.

    Examples
    --------
    >>> import spikefield as sf
    >>> sim = sf.simulate.place_cells(n_cells=12, run_duration=60, rest_duration=60, seed=0)
    >>> table = sf.thermo.ep_by_condition(sim.recording, 0.05, method="tur")
    >>> sorted(table["epoch"]) == sorted(sim.recording.epochs)
    True
    """
    if not isinstance(recording, Recording):
        raise ValidationError(f"recording must be a spikefield Recording, got {type(recording).__name__}.")
    if method not in METHODS:
        raise ValidationError(f"method must be one of {list(METHODS)}, got {method!r}.{did_you_mean(method, METHODS)}")
    if method in _MODEL_METHODS and model_factory is None:
        raise ValidationError(f"method={method!r} needs model_factory (raster -> fitted model), got None.")
    names = list(recording.epochs) if epochs is None else list(epochs)
    if not names:
        raise ValidationError(f"{recording.source}: the recording has no epochs; pass epochs=[...] or add epochs.")
    for name in names:
        recording.epoch_intervals(name)  # raises with the list of valid epochs
    units = recording.units
    if by is not None and by not in units.columns:
        raise ValidationError(f"by={by!r} is not a column of the units table; columns: {list(units.columns)}."
                              f"{did_you_mean(by, units.columns)}")
    groups: list[tuple[str, np.ndarray]] = [("all", np.ones(len(units), dtype=bool))]
    if by is not None:
        labels = units[by].astype(str).to_numpy()
        singles = [(label, labels == label) for label in sorted(set(labels))]
        groups = singles + ([(f"{a}+{b}", ma | mb) for (a, ma), (b, mb) in combinations(singles, 2)] if pairs else [])
    rows = []
    for name in names:
        raster = recording.bin(bin_size, epoch=name)
        rates = raster.spike_counts() / raster.duration
        for group, mask in groups:
            keep = np.flatnonzero(mask & (rates >= min_rate))
            row: dict[str, Any] = {"epoch": name, "group": group, "duration_s": raster.duration}
            if keep.size < min_units:
                row.update(n_units=int(keep.size), ep_per_bin=np.nan, note=f"fewer than {min_units} units")
            else:
                row.update(_estimate(raster.select_units(keep), method, model_factory, options))
            rows.append(row)
    return pd.DataFrame(rows)


def ep_vs_population_size(raster: Raster, sizes: Sequence[int], *, n_repeats: int = 10, method: str = "maxent",
                          model_factory: Callable[[Raster], Any] | None = None, seed: int | None = 0,
                          **options: Any) -> pd.DataFrame:
    """EP of random subsets of units against subset size (repeated draws).

    Parameters
    ----------
    raster : Raster
        Binned activity of the full population.
    sizes : sequence of int
        Subset sizes N (each between 2 and ``raster.n_units``).
    n_repeats : int
        Random subsets per size (one if the size is the whole population).
    method, model_factory, **options
        Estimator, as in :func:`ep_by_condition`.
    seed : int
        Seed of the subset draws.

    Returns
    -------
    DataFrame
        One row per (size, repeat) with the EP normalisations; summarise with
        ``df.groupby("n_units")[["ep_per_bin", "ep_per_spike"]].agg(["mean", "sem"])``.

    Examples
    --------
    >>> import spikefield as sf
    >>> h, J = sf.simulate.sk_couplings(12, J0=0.0, Js=1.0, H0=0.0, seed=0)
    >>> X = sf.simulate.kinetic_ising(h, J, 3000, n_trials=2, seed=1)
    >>> table = sf.thermo.ep_vs_population_size(X, [4, 8], n_repeats=2, method="tur")
    >>> table["n_units"].tolist()
    [4, 4, 8, 8]
    """
    if not isinstance(raster, Raster):
        raise ValidationError(f"raster must be a spikefield Raster, got {type(raster).__name__}.")
    sizes = [int(s) for s in sizes]
    bad = [s for s in sizes if not 2 <= s <= raster.n_units]
    if bad:
        raise ValidationError(f"sizes must lie between 2 and the number of units ({raster.n_units}); got {bad}.")
    if not isinstance(n_repeats, int | np.integer) or n_repeats < 1:
        raise ValidationError(f"n_repeats must be a positive integer, got {n_repeats!r}.")
    if method in _MODEL_METHODS and model_factory is None:
        raise ValidationError(f"method={method!r} needs model_factory (raster -> fitted model), got None.")
    rng = np.random.default_rng(seed)
    rows = []
    for size in sizes:
        for repeat in range(n_repeats if size < raster.n_units else 1):
            keep = np.sort(rng.choice(raster.n_units, size=size, replace=False))
            row = {"n_units": size, "repeat": repeat}
            row.update(_estimate(raster.select_units(keep), method, model_factory, options))
            rows.append(row)
    return pd.DataFrame(rows)
