"""Mean-field entropy production of a kinetic Ising model (PHYSICS.md §4.1, target 7).

In a stationary state the EP per step is ``Σ = Σ_ij (J_ij − J_ji) D_ij`` (β folded into J), with
D the delayed covariance ``cov(s_i,t, s_j,t−1)``. :func:`model_entropy_production` measures D on
the data; here D is *predicted* from the model alone by a Plefka-family approximation
(:func:`spikefield.meanfield.forward`), which costs O(N²)–O(N³) per step and no sampling. Neuron
i's share is ``Σ_j J_ij (D_ij − D_ji)`` (the stationary-form share of ``method="model"``), so the
shares sum to the total and areas / area pairs split the same way.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from ..errors import ValidationError
from ..raster import Raster
from ._common import EntropyProductionResult, check_raster, coerce_model

__all__ = ["meanfield_entropy_production"]


def _initial_magnetisation(s0: Any, raster: Raster) -> Any:
    """``s0="data"``: start the forward map from the raster's mean spins (its stationary m)."""
    if isinstance(s0, str) and s0 == "data":
        return np.clip(raster.to_spins(np.int8).mean(axis=0, dtype=np.float64), -1.0, 1.0)
    return s0


def _area_tables(labels: NDArray, per_neuron: NDArray[np.float64],
                 edges: NDArray[np.float64]) -> tuple[pd.DataFrame, pd.DataFrame]:
    names, index = np.unique(labels, return_inverse=True)
    indicator = np.zeros((labels.size, len(names)))
    indicator[np.arange(labels.size), index] = 1.0
    per_area = pd.DataFrame({"area": names, "n_units": indicator.sum(0).astype(int),
                             "ep_per_bin": per_neuron @ indicator, "stderr": np.nan})
    blocks = indicator.T @ edges @ indicator
    pairs = pd.DataFrame([{"target_area": names[a], "source_area": names[b], "ep_per_bin": blocks[a, b]}
                          for a in range(len(names)) for b in range(len(names))])
    return per_area, pairs


def meanfield_entropy_production(model: Any, raster: Raster, *, approximation: str = "plefka2_t",
                                 order: int | None = None, steps: int = 128, s0: Any = "data",
                                 stationary: bool = False, beta: float = 1.0, areas: Any = None,
                                 **forward_options: Any) -> EntropyProductionResult:
    """EP of a kinetic Ising model from a mean-field prediction of its delayed covariance.

    Parameters
    ----------
    model : KineticIsing, object with ``h_``/``J_``, or ``(h, J)`` tuple
        Fields (N,) and couplings (N, N), ``J[i, j]`` from j at t−1 to i at t.
    raster : Raster
        Gives the units (N must match), the bin size (for nats per second), the spikes per bin
        (for nats per spike) and, with ``s0="data"``, the starting magnetisations.
    approximation : {"plefka2_t", "plefka_t", "plefka_t1", "tap", "nmf"}
        The Plefka-family method of :func:`spikefield.meanfield.forward` (Plefka2[t] is the most
        accurate for D; PHYSICS.md §2.4).
    order : int, optional
        Expansion order passed to the forward map.
    steps : int
        Steps of the forward map (the paper's protocol: 128); ignored with ``stationary=True``.
    s0 : "data", "ones" or array (N,)
        Initial magnetisations: the raster's mean spins by default.
    stationary : bool
        Iterate the forward map to its fixed point instead of ``steps`` steps.
    beta : float
        Multiplies h and J (keep 1 for fitted models).
    areas : array (N,), optional
        Area label of each unit; adds ``per_area`` and ``area_pairs`` (nats per bin).
    **forward_options
        Further options of :func:`spikefield.meanfield.forward` (``quadrature=``, ``tol=``, ...).

    Returns
    -------
    EntropyProductionResult
        ``method="meanfield"``: nats per bin / second / spike. A deterministic prediction from the
        model, so ``stderr`` is NaN (no sampling error; the approximation error is not a standard
        error). ``details`` holds the predicted ``m`` and ``D``, the approximation and whether
        the forward map converged.

    Examples
    --------
    >>> import spikefield as sf
    >>> h, J = sf.simulate.sk_couplings(16, J0=1.0, Js=0.1, H0=0.5, seed=0)
    >>> X = sf.simulate.kinetic_ising(h, J, 200, n_trials=20, burn_in=50, seed=1)
    >>> mf = sf.thermo.entropy_production((h, J), X, method="meanfield", approximation="nmf")
    >>> mf.ep_per_bin > 0
    True
    """
    from ..meanfield import entropy_production as mean_field_ep
    from ..meanfield import forward

    raster = check_raster(raster)
    if not (isinstance(beta, int | float | np.floating) and np.isfinite(beta) and beta >= 0):
        raise ValidationError(f"beta must be a finite number >= 0, got {beta!r}.")
    h_np, J_np = coerce_model(model, raster.n_units)
    h_np, J_np = beta * h_np, beta * J_np
    labels = None if areas is None else np.asarray(areas)
    if labels is not None and labels.shape != (raster.n_units,):
        raise ValidationError(f"areas must give one label per unit, shape ({raster.n_units},); "
                              f"got shape {labels.shape}.")
    out = forward(h_np, J_np, method=approximation, order=order, steps=steps,
                  s0=_initial_magnetisation(s0, raster), stationary=stationary, keep_history=False,
                  **forward_options)
    D, m = np.asarray(out["D"]), np.asarray(out["m"])
    # The connected D: identical to the raw form at stationarity (Σ (J − Jᵀ)_ij m_i m_j = 0).
    total = mean_field_ep(h_np, J_np, D=D)
    edges = J_np * (D - D.T)
    per_neuron = edges.sum(axis=1)
    per_area = area_pairs = None
    if labels is not None:
        per_area, area_pairs = _area_tables(labels, per_neuron, edges)
    spikes = float((raster.to_spins(np.int8) > 0).sum(axis=1).mean())
    nan = float("nan")
    return EntropyProductionResult(
        method="meanfield", ep_per_bin=total, ep_per_second=total / raster.bin_size,
        ep_per_spike=total / spikes if spikes > 0 else nan, stderr=nan, stderr_per_second=nan,
        stderr_per_spike=nan, ci_per_bin=(nan, nan), n_transitions=raster.n_transitions, n_units=raster.n_units,
        bin_size=raster.bin_size, spikes_per_bin=spikes, is_lower_bound=False, per_neuron=per_neuron,
        per_area=per_area, area_pairs=area_pairs,
        details={"approximation": out.method, "order": out.order, "converged": bool(out.converged),
                 "n_steps": int(out.n_steps), "stationary": bool(stationary), "m": m, "D": D})
