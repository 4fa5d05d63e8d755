"""Population statistics used to judge a pairwise model against data, and their result containers.

All functions read ±1 spins (B, N) and return float64 numpy arrays:
means ``⟨s_i⟩``, connected correlations ``C_ij = ⟨s_i s_j⟩ − m_i m_j``, the distribution of the
number of active neurons per bin ``P(K)`` (the classic test of pairwise models, Schneidman et al.,
Nature 2006; Tkačik et al. 2014), and connected third-order correlations
``T_ijk = ⟨(s_i − m_i)(s_j − m_j)(s_k − m_k)⟩``, which a pairwise model does not fit and so tests it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor

__all__ = ["SpinStatistics", "spin_statistics", "choose_triplets", "ModelComparison", "EnergyLandscape",
           "HeatCapacityCurve"]


@dataclass(frozen=True)
class SpinStatistics:
    """Means, connected correlations, P(K) and third-order correlations of one set of states."""

    means: NDArray[np.float64]  # (N,)
    covariance: NDArray[np.float64]  # (N, N) connected, diagonal 1 − m²
    count_distribution: NDArray[np.float64]  # (N+1,) P(K active neurons)
    triplets: NDArray[np.int64]  # (T, 3)
    third_order: NDArray[np.float64]  # (T,)
    n_samples: int


def choose_triplets(n: int, max_triplets: int, seed: int | None) -> NDArray[np.int64]:
    """All i<j<k triplets when there are at most ``max_triplets``, else a seeded random subset."""
    total = n * (n - 1) * (n - 2) // 6
    if total <= max_triplets:
        grid = np.array(np.meshgrid(np.arange(n), np.arange(n), np.arange(n), indexing="ij")).reshape(3, -1).T
        return grid[(grid[:, 0] < grid[:, 1]) & (grid[:, 1] < grid[:, 2])].astype(np.int64)
    rng = np.random.default_rng(seed)
    picks = set()
    while len(picks) < max_triplets:
        picks.add(tuple(sorted(rng.choice(n, size=3, replace=False).tolist())))
    return np.array(sorted(picks), dtype=np.int64)


def spin_statistics(chunks, n: int, triplets: NDArray[np.int64]) -> SpinStatistics:
    """Accumulate the statistics over an iterable of ±1 chunks (B_k, N) in two passes' worth of sums.

    Raw moments ⟨s_i⟩, ⟨s_i s_j⟩, ⟨s_i s_j s_k⟩ are accumulated in float64 and centred at the end
    (exact algebra: T_ijk = ⟨ijk⟩ − m_i⟨jk⟩ − m_j⟨ik⟩ − m_k⟨ij⟩ + 2 m_i m_j m_k).
    """
    total = 0
    first = torch.zeros(n, dtype=torch.float64)
    second = torch.zeros((n, n), dtype=torch.float64)
    counts = torch.zeros(n + 1, dtype=torch.float64)
    trip = torch.as_tensor(triplets, dtype=torch.long)
    third = torch.zeros(len(trip), dtype=torch.float64)
    for chunk in chunks:
        block = chunk.to(torch.float64).cpu()
        total += block.shape[0]
        first += block.sum(dim=0)
        second += block.T @ block
        counts += torch.bincount((block > 0).sum(dim=1), minlength=n + 1).to(torch.float64)
        if len(trip):
            third += (block[:, trip[:, 0]] * block[:, trip[:, 1]] * block[:, trip[:, 2]]).sum(dim=0)
    m = (first / total).numpy()
    pair = (second / total).numpy()
    raw3 = (third / total).numpy()
    i, j, k = (triplets[:, 0], triplets[:, 1], triplets[:, 2]) if len(triplets) else ([], [], [])
    connected3 = raw3 - m[i] * pair[j, k] - m[j] * pair[i, k] - m[k] * pair[i, j] + 2 * m[i] * m[j] * m[k]
    return SpinStatistics(m, pair - np.outer(m, m), (counts / total).numpy(), triplets, connected3, total)


@dataclass(frozen=True)
class ModelComparison:
    """Observed (data) against predicted (model) statistics; see :meth:`EquilibriumIsing.compare`.

    ``source`` says how the model statistics were obtained: ``"exact"`` (enumeration) or
    ``"mcmc"`` (``predicted.n_samples`` Gibbs samples). With ``"exact"``, the third-order
    correlations are still MCMC estimates (enumeration gives only means, pairs and P(K)).
    """

    observed: SpinStatistics
    predicted: SpinStatistics
    source: str

    def _pairs(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        upper = np.triu_indices(len(self.observed.means), 1)
        return self.observed.covariance[upper], self.predicted.covariance[upper]

    def summary(self) -> dict[str, float]:
        """RMS errors and correlation coefficients of means, pair covariances and triplets, and the
        Kullback–Leibler divergence ``D(P_obs(K) ‖ P_model(K))`` in nats."""
        obs_c, pred_c = self._pairs()
        p, q = self.observed.count_distribution, self.predicted.count_distribution
        mask = p > 0
        kl = float(np.sum(p[mask] * np.log(p[mask] / np.maximum(q[mask], 1e-300))))
        out = {
            "means_rms": float(np.sqrt(np.mean((self.observed.means - self.predicted.means) ** 2))),
            "covariance_rms": float(np.sqrt(np.mean((obs_c - pred_c) ** 2))),
            "covariance_r": float(np.corrcoef(obs_c, pred_c)[0, 1]) if obs_c.size > 1 else float("nan"),
            "count_kl_nats": kl,
        }
        if self.observed.third_order.size > 1:
            out["third_order_rms"] = float(np.sqrt(np.mean((self.observed.third_order
                                                             - self.predicted.third_order) ** 2)))
            out["third_order_r"] = float(np.corrcoef(self.observed.third_order, self.predicted.third_order)[0, 1])
        return out


@dataclass(frozen=True)
class EnergyLandscape:
    """Local minima reached by zero-temperature descent from observed states.

    Attributes
    ----------
    minima : (M, N) int8
        Distinct local minima (±1), most visited first.
    energies : (M,) float
        Their energies ``E = −h·s − ½ sᵀJs`` (dimensionless, units of k_B T).
    basin_sizes : (M,) int
        Number of observed states that descend to each minimum.
    assignment : (B,) int
        Index into ``minima`` for each observed state.
    state_energies : (B,) float
        Energy of each observed state.
    converged : bool
        Every descent reached a minimum within the flip budget.
    """

    minima: NDArray[np.int8]
    energies: NDArray[np.float64]
    basin_sizes: NDArray[np.int64]
    assignment: NDArray[np.int64]
    state_energies: NDArray[np.float64]
    converged: bool


@dataclass(frozen=True)
class HeatCapacityCurve:
    """Heat capacity per neuron ``c(T) = Var(E) / (N T²)`` with standard errors and split-R̂."""

    temperatures: NDArray[np.float64]
    heat_capacity: NDArray[np.float64]
    standard_error: NDArray[np.float64]
    r_hat: NDArray[np.float64]
    source: str  # "exact" or "mcmc"

    @property
    def peak_temperature(self) -> float:
        """Temperature of the largest heat capacity on the grid (T = 1 is the fitted model)."""
        return float(self.temperatures[int(np.argmax(self.heat_capacity))])


def torch_chunks(spins: Tensor, chunk: int = 65536):
    """Yield row blocks of a tensor."""
    for start in range(0, spins.shape[0], chunk):
        yield spins[start:start + chunk]
