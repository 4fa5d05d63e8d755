"""Row-decoupled inverse-Ising objectives (pseudolikelihood, MPF) and their batched, chunked solver.

Both objectives depend on the parameters only through the conditional local fields::

    ũ_b,i = h_i + Σ_{j≠i} J_ij s_b,j          (b = sample, i = neuron)

    pseudolikelihood   ℓ(ũ, s) = ln 2cosh ũ − s ũ = softplus(−2 s ũ)   (−ln P(s_i | s_−i))
    MPF                ℓ(ũ, s) = exp(−s ũ)          (flow out of the data, single-spin flips)

and each neuron's row ``(h_i, J_i·)`` enters only its own column ``ũ_·,i``. Fitting is therefore
N independent convex problems sharing one design matrix (Aurell & Ekeberg, PRL 108, 090201,
2012: asymmetric PLM, symmetrised afterwards by the caller).

**Shared kernel.** With spikes ``n = (s + 1)/2`` the pseudolikelihood row i *is* the logistic
regression of ``n_i`` on ``n_−i`` used by the kinetic Ising model (``_logistic``, PHYSICS.md
§6), with logit ``z_i = 2ũ_i = b_i + Σ_j w_ij n_j``, ``w = 4J``, ``b = 2(h − Σ_j J_ij)`` and the
diagonal of ``w`` masked. The solver works in these (w, b) coordinates and evaluates the
objective with ``_logistic.accumulate``: the PL chunk kernel is ``_logistic.loss_and_grad``
itself; MPF supplies its own kernel with the same signature.

**Memory.** The data are held once as booleans (B·N bytes); every pass casts one chunk of
``chunk_bins`` rows to the compute dtype, so the working memory is O(chunk·N + N²) whatever B.

**Solver.** Batched L-BFGS with one curvature history and one Armijo line search per row, and
one shared preconditioner: the second-moment matrix ``M = ⟨x xᵀ⟩`` of ``x = (n, 1)`` bounds the
PL Hessian (``σ' ≤ ¼``, Böhning & Lindsay 1988) and equals it, up to a per-row factor, at the
independent-model start (w = 0: the logit is constant per row), so the first step is a Newton
step. The inverse of M with neuron i's own input removed is a rank-one downdate of ``M⁻¹``, so
all rows get their Newton-like metric for one (N+1)² inversion. At w = 0 each row's slope
depends on its own target only, so the starting objective and gradient follow from M without a
data pass. An iteration costs one pass (two (chunk × N)·(N × N) products per chunk) when every
row accepts the unit step; converged rows drop out of the products.

Objectives are means over samples plus ``l2/2 · Σ_j J_ij²`` per row.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal, NamedTuple

import torch
from torch import Tensor

from . import _logistic
from ._logistic import LossGrad, backtrack_step

__all__ = ["RowObjective", "RowFit", "default_chunk_bins", "conditional_fields", "row_losses", "fit_rows",
           "mpf_loss_and_grad", "mpf_loss_only"]

RowObjective = Literal["pseudolikelihood", "mpf"]


def default_chunk_bins(n_units: int, device: torch.device) -> int:
    """Samples per chunk: ~2 MB float64 work arrays on a CPU, 65,536 rows on an accelerator.

    On our 2-core CPU at N = 100, 1024-2048 rows (0.8-1.6 MB per array, cache-resident) took
    1.2-1.3 s of CPU time against 1.6 s at 8192 and 2.6 s at 65,536; a GPU wants large products.
    """
    if device.type != "cpu":
        return 65536
    return int(min(65536, max(256, 2**18 // max(n_units, 1))))


class RowFit(NamedTuple):
    """Output of :func:`fit_rows`: asymmetric rows before symmetrisation (float64)."""

    fields: Tensor  # (N,) h_i
    couplings: Tensor  # (N, N) row i = J_i·, zero diagonal, not yet symmetric
    n_iter: int
    converged: bool
    max_gradient: float  # final max |∂f_i/∂(h_i, J_i·)| over rows and parameters
    n_passes: float  # data passes (one pass = loss and gradient of every row over all samples)


def conditional_fields(spins: Tensor, fields: Tensor, couplings: Tensor) -> Tensor:
    """``ũ_b,i = h_i + Σ_j J_ij s_b,j`` for ±1 ``spins`` (B, N) and zero-diagonal ``couplings``."""
    return torch.addmm(fields, spins, couplings.T)


def row_losses(spins: Tensor, fields: Tensor, couplings: Tensor, objective: RowObjective) -> Tensor:
    """Mean over samples of ℓ for every neuron, shape (N,), without penalty (nats for PL)."""
    aligned = conditional_fields(spins, fields, couplings).mul_(spins)
    if objective == "pseudolikelihood":
        return torch.nn.functional.softplus(aligned.mul_(-2.0)).mean(dim=0)
    return aligned.neg_().exp_().mean(dim=0)


# ---------------------------------------------------------------------- MPF chunk kernel (0/1 coordinates)
def _flow(z: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
    """``exp(−s z/2)`` and ``−s`` for logits ``z = 2ũ`` and 0/1 targets (``s = 2y − 1``)."""
    minus_spin = targets * -2.0 + 1.0
    return torch.mul(z, minus_spin).mul_(0.5).exp_(), minus_spin


def mpf_loss_and_grad(inputs: Tensor, targets: Tensor, weights: Tensor, bias: Tensor,
                      weight_mask: Tensor | None = None) -> LossGrad:
    """MPF flow sums and gradients over one chunk, same signature as ``_logistic.loss_and_grad``.

    ``ℓ = exp(−s z/2)`` with ``z = b + w·x``; ``∂ℓ/∂z = −(s/2) ℓ``.
    """
    flow, minus_spin = _flow(_logistic.logits(inputs, weights, bias), targets)
    loss = flow.sum(dim=0, dtype=torch.float64)
    residual = flow.mul_(minus_spin).mul_(0.5)
    grad_weights = (residual.T @ inputs).to(torch.float64)
    if weight_mask is not None:
        grad_weights = grad_weights * weight_mask
    return LossGrad(loss, grad_weights, residual.sum(dim=0, dtype=torch.float64))


def mpf_loss_only(inputs: Tensor, targets: Tensor, weights: Tensor, bias: Tensor) -> Tensor:
    """MPF flow sums over one chunk, same signature as ``_logistic.loss_only``."""
    return _flow(_logistic.logits(inputs, weights, bias), targets)[0].sum(dim=0, dtype=torch.float64)


_KERNELS = {"pseudolikelihood": None, "mpf": (mpf_loss_and_grad, mpf_loss_only)}


def _pointwise(objective: RowObjective, z: Tensor, target: float) -> tuple[Tensor, Tensor, Tensor]:
    """ℓ, ∂ℓ/∂z and ∂²ℓ/∂z² at logits ``z`` for a constant 0/1 ``target`` (float64, element-wise)."""
    if objective == "pseudolikelihood":
        p = torch.sigmoid(z)
        return torch.nn.functional.softplus(z) - target * z, p - target, p * (1 - p)
    minus_spin = 1.0 - 2.0 * target
    flow = torch.exp(0.5 * minus_spin * z)
    return flow, 0.5 * minus_spin * flow, 0.25 * flow


# ---------------------------------------------------------------------- data
class _Spikes:
    """0/1 spikes held as booleans (B·N bytes), yielded as compute-dtype chunks of rows."""

    def __init__(self, spikes: Tensor, dtype: torch.dtype, chunk_bins: int) -> None:
        self.spikes, self.dtype, self.chunk_bins = spikes, dtype, chunk_bins
        self.n_samples, self.n_units = spikes.shape

    def __iter__(self) -> Iterator[Tensor]:
        for start in range(0, self.n_samples, self.chunk_bins):
            yield self.spikes[start:start + self.chunk_bins].to(self.dtype)

    def pairs(self, rows: Tensor | None) -> Iterator[tuple[Tensor, Tensor]]:
        """``(inputs, targets)`` for ``_logistic.accumulate``: targets are the rows' own columns."""
        for start in range(0, self.n_samples, self.chunk_bins):
            raw = self.spikes[start:start + self.chunk_bins]
            block = raw.to(self.dtype)
            # Gathering a column subset from the 1-byte booleans is cheaper than from the floats.
            yield block, (block if rows is None else raw.index_select(1, rows).to(self.dtype))

    def moments(self) -> tuple[Tensor, Tensor]:
        """``⟨n⟩`` (N,) and ``⟨n nᵀ⟩`` (N, N) in float64."""
        first = torch.zeros(self.n_units, dtype=torch.float64, device=self.spikes.device)
        second = torch.zeros((self.n_units, self.n_units), dtype=torch.float64, device=self.spikes.device)
        for block in self:
            first += block.sum(dim=0, dtype=torch.float64)
            second += (block.T @ block).to(torch.float64)
        return first / self.n_samples, second / self.n_samples


class _Problem:
    """Mean penalised objective of rows ``rows`` at ``x = (w_i·, b_i)`` (shape (k, N+1)) and its gradient."""

    def __init__(self, data: _Spikes, objective: RowObjective, l2: float, mask: Tensor) -> None:
        self.data, self.objective, self.l2, self.mask = data, objective, l2, mask
        self.n_passes = 0.0

    def evaluate(self, x: Tensor, rows: Tensor) -> tuple[Tensor, Tensor]:
        n = self.data.n_units
        weights, bias = x[:, :-1], x[:, -1]
        select = None if rows.numel() == n else rows
        raw = _logistic.accumulate(lambda: self.data.pairs(select), weights, bias, self.mask[rows],
                                   kernels=_KERNELS[self.objective])
        self.n_passes += rows.numel() / n
        value = raw.loss / self.data.n_samples
        grad = torch.cat([raw.grad_weights / self.data.n_samples, (raw.grad_bias / self.data.n_samples)[:, None]],
                         dim=1)
        if self.l2 > 0:  # l2/2 Σ J² = l2/32 Σ w²
            value = value + self.l2 / 32 * (weights**2).sum(dim=1)
            grad[:, :-1] += self.l2 / 16 * weights
        return value, grad

    def initial(self, bias: Tensor, mean: Tensor, second: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Objective, gradient and mean curvature at ``w = 0`` from the moments alone (no data pass).

        With a constant logit per row, ℓ and ∂ℓ/∂z take one value when the row's own neuron
        spikes (``y = 1``) and another when it is silent, so the sums over samples are moments.
        """
        loss1, slope1, curv1 = _pointwise(self.objective, bias, 1.0)
        loss0, slope0, curv0 = _pointwise(self.objective, bias, 0.0)
        value = mean * loss1 + (1 - mean) * loss0
        # ⟨∂ℓ/∂z · n_j⟩ = slope1 ⟨n_i n_j⟩ + slope0 (⟨n_j⟩ − ⟨n_i n_j⟩)
        grad_w = slope1[:, None] * second + slope0[:, None] * (mean[None, :] - second)
        grad_b = mean * slope1 + (1 - mean) * slope0
        grad = torch.cat([grad_w * self.mask, grad_b[:, None]], dim=1)
        return value, grad, mean * curv1 + (1 - mean) * curv0

    @staticmethod
    def spin_gradient(grad: Tensor, mask: Tensor) -> Tensor:
        """Per-row max |∂F/∂(h_i, J_i·)|: ``∂F/∂h = 2 ∂F/∂b``, ``∂F/∂J_ij = 4 ∂F/∂w_ij − 2 ∂F/∂b_i``."""
        grad_b = grad[:, -1:]
        grad_j = (4 * grad[:, :-1] - 2 * grad_b) * mask
        return torch.maximum(grad_j.abs().amax(dim=1), 2 * grad_b.abs().squeeze(1))


class _Preconditioner:
    """Applies ``(M_−i)⁻¹`` to rows of a (k, N+1) matrix (columns: w_i·, then b_i).

    ``(M_−i)⁻¹ = P_−i,−i − P_−i,i P_i,−i / P_ii`` with ``P = M⁻¹`` (block inversion), so one
    (N+1)² inversion serves all N rows; entry i of a row stays 0.
    """

    def __init__(self, mean: Tensor, second: Tensor, l2: float) -> None:
        n = mean.numel()
        moment = torch.empty((n + 1, n + 1), dtype=torch.float64, device=mean.device)
        moment[:n, :n] = second
        moment[:n, n] = moment[n, :n] = mean
        moment[n, n] = 1.0
        # Ridge: the penalty's curvature relative to the Böhning bound (¼M + l2/16), plus a
        # relative jitter so M is positive definite even when two neurons are identical.
        moment[:n, :n].diagonal().add_(l2 / 4 + 1e-9 * float(second.diagonal().max()))
        self.inverse = torch.cholesky_inverse(torch.linalg.cholesky(moment))
        self.diag = self.inverse.diagonal()[:n]

    def __call__(self, matrix: Tensor, rows: Tensor) -> Tensor:
        product = matrix @ self.inverse
        coefficient = product[torch.arange(rows.numel(), device=rows.device), rows] / self.diag[rows]
        return product - coefficient[:, None] * self.inverse[rows]


def _row_dot(a: Tensor, b: Tensor) -> Tensor:
    return (a * b).sum(dim=1)


def _two_loop(grad: Tensor, history: list[tuple[Tensor, Tensor, Tensor]], precondition: _Preconditioner,
              rows: Tensor, scale: Tensor) -> Tensor:
    """L-BFGS two-loop recursion row by row with ``H0 = scale · (M_−i)⁻¹``; returns the direction."""
    q = grad.clone()
    alphas = []
    for step, change, rho in reversed(history):
        a = rho[rows] * _row_dot(step[rows], q)
        q -= change[rows] * a[:, None]
        alphas.append(a)
    r = precondition(q, rows) * scale[rows, None]
    for (step, change, rho), a in zip(history, reversed(alphas), strict=True):
        b = rho[rows] * _row_dot(change[rows], r)
        r += step[rows] * (a - b)[:, None]
    return -r


def fit_rows(spins: Tensor, objective: RowObjective, l2: float = 0.0, max_iter: int = 200, tol: float = 1e-6,
             memory: int = 10, chunk_bins: int | None = None, dtype: torch.dtype | None = None) -> RowFit:
    """Minimise the mean row objective of every neuron at once (batched preconditioned L-BFGS).

    Parameters
    ----------
    spins : Tensor (B, N)
        Samples: booleans (True = spike) or ±1 spins in a floating dtype.
    objective : {"pseudolikelihood", "mpf"}
    l2 : float
        Ridge ``l2/2 · Σ_j J_ij²`` added to each row's mean objective (fields unpenalised).
    max_iter : int
        Iteration cap; an iteration is about one data pass.
    tol : float
        Stop when every row's largest gradient entry (wrt ``h_i``, ``J_ij``) is below ``tol``.
    memory : int
        Number of L-BFGS correction pairs kept per row.
    chunk_bins : int, optional
        Samples per chunk: working memory is O(chunk_bins·N + N²) (default:
        :func:`default_chunk_bins`).
    dtype : torch.dtype, optional
        Compute dtype of the chunks (default: that of floating ``spins``, else float64);
        parameters, sums and the L-BFGS state are float64 whatever it is.

    Returns
    -------
    RowFit
    """
    if dtype is None:
        dtype = spins.dtype if spins.dtype.is_floating_point else torch.float64
    if chunk_bins is None:
        chunk_bins = default_chunk_bins(spins.shape[1], spins.device)
    data = _Spikes(spins if spins.dtype == torch.bool else spins > 0, dtype, int(chunk_bins))
    n, device = data.n_units, spins.device
    mean, second = data.moments()
    mask = 1.0 - torch.eye(n, dtype=torch.float64, device=device)
    problem = _Problem(data, objective, l2, mask)
    precondition = _Preconditioner(mean, second, l2)
    x = torch.zeros((n, n + 1), dtype=torch.float64, device=device)
    # Start at the independent model (both objectives' optimum with w = 0 is b = logit⟨n⟩).
    rate = mean.clamp(1.0 / (data.n_samples + 2), 1 - 1.0 / (data.n_samples + 2))
    x[:, -1] = torch.logit(rate)
    value, grad, curvature = problem.initial(x[:, -1], mean, second)
    # First-step scale: the row's curvature is exactly curvature·M at w = 0 for PL.
    scale = 1.0 / curvature.clamp_min(1e-12)
    criterion = problem.spin_gradient(grad, mask)
    stalled = torch.zeros(n, dtype=torch.bool, device=device)
    history: list[tuple[Tensor, Tensor, Tensor]] = []
    n_iter = 0
    while n_iter < max_iter:
        rows = torch.nonzero(~((criterion <= tol) | stalled)).squeeze(1)
        if rows.numel() == 0:
            break
        n_iter += 1
        g = grad[rows]
        direction = _two_loop(g, history, precondition, rows, scale)
        direction[:, :-1] *= mask[rows]  # w_ii stays exactly 0 despite round-off in the downdate
        slope = _row_dot(g, direction)
        uphill = slope >= 0  # only after round-off: restart those rows on the preconditioned gradient
        if bool(uphill.any()):
            direction[uphill] = -precondition(g[uphill], rows[uphill]) * scale[rows[uphill], None]
            slope = _row_dot(g, direction)
        x_new, value_new, grad_new, accepted = _backtrack(problem, x, value, rows, direction, slope)
        stalled[rows[~accepted]] = True
        rows_ok = rows[accepted]
        step, change = (x_new - x[rows])[accepted], (grad_new - g)[accepted]
        curv = _row_dot(step, change)
        good = curv > 1e-12 * torch.sqrt(_row_dot(step, step) * _row_dot(change, change))
        # Rows that skip the update get a zero pair (rho = 0), which leaves their recursion unchanged.
        full = [torch.zeros_like(x), torch.zeros_like(x), torch.zeros(n, dtype=torch.float64, device=device)]
        keep = rows_ok[good]
        full[0][keep], full[1][keep], full[2][keep] = step[good], change[good], 1.0 / curv[good]
        history = [*history, tuple(full)][-memory:]
        # Barzilai-Borwein-like rescaling of the preconditioner: sᵀy / yᵀ H0 y.
        denominator = _row_dot(change[good], precondition(change[good], keep))
        positive = denominator > 0
        scale[keep[positive]] = curv[good][positive] / denominator[positive]
        x[rows_ok], value[rows_ok], grad[rows_ok] = x_new[accepted], value_new[accepted], grad_new[accepted]
        criterion[rows_ok] = problem.spin_gradient(grad[rows_ok], mask[rows_ok])
    max_gradient = float(criterion.max())
    weights, bias = x[:, :-1] * mask, x[:, -1]
    couplings = weights / 4
    fields = bias / 2 + couplings.sum(dim=1)
    return RowFit(fields, couplings, n_iter, max_gradient <= tol, max_gradient, problem.n_passes)


def _backtrack(problem: _Problem, x: Tensor, value: Tensor, rows: Tensor, direction: Tensor, slope: Tensor,
               max_halvings: int = 40) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Per-row Armijo backtracking from the unit step with safeguarded quadratic interpolation.

    Each trial evaluates objective and gradient together: the unit step is accepted almost
    always, and then the next iteration's gradient is already paid for.
    """
    step = torch.ones(rows.numel(), dtype=torch.float64, device=x.device)
    x_new = x[rows] + direction
    value_new, grad_new = problem.evaluate(x_new, rows)
    # Objectives computed in float32 carry a relative error ~eps: a decrease smaller than that
    # cannot be seen, so the sufficient-decrease test allows it (approximate Armijo, as in
    # Hager & Zhang 2005); in float64 the allowance is negligible.
    value_old = value[rows] + 10 * torch.finfo(problem.data.dtype).eps * value[rows].abs()
    pending = ~(value_new <= value_old + 1e-4 * slope)
    for _ in range(max_halvings):
        if not bool(pending.any()):
            break
        sub = torch.nonzero(pending).squeeze(1)
        t_next = backtrack_step(step[sub], value_new[sub] - value_old[sub] - slope[sub] * step[sub], slope[sub])
        step[sub] = t_next
        x_new[sub] = x[rows[sub]] + t_next[:, None] * direction[sub]
        value_sub, grad_sub = problem.evaluate(x_new[sub], rows[sub])
        value_new[sub], grad_new[sub] = value_sub, grad_sub
        pending[sub] = ~(value_sub <= value_old[sub] + 1e-4 * t_next * slope[sub])
    return x_new, value_new, grad_new, ~pending
