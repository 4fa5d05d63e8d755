"""Mean-field EP through thermo: Σ (J−Jᵀ)_ij D_ij with a Plefka prediction of D (PHYSICS.md §4.1, target 7)."""

from __future__ import annotations

import numpy as np
import pytest

import spikefield as sf
from spikefield.errors import ValidationError
from spikefield.thermo import entropy_production

BETA_C = 1.110840041015779  # critical β of the 2021 benchmark ensemble (H0, J0, Js) = (0.5, 1, 0.1), target 1


@pytest.fixture(scope="module")
def critical_run():
    """Target 7 at reduced size: N = 32 at β_c, 100 trials x 300 stationary steps."""
    h, J = sf.simulate.sk_couplings(32, J0=1.0, Js=0.1, H0=0.5, beta=BETA_C, seed=0)
    X = sf.simulate.kinetic_ising(h, J, 300, n_trials=100, burn_in=200, seed=1, init="ones")
    return h, J, X, entropy_production((h, J), X, form="stationary")


def test_plefka2_matches_simulated_ep_at_criticality(critical_run):
    # PHYSICS.md target 7 asks for 1 % at N = 128; at N = 32 we measured 1.008 (s.e. of the simulation 1.9 %).
    h, J, X, simulated = critical_run
    mf = entropy_production((h, J), X, method="meanfield", approximation="plefka2_t", steps=32)
    assert mf.details["converged"]
    assert mf.ep_per_bin == pytest.approx(simulated.ep_per_bin, abs=3 * simulated.stderr + 0.01 * simulated.ep_per_bin)
    assert not mf.is_lower_bound and np.isnan(mf.stderr)


def test_nmf_stationary_ep_equals_closed_form(critical_run):
    # σ_nMF = ½ Σ_ij A_i A_j (J_ij − J_ji)², A = 1 − m²: checks the orientation of D (a transposed D flips the sign).
    h, J, X, _ = critical_run
    mf = entropy_production((h, J), X, method="meanfield", approximation="nmf", stationary=True)
    A = 1 - mf.details["m"] ** 2
    assert mf.ep_per_bin == pytest.approx(0.5 * np.sum(np.outer(A, A) * (J - J.T) ** 2), rel=1e-10)


def test_shares_areas_and_normalisations_add_up(critical_run):
    h, J, X, _ = critical_run
    areas = np.repeat(["V1", "LM"], 16)
    mf = entropy_production((h, J), X, method="meanfield", approximation="tap", areas=areas)
    assert mf.per_neuron.sum() == pytest.approx(mf.ep_per_bin, rel=1e-10)
    assert mf.per_area["ep_per_bin"].sum() == pytest.approx(mf.ep_per_bin, rel=1e-10)
    assert mf.area_pairs["ep_per_bin"].sum() == pytest.approx(mf.ep_per_bin, rel=1e-10)
    assert mf.ep_per_second == pytest.approx(mf.ep_per_bin / X.bin_size)
    assert mf.ep_per_spike == pytest.approx(mf.ep_per_bin / mf.spikes_per_bin)


def test_symmetric_couplings_give_zero():
    h, J = sf.simulate.sk_couplings(10, J0=0.5, Js=0.5, H0=0.2, symmetric=True, seed=3)
    X = sf.simulate.kinetic_ising(h, J, 50, n_trials=4, seed=4)
    assert entropy_production((h, J), X, method="meanfield", steps=8).ep_per_bin == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize(("model", "options", "match"), [
    (None, {}, "method='meanfield' needs a fitted model"),
    ("ok", {"areas": ["a", "b"]}, r"areas must give one label per unit, shape \(10,\)"),
    ("ok", {"beta": -1.0}, "beta must be a finite number >= 0"),
    ("ok", {"approximation": "plefka3"}, "method"),
])
def test_bad_arguments(model, options, match):
    h, J = sf.simulate.sk_couplings(10, seed=0)
    X = sf.simulate.kinetic_ising(h, J, 20, n_trials=2, seed=1)
    with pytest.raises(ValidationError, match=match):
        entropy_production((h, J) if model == "ok" else model, X, method="meanfield", **options)
