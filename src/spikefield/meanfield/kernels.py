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
from .solvers import RootReport, solve_tap_field, solve_tap_magnetisation, tanh_into

__all__ = ["StepSettings", "StepOutput", "KERNELS", "WRITES_INTO_OUT", "tap_delayed", "plefka_t_delayed",
           "conditioned_fields", "plefka2_delayed_terms", "plefka2_delayed_output"]


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
    # J ∘ J, constant over a run: set once by ``forward`` so TAP does not recompute it every step.
    J_squared: torch.Tensor | None = None
    # Scratch N×N tensors reused by every step of a run (see ``scratch``).
    workspace: dict[str, torch.Tensor] = field(default_factory=dict)

    def scratch(self, key: str, like: torch.Tensor) -> torch.Tensor:
        """A tensor shaped like ``like``, allocated on first use and reused by later steps.

        On CPU a fresh N×N temporary costs more than the arithmetic done in it: glibc returns freed
        megabyte blocks to the kernel, so every step page-faults them in again (measured: a TAP step
        at N = 512 took 2.4 ms with fresh temporaries and 1.3 ms with reused buffers).
        """
        found = self.workspace.get(key)
        if found is None or found.shape != like.shape or found.dtype != like.dtype or found.device != like.device:
            found = self.workspace[key] = torch.empty_like(like)
        return found


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


Targets = tuple[torch.Tensor, torch.Tensor] | None


def _targets(out: Targets, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The (C, D) tensors a step writes into: the caller's ``out`` or two new ones."""
    return out if out is not None else (torch.empty_like(like), torch.empty_like(like))


# ------------------------------------------------------------------ formulas shared with predict.py
# Out-of-place and autograd-safe: the inverse problem differentiates them in (h, J).
def tap_delayed(A: torch.Tensor, J: torch.Tensor, A_p: torch.Tensor, m: torch.Tensor,
                m_p: torch.Tensor) -> torch.Tensor:
    """TAP ``D_il = A_i J_il A_p,l (1 + 2 J_il m_i m_p,l)``, as ``J ∘ (A⊗A_p + J ∘ (2Am ⊗ A_p m_p))``."""
    return J * torch.addcmul(torch.outer(A, A_p), J, torch.outer(2.0 * A * m, A_p * m_p))


def plefka_t_delayed(A: torch.Tensor, JC: torch.Tensor, J: torch.Tensor, m: torch.Tensor,
                     m_p: torch.Tensor) -> torch.Tensor:
    """Plefka[t] order 2 ``D_il = A_i (J C_p)_il (1 + 2 m_i J_il m_p,l)``."""
    return JC * torch.addcmul(A[:, None], J, torch.outer(2.0 * A * m, m_p))


def conditioned_fields(g: torch.Tensor, coupling: torch.Tensor, m_p: torch.Tensor) -> torch.Tensor:
    """``H[s, i, l] = g_i + coupling_il (s − m_p,l)`` for the conditioning spin ``s = −1, +1`` (2 × N × N)."""
    shifts = torch.stack([-1.0 - m_p, 1.0 - m_p])
    return torch.addcmul(g[None, :, None], coupling[None], shifts[:, None, :])


def plefka2_delayed_terms(J: torch.Tensor, JC: torch.Tensor, M_diag: torch.Tensor, C_p: torch.Tensor,
                          D_p: torch.Tensor, JDJ: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Coupling ``Δ_il`` to the conditioned spin and remaining variance ``V_il`` of Plefka2[t] order 2.

    ``Δ = J + Σ_{j≠l} J_ij (D_p Jᵀ)_jl``: the j = l term of ``(J D_p Jᵀ)_il`` is ``J_il r_l`` with
    ``r_l = Σ_k J_lk D_p,lk``. ``V_il = M_ii − 2 J_il (J C_p)_il + J_il² C_p,ll``.
    """
    row = torch.linalg.vecdot(J, D_p)
    delta = JDJ + J * (1.0 - row)[None, :]
    variance = torch.addcmul(M_diag[:, None], J, JC, value=-2.0) + J * J * C_p.diagonal()[None, :]
    return delta, variance


def plefka2_delayed_output(tanh_pair: torch.Tensor, m_p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``m_i`` and ``D_il`` from ``tanh θ_il(s_l = ∓1)`` (``tanh_pair[0]``: s = −1, ``[1]``: s = +1).

    With ``P(s_l = ±1) = (1 ± m_p,l)/2``: ``m_i = mean_l Σ_s P(s) tanh θ_il(s)`` and
    ``D_il = Σ_s s P(s) tanh θ_il(s) − m_il m_p,l = A_p,l (tanh θ_il(+1) − tanh θ_il(−1)) / 2``.
    """
    size = m_p.numel()
    m = (tanh_pair[1] @ (1.0 + m_p) + tanh_pair[0] @ (1.0 - m_p)) / (2.0 * size)
    return m, (tanh_pair[1] - tanh_pair[0]) * ((1.0 - m_p * m_p) / 2.0)[None, :]


# ------------------------------------------------------------------ one step of each method
def step_nmf(h: torch.Tensor, J: torch.Tensor, m_p: torch.Tensor, C_p: torch.Tensor, D_p: torch.Tensor,
             settings: StepSettings, out: Targets = None) -> StepOutput:
    """Plefka[t−1,t] order 1 (naive mean field): ``m = tanh g``, ``C = diag(A)``, ``D = A J A_p``.

    Every kernel writes C and D into ``out`` when given (tensors shaped like J that alias none of
    the inputs); the Plefka[t−1] and Plefka2[t] kernels ignore it and return new tensors.
    """
    m = torch.tanh(torch.addmv(h, J, m_p))
    A, A_p = 1.0 - m * m, 1.0 - m_p * m_p
    C, D = _targets(out, J)
    torch.mul(J, A_p, out=D).mul_(A[:, None])
    return StepOutput(m, _set_diagonal(C.zero_(), A), D)


def _tap_covariance_into(C: torch.Tensor, J: torch.Tensor, A: torch.Tensor, A_p: torch.Tensor,
                         settings: StepSettings) -> torch.Tensor:
    """``C_ik = A_i A_k (J diag(A_p) Jᵀ)_ik = (X Xᵀ)_ik`` with ``X = diag(A) J diag(√A_p)``, into ``C``.

    A BLAS ``syrk`` (half the flops) was measured against this on the 2-core benchmark machine and
    not adopted: SciPy's OpenBLAS threads and torch's OpenMP threads then compete for the cores
    (a 10x slowdown under load), and with one thread it was no faster than torch's product.
    """
    X = torch.mul(J, A_p.clamp_min(0.0).sqrt(), out=settings.scratch("X", J)).mul_(A[:, None])
    return torch.mm(X, X.T, out=C)


def _tap_delayed_into(D: torch.Tensor, A: torch.Tensor, J: torch.Tensor, J_squared: torch.Tensor,
                      A_p: torch.Tensor, m: torch.Tensor, m_p: torch.Tensor) -> torch.Tensor:
    """:func:`tap_delayed` in place, as ``(A ⊗ A_p) ∘ (J + J∘J ∘ (2m ⊗ m_p))``."""
    torch.mul(J_squared, m_p, out=D).mul_((2.0 * m)[:, None]).add_(J)
    return D.mul_(A[:, None]).mul_(A_p)


def step_tap(h: torch.Tensor, J: torch.Tensor, m_p: torch.Tensor, C_p: torch.Tensor, D_p: torch.Tensor,
             settings: StepSettings, out: Targets = None) -> StepOutput:
    """Plefka[t−1,t] order 2 (dynamical TAP).

    ``m = tanh(g − m V)`` with ``V_i = Σ_j J_ij² A_p,j``; ``C_ik = A_i A_k (J diag(A_p) Jᵀ)_ik``;
    ``D_il = A_i J_il A_p,l (1 + 2 J_il m_i m_p,l)``.
    """
    A_p = 1.0 - m_p * m_p
    J_squared = J * J if settings.J_squared is None else settings.J_squared
    m, report = solve_tap_magnetisation(torch.addmv(h, J, m_p), J_squared @ A_p, m_p, tol=settings.tol,
                                        max_iter=settings.max_iter)
    A = 1.0 - m * m
    C, D = _targets(out, J)
    _tap_covariance_into(C, J, A, A_p, settings)
    return StepOutput(m, _set_diagonal(C, A), _tap_delayed_into(D, A, J, J_squared, A_p, m, m_p), report)


def step_plefka_t(h: torch.Tensor, J: torch.Tensor, m_p: torch.Tensor, C_p: torch.Tensor, D_p: torch.Tensor,
                  settings: StepSettings, out: Targets = None) -> StepOutput:
    """Plefka[t]: the reference keeps ``s_{t−1}``'s correlations.

    Order 1: ``m = tanh g``, ``C = diag(A)``, ``D = A (J C_p)``. Order 2: ``m = tanh(g − m M_ii)``,
    ``C_ik = A_i A_k M_ik``, ``D_il = A_i (J C_p)_il (1 + 2 m_i J_il m_p,l)``.
    """
    g = torch.addmv(h, J, m_p)
    JC = torch.mm(J, C_p, out=settings.scratch("JC", J))
    C, D = _targets(out, J)
    if settings.order == 1:
        m = torch.tanh(g)
        A = 1.0 - m * m
        return StepOutput(m, _set_diagonal(C.zero_(), A), torch.mul(JC, A[:, None], out=D))
    M = torch.mm(JC, J.T, out=C)
    m, report = solve_tap_magnetisation(g, M.diagonal().clone(), m_p, tol=settings.tol, max_iter=settings.max_iter)
    A = 1.0 - m * m
    M.mul_(A[:, None]).mul_(A)  # C = M ∘ (A ⊗ A), in place
    # plefka_t_delayed in place: D = A_i JC_il (1 + 2 m_i J_il m_p,l)
    torch.mul(J, m_p, out=D).mul_((2.0 * m)[:, None]).add_(1.0).mul_(JC).mul_(A[:, None])
    return StepOutput(m, _set_diagonal(C, A), D, report)


def step_plefka_t1(h: torch.Tensor, J: torch.Tensor, m_p: torch.Tensor, C_p: torch.Tensor, D_p: torch.Tensor,
                   settings: StepSettings, out: Targets = None) -> StepOutput:
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
    JC = J @ C_p
    cross = JC @ J.T if settings.quadrature == "reference-2021" else JA @ J.T
    D = JC.mul_(a[:, None])
    inv_sd = torch.where(variance > 0, variance.clamp_min(1e-300).rsqrt(), torch.zeros_like(variance))
    rho = cross.mul_(torch.outer(inv_sd, inv_sd)).clamp_(-1.0, 1.0)
    error = 0.0
    if settings.quadrature == "gauss-hermite":
        coefficients, second = hermite_coefficients(g, variance, nodes, weights, settings.hermite_terms)
        joint, error = mehler_expectation(coefficients, second, rho)
    else:
        joint = reference_pair_expectation(g, variance, rho, nodes, weights,
                                           one_dimensional=settings.quadrature == "reference-2021")
        joint = torch.triu(joint, 1) + torch.triu(joint, 1).T  # the reference fills i<k and mirrors
    C = joint.sub_(torch.outer(m, m))
    return StepOutput(m, _set_diagonal(C, 1.0 - m * m), D, quadrature_error=error)


def _conditioned_tanh(g: torch.Tensor, coupling: torch.Tensor, m_p: torch.Tensor, variance: torch.Tensor | None,
                      settings: StepSettings) -> tuple[torch.Tensor, RootReport]:
    """``tanh θ_s`` (2 × N × N) with ``θ_s = H_s − V tanh θ_s`` (``V = None``: ``θ_s = H_s``)."""
    field = conditioned_fields(g, coupling, m_p)
    if variance is None:
        return tanh_into(field, field), RootReport(True, 0, 0.0)
    _, value, report = solve_tap_field(field, variance, tol=settings.tol, max_iter=settings.max_iter)
    return value, report


def step_plefka2_t(h: torch.Tensor, J: torch.Tensor, m_p: torch.Tensor, C_p: torch.Tensor, D_p: torch.Tensor,
                   settings: StepSettings, out: Targets = None) -> StepOutput:
    """Plefka2[t]: pairwise reference model (the 2021 paper's new method), orders 1 and 2.

    Order 2 is PHYSICS.md §2.4: the D-branch conditions on ``s_l,t−1 = ±1``, the C-branch on
    ``s_k,t = ±1``; like the reference, the C-branch's conditioning spin is centred on and
    weighted by ``m_p`` (PHYSICS.md anomaly 2; identical at stationarity), which gives
    ``C_ik = A_p,k (tanh θ_ik(+1) − tanh θ_ik(−1)) / 2``, then symmetrised. Order 1 (broken in the
    reference) keeps one link exactly and drops every second-order term:
    ``θ_il(s_l) = g_i + J_il (s_l − m_p,l)`` for D and m, ``C`` diagonal (equal-time covariances
    are second order in J).
    """
    g = h + J @ m_p
    if settings.order == 1:
        pair, report = _conditioned_tanh(g, J, m_p, None, settings)
        m, D = plefka2_delayed_output(pair, m_p)
        return StepOutput(m, torch.diag(1.0 - m * m), D, report)
    JC = J @ C_p
    M = JC @ J.T
    M_diag = M.diagonal()
    delta, variance = plefka2_delayed_terms(J, JC, M_diag, C_p, D_p, (J @ D_p) @ J.T)
    pair, report = _conditioned_tanh(g, delta, m_p, variance, settings)
    m, D = plefka2_delayed_output(pair, m_p)
    pair, report_c = _conditioned_tanh(g, M, m_p, M_diag[:, None], settings)
    C = pair[1].sub_(pair[0]).mul_(((1.0 - m_p * m_p) / 2.0)[None, :])
    C = torch.add(C, C.T).mul_(0.5)
    return StepOutput(m, _set_diagonal(C, 1.0 - m * m), D, report.merge(report_c))


KERNELS = {"nmf": step_nmf, "tap": step_tap, "plefka_t": step_plefka_t, "plefka_t1": step_plefka_t1,
           "plefka2_t": step_plefka2_t}
# Kernels that write C and D into ``out``; the others return new tensors and need no buffers.
WRITES_INTO_OUT = frozenset({step_nmf, step_tap, step_plefka_t})
