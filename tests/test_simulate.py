"""Ground-truth generators behave as their equations say."""

from __future__ import annotations

import numpy as np
import pytest

import spikefield as sf


def test_sk_ensemble_moments():
    h, J = sf.simulate.sk_couplings(400, J0=1.0, Js=0.1, H0=0.5, seed=1)
    assert J.mean() * 400 == pytest.approx(1.0, abs=0.02)
    assert J.std() * np.sqrt(400) == pytest.approx(0.1, rel=0.02)
    assert h.min() >= -0.5 and h.max() <= 0.5
    hs, Js = sf.simulate.sk_couplings(50, symmetric=True, seed=1)
    assert np.allclose(Js, Js.T) and np.all(np.diag(Js) == 0)


def test_seeded_and_reproducible():
    h, J = sf.simulate.sk_couplings(10, seed=3)
    a = sf.simulate.kinetic_ising(h, J, 200, n_trials=3, seed=7).to_numpy()
    b = sf.simulate.kinetic_ising(h, J, 200, n_trials=3, seed=7).to_numpy()
    c = sf.simulate.kinetic_ising(h, J, 200, n_trials=3, seed=8).to_numpy()
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_kinetic_ising_matches_transition_probabilities():
    # Independent neurons (J = 0): P(spike) = (1 + tanh h) / 2 exactly.
    h = np.array([-1.0, 0.0, 0.7])
    raster = sf.simulate.kinetic_ising(h, np.zeros((3, 3)), 20_000, n_trials=5, seed=0)
    assert raster.segments.shape == (5, 2)
    assert np.allclose(raster.mean_activity(), (1 + np.tanh(h)) / 2, atol=0.005)
    # A single strong coupling 0 -> 1: neuron 1 copies neuron 0 with lag one.
    J = np.zeros((2, 2))
    J[1, 0] = 3.0
    s = sf.simulate.kinetic_ising(np.zeros(2), J, 5000, seed=1).to_spins()
    agree = np.mean(s[1:, 1] == s[:-1, 0])
    assert agree == pytest.approx((1 + np.tanh(3.0)) / 2, abs=0.01)


def test_kinetic_ising_can_record_the_initial_state():
    h, J = sf.simulate.sk_couplings(6, seed=3)
    plain = sf.simulate.kinetic_ising(h, J, 50, n_trials=4, init="ones", seed=2)
    both = sf.simulate.kinetic_ising(h, J, 50, n_trials=4, init="ones", seed=2, record_initial=True)
    assert both.n_bins == 4 * 51 and both.n_transitions == plain.n_transitions + 4
    rows = both.to_numpy().reshape(4, 51, 6)
    assert rows[:, 0].all()  # s_0 = +1 in every trial
    # The same random stream: the remaining bins are exactly the plain simulation.
    np.testing.assert_array_equal(rows[:, 1:].reshape(-1, 6), plain.to_numpy())
    burnt = sf.simulate.kinetic_ising(h, J, 50, n_trials=4, burn_in=10, seed=2, record_initial=True)
    assert burnt.n_bins == 4 * 51  # after burn-in the recorded "initial" bin is the state before step 1


def test_equilibrium_ising_two_spins_exact():
    # Two coupled spins: <s1 s2> = tanh(J) with zero fields.
    J = np.array([[0.0, 0.8], [0.8, 0.0]])
    s = sf.simulate.equilibrium_ising(np.zeros(2), J, 40_000, n_chains=200, burn_in=50, seed=0).to_spins()
    assert np.mean(s[:, 0] * s[:, 1]) == pytest.approx(np.tanh(0.8), abs=0.02)
    assert np.abs(s.mean(axis=0)).max() < 0.03


def test_place_cells_ground_truth():
    sim = sf.simulate.place_cells(30, run_duration=120, rest_duration=30, n_replay_events=4,
                                  coupling_strength=0.5, seed=2)
    rec = sim.recording
    assert rec.n_units == 30 and set(rec.epochs) == {"run", "rest"}
    assert rec.position.unit == "cm" and rec.position.values.max() <= 200 + 1e-9
    assert sim.replay_events.shape == (4, 3)
    assert np.all((sim.replay_events[:, 0] >= 120) & (sim.replay_events[:, 1] <= 150))
    # Cells fire where their field is: every place cell's median spike position lies near its
    # centre (checked for all of them, not one that might lack a field).
    run = rec.select(epoch="run")
    with_field = np.flatnonzero(np.isfinite(sim.field_centers))
    assert with_field.size >= 20
    for i in with_field:
        x = run.position.at(run.spike_times[i])[:, 0]
        assert abs(np.median(x) - sim.field_centers[i]) < 10.0, i
    assert np.allclose(np.diag(sim.couplings), 0)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: sf.simulate.sk_couplings(0), r"n_neurons must be a positive integer"),
        (lambda: sf.simulate.kinetic_ising(np.zeros(3), np.zeros((2, 2)), 10), r"shape \(N,\).*\(N, N\)"),
        (lambda: sf.simulate.kinetic_ising(np.zeros(2), np.zeros((2, 2)), 10, init="up"), r"init must be"),
        (lambda: sf.simulate.equilibrium_ising(np.zeros(2), np.array([[0, 1.0], [0, 0]]), 10), r"symmetric"),
        (lambda: sf.simulate.place_cells(5, peak_rate=200, dt=0.01), r"peak_rate\*dt"),
        (lambda: sf.simulate.place_cells(5, fraction_place=1.5), r"fraction_place must be in \[0, 1\]"),
        (lambda: sf.simulate.place_cells(5, baseline_rate=-1.0), r"baseline_rate must be >= 0"),
        (lambda: sf.simulate.place_cells(5, rest_duration=0.5, n_replay_events=3), r"3 replay events need"),
        (lambda: sf.simulate.place_cells(5, n_replay_events=-1), r"n_replay_events must be a non-negative"),
        (lambda: sf.simulate.kinetic_ising(np.zeros(2), np.zeros((2, 2)), 10, device="tpu"), r"device='tpu'"),
        # A negative burn_in used to return rows of uninitialised memory.
        (lambda: sf.simulate.kinetic_ising(np.zeros(2), np.zeros((2, 2)), 10, burn_in=-1), r"burn_in must be"),
        (lambda: sf.simulate.equilibrium_ising(np.zeros(2), np.zeros((2, 2)), 10, burn_in=-2), r"burn_in must be"),
    ],
)
def test_simulate_errors(call, match):
    with pytest.raises(sf.SpikefieldError, match=match):
        call()


def test_cuda_request_without_gpu_is_clear():
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA present: the no-GPU error path cannot be exercised here")
    with pytest.raises(sf.DeviceError, match="CUDA is not available"):
        sf.simulate.kinetic_ising(np.zeros(2), np.zeros((2, 2)), 10, device="cuda")


def test_equilibrium_segments_when_samples_do_not_divide_chains():
    h, J = sf.simulate.sk_couplings(4, symmetric=True, seed=0)
    raster = sf.simulate.equilibrium_ising(h, J, 1000, n_chains=300, burn_in=5, seed=0)
    lengths = raster.segments[:, 1] - raster.segments[:, 0]
    assert raster.n_bins == 1000 and lengths.sum() == 1000 and lengths.min() > 0
