"""Shared pieces of the thermo package: the result record, model coercion, block bootstrap."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from ..errors import ValidationError
from ..raster import Raster

__all__ = ["EntropyProductionResult", "coerce_model", "check_raster", "BlockAccumulator", "bootstrap_means"]


@dataclass
class EntropyProductionResult:
    """Entropy production (EP) of a population, with its normalisations and uncertainty.

    Attributes
    ----------
    method : str
        ``"model"``, ``"maxent"``, ``"newton"`` or ``"tur"``.
    ep_per_bin : float
        EP in nats per time bin (one transition ``s_{t-1} -> s_t``).
    ep_per_second : float
        ``ep_per_bin / bin_size``, nats per second.
    ep_per_spike : float
        ``ep_per_bin`` divided by the mean number of spiking units per bin, nats per spike.
    stderr : float
        Standard error of ``ep_per_bin`` (block bootstrap over contiguous blocks of transitions).
    stderr_per_second, stderr_per_spike : float
        Standard errors of the other normalisations (same bootstrap replicates).
    ci_per_bin : tuple of float
        95 % percentile bootstrap interval of ``ep_per_bin``.
    n_transitions : int
        Transitions the value was computed on (the test set for model-free methods).
    n_units : int
        Population size N.
    bin_size : float
        Seconds per bin.
    spikes_per_bin : float
        Mean number of units with a spike per bin (the per-spike normaliser).
    is_lower_bound : bool
        True for model-free estimates, which bound the true EP from below (in expectation).
    per_neuron : ndarray or None
        Model-based only: EP per bin attributed to each (target) neuron; sums to ``ep_per_bin``.
    per_neuron_stderr : ndarray or None
        Block-bootstrap standard error of ``per_neuron``.
    per_area : DataFrame or None
        Model-based only, when areas are given: ``area, n_units, ep_per_bin, stderr``.
    area_pairs : DataFrame or None
        Model-based only, when areas are given: stationary-form EP carried by couplings from
        ``source_area`` (at t-1) to ``target_area`` (at t), nats per bin.
    details : dict
        Method-specific diagnostics (e.g. the other EP form, optimiser convergence, caps).
    """

    method: str
    ep_per_bin: float
    ep_per_second: float
    ep_per_spike: float
    stderr: float
    stderr_per_second: float
    stderr_per_spike: float
    ci_per_bin: tuple[float, float]
    n_transitions: int
    n_units: int
    bin_size: float
    spikes_per_bin: float
    is_lower_bound: bool
    per_neuron: NDArray[np.float64] | None = None
    per_neuron_stderr: NDArray[np.float64] | None = None
    per_area: pd.DataFrame | None = None
    area_pairs: pd.DataFrame | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """The scalar fields as a flat dict (for tables and ``metrics.json``)."""
        keep = ("method", "ep_per_bin", "ep_per_second", "ep_per_spike", "stderr", "stderr_per_second",
                "stderr_per_spike", "n_transitions", "n_units", "bin_size", "spikes_per_bin", "is_lower_bound")
        out = {k: v for k, v in asdict(self).items() if k in keep}
        out["ci_low"], out["ci_high"] = self.ci_per_bin
        return out


def coerce_model(model: Any, n_units: int | None = None) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Return ``(h, J)`` as float64 arrays from a fitted estimator (``h_``, ``J_``) or a tuple."""
    if isinstance(model, tuple | list) and len(model) == 2:
        h, J = model
    elif hasattr(model, "h_") and hasattr(model, "J_"):
        h, J = model.h_, model.J_
    else:
        raise ValidationError(
            f"model must be a fitted KineticIsing (or any object with h_ and J_) or an (h, J) tuple; "
            f"got {type(model).__name__}.")
    h = np.asarray(h, dtype=np.float64).reshape(-1)
    J = np.asarray(J, dtype=np.float64)
    if J.ndim != 2 or J.shape != (h.size, h.size):
        raise ValidationError(f"model couplings J must have shape ({h.size}, {h.size}) to match h, got {J.shape}.")
    if not (np.all(np.isfinite(h)) and np.all(np.isfinite(J))):
        raise ValidationError("model parameters h and J must be finite; found NaN or inf.")
    if n_units is not None and h.size != n_units:
        raise ValidationError(f"model has {h.size} neurons but the raster has {n_units} units; "
                              "select the same units (raster.select_units) before computing EP.")
    return h, J


def check_raster(raster: Any, min_transitions: int = 2) -> Raster:
    if not isinstance(raster, Raster):
        raise ValidationError(f"raster must be a spikefield Raster, got {type(raster).__name__}; "
                              "build one with Recording.bin or Raster.from_array.")
    if raster.n_transitions < min_transitions:
        raise ValidationError(f"raster has {raster.n_transitions} transitions inside its segments; "
                              f"at least {min_transitions} are needed.")
    return raster


class BlockAccumulator:
    """Sums of per-transition values over ``n_blocks`` contiguous blocks of transitions.

    Keeps memory O(n_blocks * n_columns) however long the recording: transition ``t`` (in
    recording order, across segments) falls in block ``t * n_blocks // n_transitions``.
    """

    def __init__(self, n_transitions: int, n_blocks: int, n_columns: int) -> None:
        self.n_transitions = int(n_transitions)
        self.n_blocks = int(max(1, min(n_blocks, n_transitions)))
        self.sums = np.zeros((self.n_blocks, n_columns))
        self.counts = np.zeros(self.n_blocks)

    def add(self, offset: int, values: NDArray[np.float64]) -> None:
        index = (np.arange(offset, offset + len(values)) * self.n_blocks) // self.n_transitions
        np.add.at(self.counts, index, 1.0)
        # Rows are in order, so a block's rows are contiguous: reduceat is exact and fast.
        starts = np.flatnonzero(np.r_[True, index[1:] != index[:-1]])
        self.sums[index[starts]] += np.add.reduceat(values, starts, axis=0)

    def means(self) -> NDArray[np.float64]:
        return self.sums.sum(axis=0) / self.counts.sum()


def bootstrap_means(sums: NDArray[np.float64], counts: NDArray[np.float64], n_boot: int,
                    seed: int | None) -> NDArray[np.float64]:
    """Means of each column over ``n_boot`` resamples (with replacement) of whole blocks.

    Resampling contiguous blocks keeps the autocorrelation inside a block, so the spread of
    the replicates reflects the dependence between neighbouring bins (Künsch 1989).
    """
    rng = np.random.default_rng(seed)
    n_blocks = len(counts)
    if n_blocks < 2:
        return np.full((1, sums.shape[1]), np.nan)
    draws = rng.integers(0, n_blocks, size=(n_boot, n_blocks))
    weights = np.zeros((n_boot, n_blocks))
    np.add.at(weights, (np.repeat(np.arange(n_boot), n_blocks), draws.ravel()), 1.0)
    return (weights @ sums) / (weights @ counts)[:, None]


def normalised_result(method: str, boot_ep: NDArray[np.float64], ep: float, boot_spikes: NDArray[np.float64],
                      spikes: float, raster: Raster, n_transitions: int, lower_bound: bool,
                      **extra: Any) -> EntropyProductionResult:
    """Assemble the record from a point estimate and bootstrap replicates (per bin and spikes)."""
    per_spike = ep / spikes if spikes > 0 else float("nan")
    with np.errstate(divide="ignore", invalid="ignore"):
        boot_per_spike = boot_ep / boot_spikes
    stderr = float(np.std(boot_ep, ddof=1)) if boot_ep.size > 1 else float("nan")
    stderr_spike = float(np.nanstd(boot_per_spike, ddof=1)) if boot_ep.size > 1 else float("nan")
    ci = (float(np.quantile(boot_ep, 0.025)), float(np.quantile(boot_ep, 0.975))) if boot_ep.size > 1 else (
        float("nan"), float("nan"))
    return EntropyProductionResult(
        method=method, ep_per_bin=float(ep), ep_per_second=float(ep) / raster.bin_size, ep_per_spike=float(per_spike),
        stderr=stderr, stderr_per_second=stderr / raster.bin_size, stderr_per_spike=stderr_spike, ci_per_bin=ci,
        n_transitions=int(n_transitions), n_units=raster.n_units, bin_size=raster.bin_size,
        spikes_per_bin=float(spikes), is_lower_bound=lower_bound, **extra)
