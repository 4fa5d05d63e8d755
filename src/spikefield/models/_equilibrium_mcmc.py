"""Monte Carlo kernels for the pairwise model ``P_β(s) ∝ exp(−β E(s))``, ``E = −h·s − ½ sᵀJs``.

* :func:`gibbs_sweeps` — systematic-scan heat-bath (Gibbs) updates of many chains at once; each
  chain may have its own inverse temperature, so a whole temperature scan is one batch. One code
  path for CPU and CUDA: the per-spin step is a (chains × N) product.
* :func:`boltzmann_learning` — persistent-chain moment matching (Ackley, Hinton & Sejnowski
  1985): ``Δh = η(⟨s⟩_data − ⟨s⟩_model)``, ``ΔJ = η(⟨ss⟩_data − ⟨ss⟩_model)``, Polyak-averaged.
* :func:`split_r_hat` — the split-R̂ convergence diagnostic (Gelman et al., BDA3 §11.4).
* :func:`heat_capacity` — ``c(T) = Var(E) / (N T²)`` per neuron by MCMC, with error bars from
  the spread across independent chains (Tkačik et al., PNAS 2015).
* :func:`descend` — zero-temperature steepest single-spin-flip descent to local energy minima.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from ._equilibrium_exact import energies

__all__ = ["gibbs_sweeps", "BoltzmannFit", "boltzmann_learning", "split_r_hat", "heat_capacity", "descend",
           "random_spins"]


def random_spins(n_chains: int, n: int, generator: torch.Generator, dtype: torch.dtype,
                 device: torch.device) -> Tensor:
    """Independent uniform ±1 starting states (C, N)."""
    bits = torch.randint(0, 2, (n_chains, n), generator=generator, device=device)
    return (2 * bits - 1).to(dtype)


def gibbs_sweeps(state: Tensor, fields: Tensor, couplings: Tensor, n_sweeps: int, generator: torch.Generator,
                 beta: Tensor | float = 1.0, record_energy: bool = False,
                 record_moments: bool = False) -> tuple[Tensor, Tensor | None, tuple[Tensor, Tensor] | None]:
    """Run ``n_sweeps`` heat-bath sweeps on every chain (rows of ``state``, updated in place).

    Spin i flips to +1 with probability ``σ(2β ũ_i)``, ``ũ_i = h_i + Σ_j J_ij s_j``.

    Returns
    -------
    state : Tensor (C, N)
    energy : Tensor (n_sweeps, C) or None
        ``E(s)`` (at β = 1 units) after every sweep when ``record_energy``.
    moments : (Tensor (N,), Tensor (N, N)) or None
        ``⟨s⟩`` and ``⟨s sᵀ⟩`` averaged over chains and sweeps when ``record_moments``.
    """
    n_chains, n = state.shape
    beta_column = torch.as_tensor(beta, dtype=state.dtype, device=state.device).reshape(-1)
    columns = couplings.T.contiguous()
    trace = torch.empty((n_sweeps, n_chains), dtype=state.dtype, device=state.device) if record_energy else None
    mean = torch.zeros(n, dtype=torch.float64, device=state.device) if record_moments else None
    second = torch.zeros((n, n), dtype=torch.float64, device=state.device) if record_moments else None
    for sweep in range(n_sweeps):
        thresholds = torch.rand((n, n_chains), generator=generator, device=state.device, dtype=state.dtype)
        for i in range(n):
            local = state @ columns[i] + fields[i]
            up = thresholds[i] < torch.sigmoid(2.0 * beta_column * local)
            state[:, i] = up.to(state.dtype) * 2 - 1
        if record_energy:
            trace[sweep] = energies(state, fields, couplings)
        if record_moments:
            mean += state.sum(dim=0, dtype=torch.float64)
            second += (state.T @ state).to(torch.float64)
    moments = None
    if record_moments:
        total = n_sweeps * n_chains
        moments = (mean / total, second / total)
    return state, trace, moments


def split_r_hat(trace: np.ndarray) -> float:
    """Split-R̂ of a (draws, chains) array; values near 1 (< 1.05) indicate mixed chains."""
    draws = trace.shape[0] // 2
    if draws < 2:
        return float("nan")
    halves = np.concatenate([trace[:draws], trace[draws:2 * draws]], axis=1)
    within = halves.var(axis=0, ddof=1).mean()
    between = halves.mean(axis=0).var(ddof=1)
    if within <= 0:
        return float("nan") if between <= 0 else float("inf")
    pooled = (draws - 1) / draws * within + between
    return float(np.sqrt(pooled / within))


class BoltzmannFit(NamedTuple):
    fields: Tensor
    couplings: Tensor
    n_iter: int
    converged: bool
    moment_error: float  # RMS mismatch of ⟨s⟩ and ⟨s_i s_j⟩ in the final check
    r_hat: float  # split-R̂ of the energy in the final check
    history: list[float]  # RMS moment mismatch per iteration (MCMC estimate)


def boltzmann_learning(data_means: Tensor, data_second: Tensor, init_fields: Tensor, init_couplings: Tensor, *,
                       n_chains: int, sweeps_per_iter: int, learning_rate: float, max_iter: int, tol: float,
                       l2: float, generator: torch.Generator) -> BoltzmannFit:
    """Persistent-chain Boltzmann learning; returns Polyak averages of the second half of iterates.

    Convergence (``converged``) requires, in a final run of ``4 · sweeps_per_iter`` sweeps at the
    averaged parameters, an RMS moment mismatch at most ``tol`` and a split-R̂ of the energy
    below 1.1.
    """
    n = data_means.numel()
    fields, couplings = init_fields.clone(), init_couplings.clone()
    state = random_spins(n_chains, n, generator, fields.dtype, fields.device)
    state, _, _ = gibbs_sweeps(state, fields, couplings, 10 * sweeps_per_iter, generator)
    sum_fields, sum_couplings, n_averaged = torch.zeros_like(fields), torch.zeros_like(couplings), 0
    history: list[float] = []
    off = ~torch.eye(n, dtype=torch.bool, device=fields.device)
    for iteration in range(max_iter):
        state, _, moments = gibbs_sweeps(state, fields, couplings, sweeps_per_iter, generator, record_moments=True)
        model_means, model_second = moments
        grad_h = data_means - model_means
        grad_j = (data_second - model_second - l2 * couplings) * off
        fields = fields + learning_rate * grad_h
        couplings = couplings + learning_rate * grad_j
        history.append(float(torch.sqrt((grad_h.square().sum() + grad_j.square().sum() / 2)
                                        / (n + n * (n - 1) / 2))))
        if iteration >= max_iter // 2:
            sum_fields += fields
            sum_couplings += couplings
            n_averaged += 1
    if n_averaged:
        fields, couplings = sum_fields / n_averaged, sum_couplings / n_averaged
    state, trace, moments = gibbs_sweeps(state, fields, couplings, 4 * sweeps_per_iter, generator,
                                         record_energy=True, record_moments=True)
    grad_h, grad_j = data_means - moments[0], (data_second - moments[1]) * off
    error = float(torch.sqrt((grad_h.square().sum() + grad_j.square().sum() / 2) / (n + n * (n - 1) / 2)))
    r_hat = split_r_hat(trace.double().cpu().numpy())
    return BoltzmannFit(fields, couplings, max_iter, bool(error <= tol and r_hat < 1.1), error, r_hat, history)


class HeatCapacity(NamedTuple):
    temperatures: np.ndarray
    heat_capacity: np.ndarray  # per neuron, Var(E) / (N T²)
    standard_error: np.ndarray
    r_hat: np.ndarray


def heat_capacity(fields: Tensor, couplings: Tensor, temperatures: np.ndarray, *, n_chains: int, n_sweeps: int,
                  burn_in: int, generator: torch.Generator) -> HeatCapacity:
    """MCMC heat capacity per neuron at each temperature (all temperatures in one batch).

    Each temperature gets ``n_chains`` independent chains; per chain, ``Var(E)`` over the
    ``n_sweeps`` post-burn-in sweeps gives one estimate; the reported value pools all chains and
    the error bar is the standard error across chains.
    """
    n = fields.numel()
    n_temps = len(temperatures)
    beta = torch.as_tensor(1.0 / np.repeat(temperatures, n_chains), dtype=fields.dtype, device=fields.device)
    state = random_spins(n_temps * n_chains, n, generator, fields.dtype, fields.device)
    state, _, _ = gibbs_sweeps(state, fields, couplings, burn_in, generator, beta=beta)
    _, trace, _ = gibbs_sweeps(state, fields, couplings, n_sweeps, generator, beta=beta, record_energy=True)
    trace = trace.double().cpu().numpy().reshape(n_sweeps, n_temps, n_chains)
    t2 = np.asarray(temperatures, dtype=np.float64) ** 2
    pooled = trace.reshape(n_sweeps, n_temps, n_chains).transpose(1, 0, 2).reshape(n_temps, -1).var(axis=1, ddof=1)
    per_chain = trace.var(axis=0, ddof=1) / (n * t2[:, None])  # (temps, chains)
    stderr = per_chain.std(axis=1, ddof=1) / np.sqrt(n_chains)
    r_hats = np.array([split_r_hat(trace[:, k, :]) for k in range(n_temps)])
    return HeatCapacity(np.asarray(temperatures, dtype=np.float64), pooled / (n * t2), stderr, r_hats)


def descend(spins: Tensor, fields: Tensor, couplings: Tensor, max_flips: int) -> tuple[Tensor, bool]:
    """Zero-temperature steepest descent: flip the spin that lowers E most until none does.

    Each flip strictly lowers the energy, so every state ends in a local minimum (a state no
    single flip improves); ``max_flips`` only guards against pathological inputs. Returns the
    minima and whether every state reached one.
    """
    state = spins.clone()
    local = torch.addmm(fields, state, couplings)  # ũ (J symmetric)
    rows = torch.arange(state.shape[0], device=state.device)
    for _ in range(max_flips):
        gain = state * local  # ΔE of flipping i is 2 s_i ũ_i: negative = downhill
        worst, index = gain.min(dim=1)
        active = worst < 0
        if not bool(active.any()):
            return state, True
        r, i = rows[active], index[active]
        state[r, i] = -state[r, i]
        local[r] += 2.0 * state[r, i][:, None] * couplings[i]
    return state, False
