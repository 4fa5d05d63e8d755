"""EP of sequential (multipartite) Glauber dynamics: simulation, ground truth and the MaxEnt bound.

In sequential (asynchronous) Glauber dynamics one spin i is picked per micro-step and flips with
probability ``w_i(s) = (1 - s_i tanh u_i(s)) / 2``, ``u_i = β(h_i + Σ_j J_ij s_j)``. A flip of i has
log-ratio ``ln w_i(s)/w_i(s') = -2 s_i u_i``, so the EP per attempted update is (PHYSICS.md §4.1)

    Σ = Σ_i P_i ⟨-2 s_i u_i⟩_{flips of i},        P_i = P(an attempt flips spin i).

The MaxEnt estimator uses ``g_ij = (x_i,1 - x_i,0) x_j,0 = -2 s_i s_j`` (j ≠ i) on flips of i; the
problem splits into N concave problems, ``Σ_g = Σ_i P_i max_θ [θᵀ⟨g⟩ - ln⟨exp(-θᵀg)⟩]_{flips of i}``.
We solve all N at once with a masked (T x N)·(N x N) matrix product per evaluation (one L-BFGS
over the N(N-1) multipliers, early stopping per spin on its own validation objective), which
turns N small memory-bound problems into a few large BLAS calls.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import minimize

from .._device import resolve_device
from ..errors import ValidationError
from .maxent import split_indices

__all__ = ["MultipartiteResult", "sequential_glauber", "sequential_entropy_production", "maxent_multipartite"]


@dataclass
class MultipartiteResult:
    """EP estimates of sequential dynamics, in nats per attempted single-spin update.

    Attributes
    ----------
    ep : float
        MaxEnt lower bound Σ_g (test set, per-spin ``ln n_test`` caps applied).
    ep_newton : float
        One Newton step from θ = 0 (fitted on train, evaluated on test); a lower bound.
    ep_tur : float
        Multidimensional TUR with the mixture second-moment matrix (direction fitted on train,
        evaluated on test); a lower bound.
    ep_per_spin : ndarray (N,)
        ``P_i`` times spin i's MaxEnt bound.
    flip_probability : ndarray (N,)
        ``P_i``.
    multipliers : ndarray (N, N)
        θ_ij (row i: spin i's problem), zero diagonal; compare with ``β J_ij``.
    details : dict
        Optimiser diagnostics.
    """

    ep: float
    ep_newton: float
    ep_tur: float
    ep_per_spin: NDArray[np.float64]
    flip_probability: NDArray[np.float64]
    multipliers: NDArray[np.float64]
    details: dict[str, Any] = field(default_factory=dict)


def _couplings(J: ArrayLike, h: ArrayLike | None) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    J = np.asarray(J, dtype=np.float64)
    if J.ndim != 2 or J.shape[0] != J.shape[1]:
        raise ValidationError(f"J must be a square (N, N) coupling matrix, got shape {J.shape}.")
    h = np.zeros(J.shape[0]) if h is None else np.asarray(h, dtype=np.float64).reshape(-1)
    if h.shape != (J.shape[0],):
        raise ValidationError(f"h must have shape ({J.shape[0]},) to match J, got {h.shape}.")
    return h, J


def sequential_glauber(J: ArrayLike, n_samples: int, *, beta: float = 1.0, h: ArrayLike | None = None,
                       n_chains: int = 1000, warmup_sweeps: int = 100, thin_sweeps: int = 1, seed: int | None = 0,
                       device: str = "auto") -> tuple[NDArray[np.int8], NDArray[np.bool_]]:
    """Sample sequential Glauber dynamics and one flip attempt of every spin at each sample.

    Parameters
    ----------
    J : array (N, N)
        Couplings (zero diagonal expected), ``J[i, j]`` from j to i.
    n_samples : int
        States to record (rounded up to a multiple of ``n_chains``).
    beta : float
        Inverse temperature.
    h : array (N,), optional
        Fields (default 0).
    n_chains : int
        Independent chains run in parallel, each from a random state.
    warmup_sweeps, thin_sweeps : int
        Sweeps (N micro-steps) discarded before the first sample and between samples.
    seed : int
        Seed of the torch generator.
    device : {"auto", "cpu", "cuda"}

    Returns
    -------
    states : int8 array (T, N)
        ±1 states, chain-major (each chain's samples contiguous).
    flipped : bool array (T, N)
        Whether an update attempt of spin i from ``states[t]`` flips it (drawn independently for
        every i; these attempts are not applied to the chain).

    Examples
    --------
    >>> import numpy as np
    >>> from spikefield.thermo import sequential_glauber
    >>> S, F = sequential_glauber(np.zeros((5, 5)), 100, n_chains=10, seed=0)
    >>> S.shape, F.shape
    ((100, 5), (100, 5))
    """
    h, J = _couplings(J, h)
    if not isinstance(n_samples, int | np.integer) or n_samples < 1:
        raise ValidationError(f"n_samples must be a positive integer, got {n_samples!r}.")
    dev = resolve_device(device)
    gen = torch.Generator(device=dev)
    gen.manual_seed(0 if seed is None else int(seed))
    n = J.shape[0]
    per_chain = -(-int(n_samples) // n_chains)
    J_t = torch.as_tensor(beta * J, device=dev, dtype=torch.float64)
    h_t = torch.as_tensor(beta * h, device=dev, dtype=torch.float64)
    state = torch.randint(0, 2, (n_chains, n), generator=gen, device=dev).to(torch.float64) * 2 - 1
    chain_index = torch.arange(n_chains, device=dev)
    states = torch.empty((n_chains, per_chain, n), dtype=torch.int8, device=dev)
    flipped = torch.empty((n_chains, per_chain, n), dtype=torch.bool, device=dev)

    def micro_steps(count: int) -> None:
        nonlocal state
        picks = torch.randint(0, n, (count, n_chains), generator=gen, device=dev)
        uniforms = torch.rand((count, n_chains), generator=gen, device=dev, dtype=torch.float64)
        for step in range(count):
            i = picks[step]
            field = (J_t[i] * state).sum(dim=1) + h_t[i]
            spin = state[chain_index, i]
            flip = uniforms[step] < 0.5 * (1 - spin * torch.tanh(field))
            state[chain_index, i] = torch.where(flip, -spin, spin)

    micro_steps(warmup_sweeps * n)
    for k in range(per_chain):
        if k:
            micro_steps(thin_sweeps * n)
        fields = state @ J_t.T + h_t
        p_flip = 0.5 * (1 - state * torch.tanh(fields))
        states[:, k] = state.to(torch.int8)
        flipped[:, k] = torch.rand(p_flip.shape, generator=gen, device=dev, dtype=torch.float64) < p_flip
    return (states.reshape(-1, n)[:n_samples].cpu().numpy(), flipped.reshape(-1, n)[:n_samples].cpu().numpy())


def sequential_entropy_production(J: ArrayLike, states: ArrayLike, *, beta: float = 1.0,
                                  h: ArrayLike | None = None) -> tuple[float, NDArray[np.float64]]:
    """Exact EP per attempted update of sequential Glauber dynamics, averaged over sampled states.

    Uses the conditional expectation over the flip (Rao–Blackwellised): with spin i picked with
    probability 1/N, ``Σ = (1/N) Σ_i ⟨w_i(s) (-2 s_i u_i(s))⟩_s``.

    Returns
    -------
    ep : float
        Nats per attempted update.
    per_spin : ndarray (N,)
        Each spin's share.
    """
    h, J = _couplings(J, h)
    spins = np.asarray(states, dtype=np.float64)
    fields = beta * (spins @ J.T + h)
    flip = 0.5 * (1 - spins * np.tanh(fields))
    per_spin = (flip * (-2 * spins * fields)).mean(axis=0) / J.shape[0]
    return float(per_spin.sum()), per_spin


class _MaskedSet:
    """States and flip masks of one split, float copies for the products."""

    def __init__(self, states: NDArray[np.int8], flipped: NDArray[np.bool_], rows: NDArray[np.int64],
                 device: torch.device, dtype: torch.dtype, chunk: int) -> None:
        self.spins = torch.as_tensor(states[rows], device=device).to(dtype)
        self.mask = torch.as_tensor(flipped[rows], device=device)
        self.counts = self.mask.sum(dim=0).to(dtype)
        self.chunk, self.n = chunk, len(rows)

    def chunks(self):
        for a in range(0, self.n, self.chunk):
            b = min(a + self.chunk, self.n)
            yield a, b, self.spins[a:b], self.mask[a:b]

    def scores(self, theta: torch.Tensor) -> torch.Tensor:
        """``a_ti = -2 s_ti Σ_j θ_ij s_tj`` (T x N); only entries with a flip are used."""
        return torch.cat([-2 * s * (s @ theta.T) for _, _, s, _ in self.chunks()])

    def objectives(self, scores: torch.Tensor) -> torch.Tensor:
        """Per-spin ``mean_F a - ln mean_F exp(-a)`` over flips (0 for spins without flips)."""
        counts = self.counts.clamp(min=1)
        mean = torch.where(self.mask, scores, 0).sum(0) / counts
        log_mean = torch.logsumexp(torch.where(self.mask, -scores, -torch.inf), dim=0) - counts.log()
        return torch.where(self.counts > 0, mean - log_mean, 0)


def maxent_multipartite(states: ArrayLike, flipped: ArrayLike, *, split: str = "contiguous",
                        fractions: tuple[float, float, float] = (0.7, 0.2, 0.1), n_chunks: int = 10,
                        max_iter: int = 1000, patience: int = 10, tol: float = 1e-12, min_flips: int = 100,
                        baselines: bool = True, ridge: float = 1e-4, seed: int | None = 0, device: str = "auto",
                        dtype: torch.dtype | None = None, chunk_bins: int = 65536) -> MultipartiteResult:
    """MaxEnt, one-Newton-step and TUR lower bounds on the EP of sequential dynamics.

    Parameters
    ----------
    states : array (T, N) of ±1
        Sampled states.
    flipped : bool array (T, N)
        Outcome of an update attempt of each spin from each state (see :func:`sequential_glauber`).
    split, fractions, n_chunks, seed
        Train / validation / test division of the samples (contiguous blocks by default).
    max_iter, patience, tol
        L-BFGS iterations, per-spin validation patience, optimiser tolerance.
    min_flips : int
        Spins with fewer training flips are left out (EP share 0, listed in ``details``).
    baselines : bool
        Also compute the one-Newton-step and TUR bounds (per-spin (N-1)² covariances).
    ridge : float
        Added to covariance diagonals of the baselines (as in the reference, 1e-4).
    device, dtype, chunk_bins
        Compute placement and precision (float64 on CPU by default), rows per product.

    Returns
    -------
    MultipartiteResult
        Nats per attempted update.

    Examples
    --------
    >>> import numpy as np
    >>> from spikefield.thermo import sequential_glauber, maxent_multipartite
    >>> rng = np.random.default_rng(0); J = rng.normal(size=(8, 8)) / 2; np.fill_diagonal(J, 0)
    >>> S, F = sequential_glauber(J, 20000, n_chains=100, seed=1)
    >>> maxent_multipartite(S, F).ep > 0
    True
    """
    spins = np.asarray(states)
    flips = np.asarray(flipped, dtype=bool)
    if spins.ndim != 2 or flips.shape != spins.shape:
        raise ValidationError(f"states and flipped must be (T, N) arrays of the same shape, got {spins.shape} "
                              f"and {flips.shape}.")
    if not np.isin(spins, (-1, 1)).all():
        raise ValidationError("states must hold only -1 and +1 spins.")
    dev = resolve_device(device)
    dtype = dtype or (torch.float64 if dev.type == "cpu" else torch.float32)
    spins = spins.astype(np.int8)
    n_samples, n = spins.shape
    sets = [_MaskedSet(spins, flips, rows, dev, dtype, chunk_bins)
            for rows in split_indices(n_samples, fractions, split, n_chunks, seed)]
    train, validation, test = sets
    flip_probability = flips.sum(0) / (n_samples * n)
    active = (train.counts >= min_flips) & (validation.counts > 0) & (test.counts > 0)
    off_diagonal = ~torch.eye(n, dtype=torch.bool, device=dev)
    first = sum((-2 * s * m).T @ s for _, _, s, m in train.chunks()) / train.counts.clamp(min=1)[:, None]

    def unpack(vector: NDArray[np.float64]) -> torch.Tensor:
        theta = torch.zeros((n, n), dtype=dtype, device=dev)
        theta[off_diagonal] = torch.as_tensor(vector, dtype=dtype, device=dev)
        return theta * active[:, None]

    def value_and_gradient(vector: NDArray[np.float64]) -> tuple[float, NDArray[np.float64]]:
        theta = unpack(vector)
        scores = train.scores(theta)
        objectives = train.objectives(scores)
        weights = torch.softmax(torch.where(train.mask, -scores, -torch.inf), dim=0).nan_to_num(0.0)
        gradient = first + sum((-2 * s * weights[a:b]).T @ s for a, b, s, _ in train.chunks())
        gradient = gradient * active[:, None] / n
        return -float(objectives.sum()) / n, -gradient[off_diagonal].cpu().numpy().astype(np.float64)

    best_val = torch.zeros(n, dtype=dtype, device=dev)
    best_theta = torch.zeros((n, n), dtype=dtype, device=dev)
    state = {"since": 0, "n_iter": 0, "stopped_by": None}

    def callback(intermediate_result) -> None:
        state["n_iter"] += 1
        theta = unpack(intermediate_result.x)
        val = validation.objectives(validation.scores(theta))
        improved = val > best_val
        best_val[improved] = val[improved]
        best_theta[improved] = theta[improved]
        state["since"] = 0 if bool(improved.any()) else state["since"] + 1
        if state["since"] >= patience:
            state["stopped_by"] = "validation"
            raise StopIteration

    result = minimize(value_and_gradient, np.zeros(n * (n - 1)), jac=True, method="L-BFGS-B", callback=callback,
                      options={"maxiter": max_iter, "ftol": tol, "gtol": 1e-10, "maxcor": 30})
    if state["stopped_by"] is None:
        state["stopped_by"] = "converged" if result.success else "max_iter"
    test_obj = test.objectives(test.scores(best_theta))
    caps = test.counts.clamp(min=2).log()
    capped = (test_obj > caps) & active
    per_spin = (torch.minimum(test_obj, caps) * active).cpu().numpy().astype(np.float64) * flip_probability
    newton = tur = float("nan")
    if baselines:
        newton, tur = _baselines(train, test, active, flip_probability, ridge)
    return MultipartiteResult(
        ep=float(per_spin.sum()), ep_newton=newton, ep_tur=tur, ep_per_spin=per_spin,
        flip_probability=flip_probability, multipliers=best_theta.cpu().numpy().astype(np.float64),
        details={"n_iter": state["n_iter"], "stopped_by": state["stopped_by"],
                 "converged": state["stopped_by"] in ("converged", "validation"),
                 "optimizer_message": str(result.message), "capped_spins": np.flatnonzero(capped.cpu().numpy()),
                 "excluded_spins": np.flatnonzero(~active.cpu().numpy()), "split": split,
                 "dtype": str(dtype).replace("torch.", "")})


def _baselines(train: _MaskedSet, test: _MaskedSet, active: torch.Tensor, flip_probability: NDArray[np.float64],
               ridge: float) -> tuple[float, float]:
    """Per-spin one-Newton-step and TUR bounds from (N-1)-dimensional covariances of g on flips."""
    n = train.spins.shape[1]
    newton = tur = 0.0
    for i in np.flatnonzero(active.cpu().numpy()):
        others = torch.arange(n, device=train.spins.device) != i
        g_train = -2 * train.spins[train.mask[:, i]][:, others] * train.spins[train.mask[:, i]][:, [i]]
        g_test = -2 * test.spins[test.mask[:, i]][:, others] * test.spins[test.mask[:, i]][:, [i]]
        mean = g_train.mean(0)
        second = g_train.T @ g_train / len(g_train)
        eye = ridge * torch.eye(n - 1, dtype=second.dtype, device=second.device)
        # One Newton step from θ = 0: gradient 2⟨g⟩, Hessian -Cov(g) (PHYSICS.md §4.2).
        theta = torch.linalg.solve(second - torch.outer(mean, mean) + eye, 2 * mean)
        a = g_test @ theta
        value = float(a.mean() - (torch.logsumexp(-a, 0) - np.log(len(a))))
        newton += flip_probability[i] * min(value, float(np.log(len(a))))
        # TUR along the direction that maximises it on train, evaluated on held-out flips.
        direction = torch.linalg.solve(second + eye, mean)
        phi = g_test @ direction
        tur += flip_probability[i] * float(torch.log1p(2 * phi.mean() ** 2 / (phi**2).mean()))
    return newton, tur
