"""Exact N -> infinity steady state of the asymmetric SK model under parallel Glauber dynamics.

Couplings ``J_ij = J0/N + ΔJ z_ij/√N`` with ``z_ij`` independent of ``z_ji`` (fully asymmetric)
and fields ``h_i ~ U(-H0, H0)``. Writing ``θ = β(h + J0 m)`` and ``x = θ + βΔJ z`` the
generating-functional solution (Aguilera, Igarashi & Shimazaki, Nat. Commun. 14:3685, 2023;
PHYSICS.md §5.1) is

    m   = ⟨⟨tanh x⟩_z⟩_h
    q   = ⟨⟨tanh(θ + βΔJ z) tanh(θ + βΔJ (q z + √(1-q²) y))⟩_{z,y}⟩_h
    σ/N = (βΔJ)² (1 - q) ⟨⟨1 - tanh² x⟩_z⟩_h
    S/N = ⟨⟨ln 2cosh x - x tanh x⟩_z⟩_h

Gaussian averages use Gauss–Hermite quadrature and the field average Gauss–Legendre quadrature,
both from numpy, so the formulas are accurate to ~1e-10 for the default orders.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import brentq

from ..errors import ValidationError

__all__ = ["AsymmetricSKResult", "asymmetric_sk", "critical_beta"]

_N_HERMITE = 80
_N_LEGENDRE = 32


@dataclass(frozen=True)
class AsymmetricSKResult:
    """Steady state of the infinite asymmetric SK model (per spin, per parallel update).

    Attributes
    ----------
    beta, J0, DeltaJ, H0 : float
        The parameters the state was computed for.
    m : float
        Mean magnetisation ``⟨s_i⟩`` (the non-negative branch).
    q : float
        Lag-1 self-overlap ``⟨s_i,t s_i,t-1⟩``.
    ep_per_spin : float
        Entropy production σ/N, nats per spin per step.
    entropy_rate : float
        Conditional entropy rate S/N of the forward process, nats per spin per step.
    reverse_entropy_rate : float
        Cross-entropy rate of the time-reversed process, ``S/N + σ/N``.
    """

    beta: float
    J0: float
    DeltaJ: float
    H0: float
    m: float
    q: float
    ep_per_spin: float
    entropy_rate: float
    reverse_entropy_rate: float


def _gauss_hermite(n: int) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    # Probabilists' Hermite nodes integrate against exp(-z²/2); normalise to a N(0,1) density.
    nodes, weights = np.polynomial.hermite_e.hermegauss(n)
    return nodes, weights / weights.sum()


def _field_nodes(H0: float) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    if H0 == 0:
        return np.zeros(1), np.ones(1)
    nodes, weights = np.polynomial.legendre.leggauss(_N_LEGENDRE)
    return H0 * nodes, weights / weights.sum()


def _check(name: str, value: float, lower: float = 0.0) -> float:
    if not isinstance(value, int | float | np.integer | np.floating) or not np.isfinite(value) or value < lower:
        raise ValidationError(f"asymmetric_sk: {name} must be a finite number >= {lower:g}, got {value!r}.")
    return float(value)


def _magnetisation(beta: float, J0: float, DeltaJ: float, H0: float) -> float:
    z, wz = _gauss_hermite(_N_HERMITE)
    h, wh = _field_nodes(H0)

    def excess(m: float) -> float:
        x = beta * (h[:, None] + J0 * m) + beta * DeltaJ * z[None, :]
        return float(wh @ np.tanh(x) @ wz) - m

    # Fields are symmetric about 0, so m = 0 always solves the equation; the physical steady
    # state is the largest root (the ordered branch when it exists). Scan, then bracket.
    grid = np.linspace(1.0, 1e-9, 401)
    x = beta * (h[None, :, None] + J0 * grid[:, None, None]) + beta * DeltaJ * z[None, None, :]
    values = np.tanh(x) @ wz @ wh - grid
    for k in range(len(grid) - 1):
        if values[k] <= 0 < values[k + 1] or values[k] == 0:
            if values[k] == 0:
                return float(grid[k])
            return float(brentq(excess, grid[k + 1], grid[k], xtol=1e-15, rtol=1e-15))
    return 0.0


def _lag_overlap(beta: float, J0: float, DeltaJ: float, H0: float, m: float) -> float:
    z, wz = _gauss_hermite(_N_HERMITE)
    h, wh = _field_nodes(H0)
    theta = beta * (h + J0 * m)
    b = beta * DeltaJ
    first = np.tanh(theta[:, None, None] + b * z[None, :, None])  # (h, z, 1)

    def excess(q: float) -> float:
        second = np.tanh(theta[:, None, None] + b * (q * z[None, :, None]
                                                     + np.sqrt(max(1 - q * q, 0.0)) * z[None, None, :]))
        return float(np.einsum("a,abc,b,c->", wh, first * second, wz, wz)) - q

    # F(q) - q is positive at q = -1 ... and F(1) = ⟨tanh²⟩ <= 1, so a root lies in [-1, 1].
    lo, hi = -1.0, 1.0
    if excess(hi) >= 0:
        return 1.0
    return float(brentq(excess, lo, hi, xtol=1e-15, rtol=1e-15))


def asymmetric_sk(beta: float, J0: float = 1.0, DeltaJ: float = 0.5, H0: float = 0.0) -> AsymmetricSKResult:
    """Exact steady-state thermodynamics of the infinite asymmetric SK model (parallel updates).

    Parameters
    ----------
    beta : float
        Inverse temperature β (>= 0).
    J0 : float
        Mean coupling times N.
    DeltaJ : float
        Coupling standard deviation times √N (couplings fully asymmetric).
    H0 : float
        Half-width of the uniform field distribution ``U(-H0, H0)``.

    Returns
    -------
    AsymmetricSKResult
        ``m``, ``q``, ``ep_per_spin`` (nats per spin per step), ``entropy_rate`` and
        ``reverse_entropy_rate`` (nats per spin per step).

    Examples
    --------
    >>> from spikefield.thermo import asymmetric_sk
    >>> round(asymmetric_sk(1.0, J0=1.0, DeltaJ=0.5).ep_per_spin, 4)
    0.2066
    """
    beta = _check("beta", beta)
    J0 = _check("J0", J0, lower=-np.inf)
    DeltaJ = _check("DeltaJ", DeltaJ)
    H0 = _check("H0", H0)
    m = _magnetisation(beta, J0, DeltaJ, H0)
    q = _lag_overlap(beta, J0, DeltaJ, H0, m)
    z, wz = _gauss_hermite(_N_HERMITE)
    h, wh = _field_nodes(H0)
    x = beta * (h[:, None] + J0 * m) + beta * DeltaJ * z[None, :]
    tanh_x = np.tanh(x)
    susceptibility = float(wh @ (1 - tanh_x**2) @ wz)
    ep = (beta * DeltaJ) ** 2 * (1 - q) * susceptibility
    # ln 2cosh x computed as |x| + log1p(exp(-2|x|)) to stay finite at large β.
    log_2cosh = np.abs(x) + np.log1p(np.exp(-2 * np.abs(x)))
    entropy = float(wh @ (log_2cosh - x * tanh_x) @ wz)
    return AsymmetricSKResult(beta, J0, DeltaJ, H0, m, q, float(ep), entropy, entropy + float(ep))


def critical_beta(DeltaJ: float, J0: float = 1.0) -> float:
    """Order–disorder transition β_c of the asymmetric SK model with H0 = 0.

    Solves ``β J0 ⟨1 - tanh²(β ΔJ z)⟩_z = 1`` (PHYSICS.md §5.1).

    Parameters
    ----------
    DeltaJ : float
        Coupling standard deviation times √N; must be below ``J0·√(2/π)``, where β_c diverges.
    J0 : float
        Mean coupling times N (> 0).

    Returns
    -------
    float
        β_c.

    Examples
    --------
    >>> from spikefield.thermo import critical_beta
    >>> round(critical_beta(0.5), 6)
    1.3485
    """
    DeltaJ = _check("DeltaJ", DeltaJ)
    J0 = _check("J0", J0)
    limit = J0 * np.sqrt(2 / np.pi)
    if J0 == 0 or DeltaJ >= limit:
        raise ValidationError(f"critical_beta: DeltaJ must be below J0*sqrt(2/pi) = {limit:.6f} for a finite "
                              f"transition, got DeltaJ={DeltaJ!r} with J0={J0!r}.")
    z, wz = _gauss_hermite(200)

    def excess(beta: float) -> float:
        return beta * J0 * float(wz @ (1 - np.tanh(beta * DeltaJ * z) ** 2)) - 1

    hi = 1.0 / J0
    while excess(hi) < 0:
        hi *= 2
    return float(brentq(excess, 1.0 / J0 * (1 - 1e-12), hi, xtol=1e-14, rtol=1e-14)) if DeltaJ > 0 else 1.0 / J0
