"""Pruning couplings for efficiency: magnitude and random pruning, retrieval vs fraction kept.

Random dilution of a Hebbian network acts like extra synaptic noise and lowers the capacity
roughly in proportion to the fraction kept (Sompolinsky 1986); keeping the strongest couplings
(magnitude pruning, a clipping of the Hebbian weights) degrades retrieval much more slowly.
Only off-diagonal couplings are pruned; symmetric matrices are pruned symmetrically (pairs
``J_ij = J_ji`` are kept or removed together) so they stay energy-based.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from numpy.typing import ArrayLike, NDArray

from ..errors import ValidationError
from ._common import (
    MODES,
    check_choice,
    check_fraction,
    check_nonnegative,
    check_positive_int,
    corrupt,
    default_dtype,
    resolve,
    run_dynamics,
    torch_generator,
)
from .capacity import random_patterns
from .hopfield import hebbian_couplings, pseudoinverse_couplings

__all__ = ["prune", "pruning_curve", "plot_pruning"]

METHODS = ("magnitude", "random")


def prune(couplings: ArrayLike, fraction_kept: float, method: str = "magnitude", *,
          seed: int | None = None) -> NDArray[np.float64]:
    """Zero all but a fraction of the off-diagonal couplings.

    Parameters
    ----------
    couplings : (N, N) array
        ``J[i, j]`` from j to i. If symmetric, pairs are pruned together and the result stays
        symmetric.
    fraction_kept : float in [0, 1]
        Fraction of off-diagonal synapses (pairs, for symmetric J) kept: exactly
        ``round(fraction_kept · count)`` of them.
    method : {"magnitude", "random"}
        Keep the largest ``|J_ij|`` (ties broken at random) or a uniformly random subset.
    seed : int, optional
        For random pruning and tie-breaking.

    Returns
    -------
    (N, N) float64 array; the diagonal is unchanged.

    Examples
    --------
    >>> J = np.array([[0.0, 3.0, -1.0], [3.0, 0.0, 0.5], [-1.0, 0.5, 0.0]])
    >>> prune(J, 1 / 3, "magnitude")
    array([[0., 3., 0.],
           [3., 0., 0.],
           [0., 0., 0.]])
    """
    matrix = np.asarray(couplings, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or not np.all(np.isfinite(matrix)):
        raise ValidationError(f"couplings must be a finite square (N, N) array; got shape {matrix.shape}.")
    fraction_kept = check_fraction(fraction_kept, "fraction_kept")
    method = check_choice(method, "method", METHODS)
    rng = np.random.default_rng(seed)
    symmetric = np.allclose(matrix, matrix.T)
    rows, cols = np.triu_indices(matrix.shape[0], k=1)
    if not symmetric:
        rows, cols = np.concatenate([rows, cols]), np.concatenate([cols, rows])
    n_keep = int(round(fraction_kept * rows.size))
    tie_breaker = rng.random(rows.size)
    if method == "magnitude":
        # lexsort's last key is primary: descending |J|, then a random order among equal values
        # (Hebbian couplings are multiples of 1/N, so ties are the rule, not the exception).
        order = np.lexsort((tie_breaker, -np.abs(matrix[rows, cols])))
    else:
        order = np.argsort(tie_breaker)
    drop = order[n_keep:]
    pruned = matrix.copy()
    pruned[rows[drop], cols[drop]] = 0.0
    if symmetric:
        pruned[cols[drop], rows[drop]] = 0.0
    return pruned


def pruning_curve(n_neurons: int = 500, load: float = 0.05, fractions_kept: Sequence[float] = (1.0, 0.5, 0.25, 0.1),
                  methods: Sequence[str] = METHODS, *, rule: str = "hebbian", n_trials: int = 3,
                  flip_fraction: float = 0.1, criterion: float = 0.95, mode: str = "async", max_sweeps: int = 100,
                  seed: int | None = None, device: str = "auto") -> pd.DataFrame:
    """Retrieval of stored random patterns versus the fraction of synapses kept.

    For each trial, P = round(load·N) random patterns are stored with ``rule``; the couplings
    are pruned with every method and fraction, and each pattern is cued with ``flip_fraction``
    of its spins flipped and run to a fixed point.

    Returns
    -------
    pandas.DataFrame
        One row per (method, fraction_kept, trial): ``method, fraction_kept, trial, n_neurons,
        n_patterns, load, fraction_retrieved, mean_overlap``.

    Examples
    --------
    >>> curve = pruning_curve(200, 0.05, fractions_kept=[1.0, 0.2], n_trials=1, seed=0, device="cpu")
    >>> sorted(curve.columns)[:3]
    ['fraction_kept', 'fraction_retrieved', 'load']
    """
    n_neurons = check_positive_int(n_neurons, "n_neurons")
    rule = check_choice(rule, "rule", ("hebbian", "pseudoinverse"))
    methods = [check_choice(m, "methods", METHODS) for m in methods]
    fractions = [check_fraction(f, "fractions_kept") for f in fractions_kept]
    n_trials = check_positive_int(n_trials, "n_trials")
    flip_fraction = check_fraction(flip_fraction, "flip_fraction")
    criterion = check_fraction(criterion, "criterion", low_open=True)
    mode = check_choice(mode, "mode", MODES)
    max_sweeps = check_positive_int(max_sweeps, "max_sweeps")
    load = check_nonnegative(load, "load")
    if load == 0:
        raise ValidationError(f"load must be > 0 (patterns per neuron, P = round(load·N)); got {load!r}.")
    n_patterns = max(1, int(round(load * n_neurons)))
    target = resolve(device)
    dtype = default_dtype(target)
    builder = hebbian_couplings if rule == "hebbian" else pseudoinverse_couplings
    rows = []
    for trial, trial_seed in enumerate(np.random.SeedSequence(seed).spawn(n_trials)):
        pattern_seed, cue_seed, prune_seed, dynamics_seed = trial_seed.spawn(4)
        patterns = random_patterns(n_patterns, n_neurons, pattern_seed)
        stored = torch.as_tensor(patterns, device=target, dtype=torch.float64)
        full = builder(stored).cpu().numpy()
        cues = torch.as_tensor(corrupt(patterns, flip_fraction, seed=cue_seed), device=target).to(dtype)
        generator = torch_generator(dynamics_seed, target)
        for method in methods:
            for fraction in fractions:
                pruned = prune(full, fraction, method, seed=int(prune_seed.generate_state(1)[0]))
                final, _, _ = run_dynamics(cues, torch.as_tensor(pruned, device=target, dtype=dtype), None,
                                           max_sweeps, mode=mode, generator=generator)
                overlaps = ((final * stored.to(dtype)).sum(dim=1) / n_neurons).cpu().numpy()
                rows.append({"method": method, "fraction_kept": fraction, "trial": trial, "n_neurons": n_neurons,
                             "n_patterns": n_patterns, "load": n_patterns / n_neurons,
                             "fraction_retrieved": float(np.mean(overlaps >= criterion)),
                             "mean_overlap": float(np.mean(overlaps))})
    return pd.DataFrame(rows)


def plot_pruning(curve: pd.DataFrame, ax=None, *, value: str = "fraction_retrieved"):
    """Retrieval (mean ± s.e.m. over trials) against fraction of synapses kept, one line per method."""
    import matplotlib.pyplot as plt

    if value not in curve.columns:
        raise ValidationError(f"value must be a column of curve such as 'fraction_retrieved'; got {value!r}.")
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.5))
    for method, group in curve.groupby("method"):
        stats = group.groupby("fraction_kept")[value].agg(["mean", "sem"]).fillna(0.0)
        ax.errorbar(stats.index, stats["mean"], yerr=stats["sem"], marker="o", ms=3, capsize=2, label=method)
    ax.set_xscale("log")
    ax.set_xlabel("fraction of synapses kept")
    ax.set_ylabel(value.replace("_", " "))
    ax.legend(frameon=False, fontsize=8, title=f"α = {curve['load'].iloc[0]:.3f}")
    return ax
