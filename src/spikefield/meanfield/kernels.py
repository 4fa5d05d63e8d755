"""One time step of each Plefka-family approximation, as pure torch functions (PHYSICS.md §2).

Every kernel maps the previous step's statistics ``(m_p, C_p, D_p)`` and the parameters ``(h, J)``
(β folded in; ``J[i, l]`` couples l at t−1 to i at t) to ``(m, C, D)`` of the current step. The
same code runs on CPU and CUDA. Notation: ``g = h + J m_p`` (naive field), ``A = 1 − m²``,
``M = J C_p Jᵀ`` (covariance of the local fields).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .quadrature import gaussian_expectation, hermite_coefficients, mehler_expectation, reference_pair_expectation
from .solvers import RootReport, solve_tap_field, solve_tap_magnetisation

__all__ = ["StepSettings", "StepOutput", "KERNELS"]


@dataclass
class StepSettings:
    """Numerical settings shared by the kernels."""

    order: int = 2
    tol: float = 1e-14
    max_iter: int = 100
    quadrature: str = "gauss-hermite"
    nodes: torch.Tensor | None = None
    weights: torch.Tensor | None = None
    hermite_terms: int = 24


@dataclass
class StepOutput:
    """Statistics of one step plus the numerical report of its root solves / quadrature."""

    m: torch.Tensor
    C: torch.Tensor
    D: torch.Tensor
    report: RootReport = field(default_factory=lambda: RootReport(True, 0, 0.0))
    quadrature_error: float = 0.0


def _set_diagonal(C: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    C.diagonal().copy_(values)
    return C


def step_nmf(h: torch.Tensor, J: torch.Tensor, m_p: torch.Tensor, C_p: torch.Tensor, D_p: torch.Tensor,
             settings: StepSettings) -> StepOutput:
    """Plefka[t−1,t] order 1 (naive mean field): ``m = tanh g``, ``C = diag(A)``, ``D = A J A_p``."""
    m = torch.tanh(h + J @ m_p)
    A, A_p = 1.0 - m * m, 1.0 - m_p * m_p
    return StepOutput(m, torch.diag(A), A[:, None] * J * A_p[None, :])


def step_tap(h: torch.Tensor, J: torch.Tensor, m_p: torch.Tensor, C_p: torch.Tensor, D_p: torch.Tensor,
             settings: StepSettings) -> StepOutput:
    """Plefka[t−1,t] order 2 (dynamical TAP).

    ``m = tanh(g − m V)`` with ``V_i = Σ_j J_ij² A_p,j``; ``C_ik = A_i A_k (J diag(A_p) Jᵀ)_ik``;
    ``D_il = A_i J_il A_p,l (1 + 2 J_il m_i m_p,l)``.
    """
    A_p = 1.0 - m_p * m_p
    m, report = solve_tap_magnetisation(h + J @ m_p, (J * J) @ A_p, m_p, tol=settings.tol,
                                        max_iter=settings.max_iter)
    A = 1.0 - m * m
    C = (J * A_p[None, :]) @ J.T
    C.mul_(A[:, None]).mul_(A[None, :])
    D = A[:, None] * J * A_p[None, :] * (1.0 + 2.0 * J * m[:, None] * m_p[None, :])
    return StepOutput(m, _set_diagonal(C, A), D, report)


def step_plefka_t(h: torch.Tensor, J: torch.Tensor, m_p: torch.Tensor, C_p: torch.Tensor, D_p: torch.Tensor,
                  settings: StepSettings) -> StepOutput:
    """Plefka[t]: the reference keeps ``s_{t−1}``'s correlations.

    Order 1: ``m = tanh g``, ``C = diag(A)``, ``D = A (J C_p)``. Order 2: ``m = tanh(g − m M_ii)``,
    ``C_ik = A_i A_k M_ik``, ``D_il = A_i (J C_p)_il (1 + 2 m_i J_il m_p,l)``.
    """
    g = h + J @ m_p
    JC = J @ C_p
    if settings.order == 1:
        m = torch.tanh(g)
        A = 1.0 - m * m
        return StepOutput(m, torch.diag(A), A[:, None] * JC)
    M = JC @ J.T
    m, report = solve_tap_magnetisation(g, M.diagonal(), m_p, tol=settings.tol, max_iter=settings.max_iter)
    A = 1.0 - m * m
    C = M.mul_(A[:, None]).mul_(A[None, :])
    D = A[:, None] * JC * (1.0 + 2.0 * J * m[:, None] * m_p[None, :])
    return StepOutput(m, _set_diagonal(C, A), D, report)


def step_plefka_t1(h: torch.Tensor, J: torch.Tensor, m_p: torch.Tensor, C_p: torch.Tensor, D_p: torch.Tensor,
                   settings: StepSettings) -> StepOutput:
    """Plefka[t−1]: Gaussian effective field ``u_i ~ N(g_i, Δ_i)``, ``Δ_i = Σ_j J_ij² A_p,j``.

    ``m_i = <tanh(g_i + z sqrt Δ_i)>``, ``D = diag(a) J C_p`` with ``a_i = <1 − tanh²>``, and
    ``C_ik = <tanh(u_i) tanh(u_k)> − m_i m_k`` with ``corr(u_i, u_k) = (J diag(A_p) Jᵀ)_ik /
    sqrt(Δ_i Δ_k)``: the two-dimensional Gaussian integral, here by Mehler's series (exact up to a
    reported truncation bound). ``quadrature="reference"`` reproduces the pinned reference's
    20-point Riemann sums; ``"reference-2021"`` the 2021 code behind the paper's figure (ρ from
    ``J C_p Jᵀ``, clipped, and the one-dimensional ``ρ → 1`` formula for every pair).
    """
    A_p = 1.0 - m_p * m_p
    g = h + J @ m_p
    JA = J * A_p[None, :]
    variance = (J * JA).sum(dim=1)
    nodes, weights = settings.nodes, settings.weights
    m, a = gaussian_expectation(g, variance, nodes, weights)
    D = a[:, None] * (J @ C_p)
    if settings.quadrature == "reference-2021":
        cross = (J @ C_p) @ J.T
    else:
        cross = JA @ J.T
    inv_sd = torch.where(variance > 0, variance.clamp_min(1e-300).rsqrt(), torch.zeros_like(variance))
    rho = (cross * inv_sd[:, None] * inv_sd[None, :]).clamp_(-1.0, 1.0)
    error = 0.0
    if settings.quadrature == "gauss-hermite":
        coefficients, second = hermite_coefficients(g, variance, nodes, weights, settings.hermite_terms)
        joint, error = mehler_expectation(coefficients, second, rho)
    else:
        joint = reference_pair_expectation(g, variance, rho, nodes, weights,
                                           one_dimensional=settings.quadrature == "reference-2021")
        joint = torch.triu(joint, 1) + torch.triu(joint, 1).T  # the reference fills i<k and mirrors
    C = joint - torch.outer(m, m)
    return StepOutput(m, _set_diagonal(C, 1.0 - m * m), D, quadrature_error=error)


def _plefka2_delayed(g: torch.Tensor, J: torch.Tensor, JC: torch.Tensor, M: torch.Tensor, m_p: torch.Tensor,
                     C_p: torch.Tensor, D_p: torch.Tensor,
                     settings: StepSettings) -> tuple[torch.Tensor, torch.Tensor, RootReport]:
    """D-branch of Plefka2[t]: condition on ``s_l,t−1 = ±1`` (PHYSICS.md §2.4)."""
    if settings.order == 2:
        JDJ = (J @ D_p) @ J.T
        # Σ_{j≠l} J_ij (D_p Jᵀ)_jl: remove the j = l term of (J D_p Jᵀ)_il.
        delta = J + JDJ - J * (J * D_p).sum(dim=1)[None, :]
        variance = M.diagonal()[:, None] - 2.0 * J * JC + J * J * C_p.diagonal()[None, :]
    else:
        # Order 1 keeps only the direct link: θ = g_i + J_il (s_l − m_l), no Onsager term.
        delta, variance = J, torch.zeros_like(J)
    spins = torch.tensor([-1.0, 1.0], dtype=J.dtype, device=J.device)[:, None, None]
    field = g[None, :, None] + delta[None] * (spins - m_p[None, None, :])
    if settings.order == 2:
        theta, report = solve_tap_field(field, variance[None], tol=settings.tol, max_iter=settings.max_iter)
    else:
        theta, report = field, RootReport(True, 0, 0.0)
    prob = (1.0 + spins * m_p[None, None, :]) / 2.0
    value = torch.tanh(theta) * prob
    m_cond = value.sum(dim=0)
    D = (value * spins).sum(dim=0) - m_cond * m_p[None, :]
    return m_cond.mean(dim=1), D, report


def _plefka2_equal_time(g: torch.Tensor, M: torch.Tensor, m: torch.Tensor, m_p: torch.Tensor,
                        settings: StepSettings) -> tuple[torch.Tensor, RootReport]:
    """C-branch of Plefka2[t] (order 2): condition on ``s_k,t = ±1``.

    Like the reference, the conditioning spin is centred on and weighted by ``m_p`` (the previous
    step's magnetisation; PHYSICS.md anomaly 2): identical at stationarity.
    """
    spins = torch.tensor([-1.0, 1.0], dtype=M.dtype, device=M.device)[:, None, None]
    centred = spins - m_p[None, None, :]
    field = g[None, :, None] + M[None] * centred
    theta, report = solve_tap_field(field, M.diagonal()[None, :, None], tol=settings.tol, max_iter=settings.max_iter)
    C = (torch.tanh(theta) * centred * (1.0 + spins * m_p[None, None, :]) / 2.0).sum(dim=0)
    C = 0.5 * (C + C.T)
    return _set_diagonal(C, 1.0 - m * m), report


def step_plefka2_t(h: torch.Tensor, J: torch.Tensor, m_p: torch.Tensor, C_p: torch.Tensor, D_p: torch.Tensor,
                   settings: StepSettings) -> StepOutput:
    """Plefka2[t]: pairwise reference model (the 2021 paper's new method), orders 1 and 2.

    Order 2 is PHYSICS.md §2.4. Order 1 (broken in the reference) keeps one link exactly and drops
    every second-order term: ``θ_il(s_l) = g_i + J_il (s_l − m_p,l)`` for D and m, ``C`` diagonal
    (equal-time covariances are second order in J).
    """
    g = h + J @ m_p
    JC = J @ C_p
    M = JC @ J.T if settings.order == 2 else None
    m, D, report = _plefka2_delayed(g, J, JC, M, m_p, C_p, D_p, settings)
    if settings.order == 1:
        return StepOutput(m, torch.diag(1.0 - m * m), D, report)
    C, report_c = _plefka2_equal_time(g, M, m, m_p, settings)
    return StepOutput(m, C, D, report.merge(report_c))


KERNELS = {"nmf": step_nmf, "tap": step_tap, "plefka_t": step_plefka_t, "plefka_t1": step_plefka_t1,
           "plefka2_t": step_plefka2_t}
