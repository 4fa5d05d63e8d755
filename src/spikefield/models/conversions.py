"""Conversions between the spin (±1) and the logistic-GLM (0/1) parameterisations.

The kinetic Ising model ``P(s_i,t = +1 | s_{t−1}) = σ(2 u_i,t)``, ``u_i,t = h_i + Σ_j J_ij s_j,t−1``
with spins ``s = 2n − 1`` is the logistic GLM ``P(n_i,t = 1 | n_{t−1}) = σ(b_i + Σ_j w_ij n_j,t−1)``
with (PHYSICS.md §1.1, β = 1)::

    w_ij = 4 J_ij                 b_i = 2 (h_i − Σ_j J_ij)
    J_ij = w_ij / 4               h_i = b_i / 2 + Σ_j w_ij / 4

Both give exactly the same likelihood for every data set, so either can be fitted and
reported in the other.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..errors import ValidationError

__all__ = ["spins_to_glm", "glm_to_spins"]


def _check_pair(vector: ArrayLike, matrix: ArrayLike, names: tuple[str, str]) -> tuple[NDArray, NDArray]:
    vec = np.asarray(vector, dtype=np.float64)
    mat = np.asarray(matrix, dtype=np.float64)
    if vec.ndim != 1:
        raise ValidationError(f"{names[0]} must be a 1-D array (N,), got shape {vec.shape}.")
    if mat.ndim != 2 or mat.shape[0] != vec.shape[0]:
        raise ValidationError(f"{names[1]} must be a 2-D array with {vec.shape[0]} rows (one per {names[0]} entry), "
                              f"got shape {mat.shape}.")
    if not (np.all(np.isfinite(vec)) and np.all(np.isfinite(mat))):
        raise ValidationError(f"{names[0]} and {names[1]} must be finite; found NaN or inf.")
    return vec, mat


def spins_to_glm(h: ArrayLike, J: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Spin fields and couplings ``(h, J)`` to logistic-GLM ``(bias, weights)`` on 0/1 spikes.

    Parameters
    ----------
    h : array (N,)
        Fields (nats), spin convention.
    J : array (N, M)
        Couplings, row i = couplings onto neuron i (M = N for the kinetic model).

    Returns
    -------
    bias : (N,) array
        ``b = 2 (h − Σ_j J_ij)``, the log-odds of a spike when every input is silent.
    weights : (N, M) array
        ``w = 4 J``, the change in log-odds per input spike.

    Examples
    --------
    >>> import numpy as np
    >>> bias, weights = spins_to_glm(np.array([0.5]), np.array([[0.25]]))
    >>> float(bias[0]), float(weights[0, 0])
    (0.5, 1.0)
    """
    h_arr, J_arr = _check_pair(h, J, ("h", "J"))
    return 2.0 * (h_arr - J_arr.sum(axis=1)), 4.0 * J_arr


def glm_to_spins(bias: ArrayLike, weights: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Logistic-GLM ``(bias, weights)`` on 0/1 spikes to spin ``(h, J)``; inverse of :func:`spins_to_glm`.

    Returns
    -------
    h : (N,) array
        ``h = bias/2 + Σ_j weights_ij / 4``.
    J : (N, M) array
        ``J = weights / 4``.

    Examples
    --------
    >>> import numpy as np
    >>> h, J = glm_to_spins(np.array([0.5]), np.array([[1.0]]))
    >>> float(h[0]), float(J[0, 0])
    (0.5, 0.25)
    """
    b_arr, w_arr = _check_pair(bias, weights, ("bias", "weights"))
    return b_arr / 2.0 + w_arr.sum(axis=1) / 4.0, w_arr / 4.0
