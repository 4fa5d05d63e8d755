"""Closed-form inverse Ising approximations from means and connected correlations (PHYSICS.md §6).

All functions take the magnetisations ``m`` (N,) and the connected correlation matrix ``C`` (N, N)
(diagonal ``1 − m²``) as float64 tensors and return ``(h, J)`` with J symmetric, zero diagonal.

* naive mean field (Kappen & Rodríguez 1998):  ``J = −(C⁻¹)``,  ``h = artanh m − J m``
* TAP (Thouless–Anderson–Palmer, inverted):   ``J_ij = −2 (C⁻¹)_ij / (1 + √(1 − 8 (C⁻¹)_ij m_i m_j))``,
  ``h_i = artanh m_i − Σ_j J_ij m_j + m_i Σ_j J_ij² (1 − m_j²)``
* independent pairs:  ``J^IP_ij = ¼ ln[p₊₊ p₋₋ / (p₊₋ p₋₊)]``
* Sessak–Monasson (J. Phys. A 42, 055001, 2009):
  ``J^SM = −C⁻¹ + J^IP − C_ij / ((1 − m_i²)(1 − m_j²) − C_ij²)``; fields from the TAP equation.

``C`` is regularised by shrinkage toward its diagonal, ``C ← (1 − α) C + α diag(C)`` (keeps the
variances, shrinks the covariances; Ledoit & Wolf's target for correlation matrices), so the
inverse exists with few samples.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..errors import ValidationError

__all__ = ["shrink", "naive_mean_field", "tap", "independent_pair", "sessak_monasson"]


def shrink(covariance: Tensor, shrinkage: float) -> Tensor:
    """``(1 − α) C + α diag(C)`` for ``α = shrinkage`` in [0, 1]."""
    if shrinkage == 0:
        return covariance
    return (1 - shrinkage) * covariance + shrinkage * torch.diag(torch.diagonal(covariance))


def _inverse(covariance: Tensor) -> Tensor:
    try:
        factor = torch.linalg.cholesky(covariance)
    except torch.linalg.LinAlgError as exc:
        raise ValidationError(
            "the connected correlation matrix C is singular or not positive definite (too few samples, "
            "or duplicated neurons); set shrinkage > 0 (e.g. 0.05) to regularise it."
        ) from exc
    inverse = torch.cholesky_inverse(factor)
    return (inverse + inverse.T) / 2


def _off_diagonal(matrix: Tensor) -> Tensor:
    out = (matrix + matrix.T) / 2
    out.fill_diagonal_(0.0)
    return out


def naive_mean_field(means: Tensor, covariance: Tensor) -> tuple[Tensor, Tensor]:
    """nMF: ``J = −C⁻¹`` off the diagonal, ``h = artanh m − J m``."""
    couplings = _off_diagonal(-_inverse(covariance))
    return torch.atanh(means) - couplings @ means, couplings


def _tap_fields(means: Tensor, couplings: Tensor) -> Tensor:
    return torch.atanh(means) - couplings @ means + means * ((couplings ** 2) @ (1 - means ** 2))


def tap(means: Tensor, covariance: Tensor) -> tuple[Tensor, Tensor, int]:
    """Inverted TAP; entries without a real solution fall back to nMF (their count is returned)."""
    inverse = _inverse(covariance)
    argument = 1 - 8 * inverse * torch.outer(means, means)
    real = argument >= 0
    couplings = torch.where(real, -2 * inverse / (1 + torch.sqrt(argument.clamp_min(0))), -inverse)
    couplings = _off_diagonal(couplings)
    off = ~torch.eye(len(means), dtype=torch.bool, device=means.device)
    n_fallback = int((~real & off).sum()) // 2
    return _tap_fields(means, couplings), couplings, n_fallback


def independent_pair(means: Tensor, covariance: Tensor) -> Tensor:
    """``J^IP``: the exact coupling of each pair taken in isolation (zero diagonal)."""
    second = covariance + torch.outer(means, means)  # ⟨s_i s_j⟩
    mi, mj = means[:, None], means[None, :]
    # Pair probabilities, clamped away from 0 so unseen pair states give large finite couplings.
    floor = 1e-12
    p_pp = ((1 + mi + mj + second) / 4).clamp_min(floor)
    p_mm = ((1 - mi - mj + second) / 4).clamp_min(floor)
    p_pm = ((1 + mi - mj - second) / 4).clamp_min(floor)
    p_mp = ((1 - mi + mj - second) / 4).clamp_min(floor)
    return _off_diagonal(0.25 * torch.log(p_pp * p_mm / (p_pm * p_mp)))


def sessak_monasson(means: Tensor, covariance: Tensor) -> tuple[Tensor, Tensor]:
    """Sessak–Monasson small-correlation resummation (loops + pairs), fields from TAP."""
    variance = 1 - means ** 2
    pair_term = covariance / (torch.outer(variance, variance) - covariance ** 2).clamp_min(1e-12)
    couplings = -_inverse(covariance) + independent_pair(means, covariance) - pair_term
    couplings = _off_diagonal(couplings)
    return _tap_fields(means, couplings), couplings
