"""Model-free entropy production: the nonequilibrium-MaxEnt estimator (Aguilera, Ito & Kolchinsky).

For a stationary chain, the EP per step is ``Σ = D_KL(p(x0, x1) ‖ p(x1, x0))``. For antisymmetric
observables g (``g(x1, x0) = -g(x0, x1)``) every λ gives a lower bound

    Σ ≥ Σ_g = max_λ  λᵀ⟨g⟩ - ln ⟨exp(-λᵀg)⟩,                                    (PHYSICS.md §4.2)

concave in λ, with gradient ``⟨g⟩ + ⟨g⟩_λ`` (``⟨·⟩_λ`` weights samples by ``exp(-λᵀg)``). We use
the antisymmetrised lag-1 cross-correlations ``g_ij = x_i,1 x_j,0 - x_i,0 x_j,1`` (i < j) and write
``λᵀg = x1ᵀ Λ x0`` with Λ antisymmetric, so one evaluation is two (T x N)·(N x N) matrix
products and the N(N-1)/2 observables are never materialised.

Protocol: transitions are split into train / validation / test sets (contiguous blocks by
default: the recording is cut into ``n_chunks`` pieces and each piece into 70/20/10 % in time
order; ``split="random"`` shuffles single transitions as in the paper). λ is fitted on the
training set by L-BFGS (scipy; or trust-region Newton-CG with exact Hessian-vector products, which
are two more matrix products) with early stopping on the validation objective, and the reported
EP is the test-set objective at the best-validation λ, capped at ``ln n_test`` (the largest value
an n-sample estimate can reach) with ``details["capped"]`` set when the cap bites.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from scipy.optimize import minimize

from .._device import resolve_device
from ..errors import ValidationError, did_you_mean
from ..raster import Raster
from ._common import BlockAccumulator, EntropyProductionResult, bootstrap_means, check_raster, normalised_result

__all__ = ["maxent_entropy_production", "split_transitions", "split_indices", "antisymmetric_scores"]

_SPLITS = ("contiguous", "random")
_OPTIMIZERS = ("lbfgs", "newton-cg")
_DEFAULT_PATIENCE = {"lbfgs": 20, "newton-cg": 5}
_FLOAT_CACHE_BYTES = 1 << 30


def antisymmetric_scores(multipliers: torch.Tensor, previous: torch.Tensor, current: torch.Tensor) -> torch.Tensor:
    """``λᵀg`` per transition: ``x1ᵀ Λ x0`` for an antisymmetric Λ (pure kernel).

    Parameters
    ----------
    multipliers : Tensor (N, N)
        Antisymmetric Λ; ``Λ_ij`` (i < j) multiplies ``g_ij = x_i,1 x_j,0 - x_i,0 x_j,1``.
    previous, current : Tensor (T, N)
        ±1 states x0 and x1.

    Returns
    -------
    Tensor (T,)
    """
    return ((current @ multipliers) * previous).sum(dim=1)


def split_indices(n: int, fractions: tuple[float, float, float] = (0.7, 0.2, 0.1), split: str = "contiguous",
                  n_chunks: int = 10, seed: int | None = 0) -> tuple[NDArray[np.int64], ...]:
    """Positions ``0..n-1`` divided into train / validation / test (see :func:`split_transitions`)."""
    if split not in _SPLITS:
        raise ValidationError(f"split must be one of {list(_SPLITS)}, got {split!r}.{did_you_mean(split, _SPLITS)}")
    fractions = tuple(float(f) for f in fractions)
    if len(fractions) != 3 or min(fractions) <= 0 or abs(sum(fractions) - 1) > 1e-9:
        raise ValidationError(f"fractions must be three positive numbers summing to 1 (train, validation, test), "
                              f"got {fractions!r}.")
    if split == "random":
        order = np.random.default_rng(seed).permutation(n)
        cut1, cut2 = int(round(n * fractions[0])), int(round(n * (fractions[0] + fractions[1])))
        return order[:cut1], order[cut1:cut2], order[cut2:]
    if not isinstance(n_chunks, int | np.integer) or n_chunks < 1:
        raise ValidationError(f"n_chunks must be a positive integer, got {n_chunks!r}.")
    edges = np.linspace(0, n, n_chunks + 1).round().astype(np.int64)
    parts: list[list[NDArray[np.int64]]] = [[], [], []]
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        c1 = a + int(round((b - a) * fractions[0]))
        c2 = a + int(round((b - a) * (fractions[0] + fractions[1])))
        for k, (lo, hi) in enumerate(((a, c1), (c1, c2), (c2, b))):
            parts[k].append(np.arange(lo, hi, dtype=np.int64))
    return tuple(np.concatenate(p) for p in parts)


def split_transitions(raster: Raster, fractions: tuple[float, float, float] = (0.7, 0.2, 0.1),
                      split: str = "contiguous", n_chunks: int = 10,
                      seed: int | None = 0) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    """Row indices of the previous state of each train / validation / test transition.

    ``split="contiguous"`` cuts the transitions (in recording order) into ``n_chunks`` equal
    pieces and each piece into train, validation and test in time order, so neighbouring,
    autocorrelated bins land in the same set except at ``3 * n_chunks`` borders, while slow drifts
    are shared by all sets. ``split="random"`` permutes single transitions (the paper's choice).
    """
    starts = np.concatenate([np.arange(a, b - 1) for a, b in raster.segments]).astype(np.int64)
    sets = tuple(starts[index] for index in split_indices(starts.size, fractions, split, n_chunks, seed))
    n = starts.size
    for name, rows in zip(("train", "validation", "test"), sets, strict=True):
        if rows.size < 2:
            raise ValidationError(f"the {name} set has {rows.size} transitions; the raster's {n} transitions are "
                                  f"too few for fractions {fractions}.")
    return sets  # type: ignore[return-value]


class _TransitionSet:
    """±1 states of a set of transitions stored compactly (int8), converted chunk by chunk."""

    def __init__(self, spins: NDArray[np.int8], rows: NDArray[np.int64], device: torch.device,
                 dtype: torch.dtype, chunk: int) -> None:
        self.previous = torch.as_tensor(spins[rows], device=device)
        self.current = torch.as_tensor(spins[rows + 1], device=device)
        self.n = int(rows.size)
        self.dtype, self.chunk = dtype, chunk
        # Converting int8 -> float every evaluation costs about as much as the products on a
        # small machine; keep float copies when they are small, int8 (8x less memory) otherwise.
        itemsize = torch.empty((), dtype=dtype).element_size()
        if 2 * self.previous.numel() * itemsize <= _FLOAT_CACHE_BYTES:
            self.previous, self.current = self.previous.to(dtype), self.current.to(dtype)

    def chunks(self):
        for a in range(0, self.n, self.chunk):
            b = min(a + self.chunk, self.n)
            yield a, b, self.previous[a:b].to(self.dtype), self.current[a:b].to(self.dtype)

    def scores(self, multipliers: torch.Tensor) -> torch.Tensor:
        return torch.cat([antisymmetric_scores(multipliers, x0, x1) for _, _, x0, x1 in self.chunks()])

    def lagged_moment(self) -> torch.Tensor:
        out = 0
        for _, _, x0, x1 in self.chunks():
            out = out + x1.T @ x0
        return out / self.n

    def weighted_lagged_moment(self, weights: torch.Tensor) -> torch.Tensor:
        out = 0
        for a, b, x0, x1 in self.chunks():
            out = out + (x1 * weights[a:b, None]).T @ x0
        return out


def _objective(scores: torch.Tensor) -> float:
    """``⟨a⟩ - ln⟨exp(-a)⟩`` with a log-sum-exp so large scores cannot overflow."""
    return float(scores.mean() - (torch.logsumexp(-scores, 0) - np.log(scores.numel())))


class _Problem:
    """Objective and gradient of the MaxEnt bound over the upper-triangle multipliers."""

    def __init__(self, train: _TransitionSet, n_units: int) -> None:
        self.train = train
        self.upper = torch.triu_indices(n_units, n_units, offset=1, device=train.previous.device)
        self.n_units = n_units
        self.first_moment = train.lagged_moment()
        self._weights_at: tuple[NDArray[np.float64], torch.Tensor] | None = None

    def matrix(self, theta: NDArray[np.float64]) -> torch.Tensor:
        out = torch.zeros((self.n_units, self.n_units), dtype=self.train.dtype, device=self.upper.device)
        out[self.upper[0], self.upper[1]] = torch.as_tensor(theta, dtype=self.train.dtype, device=self.upper.device)
        return out - out.T

    def value_and_gradient(self, theta: NDArray[np.float64]) -> tuple[float, NDArray[np.float64]]:
        multipliers = self.matrix(theta)
        scores = self.train.scores(multipliers)
        weights = torch.softmax(-scores, dim=0)
        # The tilted weights at the last θ serve the Hessian-vector products at that θ.
        self._weights_at = (theta.copy(), weights)
        full = self.first_moment + self.train.weighted_lagged_moment(weights)
        gradient = self.upper_part(full)
        # scipy minimises: return the negated objective and gradient, in float64.
        return -_objective(scores), -gradient.detach().cpu().numpy().astype(np.float64)

    def upper_part(self, moment: torch.Tensor) -> torch.Tensor:
        """``(M - Mᵀ)_ij`` for i < j: the observables' expectation from a lagged moment M."""
        return (moment - moment.T)[self.upper[0], self.upper[1]]

    def hessian_vector(self, theta: NDArray[np.float64], direction: NDArray[np.float64]) -> NDArray[np.float64]:
        """Hessian of the negated objective times a vector: ``Cov_λ(g) v``, never forming the M x M matrix.

        With ``b_t = vᵀg_t = x1ᵀ V x0`` (V the antisymmetric matrix of v) and the tilted weights
        ``w ∝ exp(-λᵀg)``, ``Cov_λ(g) v = Σ_t w_t (b_t - Σ w b) g_t``: one score pass and one
        weighted lagged moment, the cost of a gradient.
        """
        if self._weights_at is None or not np.array_equal(self._weights_at[0], theta):
            self.value_and_gradient(theta)
        weights = self._weights_at[1]
        projections = self.train.scores(self.matrix(direction))
        centred = weights * (projections - (weights * projections).sum())
        product = self.upper_part(self.train.weighted_lagged_moment(centred))
        return product.detach().cpu().numpy().astype(np.float64)


def _fit(problem: _Problem, validation: _TransitionSet, *, optimizer: str, max_iter: int, patience: int, tol: float,
         gtol: float, n_train: int) -> dict[str, Any]:
    n_params = problem.upper.shape[1]
    state: dict[str, Any] = {"best_val": 0.0, "best_theta": np.zeros(n_params), "since_best": 0, "n_iter": 0,
                             "stopped_by": None, "train": 0.0}

    def callback(intermediate_result) -> None:
        state["n_iter"] += 1
        theta = intermediate_result.x
        state["train"] = -float(intermediate_result.fun)
        val = _objective(validation.scores(problem.matrix(theta)))
        if val > state["best_val"]:
            state.update(best_val=val, best_theta=theta.copy(), since_best=0)
        else:
            state["since_best"] += 1
        if state["train"] >= np.log(n_train):
            state["stopped_by"] = "ln_n_train"
            raise StopIteration
        if state["since_best"] >= patience:
            state["stopped_by"] = "validation"
            raise StopIteration

    if optimizer == "lbfgs":
        result = minimize(problem.value_and_gradient, np.zeros(n_params), jac=True, method="L-BFGS-B",
                          callback=callback, options={"maxiter": max_iter, "ftol": tol, "gtol": 1e-10 * (1 + tol),
                                                      "maxcor": 30})
    else:
        # Trust-region Newton-CG (Steihaug) on exact Hessian-vector products; scipy's trust-krylov
        # was also tried and took 1.5x longer on the N = 100 benchmark for the same estimate.
        result = minimize(problem.value_and_gradient, np.zeros(n_params), jac=True, hessp=problem.hessian_vector,
                          method="trust-ncg", callback=callback,
                          options={"maxiter": max_iter, "gtol": gtol})
    if state["stopped_by"] is None:
        failed = "max_iter" if result.nit >= max_iter else "line_search"
        state["stopped_by"] = "converged" if result.success else failed
    state["optimizer_message"] = str(result.message)
    state["gradient_norm"] = float(np.linalg.norm(result.jac)) if result.jac is not None else float("nan")
    return state


def maxent_entropy_production(raster: Raster, *, split: str = "contiguous",
                              fractions: tuple[float, float, float] = (0.7, 0.2, 0.1), n_chunks: int = 10,
                              optimizer: str = "lbfgs", max_iter: int = 1000, patience: int | None = None,
                              tol: float = 1e-12, gtol: float = 1e-8,
                              n_blocks: int = 50, n_boot: int = 1000, seed: int | None = 0,
                              device: str = "auto", dtype: torch.dtype | None = None,
                              chunk_bins: int = 131072) -> EntropyProductionResult:
    """Nonequilibrium-MaxEnt lower bound on the EP from spikes alone (no model).

    Parameters
    ----------
    raster : Raster
        Binary activity (a spike = +1 spin); transitions never cross segment boundaries.
    split : {"contiguous", "random"}
        How transitions are divided into train / validation / test (see :func:`split_transitions`).
    fractions : (float, float, float)
        Train, validation and test fractions.
    n_chunks : int
        Pieces of the contiguous split.
    optimizer : {"lbfgs", "newton-cg"}
        ``"lbfgs"`` (default): scipy L-BFGS-B on the objective and its gradient.
        ``"newton-cg"``: scipy's trust-region Newton-CG with exact Hessian-vector products
        ``Cov_λ(g) v`` (each costs one gradient; the M x M Hessian is never formed). It reaches
        the same or a slightly higher validation objective at large EP but took 1.7-7.5x longer on
        our benchmarks (docs/thermo.md), so it is not the default.
    max_iter, patience : int, int or None
        Optimiser iterations, and validation patience (iterations without a better validation
        objective before stopping; default 20 for L-BFGS and 5 for Newton-CG, whose iterations
        are full Newton steps).
    tol, gtol : float
        Relative objective tolerance (L-BFGS) and gradient-norm tolerance (Newton-CG).
    n_blocks, n_boot, seed : int
        Block bootstrap of the test-set objective (λ held fixed), and the seed of the random split.
    device : {"auto", "cpu", "cuda"}
        Compute device.
    dtype : torch.dtype, optional
        Compute precision: float64 on CPU and float32 on CUDA by default.
    chunk_bins : int
        Transitions per matrix-product chunk.

    Returns
    -------
    EntropyProductionResult
        Test-set EP per bin/second/spike (a lower bound, ``is_lower_bound=True``); ``details``
        holds ``multipliers`` (the antisymmetric Λ, N x N), the train/validation/test objectives,
        ``n_iter``, ``stopped_by`` ("converged", "validation", "ln_n_train", "max_iter" or
        "line_search"), ``converged``, ``capped`` and ``ln_n_test``.

    Examples
    --------
    >>> import spikefield as sf
    >>> h, J = sf.simulate.sk_couplings(10, J0=0.0, Js=1.0, H0=0.0, seed=0)
    >>> X = sf.simulate.kinetic_ising(h, J, 5000, n_trials=4, seed=1)
    >>> res = sf.thermo.entropy_production(None, X, method="maxent")
    >>> 0 < res.ep_per_bin < res.details["ln_n_test"]
    True
    """
    raster = check_raster(raster, min_transitions=10)
    dev = resolve_device(device)
    dtype = dtype or (torch.float64 if dev.type == "cpu" else torch.float32)
    if optimizer not in _OPTIMIZERS:
        raise ValidationError(f"optimizer must be one of {list(_OPTIMIZERS)}, got {optimizer!r}."
                              f"{did_you_mean(str(optimizer), _OPTIMIZERS)}")
    patience = _DEFAULT_PATIENCE[optimizer] if patience is None else patience
    for name, value, low in (("max_iter", max_iter, 1), ("patience", patience, 1)):
        if not isinstance(value, int | np.integer) or value < low:
            raise ValidationError(f"{name} must be an integer >= {low}, got {value!r}.")
    train_rows, val_rows, test_rows = split_transitions(raster, fractions, split, n_chunks, seed)
    spins = raster.to_spins(np.int8)
    train, validation, test = (_TransitionSet(spins, rows, dev, dtype, chunk_bins)
                               for rows in (train_rows, val_rows, test_rows))
    problem = _Problem(train, raster.n_units)
    state = _fit(problem, validation, optimizer=optimizer, max_iter=max_iter, patience=patience, tol=tol,
                 gtol=gtol, n_train=train.n)
    multipliers = problem.matrix(state["best_theta"])
    return _test_result("maxent", raster, test, test.scores(multipliers), n_blocks, n_boot, seed, details={
        "multipliers": multipliers.cpu().numpy().astype(np.float64),
        "train_objective": -problem.value_and_gradient(state["best_theta"])[0],
        "validation_objective": state["best_val"], "n_iter": state["n_iter"], "stopped_by": state["stopped_by"],
        "converged": state["stopped_by"] in ("converged", "validation"), "gradient_norm": state["gradient_norm"],
        # False when no fitted λ beat λ = 0 on validation: the estimate is then exactly 0 (no
        # detectable irreversibility with these observables and this much data).
        "validation_improved": state["best_val"] > 0,
        "optimizer": optimizer, "optimizer_message": state["optimizer_message"], "split": split, "n_train": train.n,
        "n_validation": validation.n, "dtype": str(dtype).replace("torch.", "")})


def _test_result(method: str, raster: Raster, test: _TransitionSet, scores: torch.Tensor, n_blocks: int,
                 n_boot: int, seed: int | None, details: dict[str, Any]) -> EntropyProductionResult:
    """Test-set objective with a block bootstrap (λ fixed) and the ln(n_test) cap."""
    scores64 = scores.detach().to(torch.float64).cpu().numpy()
    shift = float(np.max(-scores64))
    spikes = (test.current > 0).sum(dim=1).cpu().numpy().astype(np.float64)
    acc = BlockAccumulator(test.n, n_blocks, 3)
    acc.add(0, np.stack([scores64, np.exp(-scores64 - shift), spikes], axis=1))
    means = acc.means()
    boot = bootstrap_means(acc.sums, acc.counts, n_boot, seed)
    value = means[0] - np.log(means[1]) - shift
    boot_values = boot[:, 0] - np.log(boot[:, 1]) - shift
    cap = float(np.log(test.n))
    capped = bool(value > cap)
    details.update(test_objective_uncapped=float(value), ln_n_test=cap, capped=capped)
    return normalised_result(method, np.minimum(boot_values, cap), min(value, cap), boot[:, 2], float(means[2]),
                             raster, test.n, True, details=details)
