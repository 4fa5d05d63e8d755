"""EquilibriumIsing: ground truth (enumeration, simulated SK networks), invariances, errors, real data."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest
import torch

import spikefield as sf
from spikefield.errors import NotFittedError, RasterError, ReaderError, ValidationError
from spikefield.models._equilibrium_exact import exact_moments
from spikefield.models._equilibrium_mcmc import (
    centred_fisher_max_eigenvalue,
    final_check,
    random_spins,
    split_r_hat,
)
from spikefield.models._equilibrium_rows import (
    _Problem,
    _Spikes,
    fit_rows,
    row_losses,
)
from spikefield.models.equilibrium_ising import EquilibriumIsing


# ---------------------------------------------------------------------- brute force (independent)
def brute_force(h: np.ndarray, J: np.ndarray, beta: float = 1.0) -> dict:
    """All states by itertools, probabilities by direct exponentiation (no shared code)."""
    n = len(h)
    states = np.array(list(itertools.product([-1.0, 1.0], repeat=n)))
    log_weight = beta * (states @ h + 0.5 * np.einsum("bi,ij,bj->b", states, J, states))
    z = np.exp(log_weight).sum()
    p = np.exp(log_weight) / z
    energy = -(states @ h + 0.5 * np.einsum("bi,ij,bj->b", states, J, states))
    return {"log_z": np.log(z), "means": p @ states, "second": (states * p[:, None]).T @ states,
            "pk": np.bincount((states > 0).sum(1), weights=p, minlength=n + 1), "states": states, "p": p,
            "energy_var": p @ energy ** 2 - (p @ energy) ** 2}


def random_model(n: int, seed: int, scale: float = 0.4) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    J = rng.normal(0, scale, (n, n))
    J = (J + J.T) / 2
    np.fill_diagonal(J, 0)
    return rng.uniform(-0.5, 0.5, n), J


def upper(a: np.ndarray) -> np.ndarray:
    return a[np.triu_indices(len(a), 1)]


@pytest.fixture(scope="module")
def sk50():
    """N = 50 symmetric SK network (Js = 1, moderate couplings) and 20,000 Gibbs samples."""
    h, J = sf.simulate.sk_couplings(50, J0=0.0, Js=1.0, H0=0.5, symmetric=True, seed=3)
    X = sf.simulate.equilibrium_ising(h, J, 20_000, n_chains=1000, burn_in=200, thin=2, seed=4)
    return h, J, X


@pytest.fixture(scope="module")
def small():
    """N = 8 model, its exact statistics and 40,000 samples from it."""
    h, J = random_model(8, seed=0)
    X = sf.simulate.equilibrium_ising(h, J, 40_000, n_chains=400, burn_in=100, thin=2, seed=1)
    return h, J, X


# ---------------------------------------------------------------------- exact enumeration
@pytest.mark.parametrize("n", [3, 7, 12])
def test_enumeration_matches_brute_force(n):
    h, J = random_model(n, seed=n)
    ref = brute_force(h, J, beta=0.8)
    got = exact_moments(torch.as_tensor(h), torch.as_tensor(J), beta=0.8)
    assert got.log_partition == pytest.approx(ref["log_z"], rel=1e-12)
    np.testing.assert_allclose(got.means.numpy(), ref["means"], atol=1e-12)
    np.testing.assert_allclose(got.second.numpy(), ref["second"], atol=1e-12)
    np.testing.assert_allclose(got.count_distribution.numpy(), ref["pk"], atol=1e-12)
    assert got.energy_variance == pytest.approx(ref["energy_var"], rel=1e-9)


def test_exact_fit_matches_data_moments_by_brute_force(small):
    _, _, X = small
    model = EquilibriumIsing("exact").fit(X)
    ref = brute_force(model.h_, model.J_)
    spins = X.to_spins().astype(float)
    np.testing.assert_allclose(ref["means"], spins.mean(0), atol=1e-6)
    np.testing.assert_allclose(ref["second"], spins.T @ spins / len(spins), atol=1e-6)
    assert model.converged_


def test_exact_fit_recovers_generating_parameters(small):
    h, J, X = small
    model = EquilibriumIsing("exact").fit(X)
    assert np.corrcoef(upper(model.J_), upper(J))[0, 1] > 0.95
    assert np.abs(model.h_ - h).max() < 0.1


def test_log_likelihood_is_exact(small):
    _, _, X = small
    model = EquilibriumIsing("exact").fit(X)
    ref = brute_force(model.h_, model.J_)
    spins = X.to_spins().astype(float)[:500]
    index = ((spins > 0) * (2 ** np.arange(7, -1, -1))).sum(1).astype(int)  # itertools order: first spin = MSB
    expected = np.log(ref["p"][index]).mean() / 8
    assert model.log_likelihood(sf.Raster.from_array(spins, 1.0)) == pytest.approx(expected, rel=1e-9)


# ---------------------------------------------------------------------- pseudolikelihood kernel
def test_pseudolikelihood_rows_match_scikit_learn(small):
    sklearn = pytest.importorskip("sklearn.linear_model")
    _, _, X = small
    spins = X.to_spins().astype(np.float64)
    fit = fit_rows(torch.as_tensor(spins), "pseudolikelihood", tol=1e-9, max_iter=500)
    for i in (0, 5):
        others = np.delete(spins, i, axis=1)
        reg = sklearn.LogisticRegression(C=np.inf, tol=1e-10, max_iter=5000).fit(others, spins[:, i])
        # P(s_i = +1 | rest) = σ(2 ũ_i): logistic coefficients are 2 J_ij and 2 h_i.
        np.testing.assert_allclose(reg.coef_[0] / 2, np.delete(fit.couplings[i].numpy(), i), atol=2e-4)
        assert reg.intercept_[0] / 2 == pytest.approx(float(fit.fields[i]), abs=2e-4)


@pytest.mark.parametrize("objective", ["pseudolikelihood", "mpf"])
def test_row_kernels_match_autograd_in_spin_coordinates(small, objective):
    """Chunked (w, b) kernels: objective = row_losses in spin units, gradient = autograd's."""
    _, _, X = small
    spins = torch.as_tensor(X.to_spins()[:3000], dtype=torch.float64)
    rng = np.random.default_rng(0)
    J = torch.tensor(random_model(8, 1, scale=0.2)[1], requires_grad=True)
    h = torch.tensor(rng.uniform(-0.3, 0.3, 8), requires_grad=True)
    expected = row_losses(spins, h, J * (1 - torch.eye(8, dtype=torch.float64)), objective)
    expected.sum().backward()
    mask = 1 - torch.eye(8, dtype=torch.float64)
    problem = _Problem(_Spikes(spins > 0, torch.float64, 700), objective, 0.0, mask)
    weights = 4 * J.detach() * mask
    x = torch.cat([weights, (2 * (h.detach() - J.detach().mul(mask).sum(1)))[:, None]], dim=1)
    value, grad = problem.evaluate(x, torch.arange(8))
    np.testing.assert_allclose(value.numpy(), expected.detach().numpy(), rtol=1e-12)
    # Spin-coordinate gradient from (w, b): ∂F/∂h = 2 ∂F/∂b, ∂F/∂J_ij = 4 ∂F/∂w_ij − 2 ∂F/∂b_i.
    np.testing.assert_allclose(2 * grad[:, -1].numpy(), h.grad.numpy(), atol=1e-12)
    grad_j = (4 * grad[:, :-1] - 2 * grad[:, -1:]) * mask
    np.testing.assert_allclose(grad_j.numpy(), (J.grad * mask).numpy(), atol=1e-12)


@pytest.mark.parametrize("objective", ["pseudolikelihood", "mpf"])
def test_start_point_from_moments_equals_a_data_pass(small, objective):
    _, _, X = small
    spikes = torch.as_tensor(X.to_numpy() > 0)
    data = _Spikes(spikes, torch.float64, 5000)
    mask = 1 - torch.eye(8, dtype=torch.float64)
    problem = _Problem(data, objective, 0.0, mask)
    mean, second = data.moments()
    bias = torch.logit(mean)
    value, grad, _ = problem.initial(bias, mean, second)
    x = torch.cat([torch.zeros((8, 8), dtype=torch.float64), bias[:, None]], dim=1)
    value_pass, grad_pass = problem.evaluate(x, torch.arange(8))
    np.testing.assert_allclose(value.numpy(), value_pass.numpy(), rtol=1e-12)
    np.testing.assert_allclose(grad.numpy(), grad_pass.numpy(), atol=1e-12)


@pytest.mark.parametrize("method", ["pseudolikelihood", "mpf"])
def test_chunking_does_not_change_the_fit(small, method):
    _, _, X = small
    whole = EquilibriumIsing(method, chunk_bins=X.n_bins).fit(X)
    chunked = EquilibriumIsing(method, chunk_bins=15001).fit(X)  # 3 chunks, the last one short
    assert whole.converged_ and chunked.converged_
    np.testing.assert_allclose(chunked.J_, whole.J_, atol=1e-7)
    np.testing.assert_allclose(chunked.h_, whole.h_, atol=1e-7)


@pytest.mark.parametrize("method", ["pseudolikelihood", "mpf"])
def test_recovers_sk_couplings(sk50, method):
    h, J, X = sk50
    model = EquilibriumIsing(method).fit(X)
    r = np.corrcoef(upper(model.J_), upper(J))[0, 1]
    assert r >= 0.95, f"{method}: coupling correlation {r:.3f}"
    assert np.corrcoef(model.h_, h)[0, 1] >= 0.95
    np.testing.assert_array_equal(model.J_, model.J_.T)
    assert np.all(np.diag(model.J_) == 0)
    assert model.converged_ and model.n_iter_ < 50


def test_boltzmann_recovers_sk_couplings_as_well_as_pseudolikelihood(sk50):
    """N = 50: converged, and within 10 % of PL's coupling error (the fixed step 0.2 got 22 % worse, unconverged)."""
    h, J, X = sk50
    model = EquilibriumIsing("boltzmann", max_iter=500, seed=0).fit(X)
    reference = EquilibriumIsing("pseudolikelihood").fit(X)
    rms = np.sqrt(np.mean((upper(model.J_) - upper(J)) ** 2))
    rms_reference = np.sqrt(np.mean((upper(reference.J_) - upper(J)) ** 2))
    assert model.converged_ and model.n_iter_ == 500
    assert rms <= 1.1 * rms_reference, f"Boltzmann RMS {rms:.4f} against PL {rms_reference:.4f}"
    assert np.corrcoef(upper(model.J_), upper(J))[0, 1] >= 0.99 and np.corrcoef(model.h_, h)[0, 1] >= 0.99
    diagnostics = model.diagnostics_
    assert diagnostics["moment_error"] <= diagnostics["tolerance"] == pytest.approx(2 * diagnostics["moment_noise"])
    assert diagnostics["r_hat"] < 1.1 and len(diagnostics["history"]) == 500
    np.testing.assert_array_equal(model.J_, model.J_.T)


@pytest.mark.slow
def test_boltzmann_at_100_neurons_converges_to_pseudolikelihood_accuracy():
    """The benchmark's N = 100 setting (≈ 25 s): the fixed step 0.2 reached r = 0.887, unconverged."""
    h, J = sf.simulate.sk_couplings(100, J0=0.0, Js=1.0, H0=0.5, symmetric=True, seed=110)
    X = sf.simulate.equilibrium_ising(h, J, 100_000, n_chains=1000, burn_in=200, thin=2, seed=111)
    model = EquilibriumIsing("boltzmann", seed=0).fit(X)
    reference = EquilibriumIsing("pseudolikelihood").fit(X)
    rms = np.sqrt(np.mean((upper(model.J_) - upper(J)) ** 2))
    assert model.converged_ and model.diagnostics_["r_hat"] < 1.1
    assert np.corrcoef(upper(model.J_), upper(J))[0, 1] >= 0.99
    assert rms <= 1.1 * np.sqrt(np.mean((upper(reference.J_) - upper(J)) ** 2))


def test_boltzmann_matches_exact_maximum_likelihood():
    """N = 12: the fitted model's moments, by enumeration, are the data's, and J is the exact fit's."""
    h, J = sf.simulate.sk_couplings(12, J0=0.0, Js=1.0, H0=0.5, symmetric=True, seed=7)
    X = sf.simulate.equilibrium_ising(h, J, 20_000, n_chains=500, burn_in=200, thin=2, seed=8)
    model = EquilibriumIsing("boltzmann", seed=0).fit(X)
    exact = EquilibriumIsing("exact").fit(X)
    assert model.converged_
    spins = X.to_spins().astype(float)
    ref = brute_force(model.h_, model.J_)
    np.testing.assert_allclose(ref["means"], spins.mean(0), atol=0.01)
    np.testing.assert_allclose(upper(ref["second"]), upper(spins.T @ spins / len(spins)), atol=0.01)
    assert np.sqrt(np.mean((upper(model.J_) - upper(exact.J_)) ** 2)) < 0.006
    assert np.abs(model.h_ - exact.h_).max() < 0.02


def test_boltzmann_unconvergeable_setting_warns(small):
    _, _, X = small
    with pytest.warns(sf.ConvergenceWarning, match=r"method='boltzmann'.*raise max_iter"):
        model = EquilibriumIsing("boltzmann", init="independent", max_iter=2, n_chains=200, seed=0).fit(X)
    assert not model.converged_ and model.n_iter_ == 2
    assert model.diagnostics_["moment_error"] > model.diagnostics_["tolerance"]
    assert model.diagnostics_["init"] == "independent"


def test_boltzmann_fixed_step_too_large_is_reported(sk50):
    """A step far above 2/λ_max oscillates: the fit must say so rather than claim convergence."""
    _, _, X = sk50
    with pytest.warns(sf.ConvergenceWarning):
        model = EquilibriumIsing("boltzmann", learning_rate=1.0, max_iter=100, n_chains=200, seed=0).fit(X)
    assert not model.converged_ and model.diagnostics_["learning_rate"] == 1.0


def test_boltzmann_seed_makes_fits_reproducible(small):
    _, _, X = small
    kwargs = {"max_iter": 40, "n_chains": 100}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sf.ConvergenceWarning)
        first, again, other = (EquilibriumIsing("boltzmann", seed=seed, **kwargs).fit(X) for seed in (3, 3, 4))
    np.testing.assert_array_equal(first.J_, again.J_)
    np.testing.assert_array_equal(first.h_, again.h_)
    assert first.diagnostics_ == again.diagnostics_
    assert not np.array_equal(first.J_, other.J_)


def test_boltzmann_starts_from_given_parameters(small, tmp_path):
    h, J, X = small
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sf.ConvergenceWarning)
        model = EquilibriumIsing("boltzmann", init=(h, J), max_iter=2, learning_rate=1e-3, n_chains=100,
                                 seed=0).fit(X)
        cold = EquilibriumIsing("boltzmann", init="independent", max_iter=2, learning_rate=1e-3, n_chains=100,
                                seed=0).fit(X)
    # A step moves J_ij by at most 1e-3 · 6 (|⟨ss⟩ mismatch| ≤ 2, plus the centring term 2·|m|·2), so two
    # steps stay within 0.012 of the start: of the given J here, of 0 from the cold start.
    assert np.abs(J).max() > 0.3
    assert np.abs(model.J_ - J).max() <= 0.012
    assert np.abs(cold.J_).max() <= 0.012
    assert model.diagnostics_["init"] == "given"
    loaded = EquilibriumIsing.load(model.save(tmp_path / "given.npz"))
    np.testing.assert_array_equal(np.asarray(loaded.init[1]), J)


def test_centred_fisher_eigenvalue_matches_dense_covariance(small):
    _, _, X = small
    spins = torch.as_tensor(X.to_spins()[:5000], dtype=torch.float64)
    means = spins.mean(0)
    centred = (spins - means).numpy()
    pairs = np.triu_indices(8, 1)
    statistics = np.concatenate([centred, centred[:, pairs[0]] * centred[:, pairs[1]]], axis=1)
    expected = np.linalg.eigvalsh(np.cov(statistics, rowvar=False, bias=True))[-1]
    got = centred_fisher_max_eigenvalue(spins, means, torch.Generator().manual_seed(0), n_iter=200)
    assert got == pytest.approx(expected, rel=1e-6)


def test_final_check_error_is_monte_carlo_noise_at_the_true_parameters():
    """Data moments = the model's exact ones: the reported mismatch is noise, and its error bar says so."""
    h, J = random_model(6, seed=3, scale=0.3)
    ref = brute_force(h, J)
    fields, couplings = torch.as_tensor(h), torch.as_tensor(J)
    generator = torch.Generator().manual_seed(0)
    errors, noises = [], []
    for _ in range(4):
        check = final_check(random_spins(400, 6, generator, torch.float64, torch.device("cpu")), fields, couplings,
                            torch.as_tensor(ref["means"]), torch.as_tensor(ref["second"]), n_sweeps=100,
                            burn_in=50, generator=generator)
        errors.append(check.moment_error)
        noises.append(check.moment_noise)
        assert check.r_hat < 1.1
    # RMS over independent checks of the mismatch ≈ the standard error each one reports.
    assert 0.6 < np.sqrt(np.mean(np.square(errors))) / np.mean(noises) < 1.6


@pytest.fixture(scope="module")
def weak30():
    h, J = sf.simulate.sk_couplings(30, J0=0.0, Js=0.5, H0=0.3, symmetric=True, seed=5)
    return h, J, sf.simulate.equilibrium_ising(h, J, 20_000, n_chains=1000, burn_in=200, thin=2, seed=6)


@pytest.mark.parametrize("method", ["nmf", "tap", "sessak-monasson"])
def test_closed_forms_at_weak_coupling(method, weak30):
    h, J, X = weak30
    model = EquilibriumIsing(method).fit(X)
    assert np.corrcoef(upper(model.J_), upper(J))[0, 1] > 0.9
    assert np.corrcoef(model.h_, h)[0, 1] > 0.9


def test_float32_matches_float64(sk50):
    _, _, X = sk50
    a = EquilibriumIsing(dtype="float64").fit(X)
    b = EquilibriumIsing(dtype="float32").fit(X)
    assert np.abs(a.J_ - b.J_).max() < 1e-3


def test_l2_shrinks_couplings(sk50):
    _, _, X = sk50
    free = EquilibriumIsing().fit(X)
    ridge = EquilibriumIsing(l2=0.05).fit(X)
    assert np.abs(ridge.J_).sum() < np.abs(free.J_).sum()


# ---------------------------------------------------------------------- evaluation and sampling
def test_energy_and_pseudo_log_likelihood_by_hand(small):
    _, _, X = small
    model = EquilibriumIsing().fit(X)
    spins = X.to_spins().astype(float)[:300]
    expected = -(spins @ model.h_ + 0.5 * np.einsum("bi,ij,bj->b", spins, model.J_, spins))
    np.testing.assert_allclose(model.energy(spins), expected, atol=1e-10)
    np.testing.assert_allclose(model.energy((spins > 0).astype(np.uint8)), expected, atol=1e-10)
    field = spins @ model.J_ + model.h_
    pll = np.mean(spins * field - np.log(2 * np.cosh(field)))
    assert model.pseudo_log_likelihood(sf.Raster.from_array(spins, 1.0)) == pytest.approx(pll, rel=1e-10)
    # The fitted model predicts held-out bins better than the independent model (J = 0).
    train, test = X.split(0.5)
    fitted = EquilibriumIsing().fit(train)
    independent = EquilibriumIsing().fit(train)
    independent.J_ = np.zeros_like(independent.J_)
    assert fitted.score(test) > independent.score(test)


def test_sample_matches_exact_moments():
    h, J = random_model(8, seed=2)
    model = EquilibriumIsing().fit(sf.simulate.equilibrium_ising(h, J, 2000, n_chains=100, seed=0))
    model.h_, model.J_ = h, J
    samples = model.sample(40_000, seed=1, n_chains=400, thin=2)
    ref = brute_force(h, J)
    spins = samples.to_spins().astype(float)
    assert np.abs(spins.mean(0) - ref["means"]).max() < 0.03
    assert np.abs(spins.T @ spins / len(spins) - ref["second"]).max() < 0.03
    again = model.sample(1000, seed=1, n_chains=400, thin=2)
    np.testing.assert_array_equal(again.to_numpy(), model.sample(1000, seed=1, n_chains=400, thin=2).to_numpy())
    assert samples.n_bins == 40_000 and len(samples.segments) == 400


def test_compare_reports_model_against_data(small):
    _, _, X = small
    model = EquilibriumIsing().fit(X)
    comparison = model.compare(X, n_samples=20_000, seed=0)
    assert comparison.source == "exact"
    summary = comparison.summary()
    assert summary["means_rms"] < 0.02 and summary["covariance_r"] > 0.95 and summary["count_kl_nats"] < 0.01
    assert comparison.observed.triplets.shape == (56, 3)
    np.testing.assert_allclose(comparison.observed.count_distribution.sum(), 1.0)


def test_energy_landscape_finds_stored_patterns():
    rng = np.random.default_rng(0)
    patterns = rng.choice([-1.0, 1.0], size=(3, 40))
    J = patterns.T @ patterns / 40
    np.fill_diagonal(J, 0)
    model = EquilibriumIsing().fit(sf.Raster.from_array(rng.choice([-1, 1], size=(200, 40)), 1.0))
    model.h_, model.J_ = np.zeros(40), J
    noisy = np.repeat(patterns, 20, axis=0) * np.where(rng.random((60, 40)) < 0.1, -1, 1)
    land = model.energy_landscape(noisy)
    assert land.converged and land.basin_sizes.sum() == 60
    # Every minimum is stable under every single flip (invariance of zero-temperature descent).
    for state in land.minima.astype(float):
        flips = 2 * state * (state @ J + model.h_)
        assert np.all(flips >= 0)
    found = {tuple(m) for m in land.minima.astype(int)}
    assert all(tuple(p.astype(int)) in found or tuple((-p).astype(int)) in found for p in patterns)
    np.testing.assert_allclose(land.state_energies, model.energy(noisy))


def test_heat_capacity_mcmc_agrees_with_exact():
    h, J = random_model(10, seed=4, scale=0.3)
    model = EquilibriumIsing().fit(sf.simulate.equilibrium_ising(h, J, 2000, n_chains=100, seed=0))
    model.h_, model.J_ = h, J
    temps = np.array([0.8, 1.0, 1.5])
    exact = model.heat_capacity(temps)
    for t, value in zip(temps, exact.heat_capacity, strict=True):
        assert value == pytest.approx(brute_force(h, J, beta=1 / t)["energy_var"] / (10 * t * t), rel=1e-9)
    mcmc = model.heat_capacity(temps, exact_below=0, n_chains=64, n_sweeps=200, burn_in=100, seed=0)
    assert mcmc.source == "mcmc"
    assert np.all(np.abs(mcmc.heat_capacity - exact.heat_capacity) < 5 * mcmc.standard_error + 0.02)
    assert np.all(mcmc.r_hat < 1.1)


def test_exact_below_never_enumerates_beyond_20_neurons():
    model = EquilibriumIsing(method="nmf", shrinkage=0.05).fit(
        sf.Raster.from_array(np.random.default_rng(0).integers(0, 2, (400, 24)), 1.0))
    curve = model.heat_capacity([1.0], exact_below=10**6, n_chains=4, n_sweeps=4, burn_in=0)
    assert curve.source == "mcmc"  # 2^24 states would be enumerated otherwise


def test_split_r_hat_detects_unmixed_chains(rng):
    mixed = rng.normal(size=(400, 8))
    stuck = mixed + np.arange(8) * 3.0
    assert split_r_hat(mixed) < 1.02
    assert split_r_hat(stuck) > 1.5


def test_save_load_round_trip(tmp_path, small):
    _, _, X = small
    model = EquilibriumIsing("pseudolikelihood", l2=1e-3).fit(X)
    path = model.save(tmp_path / "model.npz")
    loaded = EquilibriumIsing.load(path)
    np.testing.assert_array_equal(loaded.J_, model.J_)
    np.testing.assert_array_equal(loaded.h_, model.h_)
    assert loaded.l2 == 1e-3 and loaded.converged_ == model.converged_ and loaded.n_iter_ == model.n_iter_
    assert loaded.diagnostics_ == model.diagnostics_ and set(loaded.diagnostics_) == {"max_gradient", "data_passes"}
    assert loaded.pseudo_log_likelihood(X) == pytest.approx(model.pseudo_log_likelihood(X))
    assert not list(tmp_path.glob("*.tmp"))


def test_save_load_keeps_boltzmann_diagnostics(tmp_path, small):
    _, _, X = small
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sf.ConvergenceWarning)
        model = EquilibriumIsing("boltzmann", max_iter=3, n_chains=50, seed=0).fit(X)
    loaded = EquilibriumIsing.load(model.save(tmp_path / "boltzmann.npz"))
    assert loaded.diagnostics_ == model.diagnostics_
    assert len(loaded.diagnostics_["history"]) == 3 and isinstance(loaded.diagnostics_["r_hat"], float)


# ---------------------------------------------------------------------- errors
def _raster():
    return sf.Raster.from_array(np.random.default_rng(0).choice([-1, 1], size=(100, 5)), 1.0)


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"method": "pseudolikelihod"}, ValidationError, r"'method' parameter .* Did you mean 'pseudolikelihood'"),
    ({"method": "exakt"}, ValidationError, r"Did you mean 'exact'"),
    ({"l2": -1.0}, ValidationError, r"'l2' parameter .* >= 0; got -1.0"),
    ({"shrinkage": 1.0}, ValidationError, r"'shrinkage' parameter .* \[0, 1\); got 1.0"),
    ({"max_iter": 0}, ValidationError, r"'max_iter' parameter .* positive integer; got 0"),
    ({"tol": float("nan")}, ValidationError, r"'tol' parameter"),
    ({"n_chains": 2.5}, ValidationError, r"'n_chains' parameter .* got 2.5"),
    ({"learning_rate": 0.0}, ValidationError, r"'learning_rate' parameter .* None or a finite number > 0; got 0.0"),
    ({"method": "boltzmann", "init": "sessak"}, ValidationError,
     r"'init' parameter .* \['sessak-monasson', 'nmf', 'independent'\] or an \(h, J\) pair; got 'sessak'"),
    ({"method": "boltzmann", "init": 3}, ValidationError, r"'init' parameter .* \(h, J\) pair of arrays; got int"),
    ({"method": "boltzmann", "init": (np.zeros(4), np.zeros((4, 4)))}, ValidationError,
     r"'init' parameter .* shapes \(5,\) and \(5, 5\) for this raster; got \(4,\) and \(4, 4\)"),
    ({"method": "boltzmann", "init": (np.zeros(5), np.triu(np.ones((5, 5)), 1))}, ValidationError,
     r"'init' parameter .* J symmetric with zero diagonal"),
    ({"chunk_bins": 0}, ValidationError, r"'chunk_bins' parameter .* positive integer; got 0"),
    ({"dtype": "float16"}, ValidationError, r"'dtype' parameter .* \['auto', 'float64', 'float32'\]; got 'float16'"),
    ({"dtype": "tf32"}, ValidationError, r"'dtype' parameter .* got 'tf32'"),
    ({"device": "tpu"}, sf.DeviceError, r"device='tpu'"),
])
def test_bad_parameters(kwargs, error, match):
    with pytest.raises(error, match=match):
        EquilibriumIsing(**kwargs).fit(_raster())


@pytest.mark.parametrize(("data", "kwargs", "error", "match"), [
    (np.ones((10, 3)), {}, ValidationError, r"raster must be a spikefield Raster .* got ndarray"),
    (sf.Raster.from_array(np.ones((1, 3)), 1.0), {}, RasterError, r"at least 2 bins and 2 units; got 1 x 3"),
    (sf.Raster.from_array(np.c_[np.zeros(50), np.random.default_rng(0).integers(0, 2, (50, 2))], 1.0), {},
     RasterError, r"units \[0\] are silent in every bin"),
    (sf.Raster.from_array(np.random.default_rng(0).integers(0, 2, (50, 21)), 1.0), {"method": "exact"},
     ValidationError, r"N <= 20; the raster has 21 units"),
])
def test_bad_data(data, kwargs, error, match):
    with pytest.raises(error, match=match):
        EquilibriumIsing(**kwargs).fit(data)


def test_bad_use_after_fit(tmp_path):
    with pytest.raises(NotFittedError, match="not fitted yet"):
        EquilibriumIsing().energy(np.ones(5))
    model = EquilibriumIsing().fit(_raster())
    with pytest.raises(ValidationError, match="has 4 units; the model was fitted on 5"):
        model.energy(np.ones((2, 4)))
    with pytest.raises(ValidationError, match=r"±1 spins or 0/1 spikes; found values \[0, 2\]"):
        model.energy(np.array([[0, 2, 0, 2, 0]]))
    with pytest.raises(ValidationError, match="n_samples must be a positive integer; got 0"):
        model.sample(0)
    with pytest.raises(ValidationError, match="temperatures must be finite and > 0"):
        model.heat_capacity([1.0, -1.0])
    with pytest.raises(ValidationError, match="n_chains must be an integer >= 2; got 1"):
        model.heat_capacity([1.0], n_chains=1)
    with pytest.raises(ValidationError, match="n_sweeps must be an integer >= 2; got 1"):
        model.heat_capacity([1.0], n_sweeps=1)
    with pytest.raises(ReaderError, match="does not exist"):
        EquilibriumIsing.load(tmp_path / "missing.npz")
    with pytest.raises(ValidationError, match="C is singular .* set shrinkage > 0"):
        duplicated = np.random.default_rng(1).integers(0, 2, (200, 3))
        EquilibriumIsing("nmf").fit(sf.Raster.from_array(np.c_[duplicated, duplicated[:, :1]], 1.0))


def test_nonconvergence_warns():
    _, _, X = (None, None, sf.simulate.equilibrium_ising(*random_model(6, 0), 2000, n_chains=50, seed=0))
    with pytest.warns(sf.ConvergenceWarning, match="raise max_iter"):
        model = EquilibriumIsing(max_iter=1, tol=1e-12).fit(X)
    assert not model.converged_ and model.n_iter_ == 1


# ---------------------------------------------------------------------- real data
@pytest.fixture(scope="module")
def track_split(hc_linear_track):
    """The run epoch of hc-linear-track at 20 ms, units active in >= 0.2 % of bins, split 80/20."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        rec = sf.read(hc_linear_track)
    X = rec.bin(0.02, epoch="tracked")
    return X.select_units(X.mean_activity() >= 0.002).split(0.8)


@pytest.mark.realdata
def test_real_linear_track_pairwise_model(track_split):
    train, test = track_split
    model = EquilibriumIsing(l2=1e-3).fit(train)
    assert model.converged_
    independent = EquilibriumIsing(l2=1e-3).fit(train)
    independent.J_ = np.zeros_like(model.J_)
    assert model.score(test) > independent.score(test)
    comparison = model.compare(train, n_samples=20_000, seed=0)
    summary = comparison.summary()
    # In-sample the (slightly ridged) pairwise model must reproduce means, correlations and P(K)
    # where P(K) has its mass (K <= 3 holds 99.9 % of bins).
    assert summary["means_rms"] < 0.01 and summary["covariance_r"] > 0.85
    observed_pk, predicted_pk = comparison.observed.count_distribution, comparison.predicted.count_distribution
    assert np.abs(observed_pk[:4] - predicted_pk[:4]).max() < 0.01


@pytest.mark.realdata
def test_real_linear_track_boltzmann_reaches_the_regularised_optimum(track_split):
    """Sparse real data (19 units, 0.2–8 % of bins active): the fit's exact moments meet the l2 optimum.

    With a constant step the Polyak average kept a residual of 0.0023 there (3× its Monte Carlo error).
    """
    train, _ = track_split
    model = EquilibriumIsing("boltzmann", l2=1e-3, seed=0).fit(train)
    assert model.converged_
    exact = exact_moments(torch.as_tensor(model.h_), torch.as_tensor(model.J_))
    spins = torch.as_tensor(train.to_spins(), dtype=torch.float64)
    target = spins.T @ spins / len(spins) - 1e-3 * torch.as_tensor(model.J_)
    residual = np.concatenate([(exact.means - spins.mean(0)).numpy(), upper((exact.second - target).numpy())])
    assert np.sqrt(np.mean(residual ** 2)) < 0.001


# ---------------------------------------------------------------------- GPU
@pytest.mark.gpu
def test_cuda_fit_matches_cpu(sk50):
    _, _, X = sk50
    cpu = EquilibriumIsing(device="cpu").fit(X)
    gpu = EquilibriumIsing(device="cuda", dtype="float64").fit(X)
    np.testing.assert_allclose(gpu.J_, cpu.J_, atol=1e-6)
    samples = gpu.sample(10_000, seed=0, n_chains=1000)
    assert samples.n_bins == 10_000
