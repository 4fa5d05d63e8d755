"""Storage capacity experiments: retrieval success versus load α = P/N, as tidy tables.

Protocol (one trial): draw P random unbiased ±1 patterns, store them, cue the network with
every pattern (each with ``flip_fraction`` of its spins flipped), run the dynamics to
convergence, and call a pattern *retrieved* when the final overlap with its target is at least
``criterion`` (default 0.95). The target is the pattern itself, or for the sequence network
the next pattern after one parallel step. The classical Hebbian network loses its retrieval
states at α_c ≈ 0.138 (Amit, Gutfreund & Sompolinsky 1987), where the retrieval overlap
drops from ≈ 0.97 to a spin-glass value; :func:`critical_load` reads that load off a curve.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from numpy.typing import NDArray

from ..errors import ValidationError
from ._common import (
    MODES,
    check_choice,
    check_fraction,
    check_positive_int,
    corrupt,
    default_dtype,
    resolve,
    run_dynamics,
    torch_generator,
)
from .hopfield import hebbian_couplings, pseudoinverse_couplings
from .modern import modern_hopfield_update
from .sequence import sequence_couplings

__all__ = ["capacity_curve", "critical_load", "finite_size_critical_load", "plot_capacity", "AGS_CRITICAL_LOAD"]

#: Critical load of the Hebbian Hopfield network at T = 0 (Amit, Gutfreund & Sompolinsky 1987).
AGS_CRITICAL_LOAD = 0.138

NETWORKS = ("hebbian", "pseudoinverse", "sequence", "modern")
DEFAULT_LOADS = {
    "hebbian": (0.05, 0.08, 0.10, 0.12, 0.13, 0.14, 0.15, 0.16, 0.18, 0.20),
    "pseudoinverse": (0.1, 0.3, 0.5, 0.7, 0.9),
    "sequence": (0.05, 0.1, 0.15, 0.2, 0.25, 0.3),
    "modern": (0.5, 1.0, 2.0, 5.0, 10.0),
}


def random_patterns(n_patterns: int, n_neurons: int, seed: np.random.SeedSequence | int | None) -> NDArray[np.int8]:
    """Unbiased random ±1 patterns (P, N)."""
    rng = np.random.default_rng(seed)
    return (2 * rng.integers(0, 2, size=(n_patterns, n_neurons)) - 1).astype(np.int8)


def final_target_overlaps(network: str, patterns: NDArray[np.int8], cues: NDArray[np.int8], *, mode: str,
                          max_sweeps: int, beta: float, generator: torch.Generator,
                          device: torch.device) -> tuple[NDArray, NDArray]:
    """Overlap of each cue's final state with its target, and whether the state converged.

    ``patterns`` and ``cues`` are (G, P, N): G independent networks run as one batch.
    Returns two (G, P) arrays.
    """
    dtype = default_dtype(device)
    stored = torch.as_tensor(patterns, device=device).to(dtype)
    start = torch.as_tensor(cues, device=device).to(dtype)
    converged = torch.ones(stored.shape[:2], dtype=torch.bool)
    if network == "modern":
        updated = modern_hopfield_update(start, stored, stored, beta)
        final, targets = torch.where(updated >= 0, 1.0, -1.0).to(dtype), stored
    elif network == "sequence":
        couplings = sequence_couplings(stored.to(torch.float64), cyclic=True).to(dtype)
        final, _, _ = run_dynamics(start, couplings, None, 1, mode="sync", generator=generator)
        targets = torch.roll(stored, -1, dims=1)
    else:
        builder = hebbian_couplings if network == "hebbian" else pseudoinverse_couplings
        couplings = builder(stored.to(torch.float64)).to(dtype)
        final, converged, _ = run_dynamics(start, couplings, None, max_sweeps, mode=mode, generator=generator)
        targets = stored
    overlaps = (final * targets).sum(dim=-1) / patterns.shape[-1]
    return overlaps.cpu().numpy(), converged.cpu().numpy()


def _group_size(n_neurons: int, n_trials: int) -> int:
    """Trials run together: as many coupling matrices as fit in ~256 MB (float64)."""
    return int(max(1, min(n_trials, (256 << 20) // (8 * n_neurons * n_neurons))))


def capacity_curve(network: str = "hebbian", n_neurons: int = 500, loads: Sequence[float] | None = None, *,
                   n_trials: int = 5, flip_fraction: float = 0.0, criterion: float = 0.95, mode: str = "async",
                   max_sweeps: int = 100, beta: float = 1.0, seed: int | None = None,
                   device: str = "auto") -> pd.DataFrame:
    """Retrieval success versus load α = P/N for one network type.

    Parameters
    ----------
    network : {"hebbian", "pseudoinverse", "sequence", "modern"}
        Classical networks (async or sync T = 0 dynamics to a fixed point), the cyclic sequence
        network (one parallel step from ξ^μ must land on ξ^{μ+1}), or the modern network (one
        softmax update with inverse temperature ``beta``, then ``sign``).
    n_neurons : int
        N.
    loads : sequence of float, optional
        Loads α; P = round(α N) patterns (at least 1, 2 for sequences). The table reports the
        realised load P/N. Defaults depend on the network (see ``DEFAULT_LOADS``).
    n_trials : int
        Independent pattern sets per load.
    flip_fraction : float
        Fraction of spins flipped in each cue (0: start from the pattern itself, which tests
        the stability of the retrieval state — the AGS definition of capacity).
    criterion : float
        Final overlap needed to count a pattern as retrieved.
    mode : {"async", "sync"}
        Update rule of the classical networks.
    max_sweeps : int
        Sweep limit of the classical dynamics.
    beta : float
        Inverse temperature of the modern network.
    seed : int, optional
    device : {"auto", "cpu", "cuda"}

    Returns
    -------
    pandas.DataFrame
        One row per (load, trial): ``network, n_neurons, n_patterns, load, trial, flip_fraction,
        criterion, fraction_retrieved, mean_overlap, fraction_converged``.

    Examples
    --------
    >>> curve = capacity_curve("hebbian", n_neurons=200, loads=[0.05, 0.3], n_trials=2, seed=0, device="cpu")
    >>> curve.groupby("load").fraction_retrieved.mean().round(1).tolist()
    [1.0, 0.0]
    """
    network = check_choice(network, "network", NETWORKS)
    n_neurons = check_positive_int(n_neurons, "n_neurons")
    n_trials = check_positive_int(n_trials, "n_trials")
    flip_fraction = check_fraction(flip_fraction, "flip_fraction")
    criterion = check_fraction(criterion, "criterion", low_open=True)
    mode = check_choice(mode, "mode", MODES)
    max_sweeps = check_positive_int(max_sweeps, "max_sweeps")
    loads = DEFAULT_LOADS[network] if loads is None else loads
    loads_arr = np.asarray(loads, dtype=np.float64)
    if loads_arr.ndim != 1 or loads_arr.size == 0 or not np.all(np.isfinite(loads_arr) & (loads_arr > 0)):
        raise ValidationError(f"loads must be a non-empty 1-D sequence of positive numbers; got {loads!r}.")
    target = resolve(device)
    minimum = 2 if network == "sequence" else 1
    seeds = np.random.SeedSequence(seed).spawn(loads_arr.size * n_trials)
    rows = []
    group = _group_size(n_neurons, n_trials)
    for load_index, load in enumerate(loads_arr):
        n_patterns = max(minimum, int(round(load * n_neurons)))
        load_seeds = seeds[load_index * n_trials:(load_index + 1) * n_trials]
        for first in range(0, n_trials, group):
            # Each trial draws its patterns and cues from its own seed; the update order comes
            # from the generator of the group's first trial.
            trial_seeds = [load_seeds[t].spawn(3) for t in range(first, min(first + group, n_trials))]
            patterns = np.stack([random_patterns(n_patterns, n_neurons, ts[0]) for ts in trial_seeds])
            cues = np.stack([corrupt(p, flip_fraction, seed=ts[1]) if flip_fraction else p
                             for p, ts in zip(patterns, trial_seeds, strict=True)])
            overlaps, converged = final_target_overlaps(
                network, patterns, cues, mode=mode, max_sweeps=max_sweeps, beta=beta,
                generator=torch_generator(trial_seeds[0][2], target), device=target)
            for offset in range(len(trial_seeds)):
                rows.append({"network": network, "n_neurons": n_neurons, "n_patterns": n_patterns,
                             "load": n_patterns / n_neurons, "trial": first + offset, "flip_fraction": flip_fraction,
                             "criterion": criterion,
                             "fraction_retrieved": float(np.mean(overlaps[offset] >= criterion)),
                             "mean_overlap": float(np.mean(overlaps[offset])),
                             "fraction_converged": float(np.mean(converged[offset]))})
    return pd.DataFrame(rows)


def critical_load(curve: pd.DataFrame, threshold: float = 0.5) -> float:
    """Load at which the trial-averaged fraction retrieved first falls below ``threshold``.

    Linear interpolation between the last load above and the first load below the threshold;
    NaN when the curve never crosses it (extend the loads).

    Examples
    --------
    >>> curve = pd.DataFrame({"load": [0.1, 0.2], "fraction_retrieved": [1.0, 0.0]})
    >>> critical_load(curve)
    0.15
    """
    missing = {"load", "fraction_retrieved"} - set(curve.columns)
    if missing:
        raise ValidationError(f"curve must have columns 'load' and 'fraction_retrieved'; missing {sorted(missing)}.")
    threshold = check_fraction(threshold, "threshold")
    mean = curve.groupby("load").fraction_retrieved.mean().sort_index()
    loads, values = mean.index.to_numpy(), mean.to_numpy()
    below = np.nonzero(values < threshold)[0]
    if below.size == 0 or below[0] == 0:
        return float("nan")
    upper = below[0]
    lower = upper - 1
    slope = (values[upper] - values[lower]) / (loads[upper] - loads[lower])
    return float(round(loads[lower] + (threshold - values[lower]) / slope, 12))


def finite_size_critical_load(curve: pd.DataFrame) -> float:
    """Load where the retrieval curves of the two largest network sizes cross.

    Near a transition the fraction retrieved depends on ``(α − α_c) N^{1/ν}`` only, so curves
    for different N cross at α_c, while each curve's half-way point drifts with N (for the
    Hebbian network it lies near 0.16 at N = 1000). The crossing is the standard finite-size
    estimate of the critical load (as the Binder-cumulant crossing in spin models). Curves are
    compared at the loads both sizes share, with linear interpolation; loads where both curves
    are equal (e.g. both retrieve everything) are not crossings. NaN without a crossing.

    Examples
    --------
    >>> small = pd.DataFrame({"n_neurons": 500, "load": [0.1, 0.2], "fraction_retrieved": [0.9, 0.3]})
    >>> large = pd.DataFrame({"n_neurons": 1000, "load": [0.1, 0.2], "fraction_retrieved": [1.0, 0.2]})
    >>> round(finite_size_critical_load(pd.concat([small, large])), 3)
    0.15
    """
    missing = {"n_neurons", "load", "fraction_retrieved"} - set(curve.columns)
    if missing:
        raise ValidationError(
            f"curve must have columns n_neurons, load, fraction_retrieved; missing {sorted(missing)}.")
    sizes = np.sort(curve.n_neurons.unique())
    if sizes.size < 2:
        raise ValidationError(f"curve must hold at least two network sizes (n_neurons); got {sizes.tolist()}.")
    means = curve.groupby(["n_neurons", "load"]).fraction_retrieved.mean()
    smaller, larger = means.loc[sizes[-2]], means.loc[sizes[-1]]
    # Realised loads P/N differ slightly between sizes; match them to 3 decimals.
    smaller.index, larger.index = smaller.index.round(3), larger.index.round(3)
    common = smaller.index.intersection(larger.index).sort_values()
    difference = larger[common].to_numpy() - smaller[common].to_numpy()
    loads = common.to_numpy()
    # Equal fractions (difference 0: typically both 1.0 at low loads, both 0.0 at high ones) are
    # not a crossing; a crossing is a sign change between two loads where the curves differ.
    differing = np.flatnonzero(difference != 0)
    changes = np.flatnonzero(np.sign(difference[differing[1:]]) != np.sign(difference[differing[:-1]]))
    if changes.size == 0:
        return float("nan")
    k, after = differing[changes[0]], differing[changes[0] + 1]
    if after > k + 1:  # the curves coincide in between: the crossing is that stretch's middle
        return float((loads[k + 1] + loads[after - 1]) / 2)
    return float(loads[k] - difference[k] * (loads[after] - loads[k]) / (difference[after] - difference[k]))


def plot_capacity(curve: pd.DataFrame, ax=None, *, reference: float | None = AGS_CRITICAL_LOAD):
    """Fraction retrieved (mean ± s.e.m. over trials) against load, one line per network.

    Returns the matplotlib Axes. ``reference`` draws the AGS critical load (None to omit).
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.5))
    for (network, n_neurons), group in curve.groupby(["network", "n_neurons"]):
        stats = group.groupby("load").fraction_retrieved.agg(["mean", "sem"]).fillna(0.0)
        ax.errorbar(stats.index, stats["mean"], yerr=stats["sem"], marker="o", ms=3, capsize=2,
                    label=f"{network}, N={n_neurons}")
    if reference is not None:
        ax.axvline(reference, color="0.5", ls="--", lw=1, label=f"α_c = {reference}")
    ax.set_xlabel("load α = P / N")
    ax.set_ylabel("fraction of patterns retrieved")
    ax.set_ylim(-0.03, 1.03)
    ax.legend(frameon=False, fontsize=8)
    return ax
