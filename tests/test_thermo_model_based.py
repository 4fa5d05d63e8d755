"""Model-based EP of kinetic Ising networks (PHYSICS.md §4.1, §7 target 7)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

import spikefield as sf
from spikefield.errors import ValidationError
from spikefield.thermo import entropy_production


def _asymmetric(n: int, seed: int, scale: float = 0.6) -> tuple[np.ndarray, np.ndarray]:
    return sf.simulate.sk_couplings(n, J0=0.2, Js=scale, H0=0.3, seed=seed)


@pytest.fixture(scope="module")
def stationary_run():
    h, J = _asymmetric(16, seed=3)
    X = sf.simulate.kinetic_ising(h, J, 600, n_trials=60, burn_in=200, seed=4, bin_size=0.02)
    return h, J, X


def _brute_force(h, J, spins):
    """Independent reference: log P(s_t|s_t-1) - log P(s_t-1|s_t) with numpy, one transition at a time."""
    def log_kernel(target, source):
        u = h + J @ source
        return float(np.sum(target * u - np.log(2 * np.cosh(u))))
    ratios = [log_kernel(spins[t], spins[t - 1]) - log_kernel(spins[t - 1], spins[t]) for t in range(1, len(spins))]
    return float(np.mean(ratios))


def test_trajectory_form_matches_brute_force():
    h, J = _asymmetric(6, seed=0, scale=1.0)
    X = sf.simulate.kinetic_ising(h, J, 300, seed=1)
    result = entropy_production((h, J), X, device="cpu")
    assert result.ep_per_bin == pytest.approx(_brute_force(h, J, X.to_spins().astype(float)), rel=1e-10)


def test_transitions_never_cross_segment_boundaries():
    # Two trials: the mean must be over within-trial transitions only (no pair across the join).
    h, J = _asymmetric(6, seed=0, scale=1.0)
    X = sf.simulate.kinetic_ising(h, J, 200, n_trials=2, seed=2)
    assert len(X.segments) == 2
    spins = X.to_spins().astype(float)
    ratios = [_brute_force(h, J, spins[a:b]) * (b - a - 1) for a, b in X.segments]
    expected = sum(ratios) / X.n_transitions
    result = entropy_production((h, J), X, device="cpu")
    assert result.n_transitions == X.n_transitions
    assert result.ep_per_bin == pytest.approx(expected, rel=1e-10)


def test_stationary_identity_within_three_standard_errors(stationary_run):
    h, J, X = stationary_run
    result = entropy_production((h, J), X)
    details = result.details
    assert details["stationary_ep_per_bin"] > 0.1
    assert abs(details["identity_difference"]) < 3 * details["identity_stderr"]


def test_symmetric_couplings_give_zero_ep():
    h, J = _asymmetric(12, seed=5)
    J = (J + J.T) / 2
    X = sf.simulate.kinetic_ising(h, J, 500, n_trials=40, burn_in=200, seed=6)
    result = entropy_production((h, J), X)
    assert abs(result.ep_per_bin) < 3 * result.stderr
    assert result.details["stationary_ep_per_bin"] == pytest.approx(0.0, abs=1e-12)


def test_decompositions_add_up(stationary_run):
    h, J, X = stationary_run
    areas = np.array(["CA1"] * 6 + ["CA3"] * 10)
    for form in ("trajectory", "stationary"):
        result = entropy_production((h, J), X, form=form, areas=areas)
        assert result.per_neuron.sum() == pytest.approx(result.ep_per_bin, rel=1e-9)
        assert result.per_area["ep_per_bin"].sum() == pytest.approx(result.ep_per_bin, rel=1e-9)
        assert result.per_area["n_units"].tolist() == [6, 10]
    stationary = result.details["stationary_ep_per_bin"]
    assert result.area_pairs["ep_per_bin"].sum() == pytest.approx(stationary, rel=1e-9)
    assert len(result.area_pairs) == 4


def test_normalisations(stationary_run):
    h, J, X = stationary_run
    result = entropy_production((h, J), X)
    assert result.ep_per_second == pytest.approx(result.ep_per_bin / 0.02)
    spikes_per_bin = X.to_numpy()[1:].sum(1).mean()
    assert result.spikes_per_bin == pytest.approx(spikes_per_bin, rel=0.01)
    assert result.ep_per_spike == pytest.approx(result.ep_per_bin / result.spikes_per_bin)
    assert result.ci_per_bin[0] < result.ep_per_bin < result.ci_per_bin[1]
    assert not result.is_lower_bound


def test_bootstrap_error_matches_spread_of_independent_runs():
    # The block-bootstrap s.e. of one run should describe the scatter across independent runs.
    h, J = _asymmetric(10, seed=7)
    values, errors = [], []
    for seed in range(8):
        X = sf.simulate.kinetic_ising(h, J, 400, n_trials=4, burn_in=100, seed=100 + seed)
        result = entropy_production((h, J), X, n_boot=400)
        values.append(result.ep_per_bin)
        errors.append(result.stderr)
    ratio = np.std(values, ddof=1) / np.mean(errors)
    assert 0.4 < ratio < 2.5


def test_beta_scales_the_couplings(stationary_run):
    h, J, X = stationary_run
    scaled = entropy_production((2 * h, 2 * J), X)
    assert entropy_production((h, J), X, beta=2.0).ep_per_bin == pytest.approx(scaled.ep_per_bin)


def test_accepts_fitted_estimators(stationary_run):
    h, J, X = stationary_run
    fitted = SimpleNamespace(h_=h, J_=J)
    assert entropy_production(fitted, X).ep_per_bin == pytest.approx(entropy_production((h, J), X).ep_per_bin)


def test_fitted_kinetic_ising_recovers_true_ep(stationary_run):
    h, J, X = stationary_run
    model = sf.KineticIsing().fit(X)
    fitted = entropy_production(model, X)
    true = entropy_production((h, J), X)
    assert fitted.ep_per_bin == pytest.approx(true.ep_per_bin, rel=0.1)


@pytest.mark.parametrize(("model", "raster_kind", "options", "error", "match"), [
    (None, "ok", {}, ValidationError, "method='model' needs a fitted model"),
    ("obj", "ok", {}, ValidationError, "model must be a fitted KineticIsing"),
    ("wrong_n", "ok", {}, ValidationError, "model has 3 neurons but the raster has 16 units"),
    ("bad_J", "ok", {}, ValidationError, r"couplings J must have shape \(16, 16\)"),
    ("ok", "array", {}, ValidationError, "raster must be a spikefield Raster"),
    ("ok", "ok", {"form": "stationry"}, ValidationError, "Did you mean 'stationary'"),
    ("ok", "ok", {"areas": ["a", "b"]}, ValidationError, r"areas must give one label per unit, shape \(16,\)"),
    ("ok", "ok", {"beta": -1.0}, ValidationError, "beta must be a finite number >= 0"),
    ("ok", "ok", {"method": "maxnet"}, ValidationError, "Did you mean 'maxent'"),
    ("ok", "ok", {"method": "tur"}, ValidationError, "model-free and takes model=None"),
    ("ok", "ok", {"device": "tpu"}, sf.DeviceError, "device='tpu'"),
])
def test_bad_arguments(stationary_run, model, raster_kind, options, error, match):
    h, J, X = stationary_run
    models = {"ok": (h, J), "obj": object(), "wrong_n": (np.zeros(3), np.zeros((3, 3))),
              "bad_J": (h, J[:, :3]), None: None}
    raster = X if raster_kind == "ok" else X.to_numpy()
    method = options.pop("method", "model")
    with pytest.raises(error, match=match):
        entropy_production(models[model], raster, method=method, **options)
