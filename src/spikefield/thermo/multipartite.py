"""EP of sequential (multipartite) Glauber dynamics: simulation, ground truth and the MaxEnt bound.

In sequential (asynchronous) Glauber dynamics one spin i is picked per micro-step and flips with
probability ``w_i(s) = (1 - s_i tanh u_i(s)) / 2``, ``u_i = β(h_i + Σ_j J_ij s_j)``. A flip of i has
log-ratio ``ln w_i(s)/w_i(s') = -2 s_i u_i``, so the EP per attempted update is (PHYSICS.md §4.1)

    Σ = Σ_i P_i ⟨-2 s_i u_i⟩_{flips of i},        P_i = P(an attempt flips spin i).

The MaxEnt estimator uses ``g_ij = (x_i,1 - x_i,0) x_j,0 = -2 s_i s_j`` (j ≠ i) on flips of i; the
problem splits into N concave problems, ``Σ_g = Σ_i P_i max_θ [θᵀ⟨g⟩ - ln⟨exp(-θᵀg)⟩]_{flips of i}``.
We solve all N at once with a masked (T x N)·(N x N) matrix product per evaluation (damped
Newton per spin with a subsampled Hessian, or one L-BFGS over the N(N-1) multipliers; early
stopping per spin on its own validation objective), which turns N small memory-bound problems
into a few large BLAS calls.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import minimize

from .._device import resolve_device
from ..errors import ValidationError, did_you_mean
from .maxent import split_indices

__all__ = ["MultipartiteResult", "sequential_glauber", "sequential_entropy_production", "maxent_multipartite"]

_OPTIMIZERS = ("bfgs", "newton", "lbfgs")


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
        Optimiser diagnostics: ``n_iter``, per-spin ``stopped_by``, ``converged``,
        ``validation_ep`` (the bound on the validation set at the returned multipliers), ...
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
    if np.any(np.diag(J) != 0):
        # The flip log-ratio -2 s_i u_i (and the observables g_ij, j != i) assume no self-coupling.
        raise ValidationError(f"J must have a zero diagonal (no self-couplings) for sequential Glauber EP; "
                              f"found {int(np.count_nonzero(np.diag(J)))} non-zero diagonal entries.")
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
        Couplings with a zero diagonal, ``J[i, j]`` from j to i.
    n_samples : int
        States to return. Each chain records ``ceil(n_samples / n_chains)`` states; the surplus
        at the end of the last chain(s) is dropped so exactly ``n_samples`` rows come back.
    beta : float
        Inverse temperature.
    h : array (N,), optional
        Fields (default 0).
    n_chains : int
        Independent chains run in parallel, each from a random state.
    warmup_sweeps, thin_sweeps : int
        Sweeps (N micro-steps) discarded before the first sample and between samples.
    seed : int or None
        Seed of the private torch generator; None draws a fresh, non-reproducible seed.
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
    for name, value, low in (("n_chains", n_chains, 1), ("warmup_sweeps", warmup_sweeps, 0),
                             ("thin_sweeps", thin_sweeps, 0)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
            raise ValidationError(f"{name} must be an integer >= {low}, got {value!r}.")
    dev = resolve_device(device)
    gen = torch.Generator(device=dev)
    if seed is None:
        gen.seed()  # fresh entropy, as numpy.random.default_rng(None) does
    else:
        gen.manual_seed(int(seed))
    n = J.shape[0]
    per_chain = -(-int(n_samples) // n_chains)
    J_t = torch.as_tensor(beta * J, device=dev, dtype=torch.float64)
    h_t = torch.as_tensor(beta * h, device=dev, dtype=torch.float64)
    state = torch.randint(0, 2, (n_chains, n), generator=gen, device=dev).to(torch.float64) * 2 - 1
    chain_index = torch.arange(n_chains, device=dev)
    neighbours, weights = _neighbour_lists(J_t)
    states = torch.empty((n_chains, per_chain, n), dtype=torch.int8, device=dev)
    flipped = torch.empty((n_chains, per_chain, n), dtype=torch.bool, device=dev)

    def micro_steps(count: int) -> None:
        picks = torch.randint(0, n, (count, n_chains), generator=gen, device=dev)
        uniforms = torch.rand((count, n_chains), generator=gen, device=dev, dtype=torch.float64)
        for step in range(count):
            i = picks[step]
            # Only the non-zero couplings of row i (padded lists): k ≈ 6 of N for diluted networks.
            field = (weights[i] * state[chain_index[:, None], neighbours[i]]).sum(dim=1) + h_t[i]
            spin = state[chain_index, i]
            flip = uniforms[step] < 0.5 * (1 - spin * torch.tanh(field))
            state[chain_index, i] = torch.where(flip, -spin, spin)

    with _single_thread(dev):
        micro_steps(warmup_sweeps * n)
        for k in range(per_chain):
            if k:
                micro_steps(thin_sweeps * n)
            fields = state @ J_t.T + h_t
            p_flip = 0.5 * (1 - state * torch.tanh(fields))
            states[:, k] = state.to(torch.int8)
            flipped[:, k] = torch.rand(p_flip.shape, generator=gen, device=dev, dtype=torch.float64) < p_flip
    return (states.reshape(-1, n)[:n_samples].cpu().numpy(), flipped.reshape(-1, n)[:n_samples].cpu().numpy())


def _neighbour_lists(J: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Column indices and values of each row's non-zero couplings, padded (index 0, weight 0) to the longest row."""
    nonzero = J != 0
    width = max(1, int(nonzero.sum(dim=1).max()))
    # A stable sort puts each row's non-zero columns first, in column order.
    order = torch.argsort((~nonzero).to(torch.int8), dim=1, stable=True)[:, :width]
    weights = torch.gather(J, 1, order)
    return torch.where(weights != 0, order, 0), weights


@contextlib.contextmanager
def _single_thread(device: torch.device):
    """Run the micro-step loop on one CPU thread: its tensors are small (chains x k), and thread-pool
    synchronisation then dominates (measured 4x slower with 2 threads on a loaded 2-core machine)."""
    if device.type != "cpu":
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


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
    if spins.ndim != 2 or spins.shape[1] != J.shape[0]:
        raise ValidationError(f"states must be a (T, {J.shape[0]}) array of ±1 spins to match J, got shape "
                              f"{spins.shape}.")
    fields = beta * (spins @ J.T + h)
    flip = 0.5 * (1 - spins * np.tanh(fields))
    per_spin = (flip * (-2 * spins * fields)).mean(axis=0) / J.shape[0]
    return float(per_spin.sum()), per_spin


class _MaskedSet:
    """States of one split with flip masks, laid out spin-major for the per-spin reductions.

    ``signed[i, t] = -2 s_ti`` on flips of i and 0 elsewhere (so ``g_tij = signed[i, t] s_tj`` and
    masking the scores is free); ``bias[i, t]`` is 0 on flips of i and -inf elsewhere, so one
    subtraction gives the masked exponent. Spin-major rows make "only these spins" a cheap row
    selection and every reduction run along contiguous memory.
    """

    def __init__(self, states: NDArray[np.int8], flipped: NDArray[np.bool_], rows: NDArray[np.int64],
                 device: torch.device, dtype: torch.dtype, chunk: int) -> None:
        block = torch.as_tensor(states[rows], device=device)                                 # int8 (T, N)
        mask = torch.as_tensor(flipped[rows], device=device)
        self.spins = block.to(dtype)                                                          # (T, N)
        # Transposes are done on the 1-byte arrays: 4x less memory traffic than on the float copies.
        self.mask_by_spin = mask.T.contiguous()                                               # (N, T)
        flipped_spins = torch.mul(block, mask).T.contiguous()                                 # int8 (N, T)
        self.signed = torch.mul(flipped_spins, -2, out=torch.empty(flipped_spins.shape, dtype=dtype, device=device))
        del flipped_spins
        # A stored -inf/0 bias (one subtraction per chunk) was measured faster than recomputing
        # the mask from ``signed == 0`` in each evaluation (10.4 s against 9.1-9.5 s per fit).
        zero = torch.zeros((), dtype=dtype, device=device)
        self.bias = torch.where(self.mask_by_spin, zero, -torch.inf)                          # (N, T)
        self.counts = self.mask_by_spin.sum(dim=1).to(dtype)
        self.chunk, self.n = chunk, len(rows)
        self._scratch: torch.Tensor | None = None
        self.first_moment = sum(self.signed[:, a:a + chunk] @ self.spins[a:a + chunk]
                                for a in range(0, self.n, chunk)) / self.counts.clamp(min=1)[:, None]

    def _chunk_buffers(self, size: int, width: int) -> list[torch.Tensor]:
        """Scores and gathered ``signed`` and ``bias`` rows, (size, width), reused by every chunk.

        Fresh multi-megabyte temporaries are page-faulted in again on each allocation on CPU (glibc
        returns them to the kernel), which cost more than the arithmetic done in them (a chunk's
        product took 12 ms into a fresh output and 1.6 ms into a reused one).
        """
        need = size * width
        if self._scratch is None or self._scratch.shape[1] < need:
            self._scratch = torch.empty((3, need), dtype=self.spins.dtype, device=self.spins.device)
        return [self._scratch[k, :need].view(size, width) for k in range(3)]

    @property
    def mask(self) -> torch.Tensor:
        """Flip mask (T, N) (a transposed view)."""
        return self.mask_by_spin.T

    def evaluate(self, theta: torch.Tensor, gradient: bool = False,
                 rows: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Per-spin ``mean_F a - ln mean_F exp(-a)`` (``a_ti = θ_i·g_t``) and optionally its gradient.

        ``rows`` (bool (N,)) restricts the work to those spins; the other entries are returned as 0.
        The samples are processed in chunks of ``chunk`` states with a running (rescaled) log-sum-exp,
        so the element-wise passes stay in cache.
        """
        n_spins = theta.shape[0]
        index = None if rows is None or bool(rows.all()) else torch.nonzero(rows).flatten()
        multipliers = theta if index is None else theta[index]

        def rows_of(array: torch.Tensor, a: int, out: torch.Tensor) -> torch.Tensor:
            # Gather the selected spins chunk by chunk into a reused buffer: a gather of whole
            # (size, T) rows would write and page-fault in a ~100 MB temporary per evaluation
            # (measured 35 ms each at T = 7e5).
            piece = array[:, a:a + width]
            return piece if index is None else torch.index_select(piece, 0, index, out=out)

        size = multipliers.shape[0]
        shift = torch.full((size,), -torch.inf, dtype=theta.dtype, device=theta.device)
        total, score_sum = torch.zeros_like(shift), torch.zeros_like(shift)
        moment = torch.zeros_like(multipliers) if gradient else None
        # About chunk x N elements per pass whatever the number of spins: few large ops, each in cache.
        width = self.chunk * max(1, theta.shape[0] // max(size, 1))
        for a in range(0, self.n, width):
            spins = self.spins[a:a + width]
            scores, signed_rows, bias_rows = self._chunk_buffers(size, spins.shape[0])
            chunk_signed = rows_of(self.signed, a, signed_rows)
            scores = torch.mm(multipliers, spins.T, out=scores).mul_(chunk_signed)          # a_ti, (size, c)
            score_sum += scores.sum(dim=1)
            exponent = torch.sub(rows_of(self.bias, a, bias_rows), scores, out=scores)       # -a_ti on flips
            new_shift = torch.maximum(shift, exponent.amax(dim=1))
            safe = torch.where(torch.isfinite(new_shift), new_shift, 0)
            rescale = torch.exp(shift - safe)  # earlier chunks were summed relative to the old shift
            tilted = exponent.sub_(safe[:, None]).exp_()
            total = total * rescale + tilted.sum(dim=1)
            if moment is not None:
                moment = moment * rescale[:, None] + tilted.mul_(chunk_signed) @ spins
            shift = new_shift
        counts = self.counts if index is None else self.counts[index]
        safe = torch.where(torch.isfinite(shift), shift, 0)
        objectives = score_sum / counts.clamp(min=1) - (safe + total.clamp(min=1e-30).log() - counts.clamp(min=1).log())
        objectives = torch.where(counts > 0, objectives, 0)
        if moment is not None:
            first_moment = self.first_moment if index is None else self.first_moment[index]
            moment = first_moment + moment / total.clamp(min=1e-30)[:, None]
        if index is None:
            return objectives, moment
        full_objectives = theta.new_zeros(n_spins)
        full_objectives[index] = objectives
        if moment is None:
            return full_objectives, None
        full_gradient = torch.zeros_like(theta)
        full_gradient[index] = moment
        return full_objectives, full_gradient


def maxent_multipartite(states: ArrayLike, flipped: ArrayLike, *, split: str = "contiguous",
                        fractions: tuple[float, float, float] = (0.7, 0.2, 0.1), n_chunks: int = 10,
                        max_iter: int = 1000, patience: int = 10, tol: float = 1e-12, min_flips: int = 100,
                        baselines: bool = True, ridge: float = 1e-4, optimizer: str = "bfgs",
                        hessian_rows: int = 4096, seed: int | None = 0, device: str = "auto",
                        dtype: torch.dtype | None = None, chunk_bins: int = 16384) -> MultipartiteResult:
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
        Total optimiser iterations, per-spin validation patience (iterations without a better
        validation objective), optimiser tolerance (Newton: on each spin's predicted gain
        ``∇ᵀd/2`` relative to its objective, floored at 100 machine epsilons).
    min_flips : int
        Spins with fewer training flips are left out (EP share 0, listed in ``details``).
    baselines : bool
        Also compute the one-Newton-step and TUR bounds (per-spin (N-1)² covariances).
    ridge : float
        Added to covariance diagonals of the baselines (as in the reference, 1e-4).
    optimizer : {"bfgs", "newton", "lbfgs"}
        ``"bfgs"`` (default): quasi-Newton per spin, all spins batched, each with its own
        (N-1)² inverse Hessian started from the tilted covariance at θ = 0 (estimated on
        ``hessian_rows`` fixed random training flips, so the first step is the one-Newton-step
        estimate) and updated from exact full-data gradients; per-spin backtracking line search.
        ``"newton"``: the same, recomputing the subsampled Hessian every iteration (slower: the
        subsample misses the heavy tail of the tilted weights, so steps get halved).
        ``"lbfgs"``: one scipy L-BFGS over all multipliers (the previous default).
    hessian_rows : int
        Flips per spin used for the Newton Hessian (the gradient always uses all of them).
    device, dtype, chunk_bins
        Compute placement and precision (float64 on CPU by default), and samples per block of an
        evaluation (its element-wise passes run on blocks of about ``chunk_bins`` x N values, small
        enough to stay in cache; widened when only a few spins are still being fitted).

    Returns
    -------
    MultipartiteResult
        Nats per attempted update.

    Notes
    -----
    Each spin stops on its own: when its validation objective has not improved for ``patience``
    iterations, or its training objective reaches ``ln n_train`` (a separable spin, whose
    multipliers would otherwise run off to infinity), or ((quasi-)Newton) its predicted gain
    falls below ``tol``; its best-validation row is kept. With L-BFGS a freeze restarts the optimiser
    on the remaining spins (losing its curvature memory), and in float32 a third of the spins
    stopped on failed line searches at N = 100; the per-spin BFGS keeps each spin's curvature
    and converged every spin in about 10 iterations in our measurements (docs/thermo.md).

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
    if not (np.abs(spins) == 1).all():  # two passes; np.isin took 1.5 s on 10^8 spins
        raise ValidationError("states must hold only -1 and +1 spins.")
    if optimizer not in _OPTIMIZERS:
        raise ValidationError(f"optimizer must be one of {list(_OPTIMIZERS)}, got {optimizer!r}."
                              f"{did_you_mean(str(optimizer), _OPTIMIZERS)}")
    for name, value in (("max_iter", max_iter), ("patience", patience), ("min_flips", min_flips),
                        ("hessian_rows", hessian_rows)):
        if not isinstance(value, int | np.integer) or value < 1:
            raise ValidationError(f"{name} must be a positive integer, got {value!r}.")
    dev = resolve_device(device)
    dtype = dtype or (torch.float64 if dev.type == "cpu" else torch.float32)
    spins = spins.astype(np.int8, copy=False)
    n_samples, n = spins.shape
    train, validation, test = (_MaskedSet(spins, flips, rows, dev, dtype, chunk_bins)
                               for rows in split_indices(n_samples, fractions, split, n_chunks, seed))
    flip_probability = flips.sum(0) / (n_samples * n)
    usable = (train.counts >= min_flips) & (validation.counts > 0) & (test.counts > 0)
    if optimizer in ("bfgs", "newton"):
        tol = max(tol, 100 * float(torch.finfo(dtype).eps))  # the predicted gain cannot go below rounding
        theta, best_theta, n_iter, stops, message = _fit_per_spin_newton(
            train, validation, usable, max_iter, patience, tol, hessian_rows, seed, refresh=optimizer == "newton")
    else:
        theta, best_theta, n_iter, stops, message = _fit_per_spin(train, validation, usable, max_iter, patience,
                                                                  tol)
    test_obj, _ = test.evaluate(best_theta, rows=usable)
    val_obj, _ = validation.evaluate(best_theta, rows=usable)
    validation_ep = float((val_obj * usable).cpu().numpy().astype(np.float64) @ flip_probability)
    caps = test.counts.clamp(min=2).log()
    capped = (test_obj > caps) & usable
    per_spin = (torch.minimum(test_obj, caps) * usable).cpu().numpy().astype(np.float64) * flip_probability
    newton = tur = float("nan")
    if baselines:
        newton, tur = _baselines(train, test, usable, flip_probability, ridge)
    return MultipartiteResult(
        ep=float(per_spin.sum()), ep_newton=newton, ep_tur=tur, ep_per_spin=per_spin,
        flip_probability=flip_probability, multipliers=best_theta.cpu().numpy().astype(np.float64),
        details={"n_iter": n_iter, "stopped_by": stops, "converged": bool(np.all(np.isin(
                     stops[usable.cpu().numpy()], ("converged", "validation", "ln_n_train")))),
                 "optimizer": optimizer, "optimizer_message": message, "validation_ep": validation_ep,
                 "capped_spins": np.flatnonzero(capped.cpu().numpy()),
                 "excluded_spins": np.flatnonzero(~usable.cpu().numpy()), "split": split,
                 "dtype": str(dtype).replace("torch.", "")})


def _fit_per_spin(train: _MaskedSet, validation: _MaskedSet, usable: torch.Tensor, max_iter: int, patience: int,
                  tol: float) -> tuple[torch.Tensor, torch.Tensor, int, NDArray, str]:
    """L-BFGS on all still-active spins jointly; freeze spins one by one (see Notes above)."""
    n, dev, dtype = train.spins.shape[1], train.spins.device, train.spins.dtype
    off_diagonal = ~torch.eye(n, dtype=torch.bool, device=dev)
    theta = torch.zeros((n, n), dtype=dtype, device=dev)
    best_theta = torch.zeros_like(theta)
    best_val = torch.zeros(n, dtype=dtype, device=dev)
    since = torch.zeros(n, dtype=torch.int64, device=dev)
    log_counts = train.counts.clamp(min=2).log()
    stops = np.where(usable.cpu().numpy(), "running", "excluded").astype(object)
    active = usable.clone()
    n_iter, message, last = 0, "", {}
    while bool(active.any()) and n_iter < max_iter:
        mask = off_diagonal & active[:, None]
        n_active = int(active.sum())

        def unpack(vector: NDArray[np.float64], mask: torch.Tensor = mask) -> torch.Tensor:  # bind this round's mask
            out = theta.clone()
            out[mask] = torch.as_tensor(vector, dtype=dtype, device=dev)
            return out

        def value_and_gradient(vector: NDArray[np.float64], mask: torch.Tensor = mask,
                               n_active: int = n_active) -> tuple[float, NDArray[np.float64]]:
            objectives, gradient = train.evaluate(unpack(vector), gradient=True)
            last["train"] = objectives
            value = float(objectives[mask.any(1)].sum()) / n_active
            return -value, -(gradient[mask] / n_active).cpu().numpy().astype(np.float64)

        def callback(intermediate_result) -> None:  # scipy passes an OptimizeResult to this exact name
            nonlocal n_iter
            n_iter += 1
            current = unpack(intermediate_result.x)
            mask = current.new_zeros(current.shape, dtype=torch.bool) | (off_diagonal & active[:, None])
            val, _ = validation.evaluate(current)
            rows = mask.any(1)
            improved = (val > best_val) & rows
            best_val[improved] = val[improved]
            best_theta[improved] = current[improved]
            since[:] = torch.where(improved, 0, since + 1)
            saturated = rows & (last["train"] >= log_counts)
            stale = rows & (since >= patience)
            for i in torch.nonzero(saturated | stale).flatten().tolist():
                stops[i] = "ln_n_train" if bool(saturated[i]) else "validation"
            if bool((saturated | stale).any()) or n_iter >= max_iter:
                theta.copy_(current)
                active[saturated | stale] = False
                raise StopIteration

        start = theta[mask].cpu().numpy().astype(np.float64)
        result = minimize(value_and_gradient, start, jac=True, method="L-BFGS-B", callback=callback,
                          options={"maxiter": max(1, max_iter - n_iter), "ftol": tol, "gtol": 1e-10, "maxcor": 30})
        message = str(result.message)
        if "StopIteration" not in message:
            # Finished without a freeze: the optimiser converged (or failed) for every active spin.
            theta.copy_(unpack(result.x))
            outcome = "converged" if result.success else ("max_iter" if n_iter >= max_iter else "line_search")
            for i in torch.nonzero(active).flatten().tolist():
                stops[i] = outcome
            active[:] = False
    for i in torch.nonzero(active).flatten().tolist():
        stops[i] = "max_iter"
    return theta, best_theta, n_iter, stops, message


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


def _subsample_flips(train: _MaskedSet, size: int, seed: int | None) -> torch.Tensor:
    """Rows (N, size) of up to ``size`` random training flips of each spin i (with replacement when it
    has fewer), drawn once: the Newton Hessians reuse them every iteration."""
    generator = torch.Generator(device="cpu")
    generator.manual_seed(0 if seed is None else int(seed))
    n = train.spins.shape[1]
    rows = []
    for i in range(n):
        flips = torch.nonzero(train.mask[:, i]).flatten().cpu()
        if flips.numel() == 0:
            flips = torch.zeros(1, dtype=torch.int64)
        pick = (torch.randperm(flips.numel(), generator=generator)[:size] if flips.numel() >= size
                else torch.randint(0, flips.numel(), (size,), generator=generator))
        rows.append(flips[pick])
    return torch.stack(rows).to(train.spins.device)


def _flip_states(spins: torch.Tensor, flip_rows: torch.Tensor, chunk: slice, out: torch.Tensor) -> torch.Tensor:
    """``y = s_i · s`` (c, size, N) on the subsampled flips of the spins in ``chunk``, written into ``out``.

    ``g_ij = -2 s_i s_j`` on flips of i, so y (with y_i = 1) carries everything the Hessian needs.
    Gathered per chunk of spins into a reused buffer, never for all N at once (an (N, size, N)
    array is 160 MB at N = 100, and fresh large temporaries are page-faulted in on every allocation).
    """
    rows = flip_rows[chunk]
    states = torch.index_select(spins, 0, rows.flatten(), out=out[:rows.numel()]).view(*rows.shape, -1)
    own = torch.arange(spins.shape[1], device=spins.device)[chunk, None, None].expand(-1, rows.shape[1], 1)
    return states.mul_(torch.gather(states, 2, own))


def _inverse_hessians(spins: torch.Tensor, flip_rows: torch.Tensor, theta: torch.Tensor, usable: torch.Tensor,
                      spins_per_chunk: int = 5) -> torch.Tensor:
    """Per-spin inverse tilted covariances ``Cov_w(g_i)⁻¹`` (N, N, N), estimated on fixed flip subsamples.

    With ``y = s_i s``, ``g = -2 y`` and ``θ_i·g = -2 y·θ_i``; the covariance (the negative Hessian of
    spin i's objective) is ``4 (Σ w y yᵀ - μ μᵀ)``, ``μ = Σ w y``, with w the tilted weights
    ``∝ exp(-θ_i·g)`` renormalised on the subsample. θ_ii is fixed at 0, so that row and column are
    replaced by the identity (its step is then ``∇_ii = 0``). Spins that are not ``usable`` (too few
    flips; never stepped) get the identity: a spin without flips has a zero covariance, which no
    float32 ridge of this size keeps invertible.
    """
    n = theta.shape[0]
    inverse = torch.empty((n, n, n), dtype=theta.dtype, device=theta.device)
    eye = torch.eye(n, dtype=theta.dtype, device=theta.device)
    states, weighted = (torch.empty((spins_per_chunk * flip_rows.shape[1], n), dtype=theta.dtype,
                                    device=theta.device) for _ in range(2))
    # Relative ridge: 1e-8 (float64), or ten ulps where the precision cannot resolve 1e-8 (float32).
    ridge = max(1e-8, 10 * float(torch.finfo(theta.dtype).eps))
    for start in range(0, n, spins_per_chunk):
        spins_here = slice(start, min(start + spins_per_chunk, n))
        y = _flip_states(spins, flip_rows, spins_here, states)               # (c, m, N)
        weights = torch.softmax(2 * torch.bmm(y, theta[spins_here, :, None])[..., 0], dim=1)
        mean = torch.bmm(weights[:, None, :], y)[:, 0]                       # (c, N)
        # Centred before the product: Σ w y yᵀ − μ μᵀ cancels catastrophically in float32 for
        # nearly frozen neighbours (variance ≪ 1 next to ⟨y⟩² ≈ 1) and left singular matrices.
        centred = y.sub_(mean[:, None, :])
        centred_weighted = torch.mul(centred, weights[..., None], out=weighted[:y.shape[0] * y.shape[1]].view(y.shape))
        covariance = 4 * torch.bmm(centred.transpose(1, 2), centred_weighted)
        keep = 1 - eye[spins_here]
        covariance = covariance * keep[:, :, None] * keep[:, None, :] + torch.diag_embed(eye[spins_here])
        covariance[~usable[spins_here]] = eye
        scale = covariance.diagonal(dim1=1, dim2=2).mean(dim=1)
        inverse[spins_here] = torch.linalg.inv(covariance + ridge * scale[:, None, None] * eye)
    return inverse


def _bfgs_update(inverse: torch.Tensor, step: torch.Tensor, change: torch.Tensor, rows: torch.Tensor) -> None:
    """In-place BFGS update of the inverse (negative) Hessians of the spins in ``rows``.

    ``step = θ_new − θ_old`` and ``change = ∇_old − ∇_new`` (the objective is concave, so ``stepᵀchange > 0``
    for a useful pair; other pairs are skipped, which keeps every matrix positive definite).
    """
    curvature = (step * change).sum(dim=1)
    rows = rows & (curvature > 1e-12 * (step.norm(dim=1) * change.norm(dim=1)).clamp(min=1e-30))
    if not bool(rows.any()):
        return
    H, s, y = inverse[rows], step[rows], change[rows]
    rho = 1 / (s * y).sum(dim=1)
    Hy = torch.bmm(H, y[..., None])[..., 0]
    yHy = (y * Hy).sum(dim=1)
    # H ← (I − ρ s yᵀ) H (I − ρ y sᵀ) + ρ s sᵀ, expanded (H symmetric).
    inverse[rows] = (H - rho[:, None, None] * (s[:, :, None] * Hy[:, None, :] + Hy[:, :, None] * s[:, None, :])
                     + (rho**2 * yHy + rho)[:, None, None] * s[:, :, None] * s[:, None, :])


def _fit_per_spin_newton(train: _MaskedSet, validation: _MaskedSet, usable: torch.Tensor, max_iter: int,
                         patience: int, tol: float, hessian_rows: int, seed: int | None,
                         refresh: bool) -> tuple[torch.Tensor, torch.Tensor, int, NDArray, str]:
    """(Quasi-)Newton on every active spin at once, with per-spin backtracking and early stopping.

    ``refresh=True``: Newton with the subsampled Hessian recomputed every iteration. ``False``:
    per-spin BFGS started from the subsampled Hessian at θ = 0 (so its first step is the
    one-Newton-step estimate), corrected by exact gradient differences on the full training set.

    The spins' problems are separable, so each has its own step length and stops on its own:
    converged (predicted gain ``∇ᵀd/2`` at most ``tol`` relative to its objective),
    validation (no improvement for ``patience`` iterations), ``ln n_train`` (separable data), or
    line_search (no ascent after 10 halvings, even after one restart from steepest ascent).
    """
    n = train.spins.shape[1]
    flip_rows = _subsample_flips(train, hessian_rows, seed)
    off_diagonal = 1 - torch.eye(n, dtype=train.spins.dtype, device=train.spins.device)
    theta = torch.zeros((n, n), dtype=train.spins.dtype, device=train.spins.device)
    best_theta, best_val = torch.zeros_like(theta), torch.zeros(n, dtype=theta.dtype, device=theta.device)
    since = torch.zeros(n, dtype=torch.int64, device=theta.device)
    log_counts = train.counts.clamp(min=2).log()
    stops = np.where(usable.cpu().numpy(), "running", "excluded").astype(object)
    active = usable.clone()
    # At θ = 0 every tilted weight is equal: objective 0, gradient 2⟨g⟩ (no pass over the data needed).
    objectives = torch.zeros(n, dtype=theta.dtype, device=theta.device)
    gradient = 2 * train.first_moment * (train.counts > 0)[:, None]
    inverse = _inverse_hessians(train.spins, flip_rows, theta, usable)
    eye = torch.eye(n, dtype=theta.dtype, device=theta.device)
    restarted = torch.zeros(n, dtype=torch.bool, device=theta.device)
    n_iter = 0
    while bool(active.any()) and n_iter < max_iter:
        n_iter += 1
        if n_iter > 1 and refresh:
            inverse = _inverse_hessians(train.spins, flip_rows, theta, usable)
        # Masked so θ_ii stays 0 (g_ii is a constant on flips of i, along which the objective is unbounded).
        direction = torch.bmm(inverse, (gradient * off_diagonal)[..., None])[..., 0] * active[:, None]
        slope = (gradient * direction).sum(dim=1)
        # Stop before stepping when the predicted gain is below rounding: a line search there only sees noise.
        converged = active & (slope <= 2 * tol * objectives.abs().clamp(min=1))
        pending = active & ~converged
        step = torch.ones(n, dtype=theta.dtype, device=theta.device)
        for _ in range(10):
            if not bool(pending.any()):
                break
            trial = torch.where(pending[:, None], theta + step[:, None] * direction, theta)
            # Only the spins still searching: late iterations often have a handful left.
            new_objectives, new_gradient = train.evaluate(trial, gradient=True, rows=pending)
            accept = pending & (new_objectives >= objectives + 1e-4 * step * slope)
            if not refresh:
                _bfgs_update(inverse, trial - theta, (gradient - new_gradient) * off_diagonal, accept)
            theta[accept], objectives[accept], gradient[accept] = (trial[accept], new_objectives[accept],
                                                                    new_gradient[accept])
            pending &= ~accept
            step[pending] /= 2
        # No step along the quasi-Newton direction helped (e.g. a near-singular start next to a nearly
        # frozen neighbour): restart that spin once from steepest ascent, I/4 (the tilted covariance
        # of g = -2y has unit-scale entries), as BFGS implementations do, before giving up on it.
        retry = pending & ~restarted
        if bool(retry.any()):
            inverse[retry] = eye / 4
            restarted |= retry
            pending &= ~retry
        val, _ = validation.evaluate(theta, rows=active)
        improved = active & (val > best_val)
        best_val[improved], best_theta[improved] = val[improved], theta[improved]
        since = torch.where(improved, 0, since + 1)
        outcomes = {"converged": converged, "line_search": pending, "ln_n_train": objectives >= log_counts,
                    "validation": since >= patience}
        for name, hit in outcomes.items():
            for i in torch.nonzero(hit & active).flatten().tolist():
                stops[i] = name
            active &= ~hit
    for i in torch.nonzero(active).flatten().tolist():
        stops[i] = "max_iter"
    return theta, best_theta, n_iter, stops, "newton" if refresh else "bfgs"
