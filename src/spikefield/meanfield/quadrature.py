"""Gaussian averages for the Plefka[t-1] (Gaussian effective field) approximation.

Two quadrature rules are provided:

* ``"gauss-hermite"`` (default): probabilists' Gauss–Hermite nodes from
  :func:`numpy.polynomial.hermite_e.hermegauss`, weights normalised to sum to one. With 64 nodes,
  ``<tanh(g + sqrt(Δ) z)>_z`` agrees with adaptive quadrature (:func:`scipy.integrate.quad`) to
  better than 1e-13 for ``|g| <= 3`` and ``Δ <= 4`` (checked in ``tests/test_meanfield_quadrature.py``).
* ``"reference"``: the reference scripts' rule, a Riemann sum on 20 uniform points over ``[-4, 4]``
  (accurate to about 1e-3), kept to reproduce published numbers.

Correlated two-dimensional averages ``<f_i(z) f_k(w)>`` with ``corr(z, w) = ρ`` use Mehler's
expansion in normalised Hermite polynomials ``ψ_n = He_n / sqrt(n!)``::

    <f_i(z) f_k(w)> = Σ_n ρ^n a_in a_kn,      a_in = <f_i(z) ψ_n(z)>_z,

which is *exactly* the two-dimensional Gaussian integral of PHYSICS.md §2.3, computed in
O(N·Q·K + N²·K) rather than O(N²·Q²). By Parseval (``Σ_n a_in² = <f_i²>``) the truncation after
``K`` terms is bounded, for every pair, by ``|ρ|^(K+1) · sqrt(tail_i · tail_k)`` with
``tail_i = <f_i²> − Σ_{n<=K} a_in²``; :func:`mehler_expectation` returns that bound.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from numpy.polynomial.hermite_e import hermegauss

__all__ = ["gauss_hermite_rule", "reference_rule", "gaussian_expectation", "hermite_coefficients",
           "mehler_expectation", "QUADRATURES"]

QUADRATURES = ("gauss-hermite", "reference", "reference-2021")


def gauss_hermite_rule(n_points: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights of ``n_points``-point Gauss–Hermite quadrature for a standard normal.

    Examples
    --------
    >>> nodes, weights = gauss_hermite_rule(20)
    >>> round(float(weights.sum()), 12), round(float(weights @ nodes**2), 12)
    (1.0, 1.0)
    """
    nodes, weights = hermegauss(int(n_points))
    return nodes, weights / weights.sum()


def reference_rule(n_points: int = 20, half_width: float = 4.0) -> tuple[np.ndarray, np.ndarray]:
    """The reference scripts' rule: Riemann sum of ``φ(x) f(x)`` on a uniform grid over ``[-4, 4]``.

    The weights are ``φ(x_k)·Δx`` and deliberately *not* renormalised (they sum to 1 − 4e-5),
    which is what the published Plefka[t-1] numbers were computed with.
    """
    nodes = np.linspace(-half_width, half_width, int(n_points))
    weights = np.exp(-0.5 * nodes**2) / math.sqrt(2.0 * math.pi) * (nodes[1] - nodes[0])
    return nodes, weights


def gaussian_expectation(mean: torch.Tensor, variance: torch.Tensor, nodes: torch.Tensor,
                         weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``<tanh(g + sqrt(Δ) z)>_z`` and ``<1 − tanh²(g + sqrt(Δ) z)>_z`` for every neuron.

    Parameters
    ----------
    mean, variance : (N,) tensors
        Mean ``g`` and variance ``Δ >= 0`` of each neuron's Gaussian effective field.
    nodes, weights : (Q,) tensors
        A quadrature rule for the standard normal.
    """
    values = torch.tanh(mean[:, None] + variance.clamp_min(0).sqrt()[:, None] * nodes[None, :])
    return values @ weights, (1.0 - values * values) @ weights


def hermite_coefficients(mean: torch.Tensor, variance: torch.Tensor, nodes: torch.Tensor,
                         weights: torch.Tensor, n_terms: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Coefficients ``a_in = <tanh(g_i + sqrt(Δ_i) z) ψ_n(z)>`` for ``n = 0..n_terms``, and ``<f_i²>``.

    ``ψ_n = He_n / sqrt(n!)`` are orthonormal under the standard normal; they are built by the
    stable three-term recurrence ``ψ_{n+1} = (z ψ_n − sqrt(n) ψ_{n−1}) / sqrt(n+1)``.
    """
    values = torch.tanh(mean[:, None] + variance.clamp_min(0).sqrt()[:, None] * nodes[None, :])
    weighted = values * weights[None, :]
    basis = torch.empty((n_terms + 1, nodes.numel()), dtype=nodes.dtype, device=nodes.device)
    basis[0] = 1.0
    if n_terms >= 1:
        basis[1] = nodes
    for n in range(1, n_terms):
        basis[n + 1] = (nodes * basis[n] - math.sqrt(n) * basis[n - 1]) / math.sqrt(n + 1)
    return weighted @ basis.T, (values * weighted).sum(dim=1)


def mehler_expectation(coefficients: torch.Tensor, second_moment: torch.Tensor,
                       rho: torch.Tensor) -> tuple[torch.Tensor, float]:
    """``<f_i(z) f_k(w)>`` for standard normals with correlation ``rho[i, k]``, by Mehler's series.

    Parameters
    ----------
    coefficients : (N, K+1) tensor
        Hermite coefficients from :func:`hermite_coefficients`.
    second_moment : (N,) tensor
        ``<f_i²>``, used for the truncation bound.
    rho : (N, N) tensor
        Correlations, clipped to ``[-1, 1]``.

    Returns
    -------
    expectation : (N, N) tensor
    error_bound : float
        Largest truncation bound ``|ρ|^(K+1) sqrt(tail_i tail_k)`` over the off-diagonal pairs.
    """
    n_terms = coefficients.shape[1] - 1
    rho = rho.clamp(-1.0, 1.0)
    # Horner's scheme in ρ: Σ_n ρ^n a_in a_kn without forming N² x K intermediates.
    total = torch.outer(coefficients[:, n_terms], coefficients[:, n_terms])
    for n in range(n_terms - 1, -1, -1):
        total.mul_(rho).addr_(coefficients[:, n], coefficients[:, n])  # in-place rank-1 update, no temporary
    tail = (second_moment - (coefficients * coefficients).sum(dim=1)).clamp_min(0).sqrt()
    bound = rho.abs().pow_(n_terms + 1).mul_(torch.outer(tail, tail))
    bound.fill_diagonal_(0.0)
    return total, float(bound.max()) if bound.numel() else 0.0


def reference_pair_expectation(g: torch.Tensor, variance: torch.Tensor, rho: torch.Tensor,
                               nodes: torch.Tensor, weights: torch.Tensor, one_dimensional: bool,
                               chunk_rows: int = 64) -> torch.Tensor:
    """The reference's pair average on its rotated grid (kept for reproducing published numbers).

    With ``p, n`` independent standard normals, ``z = (p sqrt(1+ρ) + n sqrt(1−ρ))/sqrt 2`` and
    ``w = (p sqrt(1+ρ) − n sqrt(1−ρ))/sqrt 2`` have correlation ρ. The pinned reference uses the
    20×20 grid unless ``ρ > 1 − 1e-5``; the 2021 code (``one_dimensional=True``) dropped the ``n``
    direction for every pair (the ``1 − 1E5`` typo, PHYSICS.md anomaly 0).
    """
    size = g.numel()
    out = torch.empty((size, size), dtype=g.dtype, device=g.device)
    half_i = (variance.clamp_min(0) / 2).sqrt()
    for start in range(0, size, chunk_rows):
        stop = min(start + chunk_rows, size)
        r = rho[start:stop].clamp(-1.0, 1.0)[..., None]  # (b, N, 1)
        plus, minus = (1 + r).sqrt(), (1 - r).clamp_min(0).sqrt()
        gi, si = g[start:stop, None, None], half_i[start:stop, None, None]
        gk, sk = g[None, :, None], half_i[None, :, None]
        one_d = (torch.tanh(gi + nodes * plus * si) * torch.tanh(gk + nodes * plus * sk)) @ weights
        if one_dimensional:
            out[start:stop] = one_d
            continue
        p, n = nodes[:, None], nodes[None, :]
        two_d = torch.zeros_like(one_d)
        for q in range(nodes.numel()):  # loop over one grid axis keeps memory at O(b·N·Q)
            zi = torch.tanh(gi + (p[q] * plus + n * minus) * si)
            zk = torch.tanh(gk + (p[q] * plus - n * minus) * sk)
            two_d += weights[q] * ((zi * zk) @ weights)
        out[start:stop] = torch.where(r[..., 0] > 1 - 1e-5, one_d, two_d)
    return out
