"""Gaussian quadrature, Mehler's expansion, Plefka[t-1] variants and the critical point."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.integrate
import torch

from spikefield.errors import ValidationError
from spikefield.meanfield import critical_beta, forward
from spikefield.meanfield.quadrature import (
    gauss_hermite_rule,
    gaussian_expectation,
    hermite_coefficients,
    mehler_expectation,
    reference_rule,
)
from spikefield.simulate import sk_couplings


def _t(x):
    return torch.as_tensor(np.asarray(x, dtype=np.float64))


@pytest.mark.parametrize(("n_points", "max_variance", "accuracy"), [(64, 0.5, 1e-14), (64, 4.0, 1e-5),
                                                                    (200, 4.0, 1e-9)])
def test_gauss_hermite_matches_adaptive_quadrature(n_points, max_variance, accuracy):
    """The documented accuracy of the 1-D rule (tanh has poles at distance π/(2 sqrt Δ) from the axis)."""
    g = np.array([-3.0, -1.0, 0.0, 0.3, 2.0, 3.0])
    variance = np.array([1.0, 0.01, 0.3, 0.6, 0.5, 1.0]) * max_variance
    nodes, weights = gauss_hermite_rule(n_points)
    mean, slope = gaussian_expectation(_t(g), _t(variance), _t(nodes), _t(weights))
    for i in range(g.size):
        f = lambda z, i=i: math.exp(-z * z / 2) / math.sqrt(2 * math.pi) * math.tanh(g[i] + math.sqrt(variance[i]) * z)  # noqa: E731
        exact, _ = scipy.integrate.quad(f, -40, 40, epsabs=1e-15, limit=400)
        assert abs(float(mean[i]) - exact) < accuracy
    assert torch.all((slope > 0) & (slope < 1))


def test_reference_rule_is_the_coarse_riemann_sum():
    nodes, weights = reference_rule()
    assert nodes.size == 20 and nodes[0] == -4 and nodes[-1] == 4
    assert 1 - 1e-4 < weights.sum() < 1  # not renormalised, as in the reference


@pytest.mark.parametrize("rho", [-0.95, -0.4, 0.0, 0.3, 0.9])
def test_mehler_equals_two_dimensional_gauss_hermite(rho):
    g = _t([0.4, -0.7])
    variance = _t([0.8, 1.5])
    nodes, weights = gauss_hermite_rule(80)
    coefficients, second = hermite_coefficients(g, variance, _t(nodes), _t(weights), 60)
    joint, bound = mehler_expectation(coefficients, second, _t([[1.0, rho], [rho, 1.0]]))
    # direct tensor-product rule on w = rho z + sqrt(1 - rho^2) y
    z, y = np.meshgrid(nodes, nodes, indexing="ij")
    w = rho * z + math.sqrt(1 - rho**2) * y
    direct = np.sum(np.outer(weights, weights) * np.tanh(0.4 + math.sqrt(0.8) * z) * np.tanh(-0.7 + math.sqrt(1.5) * w))
    assert abs(float(joint[0, 1]) - direct) < 5e-9
    assert bound < 1e-6


def test_mehler_truncation_bound_holds():
    g, variance = _t([0.2, 0.5]), _t([2.0, 3.0])
    nodes, weights = gauss_hermite_rule(80)
    rho = _t([[1.0, 0.8], [0.8, 1.0]])
    full, _ = mehler_expectation(*hermite_coefficients(g, variance, _t(nodes), _t(weights), 70), rho)
    short, bound = mehler_expectation(*hermite_coefficients(g, variance, _t(nodes), _t(weights), 3), rho)
    error = abs(float(full[0, 1] - short[0, 1]))
    assert 0 < error <= bound


def test_plefka_t1_quadratures_agree_to_reference_accuracy():
    h, J = sk_couplings(24, seed=0, beta=1.1)
    accurate = forward(h, J, method="plefka_t1", steps=10)
    coarse = forward(h, J, method="plefka_t1", steps=10, quadrature="reference")
    fine = forward(h, J, method="plefka_t1", steps=10, quadrature_points=128, hermite_terms=40)
    assert accurate.quadrature_error < 1e-12
    for key in ("m", "C", "D"):
        assert np.max(np.abs(accurate[key] - fine[key])) < 1e-12
        assert 1e-8 < np.max(np.abs(accurate[key] - coarse[key])) < 2e-3


def test_plefka_t1_2021_variant_differs_from_pinned():
    h, J = sk_couplings(24, seed=0, beta=1.1)
    pinned = forward(h, J, method="plefka_t1", steps=10, quadrature="reference")
    old = forward(h, J, method="plefka_t1", steps=10, quadrature="reference-2021")
    np.testing.assert_allclose(old["m"], pinned["m"], atol=1e-14)  # only C changed
    assert np.max(np.abs(old["C"] - pinned["C"])) > 1e-3


def test_critical_beta_of_benchmark_ensemble():
    assert abs(critical_beta(0.5, 1.0, 0.1) - 1.1108397534245904) < 1e-5 * 1.1108397534245904


def test_critical_beta_limits():
    # Js -> 0: (J0/H0) tanh(beta H0) = 1
    assert abs(critical_beta(0.5, 1.0, 0.0) - math.atanh(0.5) / 0.5) < 1e-12
    # the defining equation holds at the root
    beta = critical_beta(0.3, 1.5, 0.2)
    value, _ = scipy.integrate.quad(lambda z: math.exp(-z * z / 2) / math.sqrt(2 * math.pi)
                                    * math.tanh(beta * (0.3 + 0.2 * z)), -30, 30, epsabs=1e-14)
    assert abs(1.5 / 0.3 * value - 1) < 1e-10


@pytest.mark.parametrize(("args", "match"), [
    ((0.5, 0.4, 0.1), "no transition for H0=0.5, J0=0.4"),
    ((-0.5, 1.0, 0.1), "H0 must be a positive number"),
    ((0.5, 1.0, -0.1), "Js must be a positive number"),
])
def test_critical_beta_bad_arguments(args, match):
    with pytest.raises(ValidationError, match=match):
        critical_beta(*args)
