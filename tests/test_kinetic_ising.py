"""KineticIsing: exact maximum likelihood, conversions, persistence, validation and real data.

Ground-truth ensemble (PHYSICS.md §3.1/§5.1): asymmetric SK couplings ``J_ij ~ N(J0/N, Js²/N)``
with J0 = 1, Js = 0.5 and β = 1.35 ≈ β_c(ΔJ = 0.5) = 1.3485, the order–disorder point of the
asymmetric SK model (its "maximally fluctuating", typical regime), fields U(−0.5, 0.5).
Js = 0.5 rather than the 2021 benchmark's 0.1: with Js = 0.1 the couplings' spread
(0.01 at N = 100) is below the estimation noise of 10^5 bins (≈ 1/√T ≈ 0.003 per entry at
these rates), so no estimator could reach corr ≥ 0.95; at Js = 0.5 the spread is 0.07.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
import torch

import spikefield as sf
from spikefield.errors import (
    ConvergenceWarning,
    DeviceError,
    NotFittedError,
    RasterError,
    ReaderError,
    ValidationError,
)
from spikefield.models import _logistic
from spikefield.models.conversions import glm_to_spins, spins_to_glm
from spikefield.models.kinetic_ising import KineticIsing

N_GT, BETA_GT, JS_GT = 100, 1.35, 0.5


def spin_log_likelihood(h: np.ndarray, J: np.ndarray, raster: sf.Raster) -> float:
    """Mean log P(s_t | s_{t−1}) per transition per neuron written directly in spins (PHYSICS.md §1.2)."""
    total, count = 0.0, 0
    spins = raster.to_spins(np.float64)
    for a, b in raster.segments:
        prev, nxt = spins[a:b - 1], spins[a + 1:b]
        u = prev @ J.T + h
        total += float(np.sum(nxt * u - np.logaddexp(u, -u)))
        count += nxt.size
    return total / count


@pytest.fixture(scope="module")
def ground_truth():
    h, J = sf.simulate.sk_couplings(N_GT, J0=1.0, Js=JS_GT, H0=0.5, beta=BETA_GT, seed=11)
    train = sf.simulate.kinetic_ising(h, J, 10_000, n_trials=10, seed=12, burn_in=100)  # 10^5 bins
    test = sf.simulate.kinetic_ising(h, J, 10_000, n_trials=1, seed=13, burn_in=100)
    model = KineticIsing(device="cpu").fit(train)
    return h, J, train, test, model


@pytest.fixture(scope="module")
def small():
    h, J = sf.simulate.sk_couplings(12, J0=1.0, Js=0.5, beta=1.2, seed=3)
    return h, J, sf.simulate.kinetic_ising(h, J, 1500, n_trials=2, seed=4)


# ---------------------------------------------------------------------- ground truth
def test_ground_truth_recovery(ground_truth):
    h, J, train, test, model = ground_truth
    assert train.n_bins == 100_000 and model.converged_
    assert model.max_gradient_ < model.tol
    assert np.corrcoef(model.J_.ravel(), J.ravel())[0, 1] >= 0.95
    truth = KineticIsing(device="cpu")
    truth.h_, truth.J_, truth.rates_, truth.loss_curve_ = h, J, model.rates_, np.zeros(0)
    gap = truth.log_likelihood(test) - model.log_likelihood(test)
    assert gap <= 1e-3
    # and the couplings matter: far better than independent neurons
    assert model.log_likelihood(test) > model.null_log_likelihood(test) + 0.05


def test_spin_and_glm_forms_give_identical_likelihoods(ground_truth):
    _, _, _, test, model = ground_truth
    direct = spin_log_likelihood(model.h_, model.J_, test)
    assert model.log_likelihood(test) == pytest.approx(direct, abs=1e-12)


def test_training_objective_is_the_likelihood(ground_truth):
    _, _, train, _, model = ground_truth
    assert -model.loss_curve_[-1] == pytest.approx(model.log_likelihood(train), abs=1e-12)
    assert np.all(np.diff(model.loss_curve_) <= 1e-15)  # monotone: every step passes an Armijo test


# ---------------------------------------------------------------------- conversions
def test_conversions_round_trip_and_likelihood(rng):
    h, J = rng.normal(size=7), rng.normal(scale=0.3, size=(7, 7))
    bias, weights = spins_to_glm(h, J)
    h2, J2 = glm_to_spins(bias, weights)
    np.testing.assert_allclose(h2, h, atol=1e-14)
    np.testing.assert_allclose(J2, J, atol=1e-14)
    spikes = rng.random((50, 7)) < 0.3
    spins = 2.0 * spikes - 1
    u = spins @ J.T + h
    z = spikes @ weights.T + bias
    np.testing.assert_allclose(2 * u, z, atol=1e-12)  # P(spike) = σ(2u) = σ(z) for every state


@pytest.mark.parametrize(("call", "match"), [
    (lambda: spins_to_glm(np.zeros((2, 2)), np.zeros((2, 2))), r"h must be a 1-D array"),
    (lambda: spins_to_glm(np.zeros(3), np.zeros((2, 2))), r"J must be a 2-D array with 3 rows"),
    (lambda: glm_to_spins(np.zeros(2), np.full((2, 2), np.nan)), r"must be finite"),
])
def test_conversion_errors(call, match):
    with pytest.raises(ValidationError, match=match):
        call()


def test_kernels_match_autograd(rng):
    """The hand-written gradient and Hessian-vector product equal autograd's on the summed nll."""
    inputs = torch.as_tensor(rng.random((40, 6)) < 0.3, dtype=torch.float64)
    targets = torch.as_tensor(rng.random((40, 4)) < 0.4, dtype=torch.float64)
    weights = torch.tensor(rng.normal(size=(4, 6)), requires_grad=True)
    bias = torch.tensor(rng.normal(size=4), requires_grad=True)
    direction_weights, direction_bias = torch.as_tensor(rng.normal(size=(4, 6))), torch.as_tensor(rng.normal(size=4))
    result = _logistic.loss_and_grad(inputs, targets, weights.detach(), bias.detach())
    loss = _logistic.loss_only(inputs, targets, weights, bias).sum()
    grad_weights, grad_bias = torch.autograd.grad(loss, (weights, bias), create_graph=True)
    assert float(result.loss.sum()) == pytest.approx(float(loss.detach()), abs=1e-12)
    torch.testing.assert_close(result.grad_weights, grad_weights.detach(), atol=1e-12, rtol=0)
    torch.testing.assert_close(result.grad_bias, grad_bias.detach(), atol=1e-12, rtol=0)
    directional = (grad_weights * direction_weights).sum() + (grad_bias * direction_bias).sum()
    hv_weights, hv_bias = torch.autograd.grad(directional, (weights, bias))
    ours_weights, ours_bias = _logistic.hessian_vector_product(inputs, weights.detach(), bias.detach(),
                                                               direction_weights, direction_bias)
    torch.testing.assert_close(ours_weights, hv_weights, atol=1e-12, rtol=0)
    torch.testing.assert_close(ours_bias, hv_bias, atol=1e-12, rtol=0)


# ---------------------------------------------------------------------- independent implementation
def test_agrees_with_sklearn_per_neuron(small):
    linear_model = pytest.importorskip("sklearn.linear_model")
    _, _, X = small
    l2 = 2e-3
    model = KineticIsing(l2=l2, tol=1e-10, device="cpu").fit(X)
    spikes = X.to_numpy().astype(np.float64)
    inputs = np.concatenate([spikes[a:b - 1] for a, b in X.segments])
    targets = np.concatenate([spikes[a + 1:b] for a, b in X.segments])
    C = 16.0 / (l2 * len(inputs))  # C·Σ logloss + ½‖w‖²  ⇔  mean logloss + l2/2 ‖w/4‖²
    bias, weights = np.empty(X.n_units), np.empty((X.n_units, X.n_units))
    for i in range(X.n_units):
        reg = linear_model.LogisticRegression(C=C, tol=1e-10, max_iter=10_000).fit(inputs, targets[:, i])
        bias[i], weights[i] = reg.intercept_[0], reg.coef_[0]
    h_ref, J_ref = glm_to_spins(bias, weights)
    np.testing.assert_allclose(model.J_, J_ref, atol=1e-4)
    np.testing.assert_allclose(model.h_, h_ref, atol=1e-4)


# ---------------------------------------------------------------------- invariances
def test_chunking_and_segments(small):
    _, _, X = small
    one = KineticIsing(device="cpu", tol=1e-9).fit(X)
    chunked = KineticIsing(device="cpu", tol=1e-9, chunk_bins=97).fit(X)
    np.testing.assert_allclose(chunked.J_, one.J_, atol=1e-7)
    # the likelihood of a segmented raster is the transition-weighted mean over its segments
    parts = [X.take_rows([seg]) for seg in X.segments]
    weighted = sum(one.log_likelihood(p) * p.n_transitions for p in parts) / X.n_transitions
    assert one.log_likelihood(X) == pytest.approx(weighted, abs=1e-12)
    # ... and differs from the same bins glued into one segment (a transition crosses the cut)
    glued = sf.Raster(X.to_numpy(), X.bin_size)
    assert glued.n_transitions == X.n_transitions + 1
    assert one.log_likelihood(glued) != pytest.approx(one.log_likelihood(X), abs=1e-9)


def test_parameterisation_does_not_change_the_optimum(small):
    """The solver's centred/scaled coordinates are a reparameterisation: same optimum as raw 0/1."""
    _, _, X = small
    spikes = torch.from_numpy(X.to_numpy()).double()

    def chunks(columns):
        for s, e in X.segments:
            block = spikes[s:e]
            yield block[:-1], block[1:] if columns is None else block[1:, columns]

    n = X.n_transitions
    targets = torch.cat([spikes[s + 1:e] for s, e in X.segments]).mean(0)
    common = {"target_mean": targets, "l2": 1e-3, "tol": 1e-7, "max_iter": 500}
    plain = _logistic.fit_logistic(chunks, X.n_units, n, mean=torch.zeros(X.n_units, dtype=torch.float64),
                                   scale=torch.ones(X.n_units, dtype=torch.float64), **common)
    model = KineticIsing(l2=1e-3, tol=1e-7, device="cpu").fit(X)
    h, J = glm_to_spins(plain.bias.numpy(), plain.weights.numpy())
    np.testing.assert_allclose(model.J_, J, atol=1e-5)
    assert plain.n_iter > model.n_iter_  # and the scaled coordinates need fewer iterations


def test_no_self_couplings_and_l1(small):
    _, _, X = small
    model = KineticIsing(fit_self_couplings=False, l2=1e-3, device="cpu").fit(X)
    assert model.converged_ and np.all(np.diag(model.J_) == 0)
    sparse = KineticIsing(l1=2e-2, device="cpu", max_iter=2000).fit(X)
    dense = KineticIsing(device="cpu").fit(X)
    assert sparse.converged_
    zeros = sparse.J_ == 0
    assert 0.05 < zeros.mean() < 1.0
    # the l1 fit trades likelihood for sparsity, and its zeros are where |J_ml| is small
    assert sparse.log_likelihood(X) < dense.log_likelihood(X)
    assert np.abs(dense.J_[zeros]).mean() < np.abs(dense.J_[~zeros]).mean()


def test_null_log_likelihood_matches_formula(small):
    _, _, X = small
    train, test = X.split(0.5)
    model = KineticIsing(device="cpu").fit(train)
    spikes = test.to_numpy()
    targets = np.concatenate([spikes[a + 1:b] for a, b in test.segments])
    rates = np.concatenate([train.to_numpy()[a + 1:b] for a, b in train.segments]).mean(0)
    expected = np.mean(targets * np.log(rates) + (1 - targets) * np.log1p(-rates))
    assert model.null_log_likelihood(test) == pytest.approx(expected, abs=1e-12)
    assert model.score(test) == model.log_likelihood(test)


def test_sample_is_seeded_and_reproduces_rates(ground_truth):
    _, _, train, _, model = ground_truth
    first = model.sample(2000, n_trials=3, seed=5, burn_in=50)
    again = model.sample(2000, n_trials=3, seed=5, burn_in=50)
    assert first.n_bins == 6000 and len(first.segments) == 3 and first.bin_size == train.bin_size
    np.testing.assert_array_equal(first.to_numpy(), again.to_numpy())
    np.testing.assert_allclose(first.mean_activity(), train.mean_activity(), atol=0.05)


def test_convergence_warning_says_what_to_try(small):
    _, _, X = small
    with pytest.warns(ConvergenceWarning, match=r"did not converge.*max_iter"):
        model = KineticIsing(max_iter=1, device="cpu").fit(X)
    assert not model.converged_ and model.n_iter_ == 1


def test_sklearn_clone_and_params():
    base = pytest.importorskip("sklearn.base")
    model = KineticIsing(l2=0.1, device="cpu")
    clone = base.clone(model)
    assert clone.get_params() == model.get_params() and clone is not model
    assert "l2=0.1" in repr(model)


# ---------------------------------------------------------------------- persistence
def test_save_load_round_trip(small, tmp_path):
    _, _, X = small
    model = KineticIsing(l2=1e-3, device="cpu").fit(X)
    path = model.save(tmp_path / "model.npz")
    assert sorted(os.listdir(tmp_path)) == ["model.npz"]  # no temporary file left behind
    loaded = KineticIsing.load(path)
    np.testing.assert_array_equal(loaded.J_, model.J_)
    assert loaded.get_params() == model.get_params()
    assert (loaded.n_iter_, loaded.converged_) == (model.n_iter_, model.converged_)
    assert loaded.log_likelihood(X) == model.log_likelihood(X)


def test_load_errors(small, tmp_path):
    _, _, X = small
    path = KineticIsing(device="cpu").fit(X).save(tmp_path / "m.npz")
    with np.load(path) as archive:
        arrays = dict(archive)
    arrays["_header"] = np.array(str(arrays["_header"]).replace('"format_version": 1', '"format_version": 99'))
    np.savez(tmp_path / "future.npz", **arrays)
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    for name, match in [("missing.npz", "does not exist"), ("future.npz", "format_version 99"),
                        ("junk.npz", "not a spikefield model archive")]:
        with pytest.raises(ReaderError, match=match):
            KineticIsing.load(tmp_path / name)


# ---------------------------------------------------------------------- validation
@pytest.mark.parametrize(("params", "error", "match"), [
    ({"method": "tapp"}, ValidationError, r"'method' parameter .* got 'tapp'\. Did you mean 'tap'\?"),
    ({"l2": -1.0}, ValidationError, r"'l2' parameter of KineticIsing must be a finite float >= 0; got -1.0"),
    ({"l1": float("nan")}, ValidationError, r"'l1' parameter .* got nan"),
    ({"max_iter": 0}, ValidationError, r"'max_iter' parameter .* integer >= 1; got 0"),
    ({"chunk_bins": 2.5}, ValidationError, r"'chunk_bins' parameter .* got 2.5"),
    ({"tol": 0}, ValidationError, r"'tol' parameter .* float > 0; got 0"),
    ({"fit_self_couplings": "no"}, ValidationError, r"'fit_self_couplings' .* True or False; got 'no'"),
    ({"dtype": "float16"}, ValidationError, r"'dtype' parameter .* got 'float16'"),
    ({"device": "tpu"}, DeviceError, r"device='tpu'"),
])
def test_bad_parameters(small, params, error, match):
    _, _, X = small
    with pytest.raises(error, match=match):
        KineticIsing(**params).fit(X)


@pytest.mark.parametrize(("data", "error", "match"), [
    (np.zeros((100, 3)), ValidationError, r"expected a spikefield Raster .* got ndarray"),
    (sf.Raster(np.zeros((5, 3), bool), 0.01), RasterError, r"has 4 transitions .* at least 10"),
    (sf.Raster(np.zeros((10, 3), bool), 0.01, segments=[2] * 5), RasterError, r"has 5 transitions inside its segments"),
])
def test_bad_rasters(data, error, match):
    with pytest.raises(error, match=match):
        KineticIsing(device="cpu").fit(data)


def test_use_before_fit_and_unit_mismatch(small):
    _, _, X = small
    with pytest.raises(NotFittedError, match="not fitted yet"):
        KineticIsing().log_likelihood(X)
    model = KineticIsing(device="cpu").fit(X)
    with pytest.raises(ValidationError, match=r"raster has 3 units, the model was fitted on 12"):
        model.log_likelihood(X.select_units([0, 1, 2]))


# ---------------------------------------------------------------------- mean-field methods
def test_meanfield_methods_delegate(ground_truth):
    pytest.importorskip("spikefield.meanfield")
    h, J, train, test, model = ground_truth
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        approx = KineticIsing("plefka_t", device="cpu").fit(train)
    assert approx.J_.shape == J.shape
    assert np.corrcoef(approx.J_.ravel(), J.ravel())[0, 1] > 0.9
    # exact ML is the better model of held-out transitions
    assert model.log_likelihood(test) > approx.log_likelihood(test)


# ---------------------------------------------------------------------- real data
def test_real_linear_track_beats_independence(hc_linear_track):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # reader notes empty cluster slots
        rec = sf.read(hc_linear_track)
    X = rec.bin(0.01, epoch="tracked")
    train, test = X.split(0.8)
    model = KineticIsing(l2=1e-3, device="cpu").fit(train)
    assert model.converged_
    fitted, null = model.log_likelihood(test), model.null_log_likelihood(test)
    assert fitted > null + 5e-4  # measured: -0.02347 vs -0.02492 nats/bin/neuron


# ---------------------------------------------------------------------- CUDA
@pytest.mark.gpu
@pytest.mark.parametrize("dtype", ["float64", "float32", "tf32"])
def test_cuda_matches_cpu_float64(dtype):
    h, J = sf.simulate.sk_couplings(200, J0=1.0, Js=0.5, beta=1.35, seed=21)
    X = sf.simulate.kinetic_ising(h, J, 5_000, n_trials=10, seed=22)
    reference = KineticIsing(device="cpu", l2=1e-4).fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # float32 round-off may stall before tol
        gpu = KineticIsing(device="cuda", dtype=dtype, l2=1e-4, tol=1e-5).fit(X)
    tolerance = {"float64": 1e-5, "float32": 1e-3, "tf32": 5e-3}[dtype]
    assert np.abs(gpu.J_ - reference.J_).max() < tolerance
    assert abs(gpu.log_likelihood(X) - reference.log_likelihood(X)) < 1e-5
