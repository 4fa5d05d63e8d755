"""Exact asymmetric-SK thermodynamics (PHYSICS.md §5.1, §7 targets 2 and 3)."""

from __future__ import annotations

import numpy as np
import pytest

import spikefield as sf
from spikefield.errors import ValidationError
from spikefield.thermo import asymmetric_sk, critical_beta


@pytest.mark.parametrize(("delta_j", "expected"), [(0.5, 1.3484999614), (0.6, 1.6281474039)])
def test_critical_line_matches_reference_constants(delta_j, expected):
    assert critical_beta(delta_j) == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize(("beta", "ep", "m"), [(1.0, 0.2066, 0.0), (2.0, 0.1291, 0.7247)])
def test_ep_per_spin_matches_reference_curve(beta, ep, m):
    result = asymmetric_sk(beta, J0=1.0, DeltaJ=0.5, H0=0.0)
    assert result.ep_per_spin == pytest.approx(ep, abs=2e-3)
    assert result.m == pytest.approx(m, abs=1e-3)
    assert result.reverse_entropy_rate == pytest.approx(result.entropy_rate + result.ep_per_spin)


def test_ep_peaks_at_the_order_disorder_transition():
    betas = np.linspace(1.2, 1.5, 61)
    eps = [asymmetric_sk(b).ep_per_spin for b in betas]
    peak = betas[int(np.argmax(eps))]
    assert 1.33 <= peak <= 1.37
    # Magnetisation switches on exactly at β_c (continuous transition).
    beta_c = critical_beta(0.5)
    assert asymmetric_sk(beta_c - 0.01).m == 0.0
    assert asymmetric_sk(beta_c + 0.01).m > 0.01


def test_no_disorder_means_no_entropy_production():
    # ΔJ = 0: all couplings equal J0/N, so J is symmetric and the EP vanishes.
    for beta in (0.5, 2.0):
        assert asymmetric_sk(beta, DeltaJ=0.0, H0=0.3).ep_per_spin == 0.0


def test_fields_reduce_the_entropy_rate():
    # Quenched fields make each spin more predictable from its own field.
    assert asymmetric_sk(1.0, H0=1.0).entropy_rate < asymmetric_sk(1.0, H0=0.0).entropy_rate


@pytest.mark.parametrize(("call", "match"), [
    (lambda: asymmetric_sk(-1.0), "beta must be a finite number >= 0"),
    (lambda: asymmetric_sk(1.0, DeltaJ=float("nan")), "DeltaJ must be a finite number"),
    (lambda: asymmetric_sk(1.0, H0=-0.5), "H0 must be a finite number >= 0"),
    (lambda: asymmetric_sk("1"), "beta must be a finite number"),
    (lambda: critical_beta(0.9), r"DeltaJ must be below J0\*sqrt\(2/pi\)"),
])
def test_bad_arguments(call, match):
    with pytest.raises(ValidationError, match=match):
        call()


@pytest.mark.slow
def test_simulation_at_n512_matches_analytic_ep():
    # Target 3: σ/N from a finite N = 512 simulation within 3 % of the N -> ∞ value at β = 1.
    h, J = sf.simulate.sk_couplings(512, J0=1.0, Js=0.5, H0=0.0, beta=1.0, seed=0)
    X = sf.simulate.kinetic_ising(h, J, 400, n_trials=64, burn_in=100, seed=1)
    result = sf.thermo.entropy_production((h, J), X, form="stationary", device="cpu")
    assert result.ep_per_bin / 512 == pytest.approx(asymmetric_sk(1.0).ep_per_spin, rel=0.03)
