"""Model-free EP: nonequilibrium-MaxEnt estimator and the Newton / TUR bounds (PHYSICS.md §4.2, targets 8-9)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import spikefield as sf
from spikefield.errors import ValidationError
from spikefield.thermo import entropy_production, split_transitions


def diluted_couplings(n: int, k: int = 6, seed: int = 0) -> np.ndarray:
    """The reference's spin-model ensemble: J_ij = c_ij z_ij / √k, c ~ Bernoulli(k/(N-1)), zero diagonal."""
    rng = np.random.default_rng(seed)
    J = (rng.random((n, n)) < k / (n - 1)) * rng.standard_normal((n, n)) / np.sqrt(k)
    np.fill_diagonal(J, 0.0)
    return J


@pytest.fixture(scope="module")
def parallel_runs():
    """Parallel kinetic Ising data (target 9 at reduced size: N = 30, 5·10^4 transitions)."""
    J = diluted_couplings(30, seed=0)
    runs = {}
    for beta in (0.1, 0.2):
        X = sf.simulate.kinetic_ising(np.zeros(30), beta * J, 500, n_trials=100, burn_in=50, seed=1)
        true = entropy_production((np.zeros(30), beta * J), X)
        runs[beta] = (J, X, true, entropy_production(None, X, method="maxent"))
    return runs


@pytest.mark.parametrize("beta", [0.1, 0.2])
def test_maxent_is_a_tight_lower_bound_on_parallel_dynamics(parallel_runs, beta):
    J, X, true, bound = parallel_runs[beta]
    assert bound.is_lower_bound
    assert 0.9 * true.ep_per_bin <= bound.ep_per_bin <= true.ep_per_bin + 2 * bound.stderr
    assert bound.ep_per_bin <= bound.details["ln_n_test"]
    assert not bound.details["capped"]
    assert bound.details["converged"]


def test_multipliers_recover_coupling_asymmetry(parallel_runs):
    J, X, true, bound = parallel_runs[0.2]
    multipliers = bound.details["multipliers"]
    np.testing.assert_allclose(multipliers, -multipliers.T)
    upper = np.triu_indices(30, 1)
    asymmetry = (0.2 * (J - J.T))[upper]
    # For parallel dynamics the log-ratio is not exactly in span(g); the fit still tracks it.
    assert np.corrcoef(multipliers[upper], asymmetry)[0, 1] > 0.8


def test_newton_and_tur_are_looser_lower_bounds(parallel_runs):
    # On a 14-unit subset (91 observables, so the covariances stay cheap). A subset's EP is at
    # most the full population's (data processing), so all three bounds sit below the true EP.
    J, X, true, _ = parallel_runs[0.2]
    subset = X.select_units(np.arange(14))
    bound = entropy_production(None, subset, method="maxent")
    newton = entropy_production(None, subset, method="newton")
    tur = entropy_production(None, subset, method="tur")
    assert 0 < tur.ep_per_bin < newton.ep_per_bin <= bound.ep_per_bin + 2 * bound.stderr
    assert bound.ep_per_bin < true.ep_per_bin


def test_time_symmetric_data_give_no_ep():
    h, J = sf.simulate.sk_couplings(12, J0=0.0, Js=1.0, H0=0.2, seed=2)
    J = (J + J.T) / 2
    X = sf.simulate.kinetic_ising(h, J, 400, n_trials=50, burn_in=100, seed=3)
    bound = entropy_production(None, X, method="maxent")
    assert abs(bound.ep_per_bin) < 3 * bound.stderr + 1e-3


def test_cap_at_ln_n_test_is_applied_and_flagged():
    # A deterministic cycle 1 -> 2 -> 3 -> 1 is perfectly irreversible (infinite EP).
    cycle = np.eye(3, dtype=bool)[np.arange(3000) % 3]
    X = sf.Raster.from_array(cycle, 0.01)
    bound = entropy_production(None, X, method="maxent")
    assert bound.details["capped"]
    assert bound.ep_per_bin == pytest.approx(np.log(bound.n_transitions))
    assert bound.details["test_objective_uncapped"] > bound.ep_per_bin


@pytest.mark.parametrize("split", ["contiguous", "random"])
def test_splits_partition_the_transitions(split):
    X = sf.Raster.from_array(np.zeros((1000, 3), dtype=bool), 0.01, segments=[400, 600])
    train, val, test = split_transitions(X, split=split, n_chunks=5)
    everything = np.sort(np.concatenate([train, val, test]))
    expected = np.concatenate([np.arange(0, 399), np.arange(400, 999)])
    np.testing.assert_array_equal(everything, expected)
    assert len(train) / len(expected) == pytest.approx(0.7, abs=0.01)
    if split == "contiguous":
        # Five pieces, each in time order: train block, then validation, then test.
        assert np.sum(np.diff(train) > 1) <= 5 + 1
        assert train[0] < val[0] < test[0]


def test_random_split_agrees_with_contiguous_on_stationary_data(parallel_runs):
    J, X, true, bound = parallel_runs[0.2]
    shuffled = entropy_production(None, X, method="maxent", split="random")
    assert shuffled.ep_per_bin == pytest.approx(bound.ep_per_bin, abs=3 * (bound.stderr + shuffled.stderr))


def test_float32_matches_float64(parallel_runs):
    X = parallel_runs[0.2][1].select_units(np.arange(14))
    double = entropy_production(None, X, method="maxent")
    single = entropy_production(None, X, method="maxent", dtype=torch.float32)
    assert single.details["dtype"] == "float32"
    assert single.ep_per_bin == pytest.approx(double.ep_per_bin, rel=0.02)


def test_hessian_vector_product_matches_finite_differences():
    from spikefield.thermo.maxent import _Problem, _TransitionSet

    h, J = sf.simulate.sk_couplings(8, J0=0.0, Js=1.0, H0=0.0, seed=0)
    X = sf.simulate.kinetic_ising(h, J, 2000, n_trials=2, seed=1)
    rows, _, _ = split_transitions(X)
    problem = _Problem(_TransitionSet(X.to_spins(np.int8), rows, torch.device("cpu"), torch.float64, 1000), 8)
    rng = np.random.default_rng(0)
    theta, direction = 0.2 * rng.normal(size=28), rng.normal(size=28)
    step = 1e-6
    plus = problem.value_and_gradient(theta + step * direction)[1]
    minus = problem.value_and_gradient(theta - step * direction)[1]
    product = problem.hessian_vector(theta, direction)
    np.testing.assert_allclose(product, (plus - minus) / (2 * step), atol=1e-7)
    # The negated objective is convex: its Hessian (a covariance) is positive semidefinite.
    assert direction @ product > 0


def test_newton_cg_reaches_the_lbfgs_estimate(parallel_runs):
    J, X, true, bound = parallel_runs[0.2]
    newton = entropy_production(None, X, method="maxent", optimizer="newton-cg")
    assert newton.details["converged"]
    assert newton.details["n_iter"] < bound.details["n_iter"]
    assert newton.ep_per_bin == pytest.approx(bound.ep_per_bin, abs=2 * bound.stderr)
    assert 0.9 * true.ep_per_bin <= newton.ep_per_bin <= true.ep_per_bin + 2 * newton.stderr


@pytest.mark.parametrize(("method", "options", "match"), [
    ("maxent", {"optimizer": "newton"}, "optimizer must be one of"),
    ("maxent", {"split": "blocks"}, "split must be one of"),
    ("maxent", {"fractions": (0.5, 0.5)}, "fractions must be three positive numbers"),
    ("maxent", {"fractions": (0.7, 0.2, 0.2)}, "summing to 1"),
    ("maxent", {"patience": 0}, "patience must be an integer >= 1"),
    ("maxent", {"n_chunks": 0}, "n_chunks must be a positive integer"),
    ("newton", {"max_observables": 10}, "needs the covariance of 435 pair observables"),
    ("tur", {"ridge": -1.0}, "ridge must be a finite number >= 0"),
])
def test_bad_arguments(parallel_runs, method, options, match):
    X = parallel_runs[0.1][1]
    with pytest.raises(ValidationError, match=match):
        entropy_production(None, X, method=method, **options)


def test_too_short_raster_is_rejected():
    X = sf.Raster.from_array(np.zeros((5, 3), dtype=bool), 0.01)
    with pytest.raises(ValidationError, match="raster has 4 transitions inside its segments; at least 10"):
        entropy_production(None, X, method="maxent")


@pytest.mark.slow
@pytest.mark.parametrize("beta", [0.1, 0.2, 0.3])
def test_target9_full_size(beta):
    # PHYSICS.md target 9: N = 50, k = 6, 10^5 steps, ratio ≥ 0.9 at β ∈ {0.1, 0.2}; never above ln n_test.
    J = diluted_couplings(50, seed=0)
    X = sf.simulate.kinetic_ising(np.zeros(50), beta * J, 1000, n_trials=100, burn_in=100, seed=3)
    true = entropy_production((np.zeros(50), beta * J), X)
    bound = entropy_production(None, X, method="maxent")
    assert bound.ep_per_bin <= min(true.ep_per_bin + 2 * bound.stderr, bound.details["ln_n_test"])
    if beta <= 0.2:
        assert bound.ep_per_bin >= 0.9 * true.ep_per_bin
