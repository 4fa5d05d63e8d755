"""Mean-field entropy production of a kinetic Ising network (PHYSICS.md §4.1)."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from ..errors import ValidationError
from ._validation import as_params, as_square, as_vector
from .forward import forward

__all__ = ["entropy_production"]


def entropy_production(h: ArrayLike, J: ArrayLike, m_prev: ArrayLike | None = None, D: ArrayLike | None = None, *,
                       m: ArrayLike | None = None, method: str | None = None, order: int | None = None,
                       steps: int = 128, **forward_options: Any) -> float:
    """Entropy production per step (nats) from a delayed covariance: ``σ = Σ_ij (J_ij − J_ji) <s_i,t s_j,t−1>``.

    This is the stationary-state formula (β folded into J). Either pass a delayed covariance
    ``D`` (measured, or predicted by any method), or name a ``method`` and the prediction of
    :func:`spikefield.meanfield.forward` after ``steps`` steps is used (``stationary=True`` in
    ``forward_options`` uses its fixed point). With ``m`` and ``m_prev`` (for a transient
    prediction: the last two steps, when the run keeps its history and has two) the raw
    correlations ``D_ij + m_i m_prev_j`` are used; otherwise the connected ``D`` (identical at
    stationarity, because ``Σ (J − Jᵀ)_ij m_i m_j = 0``).

    Parameters
    ----------
    h : (N,) array
        Fields (only checked; they do not enter the stationary formula).
    J : (N, N) array
        Couplings, ``J[i, j]`` from j at t−1 to i at t.
    m_prev : (N,) array, optional
        Magnetisations at t−1.
    D : (N, N) array, optional
        Delayed covariance ``cov(s_i,t, s_j,t−1)``.
    m : (N,) array, optional
        Magnetisations at t.
    method, order, steps, forward_options
        Passed to :func:`forward` when ``D`` is not given.

    Returns
    -------
    float
        EP in nats per time step (extensive: O(N) for SK couplings).

    Examples
    --------
    >>> import numpy as np
    >>> J = np.array([[0.0, 0.5], [-0.5, 0.0]])
    >>> round(entropy_production(np.zeros(2), J, method="nmf", stationary=True), 6)
    1.0
    """
    h_np, J_np = as_params(h, J)
    size = h_np.size
    if D is None:
        if method is None:
            raise ValidationError("entropy_production needs either D (a delayed covariance) or method= to predict it.")
        out = forward(h_np, J_np, method=method, order=order, steps=steps, **forward_options)
        if out.stationary:
            D_np, m_np, m_prev_np = out["D"], out["m"], out["m"]
        elif out["D"].ndim == 2:  # keep_history=False: only the last step, so m_prev is unknown
            D_np, m_np, m_prev_np = out["D"], out["m"], None
        else:
            D_np, m_np = out["D"][-1], out["m"][-1]
            m_prev_np = out["m"][-2] if out["m"].shape[0] > 1 else None
    else:
        D_np = as_square(D, "D", size)
        m_np = None if m is None else as_vector(m, "m", size)
        m_prev_np = None if m_prev is None else as_vector(m_prev, "m_prev", size)
    raw = D_np if m_np is None or m_prev_np is None else D_np + np.outer(m_np, m_prev_np)
    return float(np.sum((J_np - J_np.T) * raw))
