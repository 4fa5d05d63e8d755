"""Attractors of fitted circuits: fixed points and short cycles of zero-temperature dynamics.

Given fields and couplings ``(h, J)`` (a fitted ``KineticIsing`` or ``EquilibriumIsing``, a
Hopfield network, or a plain pair), run the deterministic dynamics
``s_i ← sign(h_i + Σ_j J_ij s_j)`` from many starting states at once, detect where each run
ends (a fixed point, or a cycle of period ≤ ``max_period``), and report every distinct
attractor with its basin size (the fraction of starts that reach it) and its overlap with
activity patterns of the recording (e.g. place-cell population vectors along the track).

Parallel updates (``mode="sync"``) are the zero-temperature limit of the kinetic Ising model;
asynchronous updates (``mode="async"``) that of an equilibrium (symmetric) model, for which
only fixed points exist.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from numpy.typing import ArrayLike, NDArray

from ..errors import ConvergenceWarning, ValidationError
from ._common import (
    MODES,
    as_spins,
    check_choice,
    check_fraction,
    check_positive_int,
    default_dtype,
    params_from_model,
    resolve,
    run_dynamics,
    torch_generator,
)

__all__ = ["attractors", "pattern_overlaps", "plot_attractors"]


def pattern_overlaps(states: ArrayLike, patterns: ArrayLike) -> NDArray[np.float64]:
    """Similarity of ±1 states (..., N) with activity patterns (K, N) -> (..., K).

    Binary patterns (±1, or 0/1 read as spikes) give the Mattis overlap ``ξ·s / N`` ∈ [−1, 1].
    Real-valued patterns (e.g. firing-rate population vectors in Hz) give the Pearson
    correlation across neurons between the state and the pattern (NaN when either is constant,
    e.g. the all-silent state).

    Examples
    --------
    >>> pattern_overlaps([[1, -1, 1, -1]], [[1, -1, 1, -1], [0.0, 1.0, 0.0, 2.0]]).round(2)
    array([[ 1. , -0.9]])
    """
    states = np.asarray(states, dtype=np.float64)
    values = np.asarray(patterns, dtype=np.float64)
    if values.ndim != 2 or states.shape[-1] != values.shape[1]:
        raise ValidationError(
            f"patterns must be (K, N) with N = {states.shape[-1]} neurons like the states; got shape {values.shape}."
        )
    if not np.all(np.isfinite(values)):
        raise ValidationError("patterns must be finite (replace NaN rates, e.g. unvisited positions).")
    binary = np.all(np.isin(values, (-1.0, 1.0))) or np.all(np.isin(values, (0.0, 1.0)))
    if binary:
        return states @ as_spins(values, "patterns").T.astype(np.float64) / values.shape[1]
    centred_patterns = values - values.mean(axis=1, keepdims=True)
    centred_states = states - states.mean(axis=-1, keepdims=True)
    norms = np.linalg.norm(centred_states, axis=-1)[..., None] * np.linalg.norm(centred_patterns, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(norms > 0, centred_states @ centred_patterns.T / norms, np.nan)


def _sync_endpoints(starts: torch.Tensor, couplings: torch.Tensor, fields: torch.Tensor, max_steps: int,
                    max_period: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Iterate parallel T = 0 dynamics; return the last ``max_period`` states and each run's period.

    A run has period p once ``s_t == s_{t−p}`` (smallest such p ≤ max_period); deterministic
    dynamics then repeat forever, so the final ring of states contains the whole cycle.
    Period 0 marks runs still transient after ``max_steps``.
    """
    ring = torch.empty((max_period + 1, *starts.shape), dtype=starts.dtype, device=starts.device)
    ring[0] = starts
    period = torch.zeros(starts.shape[0], dtype=torch.long, device=starts.device)
    state, step = starts, 0
    for step in range(1, max_steps + 1):
        local = torch.addmm(fields, state, couplings.T)
        state = torch.where(local == 0, state, torch.sign(local))
        for lag in range(1, min(step, max_period) + 1):
            match = (state == ring[(step - lag) % (max_period + 1)]).all(dim=1) & (period == 0)
            period[match] = lag
        ring[step % (max_period + 1)] = state
        if bool((period > 0).all()):
            break
    order = [(step - k) % (max_period + 1) for k in range(max_period, -1, -1)]  # oldest first
    return ring[order], period


def _canonical_cycle(cycle: NDArray[np.int8]) -> NDArray[np.int8]:
    """Rotate a cycle (p, N) so it starts at its lexicographically smallest state."""
    keys = [np.packbits(state > 0).tobytes() for state in cycle]
    first = min(range(len(keys)), key=keys.__getitem__)
    return np.roll(cycle, -first, axis=0)


def attractors(model: Any, n_starts: int = 1000, *, seed: int | None = None, patterns: ArrayLike | None = None,
               pattern_labels: Sequence[Any] | None = None, starts: ArrayLike | None = None,
               start_activity: float = 0.5, mode: str = "sync", max_steps: int = 200, max_period: int = 10,
               device: str = "auto") -> pd.DataFrame:
    """Fixed points and short cycles of the zero-temperature dynamics, with basins and overlaps.

    Parameters
    ----------
    model : fitted estimator (``h_``, ``J_``) or ``(h, J)`` pair
        ``J[i, j]`` from neuron j to neuron i.
    n_starts : int
        Random starting states, ignored when ``starts`` is given.
    seed : int, optional
        Seeds the random starts (and the update order with ``mode="async"``).
    patterns : (K, N) array, optional
        Activity patterns to compare attractors with (see :func:`pattern_overlaps`).
    pattern_labels : sequence of K labels, optional
        Names of the patterns (e.g. positions in cm); default ``0..K-1``.
    starts : (B, N) array of ±1 (or 0/1), optional
        Explicit starting states, e.g. binned states observed in the recording.
    start_activity : float in [0, 1]
        Probability of +1 in the random starts (0.5: uniform over all states; the recording's
        fraction of active bins gives starts at its own sparseness).
    mode : {"sync", "async"}
        Parallel (kinetic Ising) or random sequential (equilibrium model) updates.
    max_steps : int
        Updates (sync) or sweeps (async) before a run counts as unresolved.
    max_period : int
        Longest cycle detected (sync).
    device : {"auto", "cpu", "cuda"}

    Returns
    -------
    pandas.DataFrame
        One row per distinct attractor, largest basin first: ``attractor, period, basin_size,
        basin_fraction, mean_activity`` (fraction of +1 spins over the cycle), ``states``
        ((period, N) int8 array, in the order visited), and with ``patterns``:
        ``overlaps`` ((period, K) array), ``best_pattern`` and ``best_overlap`` (the signed
        overlap of largest magnitude over states and patterns) and ``pattern_sequence`` (the
        best-matching pattern at each step of the cycle).
        ``table.attrs`` holds ``n_starts`` and ``n_unresolved``; unresolved runs (longer
        transients or cycles) raise a :class:`~spikefield.ConvergenceWarning`.

    Examples
    --------
    >>> from spikefield.memory import Hopfield, attractors
    >>> rng = np.random.default_rng(0)
    >>> stored = rng.choice([-1, 1], size=(3, 100))
    >>> table = attractors(Hopfield(stored), n_starts=200, seed=0, patterns=stored, mode="async")
    >>> sorted(table.best_pattern[table.best_overlap > 0.99])   # every stored pattern is a fixed point
    [0, 1, 2]
    """
    fields, couplings = params_from_model(model, "model")
    n_neurons = fields.size
    mode = check_choice(mode, "mode", MODES)
    max_steps = check_positive_int(max_steps, "max_steps")
    max_period = check_positive_int(max_period, "max_period")
    target = resolve(device)
    dtype = default_dtype(target)
    sequence = np.random.SeedSequence(seed)
    start_seed, order_seed = sequence.spawn(2)
    if starts is None:
        n_starts = check_positive_int(n_starts, "n_starts")
        start_activity = check_fraction(start_activity, "start_activity")
        rng = np.random.default_rng(start_seed)
        initial = np.where(rng.random((n_starts, n_neurons)) < start_activity, 1, -1).astype(np.int8)
    else:
        initial = as_spins(starts, "starts")
        if initial.shape[1] != n_neurons:
            raise ValidationError(f"starts must have {n_neurons} columns (the model's neurons); got {initial.shape}.")
    if patterns is not None:
        patterns = np.asarray(patterns, dtype=np.float64)
        pattern_overlaps(initial[:1], patterns)  # validates shape and values before the long run
        labels = list(range(len(patterns))) if pattern_labels is None else list(pattern_labels)
        if len(labels) != len(patterns):
            raise ValidationError(f"pattern_labels must have {len(patterns)} entries (one per pattern); "
                                  f"got {len(labels)}.")
    elif pattern_labels is not None:
        raise ValidationError("pattern_labels names the rows of patterns; pass patterns too (got patterns=None).")
    start_tensor = torch.as_tensor(initial, device=target).to(dtype)
    coupling_tensor = torch.as_tensor(couplings, device=target).to(dtype)
    field_tensor = torch.as_tensor(fields, device=target).to(dtype)
    if mode == "sync":
        ring, period = _sync_endpoints(start_tensor, coupling_tensor, field_tensor, max_steps, max_period)
        ring, period = ring.to(torch.int8).cpu().numpy(), period.cpu().numpy()
    else:
        final, converged, _ = run_dynamics(start_tensor, coupling_tensor, field_tensor, max_steps, mode="async",
                                           generator=torch_generator(order_seed, target))
        ring, period = final.to(torch.int8).cpu().numpy()[None], converged.cpu().numpy().astype(np.int64)
    found: dict[bytes, dict[str, Any]] = {}
    for run in np.nonzero(period > 0)[0]:
        cycle = _canonical_cycle(ring[ring.shape[0] - period[run]:, run])
        key = np.packbits(cycle > 0).tobytes() + len(cycle).to_bytes(8, "little")
        entry = found.setdefault(key, {"states": cycle, "basin_size": 0})
        entry["basin_size"] += 1
    rows = []
    for entry in sorted(found.values(), key=lambda e: -e["basin_size"]):
        cycle = entry["states"]
        row = {"period": len(cycle), "basin_size": entry["basin_size"],
               "basin_fraction": entry["basin_size"] / len(initial), "mean_activity": float(np.mean(cycle > 0)),
               "states": cycle}
        if patterns is not None:
            overlaps = pattern_overlaps(cycle, patterns)
            row["overlaps"] = overlaps
            if np.all(np.isnan(overlaps)):
                row.update(best_pattern=None, best_overlap=np.nan, pattern_sequence=[None] * len(cycle))
            else:
                # Largest |overlap|: a mirror state (−ξ) or an anti-correlated pattern is informative too.
                magnitude = np.abs(overlaps)
                step, best = np.unravel_index(np.nanargmax(magnitude), overlaps.shape)
                per_step = [labels[int(np.nanargmax(m))] if np.any(np.isfinite(m)) else None for m in magnitude]
                row.update(best_pattern=labels[best], best_overlap=float(overlaps[step, best]),
                           pattern_sequence=per_step)
        rows.append(row)
    table = pd.DataFrame(rows, columns=["period", "basin_size", "basin_fraction", "mean_activity", "states",
                                        *(["overlaps", "best_pattern", "best_overlap", "pattern_sequence"]
                                          if patterns is not None else [])])
    table.insert(0, "attractor", np.arange(len(table)))
    n_unresolved = int(np.sum(period == 0))
    table.attrs.update(n_starts=len(initial), n_unresolved=n_unresolved, mode=mode)
    if n_unresolved:
        warnings.warn(f"attractors: {n_unresolved} of {len(initial)} runs reached neither a fixed point nor a "
                      f"cycle of period <= {max_period} within {max_steps} steps; raise max_steps or max_period.",
                      ConvergenceWarning, stacklevel=2)
    return table


def plot_attractors(table: pd.DataFrame, *, top: int = 8, axes=None):
    """Basin sizes (left) and overlaps of each attractor's states with the patterns (right).

    Parameters
    ----------
    table : DataFrame from :func:`attractors` (with ``patterns`` for the right panel)
    top : int
        Attractors shown (largest basins).
    axes : pair of matplotlib Axes, optional

    Returns
    -------
    matplotlib Figure
    """
    import matplotlib.pyplot as plt

    missing = {"attractor", "basin_fraction", "period"} - set(table.columns)
    if missing:
        raise ValidationError(f"table must come from attractors(); missing columns {sorted(missing)}.")
    shown = table.head(check_positive_int(top, "top"))
    has_overlaps = "overlaps" in table.columns and len(shown) > 0
    if axes is None:
        fig, axes = plt.subplots(1, 2 if has_overlaps else 1, figsize=(10 if has_overlaps else 5, 3.5),
                                 squeeze=False)
        axes = axes[0]
    fig = axes[0].figure
    colours = plt.cm.viridis(np.linspace(0, 0.9, max(int(table.period.max()) if len(table) else 1, 1)))
    axes[0].bar(shown.attractor.astype(str), shown.basin_fraction,
                color=[colours[p - 1] for p in shown.period])
    axes[0].set_xlabel("attractor (colour: period)")
    axes[0].set_ylabel("basin fraction")
    if has_overlaps:
        blocks = [np.asarray(o) for o in shown.overlaps]
        image = np.vstack(blocks)
        names = [f"{a}:{t}" for a, o in zip(shown.attractor, blocks, strict=True) for t in range(len(o))]
        mesh = axes[1].imshow(image, aspect="auto", cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest")
        axes[1].set_yticks(range(len(names)), names, fontsize=6)
        axes[1].set_xlabel("pattern index")
        axes[1].set_ylabel("attractor:step")
        fig.colorbar(mesh, ax=axes[1], label="overlap")
    fig.tight_layout()
    return fig
