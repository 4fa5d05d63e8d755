"""Inverse problem: fields and couplings from measured m, C, D with a Plefka approximation.

Two solvers (PHYSICS.md §1.3, §2):

* ``"closed"``: the classical reconstruction formulas. nMF and Plefka[t]: ``J = A⁻¹ D C_p⁻¹``
  (Roudi & Hertz 2011); TAP: ``J = J^nMF / (1 − F_i)`` with ``F_i`` the smallest root of
  ``F (1 − F)² = A_i² Σ_j (J^nMF_ij)² A_p,j``; Plefka[t−1]: Mézard–Sakellariou
  ``J = diag(a)⁻¹ D C_p⁻¹``, solved self-consistently. Fields from each method's m equation.
* ``"moment-matching"`` (default): find (h, J) whose one-step prediction from the measured
  previous-step moments reproduces the measured ``m`` and ``D`` exactly — the fixed point the
  reference scripts approach by plain gradient steps — by L-BFGS (scipy) on the squared
  mismatch, in whitened variables ``Y = A J R`` (``R = C_p``, or ``diag(A_p)`` for nMF/TAP) that
  make the problem close to the identity. Starts from the closed form. Convergence is reported
  (``converged``, ``n_iter``, residuals) and a :class:`~spikefield.errors.ConvergenceWarning`
  is raised when the residual stays above ``tol``.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.linalg
import scipy.optimize
import torch
from numpy.typing import ArrayLike, NDArray

from .._device import resolve_device
from ..errors import ConvergenceWarning, ValidationError, did_you_mean
from ._validation import as_dtype, as_magnetisation, as_square, canonical_method, positive_float, positive_int
from .predict import predict_m_D
from .quadrature import gauss_hermite_rule
from .solvers import RootReport, default_tol

__all__ = ["inverse", "InverseResult"]

SOLVERS = ("moment-matching", "closed")


@dataclass
class InverseResult:
    """Fitted ``(h, J)``; unpacks as ``h, J = inverse(...)``.

    Attributes
    ----------
    h : (N,) array
        Fields (β folded in).
    J : (N, N) array
        Couplings, ``J[i, l]`` from l at t−1 to i at t.
    method, order, solver : str, int, str
    converged : bool
        The solver met its tolerance (moment matching: ``max |residual| <= tol``) and the
        method's inner self-consistency solve converged at the returned parameters.
    n_iter : int
        Iterations of the solver (L-BFGS iterations, or self-consistency sweeps for the closed
        forms that need them).
    residual_m, residual_D : float
        Largest absolute mismatch between the method's prediction and the data.
    message : str
        What the solver said.
    root_report : RootReport or None
        The inner root solve (TAP, Plefka[t], Plefka2[t]) at the returned parameters.
    """

    h: NDArray[np.float64]
    J: NDArray[np.float64]
    method: str
    order: int
    solver: str
    converged: bool
    n_iter: int
    residual_m: float
    residual_D: float
    message: str = ""
    root_report: RootReport | None = None

    def __iter__(self) -> Iterator[NDArray[np.float64]]:
        return iter((self.h, self.J))

    def __repr__(self) -> str:
        return (f"InverseResult(method={self.method!r}, order={self.order}, solver={self.solver!r}, "
                f"converged={self.converged}, n_iter={self.n_iter}, residual_m={self.residual_m:.2e}, "
                f"residual_D={self.residual_D:.2e})")


# ---------------------------------------------------------------------------- closed forms
def _nmf_couplings(m: NDArray, D: NDArray, C_p: NDArray) -> NDArray:
    """``A⁻¹ D C_p⁻¹`` through a Cholesky solve (C_p is a covariance)."""
    try:
        right = scipy.linalg.cho_solve(scipy.linalg.cho_factor(C_p), D.T).T
    except np.linalg.LinAlgError as exc:
        raise ValidationError("C_prev is not positive definite; the closed-form inverse needs an invertible "
                              "covariance (more data, or drop silent/duplicate neurons).") from exc
    return right / (1.0 - m * m)[:, None]


def _tap_roots(rhs: NDArray) -> tuple[NDArray, bool]:
    """Smallest root of ``F(1 − F)² = rhs`` on ``[0, 1/3]`` (bisection; monotone there)."""
    low, high = np.zeros_like(rhs), np.full_like(rhs, 1.0 / 3.0)
    for _ in range(80):
        mid = 0.5 * (low + high)
        above = mid * (1 - mid) ** 2 > rhs
        high, low = np.where(above, mid, high), np.where(above, low, mid)
    # No real root when rhs > 4/27 (the maximum): the TAP reconstruction does not exist.
    return 0.5 * (low + high), bool(np.all(rhs <= 4.0 / 27.0))


def _solve_field(m: NDArray, variance: NDArray, nodes: NDArray, weights: NDArray) -> tuple[NDArray, NDArray]:
    """g with ``<tanh(g + sqrt(Δ) z)> = m`` (Newton), and ``a = <1 − tanh²>`` there."""
    g = np.arctanh(m)
    spread = np.sqrt(np.maximum(variance, 0))[:, None] * nodes[None, :]
    for _ in range(100):
        values = np.tanh(g[:, None] + spread)
        mean, slope = values @ weights, (1 - values**2) @ weights
        step = (mean - m) / slope
        g = g - step
        if np.max(np.abs(step)) < 1e-14:
            break
    values = np.tanh(g[:, None] + spread)
    return g, (1 - values**2) @ weights


def _closed_plefka_t1(m: NDArray, D: NDArray, m_p: NDArray, C_p: NDArray, tol: float,
                      max_iter: int) -> tuple[NDArray, NDArray, int, bool]:
    """Mézard–Sakellariou: ``J = diag(a)⁻¹ D C_p⁻¹`` with ``a`` self-consistent in Δ(J)."""
    B = _nmf_couplings(np.zeros_like(m), D, C_p)  # D C_p⁻¹
    nodes, weights = gauss_hermite_rule(64)
    row_power, a = (B**2) @ (1 - m_p**2), 1 - m**2
    for sweep in range(1, max_iter + 1):  # noqa: B007 - the sweep count is reported
        g, a_new = _solve_field(m, row_power / a**2, nodes, weights)
        change, a = np.max(np.abs(a_new - a)), a_new
        if change <= tol:
            break
    J = B / a[:, None]
    return g - J @ m_p, J, sweep, change <= tol


def closed_form(method: str, order: int, m: NDArray, D: NDArray, m_p: NDArray, C_p: NDArray, tol: float = 1e-12,
                max_iter: int = 200) -> tuple[NDArray, NDArray, int, bool, str]:
    """Classical reconstruction ``(h, J, n_iter, ok, message)`` for ``method`` (not Plefka2[t])."""
    if method == "plefka_t1":
        h, J, sweeps, ok = _closed_plefka_t1(m, D, m_p, C_p, tol, max_iter)
        return h, J, sweeps, ok, "Mezard-Sakellariou self-consistency" + ("" if ok else " did not converge")
    J = _nmf_couplings(m, D, C_p)
    A_p, message, ok = 1 - m_p**2, "closed form", True
    if method == "tap":
        F, ok = _tap_roots((1 - m**2) ** 2 * ((J**2) @ A_p))
        J = J / (1 - F)[:, None]
        message = "closed form" if ok else "TAP closed form has no real root for some neurons (F clipped at 1/3)"
        return np.arctanh(m) - J @ m_p + m * ((J**2) @ A_p), J, 0, ok, message
    h = np.arctanh(m) - J @ m_p
    if method == "plefka_t" and order == 2:
        h = h + m * np.einsum("ij,jk,ik->i", J, C_p, J)
    return h, J, 0, ok, message


# ---------------------------------------------------------------------------- moment matching
class _Objective:
    """½‖m^MF − m‖² + ½‖D^MF − D‖² and its gradient in whitened variables ``(u, Y)``.

    ``J = A⁻¹ Y R⁻¹`` and ``h = u / A − J m_p``, so that ``∂m^MF/∂u ≈ I`` and ``∂D^MF/∂Y ≈ I``.
    """

    def __init__(self, method: str, order: int, data: dict[str, torch.Tensor], preconditioner: torch.Tensor,
                 quadrature: tuple[torch.Tensor, torch.Tensor], root_tol: float, root_max_iter: int) -> None:
        self.method, self.order, self.data = method, order, data
        self.root_tol, self.root_max_iter = root_tol, root_max_iter
        self.report = RootReport(True, 0, 0.0)
        self.size = data["m"].numel()
        self.inv_A = 1.0 / (1.0 - data["m"] ** 2)
        self.R, self.R_inv = preconditioner, torch.linalg.inv(preconditioner)
        self.quadrature = quadrature
        self.worst = (np.inf, np.inf)

    def to_params(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        u, Y = x[: self.size], x[self.size:].reshape(self.size, self.size)
        J = (Y @ self.R_inv) * self.inv_A[:, None]
        return u * self.inv_A - J @ self.data["m_p"], J

    def from_params(self, h: torch.Tensor, J: torch.Tensor) -> torch.Tensor:
        A = 1.0 / self.inv_A
        u = A * (h + J @ self.data["m_p"])
        return torch.cat([u, ((J * A[:, None]) @ self.R).reshape(-1)])

    def __call__(self, x_np: NDArray) -> tuple[float, NDArray]:
        x = torch.as_tensor(x_np, dtype=self.R.dtype, device=self.R.device).requires_grad_(True)
        h, J = self.to_params(x)
        d = self.data
        m, D, self.report = predict_m_D(self.method, self.order, h, J, d["m_p"], d["C_p"], d["D_p"],
                                        tol=self.root_tol, max_iter=self.root_max_iter, quadrature=self.quadrature)
        r_m, r_D = m - d["m"], D - d["D"]
        loss = 0.5 * (r_m.square().sum() + r_D.square().sum())
        (grad,) = torch.autograd.grad(loss, x)
        self.worst = (float(r_m.detach().abs().max()), float(r_D.detach().abs().max()))
        return float(loss.detach()), grad.cpu().numpy().astype(np.float64)


def _moment_matching(objective: _Objective, h0: NDArray, J0: NDArray, tol: float,
                     max_iter: int) -> tuple[NDArray, NDArray, int, str]:
    dev, dt = objective.R.device, objective.R.dtype
    x0 = objective.from_params(torch.as_tensor(h0, dtype=dt, device=dev), torch.as_tensor(J0, dtype=dt, device=dev))
    result = scipy.optimize.minimize(objective, x0.cpu().numpy(), jac=True, method="L-BFGS-B",
                                     options={"maxiter": max_iter, "maxcor": 30, "ftol": 0.0, "gtol": 0.05 * tol,
                                              "maxls": 50})
    objective(result.x)  # residuals at the returned point (L-BFGS may end on a trial point)
    with torch.no_grad():
        h, J = objective.to_params(torch.as_tensor(result.x, dtype=dt, device=dev))
    return h.cpu().numpy(), J.cpu().numpy(), int(result.nit), str(result.message)


def _unpack_statistics(m: Any, C: Any, D: Any, m_prev: Any, C_prev: Any, D_prev: Any) -> dict[str, NDArray]:
    if isinstance(m, Mapping):
        stats = m
        given = {"C": C, "D": D, "m_prev": m_prev, "C_prev": C_prev, "D_prev": D_prev}
        clash = [name for name, value in given.items() if value is not None and name in stats]
        if clash:
            # The mapping would silently win; make the user choose.
            raise ValidationError(f"inverse got a statistics mapping and also {clash} as arguments; the mapping "
                                  "already holds them. Pass either the mapping alone or the arrays alone.")
        missing = [name for name in ("m", "C", "D") if name not in stats]
        if missing:
            raise ValidationError(f"the statistics mapping passed to inverse lacks {missing}; expected the output "
                                  "of spikefield.meanfield.statistics (keys 'm', 'C', 'D', optionally "
                                  "'m_prev', 'C_prev', 'D_prev').")
        m, C, D = stats["m"], stats["C"], stats["D"]
        m_prev, C_prev, D_prev = stats.get("m_prev", m_prev), stats.get("C_prev", C_prev), stats.get("D_prev", D_prev)
    if C is None or D is None:
        raise ValidationError("inverse needs C and D (or a statistics mapping with 'm', 'C', 'D' as first argument).")
    m = as_magnetisation(m, "m", np.size(m))
    size = m.size
    out = {"m": m, "C": as_square(C, "C", size), "D": as_square(D, "D", size)}
    # Stationary data: the previous step's moments equal the current ones unless given.
    out["m_p"] = out["m"] if m_prev is None else as_magnetisation(m_prev, "m_prev", size)
    out["C_p"] = out["C"] if C_prev is None else as_square(C_prev, "C_prev", size)
    out["D_p"] = out["D"] if D_prev is None else as_square(D_prev, "D_prev", size)
    return out


def inverse(m: ArrayLike | Mapping, C: ArrayLike | None = None, D: ArrayLike | None = None,
            method: str = "plefka2_t", order: int | None = None, *, m_prev: ArrayLike | None = None,
            C_prev: ArrayLike | None = None, D_prev: ArrayLike | None = None, solver: str = "moment-matching",
            tol: float = 1e-9, max_iter: int = 2000, device: str = "cpu", dtype: Any = torch.float64,
            warn: bool = True, root_tol: float | None = None, root_max_iter: int = 100) -> InverseResult:
    """Infer fields and couplings of a kinetic Ising network from its measured moments.

    Parameters
    ----------
    m : (N,) array or mapping
        Magnetisations at t (spins ±1, so ``m = 2·rate·bin − 1``), or the mapping returned by
        :func:`spikefield.meanfield.statistics` (then C, D and the ``*_prev`` moments are read
        from it).
    C, D : (N, N) arrays
        Equal-time covariance at t and delayed covariance ``D[i, l] = cov(s_i,t, s_l,t−1)``.
    method : {"nmf", "tap", "plefka_t", "plefka_t1", "plefka2_t"}
    order : int, optional
        Expansion order where the method has two (default 2).
    m_prev, C_prev, D_prev : arrays, optional
        Moments of the previous step (default: the current ones, i.e. stationary data).
    solver : {"moment-matching", "closed"}
        See the module docstring. ``"closed"`` is not available for ``plefka2_t``.
    tol : float
        Moment matching converges when every residual of m and D is below ``tol``.
    max_iter : int
        L-BFGS iteration cap.
    warn : bool
        Emit a :class:`~spikefield.errors.ConvergenceWarning` on failure (the result always
        carries ``converged``).
    root_tol, root_max_iter : float, int
        Tolerance and cap of the inner self-consistency solves of each forward evaluation
        (``root_tol=None``: 1e-14 in float64, 1e-6 in float32, as in :func:`forward`). A failed
        inner solve at the returned parameters makes the fit ``converged=False``.

    Returns
    -------
    InverseResult
        Unpacks to ``(h, J)`` (numpy float64); also ``converged``, ``n_iter``, residuals.

    Examples
    --------
    >>> from spikefield.simulate import sk_couplings
    >>> from spikefield.meanfield import forward, inverse
    >>> h, J = sk_couplings(32, seed=1)
    >>> out = forward(h, J, method="plefka_t", order=1, stationary=True)
    >>> fit = inverse(out["m"], out["C"], out["D"], method="plefka_t", order=1, solver="closed")
    >>> bool(abs(fit.J - J).max() < 1e-8)
    True
    """
    name, order = canonical_method(method, order)
    if solver not in SOLVERS:
        raise ValidationError(f"solver={solver!r} is not known; expected one of {list(SOLVERS)}."
                              f"{did_you_mean(solver, SOLVERS)}")
    data = _unpack_statistics(m, C, D, m_prev, C_prev, D_prev)
    tol, max_iter = positive_float(tol, "tol"), positive_int(max_iter, "max_iter")
    if solver == "closed" and name == "plefka2_t":
        raise ValidationError("solver='closed' is not available for method='plefka2_t' (no closed form); "
                              "use solver='moment-matching'.")
    start_method = "plefka_t" if name == "plefka2_t" else name
    h0, J0, sweeps, ok, message = closed_form(start_method, min(order, 2), data["m"], data["D"], data["m_p"],
                                              data["C_p"])
    dev, dt = resolve_device(device), as_dtype(dtype)
    tensors = {k: torch.as_tensor(v, dtype=dt, device=dev) for k, v in data.items()}
    nodes, weights = gauss_hermite_rule(64)
    quadrature = (torch.as_tensor(nodes, dtype=dt, device=dev), torch.as_tensor(weights, dtype=dt, device=dev))
    preconditioner = torch.diag(1.0 - tensors["m_p"] ** 2) if name in ("nmf", "tap") else tensors["C_p"]
    root_tol = default_tol(dt) if root_tol is None else positive_float(root_tol, "root_tol")
    objective = _Objective(name, order, tensors, preconditioner, quadrature, root_tol,
                           positive_int(root_max_iter, "root_max_iter"))
    if solver == "closed":
        objective(objective.from_params(torch.as_tensor(h0, dtype=dt, device=dev),
                                        torch.as_tensor(J0, dtype=dt, device=dev)).detach().cpu().numpy())
        result = InverseResult(h0, J0, name, order, solver, ok, sweeps, *objective.worst, message)
    else:
        h, J, n_iter, message = _moment_matching(objective, h0, J0, tol, max_iter)
        converged = max(objective.worst) <= tol
        result = InverseResult(h, J, name, order, solver, converged, n_iter, *objective.worst, message)
    result.root_report = objective.report
    if not objective.report.converged:
        # The residuals were measured at an unconverged root: the fit cannot be trusted either.
        result.converged = False
        result.message += (f"; the inner self-consistency solve did not reach root_tol={root_tol:g} within "
                           f"root_max_iter={objective.root_max_iter} (residual {objective.report.max_residual:.1e})")
    if warn and not result.converged:
        warnings.warn(f"inverse(method={name!r}, solver={solver!r}) did not converge: residuals "
                      f"m {result.residual_m:.1e}, D {result.residual_D:.1e} after {result.n_iter} iterations "
                      f"({result.message}). Try a larger max_iter, a looser tol, or another method; for TAP near "
                      "criticality the moment equations may have no solution.", ConvergenceWarning, stacklevel=2)
    return result
