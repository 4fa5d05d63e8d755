"""Inverse mean-field problem and spin statistics from rasters."""

from __future__ import annotations

import numpy as np
import pytest

from spikefield import Raster
from spikefield.errors import ConvergenceWarning, RasterError, ValidationError
from spikefield.meanfield import (
    entropy_production,
    forward,
    inverse,
    plot_transition,
    reconstruct_transition,
    statistics,
)
from spikefield.simulate import kinetic_ising, sk_couplings

METHODS = [("nmf", 1), ("tap", 2), ("plefka_t", 1), ("plefka_t", 2), ("plefka_t1", 1), ("plefka2_t", 1),
           ("plefka2_t", 2)]


@pytest.fixture(scope="module")
def network():
    return sk_couplings(24, seed=5, beta=1.0)


@pytest.mark.parametrize(("method", "order"), METHODS)
def test_inverse_recovers_parameters_from_own_forward_fixed_point(network, method, order):
    """Moment matching inverts each method's own stationary predictions exactly."""
    h, J = network
    out = forward(h, J, method=method, order=order, stationary=True)
    fit = inverse(out["m"], out["C"], out["D"], method=method, order=order)
    assert fit.converged and fit.residual_m < 1e-9 and fit.residual_D < 1e-9
    np.testing.assert_allclose(fit.J, J, atol=1e-8)
    np.testing.assert_allclose(fit.h, h, atol=1e-7)


@pytest.mark.parametrize(("method", "order"), [("nmf", 1), ("plefka_t", 1), ("plefka_t1", 1)])
def test_closed_forms_are_exact_for_their_own_model(network, method, order):
    h, J = network
    out = forward(h, J, method="plefka_t" if method == "nmf" else method, order=order, stationary=True)
    h_fit, J_fit = inverse(out["m"], out["C"], out["D"], method=method, order=order, solver="closed")
    np.testing.assert_allclose(J_fit, J, atol=1e-9)
    np.testing.assert_allclose(h_fit, h, atol=1e-8)


def test_inverse_accepts_statistics_mapping_with_previous_moments(network):
    h, J = network
    out = forward(h, J, method="plefka2_t", steps=30)
    stats = {"m": out["m"][-1], "C": out["C"][-1], "D": out["D"][-1],
             "m_prev": out["m"][-2], "C_prev": out["C"][-2], "D_prev": out["D"][-2]}
    fit = inverse(stats, method="plefka2_t")
    assert fit.converged
    np.testing.assert_allclose(fit.J, J, atol=1e-8)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"C": np.eye(2)}, r"statistics mapping and also \['C'\]"),
    ({"D_prev": np.zeros((2, 2))}, r"also \['D_prev'\]"),
])
def test_inverse_rejects_mapping_with_conflicting_arrays(kwargs, match):
    stats = {"m": np.zeros(2), "C": np.eye(2), "D": np.zeros((2, 2)), "D_prev": np.zeros((2, 2))}
    with pytest.raises(ValidationError, match=match):
        inverse(stats, method="nmf", **kwargs)
    with pytest.raises(ValidationError, match=r"lacks \['D'\]"):
        inverse({"m": np.zeros(2), "C": np.eye(2)}, method="nmf")


def test_inverse_from_simulated_spikes_recovers_couplings():
    """Ground truth: spikes simulated from known (h, J), statistics -> Plefka inverse."""
    h, J = sk_couplings(12, J0=0.5, Js=0.6, H0=0.3, seed=7)
    raster = kinetic_ising(h, J, n_steps=4000, n_trials=50, seed=1)
    stats = statistics(raster)
    fit = inverse(stats, method="plefka2_t")
    assert fit.converged
    error, zero = np.mean((fit.J - J) ** 2), np.mean(J**2)
    assert error < 0.02 * zero
    baseline = inverse(stats, method="nmf", warn=False)
    assert error < np.mean((baseline.J - J) ** 2)


def test_inverse_reports_failure(network):
    h, J = network
    out = forward(h, J, method="plefka2_t", stationary=True)
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        fit = inverse(out["m"], out["C"], out["D"], method="tap", max_iter=1, tol=1e-14)
    assert not fit.converged and fit.n_iter <= 1 and max(fit.residual_m, fit.residual_D) > 1e-14


def test_inverse_propagates_inner_root_failure(network):
    """An inner self-consistency solve that misses its tolerance makes the fit unconverged, with a warning."""
    h, J = network
    out = forward(h, J, method="plefka2_t", stationary=True)
    good = inverse(out["m"], out["C"], out["D"], method="plefka2_t")
    assert good.converged and good.root_report.converged
    with pytest.warns(ConvergenceWarning, match="inner self-consistency solve did not reach"):
        fit = inverse(out["m"], out["C"], out["D"], method="plefka2_t", root_max_iter=1, root_tol=1e-16)
    assert not fit.converged and not fit.root_report.converged and fit.root_report.max_residual > 1e-16


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"method": "pl2"}, "method='pl2' is not a mean-field method"),
    ({"solver": "newton"}, "solver='newton' is not known"),
    ({"solver": "closed"}, "solver='closed' is not available for method='plefka2_t'"),
    ({"m": np.array([1.0, 0.0])}, "m must lie strictly between -1 and 1"),
    ({"C": np.eye(3)}, r"C must have shape \(2, 2\); got shape \(3, 3\)"),
    ({"m_prev": np.zeros(3)}, r"m_prev must have shape \(2,\)"),
    ({"D": None}, "inverse needs C and D"),
    ({"max_iter": 0}, "max_iter must be a positive integer"),
    ({"root_max_iter": 0}, "root_max_iter must be a positive integer"),
    ({"root_tol": -1.0}, "root_tol must be a positive number"),
])
def test_inverse_bad_arguments(kwargs, match):
    args = {"m": np.zeros(2), "C": np.eye(2), "D": np.zeros((2, 2)), "method": "plefka2_t"}
    args.update(kwargs)
    with pytest.raises(ValidationError, match=match):
        inverse(**args)


@pytest.mark.parametrize("chunk_bins", [2, 37, 10_000])
def test_statistics_match_numpy_and_never_cross_segments(chunk_bins):
    rng = np.random.default_rng(0)
    spikes = rng.random((300, 4)) < 0.4
    raster = Raster(spikes, 0.01, segments=[100, 200])
    stats = statistics(raster, chunk_bins=chunk_bins)
    s = 2.0 * spikes - 1
    pairs = [(t - 1, t) for t in range(1, 300) if t != 100]
    prev, cur = s[[a for a, _ in pairs]], s[[b for _, b in pairs]]
    assert stats["n_transitions"] == 298
    np.testing.assert_allclose(stats["m"], cur.mean(0), atol=1e-12)
    np.testing.assert_allclose(stats["m_prev"], prev.mean(0), atol=1e-12)
    np.testing.assert_allclose(stats["C"], np.cov(cur.T, bias=True), atol=1e-12)
    np.testing.assert_allclose(stats["C_prev"], np.cov(prev.T, bias=True), atol=1e-12)
    D = cur.T @ prev / len(pairs) - np.outer(cur.mean(0), prev.mean(0))
    np.testing.assert_allclose(stats["D"], D, atol=1e-12)
    triples = [(t - 2, t - 1) for t in range(2, 300) if t not in (100, 101)]
    before, middle = s[[a for a, _ in triples]], s[[b for _, b in triples]]
    D_prev = middle.T @ before / len(triples) - np.outer(middle.mean(0), before.mean(0))
    np.testing.assert_allclose(stats["D_prev"], D_prev, atol=1e-12)


def test_statistics_skip_drops_segment_starts():
    spikes = np.zeros((20, 2), dtype=bool)
    spikes[[0, 10]] = True  # only the first bin of each segment fires
    stats = statistics(Raster(spikes, 1.0, segments=[10, 10]), skip=1)
    np.testing.assert_allclose(stats["m"], -1.0)
    assert stats["n_transitions"] == 16


@pytest.mark.parametrize(("raster", "kwargs", "error", "match"), [
    (np.zeros((5, 2)), {}, ValidationError, "statistics expects a spikefield.Raster; got ndarray"),
    (Raster(np.zeros((5, 2), bool), 1.0), {"skip": -1}, ValidationError, "skip must be a non-negative integer"),
    (Raster(np.zeros((5, 2), bool), 1.0), {"skip": 4}, RasterError, "has 0 transitions after skipping 4"),
    (Raster(np.zeros((5, 2), bool), 1.0), {"chunk_bins": 1}, ValidationError, "chunk_bins must be an integer >= 2"),
])
def test_statistics_bad_arguments(raster, kwargs, error, match):
    with pytest.raises(error, match=match):
        statistics(raster, **kwargs)


def test_entropy_production_nmf_closed_form_and_symmetric_zero(network):
    h, J = network
    out = forward(h, J, method="nmf", stationary=True)
    A = 1 - out["m"] ** 2
    closed = 0.5 * np.sum(np.outer(A, A) * (J - J.T) ** 2)
    assert entropy_production(h, J, method="nmf", stationary=True) == pytest.approx(closed, rel=1e-10)
    J_sym = (J + J.T) / 2
    assert abs(entropy_production(h, J_sym, method="plefka2_t", stationary=True)) < 1e-12


def test_entropy_production_matches_simulation_at_weak_coupling():
    h, J = sk_couplings(10, J0=0.5, Js=0.4, H0=0.3, seed=2)
    raster = kinetic_ising(h, J, n_steps=5000, n_trials=40, seed=3)
    stats = statistics(raster)
    simulated = entropy_production(h, J, stats["m_prev"], stats["D"], m=stats["m"])
    predicted = entropy_production(h, J, method="plefka2_t", stationary=True)
    assert predicted == pytest.approx(simulated, rel=0.05)


def test_entropy_production_last_step_only_uses_the_full_D(network):
    h, J = network
    out = forward(h, J, method="nmf", steps=40)
    connected = float(np.sum((J - J.T) * out["D"][-1]))
    last_only = entropy_production(h, J, method="nmf", steps=40, keep_history=False)
    assert last_only == pytest.approx(connected, rel=1e-12)


def test_entropy_production_needs_D_or_method(network):
    h, J = network
    with pytest.raises(ValidationError, match="needs either D"):
        entropy_production(h, J)


def test_reconstruct_transition_peaks_near_critical_point():
    h, J = sk_couplings(64, seed=0)
    beta_c = 1.1108397534245904
    betas = beta_c * (1 + 0.3 * np.linspace(-1, 1, 9))
    curves = reconstruct_transition(h, J, betas=betas, methods=["plefka_t:1", "tap"], steps=60)
    assert set(curves) == {"beta", "plefka_t:1", "tap"}
    for name in ("plefka_t:1", "tap"):
        assert curves[name]["m"].shape == (9,) and np.all(np.isfinite(curves[name]["ep"]))
        assert 0 < np.argmax(curves[name]["D"]) < 8  # an interior maximum of the delayed covariance
    import matplotlib

    matplotlib.use("Agg")
    figure = plot_transition(curves, beta_c=beta_c)
    assert len(figure.axes) == 4 and len(figure.axes[1].lines) == 3  # two methods + the β_c marker
