"""Classical, sequence and modern Hopfield networks: ground truth, invariants, error messages."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

import spikefield as sf
from spikefield.errors import DeviceError, ValidationError
from spikefield.memory import (
    Hopfield,
    ModernHopfield,
    SequenceHopfield,
    corrupt,
    modern_hopfield_energy,
    modern_hopfield_update,
    run_dynamics,
)
from spikefield.memory._common import torch_generator


def random_spins(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return rng.choice(np.array([-1, 1], dtype=np.int8), size=shape)


# ---------------------------------------------------------------- classical network
def test_hebbian_couplings_match_the_formula(rng):
    patterns = random_spins(rng, (7, 60))
    net = Hopfield(patterns, device="cpu")
    expected = patterns.T.astype(float) @ patterns / 60
    np.fill_diagonal(expected, 0.0)
    np.testing.assert_allclose(net.J_, expected, atol=1e-12)
    assert net.load_ == pytest.approx(7 / 60)
    np.testing.assert_array_equal(net.h_, 0.0)


def test_pseudoinverse_couplings_are_the_projector_on_the_patterns(rng):
    patterns = random_spins(rng, (12, 40))
    J = Hopfield(patterns, "pseudoinverse", self_couplings=True, device="cpu").J_
    np.testing.assert_allclose(J, J.T, atol=1e-10)
    np.testing.assert_allclose(J @ J, J, atol=1e-10)  # idempotent
    np.testing.assert_allclose(J @ patterns.T, patterns.T, atol=1e-10)  # every pattern is kept


def test_pseudoinverse_stores_correlated_patterns_the_hebbian_rule_cannot(rng):
    # Patterns sharing 70% of a common template: strongly correlated, load 0.3.
    n_neurons, n_patterns = 200, 60
    template = random_spins(rng, (n_neurons,))
    patterns = np.where(rng.random((n_patterns, n_neurons)) < 0.7, template, random_spins(rng, (n_patterns, n_neurons)))
    projected = Hopfield(patterns, "pseudoinverse", device="cpu")
    hebbian = Hopfield(patterns, "hebbian", device="cpu")
    assert np.all(np.diag(projected.overlap(projected.retrieve(patterns, seed=0))) > 0.99)
    assert np.mean(np.diag(hebbian.overlap(hebbian.retrieve(patterns, seed=0))) > 0.95) < 0.2


@pytest.mark.parametrize("mode", ["async", "sync"])
def test_retrieval_from_corrupted_cues_at_low_load(rng, mode):
    patterns = random_spins(rng, (15, 300))
    net = Hopfield(patterns, device="cpu")
    cues = corrupt(patterns, 0.2, seed=1)
    np.testing.assert_allclose(np.diag(net.overlap(cues)), 0.6, atol=1e-12)
    final, converged = net.retrieve(cues, seed=2, mode=mode, return_converged=True)
    assert converged.all()
    assert np.all(np.diag(net.overlap(final)) > 0.97)


def test_energy_matches_the_formula_and_never_rises_under_async_dynamics(rng):
    patterns = random_spins(rng, (20, 100))
    net = Hopfield(patterns, device="cpu")
    cues = random_spins(rng, (50, 100))
    expected = -0.5 * np.einsum("bi,ij,bj->b", cues.astype(float), net.J_, cues.astype(float))
    np.testing.assert_allclose(net.energy(cues), expected, rtol=1e-12)
    final = net.retrieve(cues, seed=0)
    assert np.all(net.energy(final) <= net.energy(cues) + 1e-12)
    # Every final state is a local minimum: no single flip lowers the energy.
    one_flip = np.repeat(final[:5], 100, axis=0)
    one_flip[np.arange(500), np.tile(np.arange(100), 5)] *= -1
    assert np.all(net.energy(one_flip).reshape(5, 100) >= net.energy(final[:5])[:, None] - 1e-12)


def test_fixed_points_agree_with_exact_enumeration_for_small_networks(rng):
    n_neurons = 10
    patterns = random_spins(rng, (3, n_neurons))
    net = Hopfield(patterns, device="cpu")
    states = np.array(list(itertools.product([-1, 1], repeat=n_neurons)), dtype=np.int8)
    fields = states @ net.J_.T
    is_fixed = np.all((fields * states > 0) | (fields == 0), axis=1)
    final = net.retrieve(states, seed=0)
    reached = {tuple(s) for s in final}
    assert reached <= {tuple(s) for s in states[is_fixed]}
    np.testing.assert_array_equal(net.retrieve(states[is_fixed], seed=1), states[is_fixed])


def test_synchronous_dynamics_can_end_in_a_two_cycle():
    net = Hopfield([[1, 1]], device="cpu")  # J = [[0, 0.5], [0.5, 0]]
    final, converged = net.retrieve([[1, -1]], steps=10, mode="sync", return_converged=True)
    assert not converged[0]
    _, converged_async = net.retrieve([[1, -1]], steps=10, mode="async", seed=0, return_converged=True)
    assert converged_async[0]


def test_temperature_melts_the_memory_and_is_seeded(rng):
    patterns = random_spins(rng, (5, 200))
    net = Hopfield(patterns, device="cpu")
    for mode in ("async", "sync"):
        cold = net.retrieve(patterns, steps=10, temperature=0.2, seed=0, mode=mode)
        hot = net.retrieve(patterns, steps=10, temperature=5.0, seed=0, mode=mode)
        assert np.all(np.diag(net.overlap(cold)) > 0.9)
        assert np.all(np.abs(np.diag(net.overlap(hot))) < 0.3)
        np.testing.assert_array_equal(hot, net.retrieve(patterns, steps=10, temperature=5.0, seed=0, mode=mode))
        assert not np.array_equal(hot, net.retrieve(patterns, steps=10, temperature=5.0, seed=1, mode=mode))


@pytest.mark.parametrize("mode", ["async", "sync"])
def test_grouped_dynamics_equal_one_network_at_a_time(rng, mode):
    groups = [random_spins(rng, (8, 80)) for _ in range(3)]
    couplings = torch.stack([torch.as_tensor(Hopfield(p).J_) for p in groups])
    cues = torch.as_tensor(np.stack([corrupt(p, 0.25, seed=i) for i, p in enumerate(groups)])).double()
    together, converged, _ = run_dynamics(cues, couplings, None, 50, mode=mode,
                                          generator=torch_generator(7, torch.device("cpu")))
    for g in range(3):
        alone, alone_converged, _ = run_dynamics(cues[g], couplings[g], None, 50, mode=mode,
                                                 generator=torch_generator(7, torch.device("cpu")))
        torch.testing.assert_close(together[g], alone)
        torch.testing.assert_close(converged[g], alone_converged)


@pytest.mark.parametrize("temperature", [0.0, 0.5])
def test_cpu_and_cuda_inner_loops_agree(rng, monkeypatch, temperature):
    """The NumPy inner loop used on the CPU and the torch one used on CUDA give the same dynamics."""
    patterns = random_spins(rng, (10, 90))
    net = Hopfield(patterns, device="cpu")
    cues = corrupt(patterns, 0.3, seed=0)
    numpy_loop = net.retrieve(cues, steps=5, temperature=temperature, seed=3)
    monkeypatch.setattr("spikefield.memory._common._FORCE_TORCH_INNER_LOOP", [True])
    np.testing.assert_array_equal(net.retrieve(cues, steps=5, temperature=temperature, seed=3), numpy_loop)


@pytest.mark.parametrize("kwargs, call, error, match", [
    ({"patterns": [[1, 0, 2]]}, None, ValidationError, r"patterns must hold ±1 spins.*got values \[0, 1, 2\]"),
    ({"patterns": np.zeros((0, 5))}, None, ValidationError, r"patterns must be a non-empty 2-D array.*\(0, 5\)"),
    ({"patterns": [[1, -1]], "rule": "hebian"}, None, ValidationError, r"rule must be one of.*Did you mean 'hebbian'"),
    ({"patterns": [[1, -1]], "device": "tpu"}, None, DeviceError, r"device='tpu'"),
    ({"patterns": [[1, -1, 1]]}, {"cues": [[1, -1]]}, ValidationError, r"cues must have 3 neurons.*\(1, 2\)"),
    ({"patterns": [[1, -1, 1]]}, {"cues": [[1, -1, 1]], "temperature": -1}, ValidationError,
     r"temperature must be a finite non-negative number; got -1"),
    ({"patterns": [[1, -1, 1]]}, {"cues": [[1, -1, 1]], "mode": "parallel"}, ValidationError,
     r"mode must be one of \['async', 'sync'\]; got 'parallel'"),
    ({"patterns": [[1, -1, 1]]}, {"cues": [[1, -1, 1]], "steps": 0}, ValidationError,
     r"steps must be a positive integer; got 0"),
])
def test_hopfield_errors(kwargs, call, error, match):
    with pytest.raises(error, match=match):
        net = Hopfield(**kwargs)
        net.retrieve(**call)


# ---------------------------------------------------------------- sequence network
def test_sequence_of_20_patterns_recalled_in_order_from_a_noisy_cue(rng):
    """Quality bar: N=500, 20 patterns, overlap >= 0.9 with the right pattern at every step."""
    sequence = random_spins(rng, (20, 500))
    net = SequenceHopfield(sequence, device="cpu")
    cue = corrupt(sequence[0], 0.2, seed=3)
    trajectory = net.recall(cue, seed=0)[0]
    overlaps = net.overlap(trajectory)
    assert trajectory.shape == (20, 500)
    assert np.all(np.diag(overlaps)[1:] >= 0.9), np.diag(overlaps).round(3)
    np.testing.assert_array_equal(np.argmax(overlaps, axis=1), np.arange(20))


def test_cyclic_sequence_wraps_around(rng):
    sequence = random_spins(rng, (6, 300))
    net = SequenceHopfield(sequence, cyclic=True, device="cpu")
    trajectory = net.recall(sequence[2], steps=12)[0]
    np.testing.assert_array_equal(np.argmax(net.overlap(trajectory), axis=1), (np.arange(13) + 2) % 6)


def test_sequence_network_is_a_kinetic_ising_model(rng):
    """The core simulator with the converted (h, J) at low temperature replays the sequence."""
    sequence = random_spins(rng, (8, 300))
    net = SequenceHopfield(sequence, cyclic=True, device="cpu")
    h, J = net.to_kinetic_ising_params(temperature=0.05)
    np.testing.assert_allclose(J, net.J_ / 0.05)
    raster = sf.simulate.kinetic_ising(h, J, n_steps=16, init=sequence[0], seed=0)
    overlaps = net.overlap(raster.to_spins().astype(float))
    np.testing.assert_array_equal(np.argmax(overlaps, axis=1), np.arange(1, 17) % 8)
    back = SequenceHopfield.from_kinetic_ising((h, J), temperature=0.05, sequence=sequence, device="cpu")
    np.testing.assert_allclose(back.J_, net.J_, atol=1e-12)
    np.testing.assert_array_equal(back.recall(sequence[0], steps=8), net.recall(sequence[0], steps=8))


def test_fitted_kinetic_ising_recovers_the_stored_sequence(rng):
    """Fit sf.KineticIsing to samples of a noisy sequence network; its T=0 limit replays the sequence."""
    KineticIsing = pytest.importorskip("spikefield.models.kinetic_ising").KineticIsing
    sequence = random_spins(rng, (5, 40))
    net = SequenceHopfield(sequence, cyclic=True, device="cpu")
    h, J = net.to_kinetic_ising_params(temperature=0.5)
    raster = sf.simulate.kinetic_ising(h, J, n_steps=3000, n_trials=2, seed=1)
    model = KineticIsing(device="cpu").fit(raster)
    assert np.corrcoef(model.J_.ravel(), J.ravel())[0, 1] > 0.75
    fitted = SequenceHopfield.from_kinetic_ising(model, sequence=sequence, device="cpu")
    trajectory = fitted.recall(sequence[0], steps=10, temperature=0.0)[0]
    np.testing.assert_array_equal(np.argmax(fitted.overlap(trajectory), axis=1), np.arange(11) % 5)


@pytest.mark.parametrize("build, error, match", [
    (lambda: SequenceHopfield([[1, -1, 1]]), ValidationError, r"sequence must hold at least 2 patterns.*\(1, 3\)"),
    (lambda: SequenceHopfield([[1, -1], [1, 1]], symmetric_strength=-1), ValidationError,
     r"symmetric_strength must be a finite non-negative number; got -1"),
    (lambda: SequenceHopfield([[1, -1], [1, 1]]).to_kinetic_ising_params(0), ValidationError,
     r"temperature must be > 0"),
    (lambda: SequenceHopfield.from_kinetic_ising((np.zeros(2), np.eye(2)), temperature=0), ValidationError,
     r"temperature must be > 0"),
    (lambda: SequenceHopfield.from_kinetic_ising(np.eye(3)), ValidationError,
     r"model must be a fitted model with h_ and J_.*got ndarray"),
    (lambda: SequenceHopfield.from_kinetic_ising((np.zeros(2), np.eye(3))), ValidationError,
     r"expected fields h of shape \(N,\).*\(2,\) and \(3, 3\)"),
    (lambda: SequenceHopfield.from_kinetic_ising((np.zeros(2), np.eye(2))).recall([1, -1]), ValidationError,
     r"steps must be given"),
    (lambda: SequenceHopfield([[1, -1], [1, 1]]).recall([[1, -1, 1]]), ValidationError,
     r"cues must have 2 neurons.*\(1, 3\)"),
])
def test_sequence_errors(build, error, match):
    with pytest.raises(error, match=match):
        build()


# ---------------------------------------------------------------- modern network
@pytest.mark.parametrize("beta", [0.125, 1.0, 4.0])
def test_modern_update_equals_scaled_dot_product_attention(beta):
    generator = torch.Generator().manual_seed(0)
    queries = torch.randn(3, 2, 7, 16, generator=generator, dtype=torch.float64)
    keys = torch.randn(3, 2, 11, 16, generator=generator, dtype=torch.float64)
    values = torch.randn(3, 2, 11, 5, generator=generator, dtype=torch.float64)
    reference = torch.nn.functional.scaled_dot_product_attention(queries, keys, values, scale=beta)
    torch.testing.assert_close(modern_hopfield_update(queries, keys, values, beta), reference, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(ModernHopfield(beta=beta)(queries, keys, values), reference, rtol=1e-12, atol=1e-12)


def test_modern_update_never_increases_the_energy():
    generator = torch.Generator().manual_seed(1)
    patterns = torch.randn(50, 20, generator=generator, dtype=torch.float64)
    states = 2 * torch.randn(30, 20, generator=generator, dtype=torch.float64)
    for beta in (0.1, 1.0, 5.0):
        before = modern_hopfield_energy(states, patterns, beta)
        after = modern_hopfield_energy(modern_hopfield_update(states, patterns, patterns, beta), patterns, beta)
        assert torch.all(after <= before + 1e-10)
        assert torch.all(before >= 0)  # the constants make the energy non-negative


def test_modern_network_stores_far_more_than_the_classical_limit(rng):
    """α = P/N = 10, i.e. 70x the classical 0.14 N: every pattern retrieved from a 10%-flipped cue."""
    patterns = random_spins(rng, (640, 64))
    memory = ModernHopfield(beta=1.0, patterns=patterns)
    cues = corrupt(patterns, 0.1, seed=0)
    np.testing.assert_array_equal(memory.retrieve(cues, device="cpu"), patterns)
    classical = Hopfield(patterns, device="cpu")
    assert np.mean(np.diag(classical.overlap(classical.retrieve(cues, seed=0))) >= 0.95) < 0.05


def test_modern_layer_iterates_to_a_fixed_point_and_moves_with_its_buffer(rng):
    patterns = random_spins(rng, (30, 32)).astype(float)
    layer = ModernHopfield(beta=0.5, n_steps=5, patterns=patterns).double()
    query = torch.as_tensor(corrupt(patterns[:4], 0.25, seed=1), dtype=torch.float64)
    state = layer(query)
    torch.testing.assert_close(ModernHopfield(beta=0.5, n_steps=1, patterns=patterns).double()(state), state,
                               atol=1e-6, rtol=1e-6)
    assert "stored_patterns" in dict(layer.named_buffers())
    assert "beta=0.5" in repr(layer)


@pytest.mark.parametrize("build, error, match", [
    (lambda: ModernHopfield(beta=0), ValidationError, r"beta must be a positive finite number; got 0"),
    (lambda: ModernHopfield(beta="x"), ValidationError, r"beta must be a positive number; got 'x'"),
    (lambda: ModernHopfield(n_steps=0), ValidationError, r"n_steps must be a positive integer; got 0"),
    (lambda: ModernHopfield(patterns=np.ones(4)), ValidationError, r"patterns must be a finite non-empty \(K, d\)"),
    (lambda: ModernHopfield()(torch.ones(2, 3)), ValidationError, r"keys must be given"),
    (lambda: ModernHopfield(patterns=np.ones((2, 3))).retrieve(np.ones((1, 4))), ValidationError,
     r"cues must be \(B, 3\); got shape \(1, 4\)"),
    (lambda: modern_hopfield_update(torch.ones(2, 3), torch.ones(4, 5), torch.ones(4, 5), 1.0), ValidationError,
     r"queries \(..., L, d\), keys.*\(2, 3\), \(4, 5\), \(4, 5\)"),
    (lambda: ModernHopfield(n_steps=2)(torch.ones(1, 3), torch.ones(4, 3), torch.ones(4, 2)), ValidationError,
     r"n_steps=2 iterates the update"),
])
def test_modern_errors(build, error, match):
    with pytest.raises(error, match=match):
        build()


@pytest.mark.gpu
def test_networks_agree_between_cpu_and_cuda(rng):
    patterns = random_spins(rng, (40, 400))
    cues = corrupt(patterns, 0.15, seed=0)
    cpu = Hopfield(patterns, device="cpu").retrieve(cues, seed=0)
    cuda = Hopfield(patterns, device="cuda").retrieve(cues, seed=0)
    assert np.mean(np.all(cpu == cuda, axis=1)) > 0.95
    memory = ModernHopfield(beta=1.0, patterns=patterns)
    np.testing.assert_array_equal(memory.retrieve(cues, device="cuda"), memory.retrieve(cues, device="cpu"))
    sequence = SequenceHopfield(patterns[:10], device="cuda")
    assert np.all(np.diag(sequence.overlap(sequence.recall(cues[0])[0])) > 0.9)


def test_attractors_accept_periods_longer_than_255():
    # A ring that passes activity one neuron on per parallel step cycles with period N = 300.
    from spikefield.memory import attractors

    n = 300
    couplings = np.roll(np.eye(n), 1, axis=0)  # J[i, i-1] = 1: neuron i copies neuron i-1
    start = -np.ones((1, n))
    start[0, 0] = 1
    table = attractors((np.zeros(n), couplings), starts=start, max_period=n, max_steps=2 * n, device="cpu")
    assert table.period.tolist() == [n]
