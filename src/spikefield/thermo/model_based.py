"""Model-based entropy production of a kinetic Ising network (PHYSICS.md §4.1).

For parallel Glauber dynamics ``P(s_t | s_{t-1}) = Π_i exp(s_i,t u_i(s_{t-1})) / 2cosh u_i(s_{t-1})``
with ``u_i(s) = h_i + Σ_j J_ij s_j`` (β folded into h and J), the EP of one step is the mean
log-ratio of the forward and time-reversed transition:

    σ_t = Σ_i [ s_i,t u_i(s_{t-1}) - ln 2cosh u_i(s_{t-1}) ] - [ s_i,t-1 u_i(s_t) - ln 2cosh u_i(s_t) ]

(the *trajectory* form; term i is neuron i's share). In a stationary state the field and
``ln 2cosh`` terms average out and

    Σ = Σ_ij J_ij ⟨s_i,t s_j,t-1 - s_i,t-1 s_j,t⟩ = Σ_ij (J_ij - J_ji) ⟨s_i,t s_j,t-1⟩

(the *stationary* form; edge (i, j) carries ``J_ij ⟨g_ij⟩``, which gives the area-pair split).
Both are averaged over the transitions of a Raster, chunked over time so memory is O(chunk·N + N²).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch
from numpy.typing import ArrayLike, NDArray

from .._device import resolve_device
from ..errors import ValidationError, did_you_mean
from ..raster import Raster
from ._common import (
    BlockAccumulator,
    EntropyProductionResult,
    bootstrap_means,
    check_raster,
    coerce_model,
    normalised_result,
)

__all__ = ["model_entropy_production", "transition_log_ratios"]

_FORMS = ("trajectory", "stationary")


def transition_log_ratios(h: torch.Tensor, J: torch.Tensor, previous: torch.Tensor,
                          current: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-transition, per-neuron EP terms of both forms (pure kernel).

    Parameters
    ----------
    h : Tensor (N,)
        Fields (β folded in).
    J : Tensor (N, N)
        Couplings, ``J[i, j]`` from j at t-1 to i at t.
    previous, current : Tensor (T, N)
        ±1 states at t-1 and t.

    Returns
    -------
    trajectory, stationary : Tensor (T, N)
        ``[s_i,t u_i(s_{t-1}) - ln2cosh u_i(s_{t-1})] - [s_i,t-1 u_i(s_t) - ln2cosh u_i(s_t)]`` and
        ``Σ_j J_ij (s_i,t s_j,t-1 - s_i,t-1 s_j,t)``; each row sums (over i) to that transition's EP.
    """
    drive_previous = previous @ J.T
    drive_current = current @ J.T
    u_previous = drive_previous + h
    u_current = drive_current + h
    # ln 2cosh u = logaddexp(u, -u): exact and overflow-free for any |u|.
    trajectory = (current * u_previous - torch.logaddexp(u_previous, -u_previous)
                  - previous * u_current + torch.logaddexp(u_current, -u_current))
    stationary = current * drive_previous - previous * drive_current
    return trajectory, stationary


def _area_labels(areas: ArrayLike | None, n_units: int) -> NDArray | None:
    if areas is None:
        return None
    labels = np.asarray(areas)
    if labels.shape != (n_units,):
        raise ValidationError(f"areas must give one label per unit, shape ({n_units},); got shape {labels.shape}.")
    return labels


def model_entropy_production(model: Any, raster: Raster, *, form: str = "trajectory", beta: float = 1.0,
                             areas: ArrayLike | None = None, n_blocks: int = 50, n_boot: int = 1000,
                             seed: int | None = 0, device: str = "auto",
                             chunk_bins: int = 65536) -> EntropyProductionResult:
    """Entropy production of a kinetic Ising model along the transitions of a raster.

    Parameters
    ----------
    model : KineticIsing, object with ``h_`` and ``J_``, or ``(h, J)`` tuple
        Fields (N,) and couplings (N, N), ``J[i, j]`` from j at t-1 to i at t.
    raster : Raster
        Observed (or simulated) activity; transitions never cross segment boundaries.
    form : {"trajectory", "stationary"}
        Which estimator is reported in ``ep_per_bin``: the exact mean log-ratio of forward and
        reverse transitions, or ``Σ (J - Jᵀ)_ij ⟨s_i,t s_j,t-1⟩`` (valid in a stationary state).
        Both are always in ``details``, with the paired difference and its standard error.
    beta : float
        Multiplies h and J (inverse temperature; keep 1 for fitted models).
    areas : array (N,), optional
        Area label of each unit; adds ``per_area`` and ``area_pairs`` tables.
    n_blocks, n_boot, seed : int
        Block bootstrap: contiguous blocks of transitions, replicates, generator seed.
    device : {"auto", "cpu", "cuda"}
        Compute device (float64 throughout).
    chunk_bins : int
        Transitions per chunk.

    Returns
    -------
    EntropyProductionResult
        Nats per bin, per second and per spike, standard errors, and ``per_neuron`` shares.

    Examples
    --------
    >>> import numpy as np, spikefield as sf
    >>> h, J = sf.simulate.sk_couplings(20, J0=0.5, Js=0.5, H0=0.2, seed=1)
    >>> X = sf.simulate.kinetic_ising(h, J, 2000, n_trials=4, burn_in=100, seed=2)
    >>> res = sf.thermo.entropy_production((h, J), X, method="model")
    >>> res.ep_per_bin > 0
    True
    """
    raster = check_raster(raster)
    if form not in _FORMS:
        raise ValidationError(f"form must be one of {list(_FORMS)}, got {form!r}.{did_you_mean(form, _FORMS)}")
    if not (isinstance(beta, int | float | np.floating) and np.isfinite(beta) and beta >= 0):
        raise ValidationError(f"beta must be a finite number >= 0, got {beta!r}.")
    h_np, J_np = coerce_model(model, raster.n_units)
    labels = _area_labels(areas, raster.n_units)
    dev = resolve_device(device)
    h = torch.as_tensor(beta * h_np, dtype=torch.float64, device=dev)
    J = torch.as_tensor(beta * J_np, dtype=torch.float64, device=dev)
    n, n_trans = raster.n_units, raster.n_transitions
    # Columns: trajectory total, stationary total, spikes, then N trajectory and N stationary shares.
    acc = BlockAccumulator(n_trans, n_blocks, 3 + 2 * n)
    lagged = torch.zeros((n, n), dtype=torch.float64, device=dev)
    offset = 0
    for start, stop in raster.iter_transitions(chunk_bins):
        previous = raster.to_torch(dev, torch.float64, start=start, stop=stop)
        current = raster.to_torch(dev, torch.float64, start=start + 1, stop=stop + 1)
        trajectory, stationary = transition_log_ratios(h, J, previous, current)
        spikes = (current > 0).sum(dim=1, keepdim=True).to(torch.float64)
        block = torch.cat([trajectory.sum(1, keepdim=True), stationary.sum(1, keepdim=True), spikes,
                           trajectory, stationary], dim=1)
        acc.add(offset, block.cpu().numpy())
        lagged += current.T @ previous
        offset += stop - start
    means = acc.means()
    boot = bootstrap_means(acc.sums, acc.counts, n_boot, seed)
    column = 0 if form == "trajectory" else 1
    shares = slice(3, 3 + n) if form == "trajectory" else slice(3 + n, 3 + 2 * n)
    difference = boot[:, 0] - boot[:, 1]
    details: dict[str, Any] = {
        "form": form,
        "trajectory_ep_per_bin": float(means[0]), "trajectory_stderr": float(np.std(boot[:, 0], ddof=1)),
        "stationary_ep_per_bin": float(means[1]), "stationary_stderr": float(np.std(boot[:, 1], ddof=1)),
        "identity_difference": float(means[0] - means[1]),
        "identity_stderr": float(np.std(difference, ddof=1)),
        "n_blocks": acc.n_blocks, "n_boot": n_boot,
    }
    per_neuron = means[shares]
    per_neuron_se = np.std(boot[:, shares], axis=0, ddof=1)
    per_area = area_pairs = None
    if labels is not None:
        names, index = np.unique(labels, return_inverse=True)
        indicator = np.zeros((n, len(names)))
        indicator[np.arange(n), index] = 1.0
        per_area = pd.DataFrame({"area": names, "n_units": indicator.sum(0).astype(int),
                                 "ep_per_bin": per_neuron @ indicator,
                                 "stderr": np.std(boot[:, shares] @ indicator, axis=0, ddof=1)})
        lagged_np = lagged.cpu().numpy() / n_trans
        edges = J_np * beta * (lagged_np - lagged_np.T)
        block_sums = indicator.T @ edges @ indicator
        area_pairs = pd.DataFrame([{"target_area": names[a], "source_area": names[b], "ep_per_bin": block_sums[a, b]}
                                   for a in range(len(names)) for b in range(len(names))])
    return normalised_result("model", boot[:, column], float(means[column]), boot[:, 2], float(means[2]),
                             raster, n_trans, False, per_neuron=per_neuron, per_neuron_stderr=per_neuron_se,
                             per_area=per_area, area_pairs=area_pairs, details=details)
