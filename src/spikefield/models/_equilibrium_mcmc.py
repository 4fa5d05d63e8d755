"""Monte Carlo kernels for the pairwise model ``P_β(s) ∝ exp(−β E(s))``, ``E = −h·s − ½ sᵀJs``.

* :func:`gibbs_sweeps` — systematic-scan heat-bath (Gibbs) updates of many chains at once; each
  chain may have its own inverse temperature, so a whole temperature scan is one batch. One code
  path for CPU and CUDA: the per-spin step is a (chains × N) product.
* :func:`boltzmann_learning` — persistent-chain moment matching (Ackley, Hinton & Sejnowski
  1985): ``Δh = η(⟨s⟩_data − ⟨s⟩_model)``, ``ΔJ = η(⟨ss⟩_data − ⟨ss⟩_model)``, taken in centred
  coordinates, with a step η set from :func:`centred_fisher_max_eigenvalue`, Polyak-averaged and
  checked by :func:`final_check`.
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

__all__ = ["gibbs_sweeps", "BoltzmannFit", "boltzmann_learning", "centred_fisher_max_eigenvalue", "final_check",
           "split_r_hat", "heat_capacity", "descend", "random_spins"]


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
    fields: Tensor  # float64
    couplings: Tensor  # float64
    n_iter: int
    converged: bool
    moment_error: float  # RMS mismatch of ⟨s⟩ and ⟨s_i s_j⟩ in the final check
    moment_noise: float  # its Monte Carlo standard error (RMS), from independent groups of chains
    tolerance: float  # the bound moment_error was held to
    r_hat: float  # split-R̂ of the energy in the final check
    history: list[float]  # RMS moment mismatch per iteration (MCMC estimate)


class MomentCheck(NamedTuple):
    state: Tensor
    moment_error: float
    moment_noise: float
    r_hat: float


def _rms_moments(delta_means: Tensor, delta_second: Tensor) -> Tensor:
    """RMS over the N fields and N(N−1)/2 pairs (``delta_second`` symmetric, zero diagonal, ``(..., N, N)``)."""
    n = delta_means.shape[-1]
    total = delta_means.square().sum(dim=-1) + delta_second.square().sum(dim=(-2, -1)) / 2
    return torch.sqrt(total / (n + n * (n - 1) / 2))


def centred_fisher_max_eigenvalue(spins: Tensor, means: Tensor, generator: torch.Generator,
                                  n_iter: int = 30) -> float:
    """Largest eigenvalue of the covariance of the centred statistics ``(x_i, x_i x_j)_{i<j}``, ``x = s − m``.

    That covariance is the Hessian of the mean log-likelihood in the centred parameters that
    :func:`boltzmann_learning` steps in, so gradient ascent with step η is stable only for
    η < 2/λ_max. Power iteration on the (B, N) ``spins`` (a few thousand bins suffice) costs
    O(B N²) per iteration; the Hessian itself (N⁴/4 entries) is never formed.
    """
    n = spins.shape[1]
    off = ~torch.eye(n, dtype=torch.bool, device=spins.device)
    centred = spins - means
    field_dir = torch.randn(n, generator=generator, device=spins.device, dtype=spins.dtype)
    pair_dir = torch.randn((n, n), generator=generator, device=spins.device, dtype=spins.dtype)
    pair_dir = (pair_dir + pair_dir.T) * off
    eigenvalue = 0.0
    for _ in range(n_iter):
        norm = _rms_moments(field_dir, pair_dir)
        field_dir, pair_dir = field_dir / norm, pair_dir / norm
        projection = centred @ field_dir + 0.5 * ((centred @ pair_dir) * centred).sum(dim=1)
        projection = projection - projection.mean()
        field_dir = centred.T @ projection / len(spins)
        pair_dir = ((centred.T * projection) @ centred / len(spins)) * off
        eigenvalue = float(_rms_moments(field_dir, pair_dir))  # ‖F v‖ for a unit v
    return eigenvalue


def _centred_step(grad_h: Tensor, grad_j: Tensor, means: Tensor) -> tuple[Tensor, Tensor]:
    """Gradient ascent in the centred parametrisation, mapped back to ``(Δh, ΔJ)``.

    Writing the exponent as ``b·(s − m) + ½ (s − m)ᵀJ(s − m)`` (m = data means; h = b − Jm) leaves the
    optimum unchanged but removes from the Hessian the modes that the means ``m_i m_j`` of the raw
    statistics ``s_i s_j`` create (Montavon & Müller 2012, the centring trick). Measured on the SK
    data of docs/equilibrium_ising.md, λ_max drops from 53 to 16 at N = 50 (condition number
    2700 → 450) and from 116 to 52 at N = 100, so the step can be 2–3× larger; at N = 20 it rises
    from 20 to 31 (one collective mode; condition number 560 → 940), where 2000 updates still
    reach the maximum-likelihood accuracy within 12 %.
    """
    grad_b = grad_h
    grad_jc = grad_j - torch.outer(means, grad_h) - torch.outer(grad_h, means)
    grad_jc.fill_diagonal_(0.0)
    return grad_b - grad_jc @ means, grad_jc


def final_check(state: Tensor, fields: Tensor, couplings: Tensor, data_means: Tensor, data_second: Tensor, *,
                n_sweeps: int, burn_in: int, generator: torch.Generator, n_groups: int = 20) -> MomentCheck:
    """Sample at fixed parameters from ``state`` and compare the model's moments with the data's.

    The chains are split into ``n_groups`` groups; groups are independent, so the spread of their
    moments gives the Monte Carlo standard error of each moment, autocorrelation included (a
    formula in ``n_chains·n_sweeps`` would assume independent sweeps: measured at N = 100 the
    error is 1.6× that). ``moment_noise`` is the RMS of those standard errors, NaN with fewer than two groups.
    """
    n_chains, n = state.shape
    state, _, _ = gibbs_sweeps(state, fields, couplings, burn_in, generator)
    groups = torch.tensor_split(torch.arange(n_chains, device=state.device), min(n_groups, n_chains))
    sizes = torch.tensor([len(g) for g in groups], dtype=torch.float64, device=state.device)
    sum_means = torch.zeros((len(groups), n), dtype=torch.float64, device=state.device)
    sum_second = torch.zeros((len(groups), n, n), dtype=torch.float64, device=state.device)
    trace = torch.empty((n_sweeps, n_chains), dtype=torch.float64, device=state.device)
    for sweep in range(n_sweeps):
        state, energy, _ = gibbs_sweeps(state, fields, couplings, 1, generator, record_energy=True)
        trace[sweep] = energy[0]
        spins = state.to(torch.float64)
        for k, index in enumerate(groups):
            sum_means[k] += spins[index].sum(dim=0)
            sum_second[k] += spins[index].T @ spins[index]
    group_means = sum_means / (n_sweeps * sizes[:, None])
    group_second = sum_second / (n_sweeps * sizes[:, None, None])
    weights = sizes / n_chains
    model_means = (weights[:, None] * group_means).sum(dim=0)
    model_second = (weights[:, None, None] * group_second).sum(dim=0)
    off = ~torch.eye(n, dtype=torch.bool, device=state.device)
    error = float(_rms_moments(data_means - model_means, (data_second - model_second) * off))
    noise = float("nan")
    if len(groups) > 1:
        # Standard error of a weighted mean of independent group estimates (clustered SE).
        scale = len(groups) / (len(groups) - 1)
        var_means = scale * (weights[:, None] ** 2 * (group_means - model_means).square()).sum(dim=0)
        var_second = scale * (weights[:, None, None] ** 2 * (group_second - model_second).square()).sum(dim=0)
        noise = float(_rms_moments(var_means.sqrt(), var_second.sqrt() * off))
    return MomentCheck(state, error, noise, split_r_hat(trace.cpu().numpy()))


def _step_decay(iteration: int, half: int, max_iter: int, final: float = 0.1) -> float:
    """1 in the first half; then ``1/(1 + (1/final − 1)·progress)``, down to ``final`` at the end.

    A constant step leaves the iterates fluctuating by O(η·noise) about the optimum, and the
    Polyak average of a fluctuating iterate is biased where the moments are non-linear in the
    parameters: on sparse data (hc-linear-track, 19 units active in 0.2–8 % of 20 ms bins) the
    averaged fit kept a true moment residual of 0.0023 (3× its Monte Carlo error) after 2000 and
    after 8000 updates, and 0.0007 with 4× the chains; with this decay, 0.0004.
    """
    if iteration < half:
        return 1.0
    progress = (iteration - half) / max(max_iter - half - 1, 1)
    return 1.0 / (1.0 + (1.0 / final - 1.0) * progress)


def boltzmann_learning(data_means: Tensor, data_second: Tensor, init_fields: Tensor, init_couplings: Tensor, *,
                       n_chains: int, sweeps_per_iter: int, learning_rate: float, max_iter: int,
                       tol: float | None, l2: float, generator: torch.Generator, dtype: torch.dtype,
                       check_sweeps: int = 200, check_burn_in: int = 200) -> BoltzmannFit:
    """Persistent-chain Boltzmann learning in centred coordinates; returns Polyak averages.

    Each iteration runs ``sweeps_per_iter`` Gibbs sweeps of ``n_chains`` persistent chains and
    takes one step ``learning_rate · (data − model moments)`` (weight decay ``l2`` on J) in the
    centred parametrisation (:func:`_centred_step`). Parameters are float64 (the chains run in
    ``dtype``); the returned ones average the iterates of the second half (Polyak & Juditsky
    1992), which cancels most of the Monte Carlo noise of single steps.

    Convergence (``converged``) requires, in :func:`final_check` (``check_sweeps`` sweeps at the
    averaged parameters of ``n_chains`` fresh chains, after ``check_burn_in`` sweeps from random
    states), an RMS moment mismatch (against ``⟨ss⟩_data − l2·J`` for the pairs) at most ``tol``
    — by default (``None``) twice its measured Monte Carlo standard error — and a split-R̂ of the
    energy below 1.1. Fresh chains, so that the check does not reuse the chains whose moments
    drove the updates, and R̂ compares chains from dispersed starts.
    """
    n = data_means.numel()
    off = ~torch.eye(n, dtype=torch.bool, device=data_means.device)
    fields, couplings = init_fields.double().clone(), init_couplings.double().clone()
    state = random_spins(n_chains, n, generator, dtype, fields.device)
    state, _, _ = gibbs_sweeps(state, fields.to(dtype), couplings.to(dtype), 50, generator)
    sum_fields, sum_couplings, n_averaged = torch.zeros_like(fields), torch.zeros_like(couplings), 0
    history: list[float] = []
    half = max_iter // 2
    for iteration in range(max_iter):
        step = learning_rate * _step_decay(iteration, half, max_iter)
        state, _, (model_means, model_second) = gibbs_sweeps(state, fields.to(dtype), couplings.to(dtype),
                                                             sweeps_per_iter, generator, record_moments=True)
        grad_h = data_means - model_means
        grad_j = (data_second - model_second) * off
        history.append(float(_rms_moments(grad_h, grad_j)))
        step_h, step_j = _centred_step(grad_h, grad_j - l2 * couplings * off, data_means)
        fields = fields + step * step_h
        couplings = couplings + step * step_j
        if iteration >= half:
            sum_fields += fields
            sum_couplings += couplings
            n_averaged += 1
    fields, couplings = sum_fields / n_averaged, sum_couplings / n_averaged
    fresh = random_spins(n_chains, n, generator, dtype, fields.device)
    # With weight decay the fixed point is ⟨ss⟩_model = ⟨ss⟩_data − l2·J, not the data's moments.
    target_second = data_second - l2 * couplings * off
    check = final_check(fresh, fields.to(dtype), couplings.to(dtype), data_means, target_second,
                        n_sweeps=check_sweeps, burn_in=check_burn_in, generator=generator)
    tolerance = 2.0 * check.moment_noise if tol is None else float(tol)
    converged = bool(check.moment_error <= tolerance and check.r_hat < 1.1)
    return BoltzmannFit(fields, couplings, max_iter, converged, check.moment_error, check.moment_noise, tolerance,
                        check.r_hat, history)


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
