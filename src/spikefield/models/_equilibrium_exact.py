"""Exact enumeration of the pairwise model ``P(s) = Z⁻¹ exp(h·s + ½ sᵀJs)`` for N ≤ 20.

The 2^N states are visited in chunks (memory O(chunk·N + N²)), so N = 20 (10^6 states) fits in
a few tens of megabytes. Fitting maximises the exact mean log-likelihood
``L(h, J) = h·⟨s⟩_data + ½ Σ_ij J_ij ⟨s_i s_j⟩_data − ln Z`` (concave) with scipy's L-BFGS; its
gradient is the moment mismatch ``⟨s⟩_data − ⟨s⟩_model`` and ``⟨ss⟩_data − ⟨ss⟩_model``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import numpy as np
import scipy.optimize
import torch
from torch import Tensor

__all__ = ["MAX_EXACT_NEURONS", "states", "ExactMoments", "exact_moments", "fit_exact", "energies"]

MAX_EXACT_NEURONS = 20
_CHUNK_STATES = 1 << 16


def states(n: int, start: int = 0, stop: int | None = None, dtype: torch.dtype = torch.float64,
           device: torch.device | str = "cpu") -> Tensor:
    """±1 states number ``start..stop`` of all 2^n (bit j of the index = spin j up)."""
    stop = 1 << n if stop is None else stop
    index = torch.arange(start, stop, device=device)
    bits = (index[:, None] >> torch.arange(n, device=device)) & 1
    return (2 * bits - 1).to(dtype)


def _chunks(n: int, dtype: torch.dtype, device: torch.device | str) -> Iterator[Tensor]:
    for start in range(0, 1 << n, _CHUNK_STATES):
        yield states(n, start, min(start + _CHUNK_STATES, 1 << n), dtype, device)


def energies(spins: Tensor, fields: Tensor, couplings: Tensor) -> Tensor:
    """``E(s) = −h·s − ½ sᵀJs`` per row of ``spins`` (J symmetric, zero diagonal)."""
    return -(spins @ fields) - 0.5 * ((spins @ couplings) * spins).sum(dim=1)


class ExactMoments(NamedTuple):
    """Model statistics by enumeration (float64)."""

    log_partition: float
    means: Tensor  # (N,) ⟨s_i⟩
    second: Tensor  # (N, N) ⟨s_i s_j⟩ (diagonal 1)
    count_distribution: Tensor  # (N+1,) P(K = number of +1 spins)
    mean_energy: float
    energy_variance: float


def exact_moments(fields: Tensor, couplings: Tensor, beta: float = 1.0) -> ExactMoments:
    """Statistics of ``P_β(s) ∝ exp(−β E(s))`` by enumeration, numerically stable (log-sum-exp).

    Two passes over the states: the first finds ln Z, the second accumulates moments with
    normalised weights.
    """
    n = fields.numel()
    dtype, device = fields.dtype, fields.device
    log_z = torch.tensor(-torch.inf, dtype=dtype, device=device)
    for chunk in _chunks(n, dtype, device):
        log_z = torch.logaddexp(log_z, torch.logsumexp(-beta * energies(chunk, fields, couplings), dim=0))
    means = torch.zeros(n, dtype=dtype, device=device)
    second = torch.zeros((n, n), dtype=dtype, device=device)
    counts = torch.zeros(n + 1, dtype=dtype, device=device)
    energy_sum = torch.zeros((), dtype=dtype, device=device)
    energy_sq = torch.zeros((), dtype=dtype, device=device)
    for chunk in _chunks(n, dtype, device):
        energy = energies(chunk, fields, couplings)
        weight = torch.exp(-beta * energy - log_z)
        means += weight @ chunk
        second += (chunk * weight[:, None]).T @ chunk
        k = ((chunk > 0).sum(dim=1)).long()
        counts.index_add_(0, k, weight)
        energy_sum += weight @ energy
        energy_sq += weight @ energy ** 2
    mean_energy = float(energy_sum)
    return ExactMoments(float(log_z), means, second, counts, mean_energy, float(energy_sq) - mean_energy ** 2)


class ExactFit(NamedTuple):
    fields: Tensor
    couplings: Tensor
    n_iter: int
    converged: bool
    max_gradient: float


def fit_exact(data_means: Tensor, data_second: Tensor, l2: float = 0.0, max_iter: int = 500,
              tol: float = 1e-8) -> ExactFit:
    """Maximum likelihood by enumeration: match ⟨s⟩ and ⟨s_i s_j⟩ exactly (up to the ridge).

    Minimises ``−L + l2/2 Σ_{i<j} J_ij²`` over ``h`` and the upper triangle of J with
    scipy's L-BFGS-B (float64), starting from the independent model.
    """
    n = data_means.numel()
    upper = torch.triu_indices(n, n, 1)
    data_m = data_means.double().cpu()
    data_c = data_second.double().cpu()

    def unpack(theta: np.ndarray) -> tuple[Tensor, Tensor]:
        t = torch.from_numpy(theta)
        couplings = torch.zeros((n, n), dtype=torch.float64)
        couplings[upper[0], upper[1]] = t[n:]
        return t[:n], couplings + couplings.T

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        fields, couplings = unpack(theta)
        model = exact_moments(fields, couplings)
        value = (model.log_partition - float(fields @ data_m) - 0.5 * float((couplings * data_c).sum())
                 + 0.25 * l2 * float((couplings ** 2).sum()))
        grad_h = model.means - data_m
        # J_ij = J_ji share one parameter: ½ sᵀJs contributes s_i s_j once per pair.
        grad_j = (model.second - data_c + l2 * couplings)[upper[0], upper[1]]
        return value, torch.cat([grad_h, grad_j]).numpy()

    theta0 = np.zeros(n + upper.shape[1])
    theta0[:n] = np.arctanh(np.clip(data_m.numpy(), -1 + 1e-9, 1 - 1e-9))
    result = scipy.optimize.minimize(objective, theta0, jac=True, method="L-BFGS-B",
                                     options={"maxiter": max_iter, "gtol": tol, "ftol": 1e-15})
    fields, couplings = unpack(result.x)
    gradient = float(np.abs(result.jac).max())
    return ExactFit(fields, couplings, int(result.nit), bool(gradient <= max(tol, 1e-6)), gradient)
