"""One-step mean-field predictions ``(m_t, D_t)`` from *measured* previous-step statistics.

These are the functionals the inverse problem matches to data (PHYSICS.md §1.3): the inputs
``(m_p, C_p, D_p)`` are the data's previous-step moments and only ``(h, J)`` vary, so each
function is differentiable in ``(h, J)`` with torch autograd. The formulas are the forward
kernels' own (:mod:`spikefield.meanfield.kernels`). Self-consistency roots are solved without
gradient and then differentiated implicitly: one Newton step from the detached root has the
derivative ``−F_p / F_x`` of the implicit-function theorem.
"""

from __future__ import annotations

import torch

from .kernels import conditioned_fields, plefka2_delayed_output, plefka2_delayed_terms, plefka_t_delayed, tap_delayed
from .quadrature import gaussian_expectation
from .solvers import RootReport, solve_tap_field, solve_tap_magnetisation

__all__ = ["predict_m_D"]


def _tap_root(g: torch.Tensor, V: torch.Tensor, start: torch.Tensor, tol: float,
              max_iter: int) -> tuple[torch.Tensor, RootReport]:
    with torch.no_grad():
        x, report = solve_tap_magnetisation(g.detach(), V.detach(), start, tol=tol, max_iter=max_iter)
    value = torch.tanh(g - x * V)
    # Implicit differentiation: x − F(x)/F'(x) at the detached root.
    return x + (value - x) / (V * (1.0 - value * value) + 1.0), report


def _field_root(field: torch.Tensor, V: torch.Tensor, tol: float, max_iter: int) -> tuple[torch.Tensor, RootReport]:
    with torch.no_grad():
        theta, _, report = solve_tap_field(field.detach(), V.detach(), tol=tol, max_iter=max_iter)
    value = torch.tanh(theta)
    return theta - (theta - field + value * V) / (1.0 + (1.0 - value * value) * V), report


def _plefka2_delayed(g: torch.Tensor, J: torch.Tensor, m_p: torch.Tensor, C_p: torch.Tensor, D_p: torch.Tensor,
                     order: int, tol: float, max_iter: int) -> tuple[torch.Tensor, torch.Tensor, RootReport]:
    if order == 1:
        pair, report = torch.tanh(conditioned_fields(g, J, m_p)), RootReport(True, 0, 0.0)
    else:
        JC = J @ C_p
        delta, variance = plefka2_delayed_terms(J, JC, (JC * J).sum(dim=1), C_p, D_p, (J @ D_p) @ J.T)
        theta, report = _field_root(conditioned_fields(g, delta, m_p), variance[None], tol, max_iter)
        pair = torch.tanh(theta)
    m, D = plefka2_delayed_output(pair, m_p)
    return m, D, report


def predict_m_D(method: str, order: int, h: torch.Tensor, J: torch.Tensor, m_p: torch.Tensor, C_p: torch.Tensor,
                D_p: torch.Tensor, *, tol: float = 1e-14, max_iter: int = 100,
                quadrature: tuple[torch.Tensor, torch.Tensor] | None = None) -> tuple[torch.Tensor, torch.Tensor,
                                                                                       RootReport]:
    """Predicted ``m_t`` (N,) and ``D_t`` (N, N) of one method, given measured previous-step moments.

    ``quadrature`` is the (nodes, weights) rule used by Plefka[t−1]. The report is that of the
    method's self-consistency solve (always converged for methods without one).
    """
    A_p = 1.0 - m_p * m_p
    g = h + J @ m_p
    ok = RootReport(True, 0, 0.0)
    if method == "nmf":
        m = torch.tanh(g)
        return m, J * torch.outer(1.0 - m * m, A_p), ok
    if method == "tap":
        m, report = _tap_root(g, (J * J) @ A_p, m_p, tol, max_iter)
        return m, tap_delayed(1.0 - m * m, J, A_p, m, m_p), report
    if method == "plefka_t":
        JC = J @ C_p
        if order == 1:
            m = torch.tanh(g)
            return m, (1.0 - m * m)[:, None] * JC, ok
        m, report = _tap_root(g, (JC * J).sum(dim=1), m_p, tol, max_iter)
        return m, plefka_t_delayed(1.0 - m * m, JC, J, m, m_p), report
    if method == "plefka_t1":
        nodes, weights = quadrature
        m, a = gaussian_expectation(g, (J * J) @ A_p, nodes, weights)
        return m, a[:, None] * (J @ C_p), ok
    return _plefka2_delayed(g, J, m_p, C_p, D_p, order, tol, max_iter)
