"""Phase-transition reconstruction: rescale a fitted model by β̃ and follow its mean-field statistics."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from ._validation import as_params, canonical_method
from .forward import forward

__all__ = ["reconstruct_transition", "plot_transition"]


def reconstruct_transition(h: ArrayLike, J: ArrayLike, betas: ArrayLike | None = None,
                           methods: Sequence[str] = ("plefka2_t", "plefka_t", "tap"), *, steps: int = 128,
                           **forward_options: Any) -> dict[str, dict[str, np.ndarray]]:
    """Final-step ⟨m⟩, ⟨C⟩ (off-diagonal), ⟨D⟩ and EP of ``β̃·(h, J)`` for each β̃ and method.

    This is the 2021 paper's reconstruction experiment (PHYSICS.md §3.2): fit (ĥ, Ĵ) at β̃ = 1,
    then scan the temperature and see whether the peaks of C, D and EP land at the true β_c.

    Parameters
    ----------
    h, J : arrays (N,), (N, N)
        Fitted fields and couplings at β̃ = 1.
    betas : (B,) array, optional
        Multipliers β̃ (default ``1 + 0.3·linspace(−1, 1, 21)``).
    methods : sequence of str
        Forward methods to run (names as in :func:`forward`; ``"plefka_t:1"`` selects order 1).
    steps : int
        Forward steps from ``s0`` (all +1 by default).

    Returns
    -------
    dict
        ``{"beta": betas, method: {"m", "C", "D", "ep"}}``; each entry is a (B,) array. ``ep`` is
        ``Σ_ij β̃Ĵ_ij (D_ij − D_ji)`` (nats per step).

    Examples
    --------
    >>> from spikefield.simulate import sk_couplings
    >>> h, J = sk_couplings(32, seed=0)
    >>> curves = reconstruct_transition(h, J, betas=[0.9, 1.0, 1.1], methods=["nmf"], steps=20)
    >>> curves["nmf"]["C"].shape
    (3,)
    """
    h_np, J_np = as_params(h, J)
    betas = 1 + 0.3 * np.linspace(-1, 1, 21) if betas is None else np.asarray(betas, dtype=np.float64).reshape(-1)
    off_diagonal = ~np.eye(h_np.size, dtype=bool)
    curves: dict[str, Any] = {"beta": betas}
    for spec in methods:
        name, _, order_text = spec.partition(":")
        name, order = canonical_method(name, int(order_text) if order_text else None)
        rows = {key: np.empty(betas.size) for key in ("m", "C", "D", "ep")}
        for b, beta in enumerate(betas):
            out = forward(beta * h_np, beta * J_np, method=name, order=order, steps=steps, keep_history=False,
                          **forward_options)
            scaled = beta * J_np
            rows["m"][b] = out["m"].mean()
            rows["C"][b] = out["C"][off_diagonal].mean()
            rows["D"][b] = out["D"].mean()
            rows["ep"][b] = np.sum((scaled - scaled.T) * out["D"])
        curves[spec] = rows
    return curves


def plot_transition(curves: dict[str, Any], beta_c: float | None = None) -> Any:
    """Figure of :func:`reconstruct_transition` output: ⟨m⟩, ⟨C⟩, ⟨D⟩ and EP against β̃, one line per method.

    Parameters
    ----------
    curves : dict
        Output of :func:`reconstruct_transition`.
    beta_c : float, optional
        Multiplier to mark with a vertical line (e.g. the true critical point over the fitted β).

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 4, figsize=(13, 3), constrained_layout=True)
    for name, rows in curves.items():
        if name == "beta":
            continue
        for axis, key in zip(axes, ("m", "C", "D", "ep"), strict=True):
            axis.plot(curves["beta"], rows[key], label=name)
    for axis, label in zip(axes, ("⟨m⟩", "⟨C_ik⟩ (i≠k)", "⟨D_il⟩", "EP (nats/step)"), strict=True):
        axis.set_xlabel("β̃")
        axis.set_ylabel(label)
        if beta_c is not None:
            axis.axvline(beta_c, color="0.6", lw=0.8, ls="--")
    axes[0].legend(fontsize="small")
    return figure
