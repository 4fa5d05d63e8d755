"""Pure torch kernels for many independent logistic regressions that share their inputs.

Both Ising estimators reduce to this problem. Neuron ``i`` is a logistic regression with
0/1 target ``y_i,t`` and 0/1 inputs ``x_t``::

    z_i,t = b_i + Σ_j w_ij x_j,t,       P(y_i,t = 1 | x_t) = σ(z_i,t)
    nll_i = Σ_t [ softplus(z_i,t) − y_i,t z_i,t ]
    ∂nll_i/∂w_ij = Σ_t (σ(z_i,t) − y_i,t) x_j,t,     ∂nll_i/∂b_i = Σ_t (σ(z_i,t) − y_i,t)
    (H_i v)_j   = Σ_t σ'(z_i,t) (v · x_t) x_j,t

- kinetic Ising (exact likelihood): ``x_t = n_{t-1}``, ``y_t = n_t``;
- equilibrium Ising (pseudolikelihood): ``x_t = y_t = n_t`` with ``weight_mask`` zero on the
  diagonal so a neuron never predicts itself.

All kernels take one chunk of bins; :func:`accumulate` sums them over an iterable of chunks so
memory stays O(chunk·N + N²). Sums (not means) are returned; callers divide by the number of
bins. Accumulators are float64 whatever the compute dtype, so float32/TF32 chunks do not lose
precision when summed over 10^6 bins.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import NamedTuple

import torch
from torch import Tensor

__all__ = ["LossGrad", "logits", "loss_and_grad", "loss_only", "hessian_vector_product", "accumulate"]


class LossGrad(NamedTuple):
    """Per-neuron negative log-likelihood sums and their gradients (float64)."""

    loss: Tensor  # (n_out,)
    grad_weights: Tensor  # (n_out, n_in)
    grad_bias: Tensor  # (n_out,)


def logits(inputs: Tensor, weights: Tensor, bias: Tensor) -> Tensor:
    """``z = inputs @ weightsᵀ + bias``: (T, n_in), (n_out, n_in), (n_out,) -> (T, n_out)."""
    return torch.addmm(bias, inputs, weights.T)


def _nll_sum(z: Tensor, targets: Tensor) -> Tensor:
    # softplus(z) - y z is the numerically stable form of -log σ(±z).
    return (torch.nn.functional.softplus(z) - targets * z).sum(dim=0, dtype=torch.float64)


def loss_only(inputs: Tensor, targets: Tensor, weights: Tensor, bias: Tensor) -> Tensor:
    """Per-neuron negative log-likelihood sum over the chunk (nats), shape ``(n_out,)``.

    Parameters
    ----------
    inputs : Tensor (T, n_in)
        0/1 (or any real) regressors.
    targets : Tensor (T, n_out)
        0/1 responses.
    weights : Tensor (n_out, n_in)
    bias : Tensor (n_out,)
    """
    return _nll_sum(logits(inputs, weights, bias), targets)


def loss_and_grad(inputs: Tensor, targets: Tensor, weights: Tensor, bias: Tensor,
                  weight_mask: Tensor | None = None) -> LossGrad:
    """Negative log-likelihood sums and exact gradients over one chunk.

    Costs two (T × n_in)·(n_in × n_out) products. ``weight_mask`` (n_out, n_in) of 0/1 zeroes
    the gradient of excluded weights (self-couplings).
    """
    z = logits(inputs, weights, bias)
    loss = _nll_sum(z, targets)
    residual = torch.sigmoid(z).sub_(targets)
    grad_weights = (residual.T @ inputs).to(torch.float64)
    if weight_mask is not None:
        grad_weights = grad_weights * weight_mask
    grad_bias = residual.sum(dim=0, dtype=torch.float64)
    return LossGrad(loss, grad_weights, grad_bias)


def hessian_vector_product(inputs: Tensor, weights: Tensor, bias: Tensor, direction_weights: Tensor,
                           direction_bias: Tensor) -> tuple[Tensor, Tensor]:
    """Per-neuron Hessian of the nll sum applied to a direction ``(V, c)``, over one chunk.

    ``(H v)_i = Σ_t σ'(z_i,t) (V_i · x_t + c_i) (x_t, 1)``; the Hessian is block diagonal (one
    (n_in+1)² block per neuron), so this is all N products at the cost of two matrix products.
    """
    z = logits(inputs, weights, bias)
    p = torch.sigmoid(z)
    curvature = p * (1 - p)
    weighted = curvature * logits(inputs, direction_weights, direction_bias)
    return (weighted.T @ inputs).to(torch.float64), weighted.sum(dim=0, dtype=torch.float64)


def accumulate(chunks: Callable[[], Iterable[tuple[Tensor, Tensor]]], weights: Tensor, bias: Tensor,
               weight_mask: Tensor | None = None, with_grad: bool = True,
               kernels: tuple[Callable[..., LossGrad], Callable[..., Tensor]] | None = None) -> LossGrad:
    """Sum :func:`loss_and_grad` (or :func:`loss_only` when ``with_grad=False``) over chunks.

    ``chunks()`` yields ``(inputs, targets)`` pairs; ``weights``/``bias`` are cast to the
    chunks' dtype for the products and the results accumulated in float64. ``kernels``
    replaces the pair ``(loss_and_grad, loss_only)`` by another per-chunk objective with the
    same signatures (e.g. minimum probability flow in ``_equilibrium_rows``).
    """
    loss_grad_fn, loss_fn = (loss_and_grad, loss_only) if kernels is None else kernels
    n_out, n_in = weights.shape
    device = weights.device
    loss = torch.zeros(n_out, dtype=torch.float64, device=device)
    grad_w = torch.zeros((n_out, n_in), dtype=torch.float64, device=device) if with_grad else None
    grad_b = torch.zeros(n_out, dtype=torch.float64, device=device) if with_grad else None
    cast: dict[torch.dtype, tuple[Tensor, Tensor]] = {}
    for inputs, targets in chunks():
        if inputs.dtype not in cast:
            cast[inputs.dtype] = (weights.to(inputs.dtype), bias.to(inputs.dtype))
        w, b = cast[inputs.dtype]
        if with_grad:
            part = loss_grad_fn(inputs, targets, w, b, weight_mask)
            loss += part.loss
            grad_w += part.grad_weights
            grad_b += part.grad_bias
        else:
            loss += loss_fn(inputs, targets, w, b)
    if not with_grad:
        return LossGrad(loss, torch.empty(0, device=device), torch.empty(0, device=device))
    return LossGrad(loss, grad_w, grad_b)


# ---------------------------------------------------------------------- solver
class SolverResult(NamedTuple):
    """Output of :func:`fit_logistic` (natural 0/1 coordinates, float64)."""

    weights: Tensor  # (n_out, n_in)
    bias: Tensor  # (n_out,)
    n_iter: int
    converged: Tensor  # (n_out,) bool: criterion met
    loss_curve: list[float]  # mean penalised objective per sample per neuron, after each iteration
    max_gradient: Tensor  # (n_out,) final criterion value (spin units)
    n_passes: float  # data passes used (one pass = one full gradient's worth of products)


def spin_gradient(grad: Tensor, x: Tensor, mean: Tensor, scale: Tensor, l1: float = 0.0,
                  weight_mask: Tensor | None = None) -> Tensor:
    """Per-neuron max |∂F/∂(h_i, J_i·)| of the mean penalised objective, in spin coordinates.

    ``grad`` is the gradient of the smooth part of ``F`` wrt the scaled coordinates ``x = (v, b̃)``
    (see :class:`_Problem`). With ``w = 4J`` and ``b = 2(h − Σ_j J_ij)``:
    ``∂F/∂J_ij = 4 ∂F/∂w_ij − 2 ∂F/∂b_i`` and ``∂F/∂h_i = 2 ∂F/∂b_i``. With ``l1 > 0`` the
    minimum-norm subgradient is used (zero where ``|∂F/∂J_ij| ≤ l1`` at ``J_ij = 0``). At the
    optimum every entry is 0; the value is a moment mismatch, e.g.
    ``⟨s_i,t s_j,t−1⟩_data − ⟨tanh(u_i,t) s_j,t−1⟩_data`` (plus the penalty terms).
    """
    grad_b = grad[:, -1:]
    grad_j = 4 * (grad[:, :-1] * scale + grad_b * mean) - 2 * grad_b
    if weight_mask is not None:
        grad_j = grad_j * weight_mask
    if l1 > 0:
        coupling = x[:, :-1]
        shrunk = torch.sign(grad_j) * torch.clamp(grad_j.abs() - l1, min=0)
        grad_j = torch.where(coupling != 0, grad_j + l1 * torch.sign(coupling), shrunk)
    return torch.maximum(grad_j.abs().amax(dim=1), 2 * grad_b.abs().squeeze(1))


ChunkSource = Callable[[Tensor | None], Iterable[tuple[Tensor, Tensor]]]


class _Problem:
    """The penalised mean objective in scaled coordinates ``x = (v, b̃)``, shape (n_out, n_in+1).

    ``w = v / scale`` and ``b = b̃ − w·mean``: inputs are centred on their means and scaled
    *inside the parameterisation*, so the data are never copied or transformed. Centring
    decorrelates bias and weights. ``scale[i, j] = sqrt(var_j + l2/(16 c_i))`` (``c_i`` the
    neuron's curvature ȳ(1−ȳ)) equalises the diagonal of the penalised Hessian, so every
    coordinate of a neuron has curvature ≈ c_i and one L-BFGS metric fits them all; without
    the penalty term a ridge on rarely active inputs makes the problem stiff.
    """

    def __init__(self, chunks: ChunkSource, n_samples: int, mean: Tensor, scale: Tensor, l2: float,
                 weight_mask: Tensor | None) -> None:
        self.chunks, self.n_samples, self.mean, self.scale, self.l2 = chunks, n_samples, mean, scale, l2
        self.weight_mask = weight_mask
        self.n_passes = 0.0
        self.n_out_total = 1

    def natural(self, x: Tensor, rows: Tensor) -> tuple[Tensor, Tensor]:
        weights = x[:, :-1] / self.scale[rows]
        if self.weight_mask is not None:
            weights = weights * self.weight_mask[rows]
        return weights, x[:, -1] - weights @ self.mean

    def criterion(self, grad: Tensor, x: Tensor, rows: Tensor, l1: float) -> Tensor:
        """:func:`spin_gradient` for neurons ``rows`` (couplings' signs read from ``x``)."""
        mask = None if self.weight_mask is None else self.weight_mask[rows]
        return spin_gradient(grad, x, self.mean, self.scale[rows], l1, mask)

    def evaluate(self, x: Tensor, rows: Tensor, with_grad: bool = True) -> tuple[Tensor, Tensor | None, LossGrad]:
        """Objective per neuron (penalised mean nll) and its gradient wrt ``x`` for neurons ``rows``."""
        weights, bias = self.natural(x, rows)
        mask = None if self.weight_mask is None else self.weight_mask[rows]
        select = None if rows.numel() == self.n_out_total else rows
        raw = accumulate(lambda: self.chunks(select), weights, bias, mask, with_grad=with_grad)
        self.n_passes += rows.numel() / self.n_out_total * (1.0 if with_grad else 0.5)
        objective = raw.loss / self.n_samples + self.l2 / 32 * (weights**2).sum(dim=1)
        if not with_grad:
            return objective, None, raw
        grad_w = raw.grad_weights / self.n_samples + self.l2 / 16 * weights
        grad_b = raw.grad_bias / self.n_samples
        grad_v = (grad_w - grad_b[:, None] * self.mean) / self.scale[rows]
        if mask is not None:
            grad_v = grad_v * mask
        return objective, torch.cat([grad_v, grad_b[:, None]], dim=1), raw


def _two_loop(grad: Tensor, s_hist: list[Tensor], y_hist: list[Tensor], rho_hist: list[Tensor],
              gamma: Tensor) -> Tensor:
    """Batched L-BFGS two-loop recursion: one curvature history per neuron (row)."""
    q = grad.clone()
    alphas = []
    for s, y, rho in zip(reversed(s_hist), reversed(y_hist), reversed(rho_hist), strict=True):
        alpha = rho * (s * q).sum(dim=1)
        q -= alpha[:, None] * y
        alphas.append(alpha)
    r = gamma[:, None] * q
    for s, y, rho, alpha in zip(s_hist, y_hist, rho_hist, reversed(alphas), strict=True):
        beta = rho * (y * r).sum(dim=1)
        r += s * (alpha - beta)[:, None]
    return -r


def fit_logistic(chunks: ChunkSource, n_out: int, n_samples: int, *, mean: Tensor, scale: Tensor,
                 target_mean: Tensor, l2: float = 0.0, l1: float = 0.0, weight_mask: Tensor | None = None,
                 max_iter: int = 200, tol: float = 1e-6, history: int = 10) -> SolverResult:
    """Minimise, for every neuron at once, ``F_i = nll_i/n + l2/2 ‖J_i‖² + l1 ‖J_i‖₁`` (``J = w/4``).

    Smooth case (``l1 == 0``): L-BFGS with one curvature history and one backtracking
    (Armijo) line search *per neuron*, in centred and scaled coordinates. The problems are
    independent, so a joint L-BFGS would mix curvature pairs of unrelated neurons and take one
    step size for all; per-neuron histories keep each quasi-Newton model exact to its own
    block of the (block-diagonal) Hessian. Neurons that meet the criterion drop out of the
    products, so later iterations get cheaper. ``l1 > 0``: accelerated proximal gradient
    (FISTA with restarts, per-neuron backtracking) in the same coordinates.

    Convergence of neuron i: :func:`spin_gradient` ``< tol``.

    Parameters
    ----------
    chunks : callable
        ``chunks(columns)`` yields ``(inputs (T, n_in), targets (T, len(columns)))`` chunks;
        ``columns`` is a LongTensor of target neurons, or None for all.
    n_out, n_samples : int
        Number of regressions (neurons) and of samples (transitions) in the data.
    mean, scale : Tensor (n_in,)
        Input means and standard deviations (float64); the coordinates are scaled by them.
    target_mean : Tensor (n_out,)
        Mean targets (spike probabilities), used to start at the independent model.
    """
    device = mean.device
    problem = _Problem(chunks, n_samples, mean, scale, l2, weight_mask)
    problem.n_out_total = n_out
    rate = target_mean.clamp(1.0 / (n_samples + 2), 1 - 1.0 / (n_samples + 2))
    # Curvature of the independent model, ȳ(1−ȳ), per neuron: the first step's inverse metric.
    curvature = rate * (1 - rate)
    problem.scale = torch.sqrt(scale[None, :] ** 2 + l2 / (16 * curvature[:, None]))
    x = torch.zeros((n_out, mean.numel() + 1), dtype=torch.float64, device=device)
    x[:, -1] = torch.logit(rate)
    solve = _lbfgs if l1 == 0 else _fista
    return solve(problem, x, curvature, l1=l1, max_iter=max_iter, tol=tol, history=history)


def _lbfgs(problem: _Problem, x: Tensor, curvature: Tensor, *, l1: float, max_iter: int, tol: float,
           history: int) -> SolverResult:
    n_out = x.shape[0]
    all_rows = torch.arange(n_out, device=x.device)
    objective, grad, _ = problem.evaluate(x, all_rows)
    crit = problem.criterion(grad, x, all_rows, l1)
    converged = crit < tol
    stalled = torch.zeros_like(converged)
    s_hist: list[Tensor] = []
    y_hist: list[Tensor] = []
    rho_hist: list[Tensor] = []
    gamma = 1.0 / curvature
    loss_curve: list[float] = []
    n_iter = 0
    while n_iter < max_iter:
        rows = torch.nonzero(~(converged | stalled)).squeeze(1)
        if rows.numel() == 0:
            break
        n_iter += 1
        g = grad[rows]
        direction = _two_loop(g, [s[rows] for s in s_hist], [y[rows] for y in y_hist],
                              [r[rows] for r in rho_hist], gamma[rows])
        slope = (g * direction).sum(dim=1)
        uphill = slope >= 0  # only after round-off; fall back to the scaled steepest descent
        if bool(uphill.any()):
            direction[uphill] = -g[uphill] / curvature[rows[uphill], None]
            slope = (g * direction).sum(dim=1)
        step, x_new, f_new, g_new, accepted = _backtrack(problem, x, objective, rows, direction, slope)
        stalled[rows[~accepted]] = True
        rows_ok, s = rows[accepted], (x_new - x[rows])[accepted]
        y = (g_new - g)[accepted]
        sy, yy = (s * y).sum(dim=1), (y * y).sum(dim=1)
        good = sy > 1e-12 * torch.sqrt((s * s).sum(dim=1) * yy)
        # Neurons that skip the update get a zero pair (rho = 0), which leaves their recursion unchanged.
        s_full, y_full = torch.zeros_like(x), torch.zeros_like(x)
        rho_full = torch.zeros(n_out, dtype=x.dtype, device=x.device)
        s_full[rows_ok[good]], y_full[rows_ok[good]] = s[good], y[good]
        rho_full[rows_ok[good]] = 1.0 / sy[good]
        gamma[rows_ok[good]] = sy[good] / yy[good]
        s_hist, y_hist, rho_hist = ([*h, n][-history:] for h, n in ((s_hist, s_full), (y_hist, y_full),
                                                                     (rho_hist, rho_full)))
        x[rows_ok], objective[rows_ok], grad[rows_ok] = x_new[accepted], f_new[accepted], g_new[accepted]
        crit[rows_ok] = problem.criterion(grad[rows_ok], x[rows_ok], rows_ok, l1)
        converged = crit < tol
        loss_curve.append(float(objective.mean()))
    weights, bias = problem.natural(x, all_rows)
    return SolverResult(weights, bias, n_iter, converged, loss_curve, crit, problem.n_passes)


def _backtrack(problem: _Problem, x: Tensor, objective: Tensor, rows: Tensor, direction: Tensor,
               slope: Tensor, max_halvings: int = 40) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Per-neuron Armijo backtracking from step 1 with safeguarded quadratic interpolation.

    Each trial evaluates loss and gradient together: the unit step is accepted almost always
    near the optimum, and then the gradient for the next iteration is already paid for.
    """
    step = torch.ones(rows.numel(), dtype=x.dtype, device=x.device)
    x_new = x[rows] + direction
    f_new, g_new, _ = problem.evaluate(x_new, rows)
    f_old = objective[rows]
    pending = ~(f_new <= f_old + 1e-4 * step * slope)
    for _ in range(max_halvings):
        if not bool(pending.any()):
            break
        sub = torch.nonzero(pending).squeeze(1)
        t_next = backtrack_step(step[sub], f_new[sub] - f_old[sub] - slope[sub] * step[sub], slope[sub])
        step[sub] = t_next
        x_new[sub] = x[rows[sub]] + t_next[:, None] * direction[sub]
        f_sub, g_sub, _ = problem.evaluate(x_new[sub], rows[sub])
        f_new[sub], g_new[sub] = f_sub, g_sub
        pending[sub] = ~(f_sub <= f_old[sub] + 1e-4 * t_next * slope[sub])
    return step, x_new, f_new, g_new, ~pending


def _fista(problem: _Problem, x: Tensor, curvature: Tensor, *, l1: float, max_iter: int, tol: float,
           history: int) -> SolverResult:
    """Accelerated proximal gradient for the l1 penalty (soft thresholding of the couplings)."""
    del history
    n_out = x.shape[0]
    all_rows = torch.arange(n_out, device=x.device)
    # l1 ‖J‖₁ = (l1/4) Σ_j |v_j| / scale_j in the scaled coordinates; the bias is not penalised.
    threshold = torch.cat([l1 / 4 / problem.scale, torch.zeros((n_out, 1), dtype=x.dtype, device=x.device)], dim=1)

    def penalty(z: Tensor, rows: Tensor) -> Tensor:
        return (threshold[rows] * z.abs()).sum(dim=1)

    def prox(z: Tensor, step: Tensor, rows: Tensor) -> Tensor:
        out = torch.sign(z) * torch.clamp(z.abs() - step[:, None] * threshold[rows], min=0)
        if problem.weight_mask is not None:
            out[:, :-1] *= problem.weight_mask[rows]
        return out

    f_x, g_x, _ = problem.evaluate(x, all_rows)
    crit = problem.criterion(g_x, x, all_rows, l1)
    converged = crit < tol
    stalled = torch.zeros_like(converged)
    step = 1.0 / curvature
    momentum = torch.ones(n_out, dtype=x.dtype, device=x.device)
    y, f_y, g_y = x.clone(), f_x.clone(), g_x.clone()
    loss_curve: list[float] = []
    n_iter = 0
    while n_iter < max_iter:
        rows = torch.nonzero(~(converged | stalled)).squeeze(1)
        if rows.numel() == 0:
            break
        n_iter += 1
        pending = torch.ones(rows.numel(), dtype=torch.bool, device=x.device)
        x_new = torch.empty_like(y[rows])
        f_new, g_new = torch.empty_like(f_y[rows]), torch.empty_like(g_y[rows])
        for _ in range(40):
            sub = torch.nonzero(pending).squeeze(1)
            if sub.numel() == 0:
                break
            r = rows[sub]
            cand = prox(y[r] - step[r, None] * g_y[r], step[r], r)
            f_c, g_c, _ = problem.evaluate(cand, r)
            delta = cand - y[r]
            bound = f_y[r] + (g_y[r] * delta).sum(dim=1) + (delta * delta).sum(dim=1) / (2 * step[r])
            ok = f_c <= bound + 1e-12 * f_c.abs()
            x_new[sub], f_new[sub], g_new[sub] = cand, f_c, g_c
            step[r[~ok]] *= 0.5
            pending[sub] = ~ok
        stalled[rows[pending]] = True
        total_new, total_old = f_new + penalty(x_new, rows), f_x[rows] + penalty(x[rows], rows)
        restart = total_new > total_old  # adaptive restart (O'Donoghue & Candès 2015)
        t_next = (1 + torch.sqrt(1 + 4 * momentum[rows] ** 2)) / 2
        beta = torch.where(restart, torch.zeros_like(t_next), (momentum[rows] - 1) / t_next)
        momentum[rows] = torch.where(restart, torch.ones_like(t_next), t_next)
        y_next = x_new + beta[:, None] * (x_new - x[rows])
        x[rows], f_x[rows], g_x[rows] = x_new, f_new, g_new
        crit[rows] = problem.criterion(g_new, x_new, rows, l1)
        converged = crit < tol
        moved = beta != 0
        y[rows], f_y[rows], g_y[rows] = x_new, f_new, g_new
        if bool(moved.any()):
            r = rows[moved]
            f_m, g_m, _ = problem.evaluate(y_next[moved], r)
            y[r], f_y[r], g_y[r] = y_next[moved], f_m, g_m
        loss_curve.append(float((f_x + penalty(x, all_rows)).mean()))
    weights, bias = problem.natural(x, all_rows)
    return SolverResult(weights, bias, n_iter, converged, loss_curve, crit, problem.n_passes)


def backtrack_step(step: torch.Tensor, rise: torch.Tensor, slope: torch.Tensor) -> torch.Tensor:
    """Next trial step of a per-row backtracking line search.

    Minimiser of the quadratic through f(0), f'(0) = ``slope`` and f(step) (``rise`` is
    f(step) − f(0) − slope·step), safeguarded to [0.1, 0.5]·step; halving where it is not finite.
    """
    t_next = -slope * step * step / (2 * rise)
    t_next = torch.where(torch.isfinite(t_next), t_next, 0.5 * step)
    return torch.minimum(torch.maximum(t_next, 0.1 * step), 0.5 * step)
