"""Full-size reproductions of PHYSICS.md targets 5 and 6 (``pytest -m slow``; minutes on a CPU).

The same runs, with timings and tables, are in ``benchmarks/meanfield.py``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spikefield import KineticIsing, Raster
from spikefield.meanfield import critical_beta, forward, inverse, statistics
from spikefield.simulate import sk_couplings

pytestmark = pytest.mark.slow


def _simulated_moments(h, J, steps, trials, seed, spins=False):
    """Trial-averaged m_t, C_t, D_t from s_0 = +1 with conditional-expectation estimators.

    D is centred the reference's way, on m_{t-1} = <tanh u_{t-1}>. With ``spins=True`` the sampled
    spikes s_0 ... s_steps of the same trials are returned as a Raster (one segment per trial), so
    moments and spikes come from one simulation.
    """
    gen = torch.Generator().manual_seed(seed)
    h_t, J_t = torch.as_tensor(h), torch.as_tensor(J)
    s = torch.ones((trials, h.size), dtype=torch.float64)
    out = {"m": [], "C": [], "D": []}
    record = torch.ones((trials, steps + 1, h.size), dtype=torch.bool) if spins else None
    m_prev = s.mean(0)
    for t in range(steps):
        th = torch.tanh(h_t + s @ J_t.T)
        m = th.mean(0)
        C = th.T @ th / trials - torch.outer(m, m)
        C.diagonal().copy_(1 - m * m)
        out["m"].append(m.numpy())
        out["C"].append(C.numpy())
        out["D"].append((th.T @ s / trials - torch.outer(m, m_prev)).numpy())
        s = (torch.rand(th.shape, generator=gen, dtype=torch.float64) < (1 + th) / 2).double() * 2 - 1
        m_prev = m
        if record is not None:
            record[:, t + 1] = s > 0
    out = {k: np.array(v) for k, v in out.items()}
    if record is not None:
        out["raster"] = Raster(record.reshape(-1, h.size).numpy(), 1.0, segments=np.full(trials, steps + 1))
    return out


@pytest.mark.parametrize(("seed", "low", "high"), [(20, 5.0, np.inf), (13, 0.0, 1.0)])
def test_target5_ranking_depends_on_the_draw_n512(seed, low, high):
    """Target 5's ranking on draws with the reference's sign convention (h -> -h when mean(h) < 0).

    docs/meanfield.md, "Target 5 on many draws": over 32 draws at N=512, beta_c, R=2000,
    eps_C(Plefka[t]) / eps_C(Plefka2[t]) >= 5 on every draw whose final <m> is <= 0.235 (closer to
    the transition) and < 5 on every draw with <m> >= 0.2655. Seed 20 (<m> 0.235) measured a raw
    ratio (no floor subtraction) of 37.9, seed 13 (<m> 0.2655, the draw closest to the paper's
    0.258) 0.81: the paper's ">= 5x" holds on one side of its <m> and is reversed on the other.
    """
    h, J = sk_couplings(512, seed=seed, beta=critical_beta())
    if h.mean() < 0:
        h = -h
    sim = _simulated_moments(h, J, 128, 2000, seed=1)
    eps = {method: np.mean((forward(h, J, method=method, steps=128)["C"] - sim["C"]) ** 2)
           for method in ("plefka_t", "plefka2_t")}
    assert low <= eps["plefka_t"] / eps["plefka2_t"] < high, eps


def _cramer_rao_eps_J(raster, h, J, rows):
    """mean_i tr([F_i^-1]_JJ) / N over ``rows``: F_i = sum_t (1 - tanh^2 u_i,t) x_t x_t^T, x_t = (1, s_{t-1}),
    the Fisher information of neuron i's exact likelihood at the true parameters (PHYSICS.md 1.2)."""
    spikes = raster.to_numpy()
    inputs = np.concatenate([np.arange(a, b - 1) for a, b in raster.segments])
    theta = torch.as_tensor(np.column_stack([h, J])[rows])
    fisher = torch.zeros((rows.size, h.size + 1, h.size + 1), dtype=torch.float64)
    for start in range(0, inputs.size, 65536):
        x = torch.as_tensor(spikes[inputs[start:start + 65536]], dtype=torch.float64) * 2 - 1
        x = torch.cat([torch.ones((x.shape[0], 1), dtype=x.dtype), x], dim=1)
        weight = 1 - torch.tanh(x @ theta.T) ** 2
        for k in range(rows.size):
            fisher[k] += (x * weight[:, k:k + 1]).T @ x
    return float(torch.diagonal(torch.linalg.inv(fisher), dim1=1, dim2=2)[:, 1:].mean())


@pytest.fixture(scope="module")
def n128_run():
    """Target 6's data: seed-0 draw at N=128, beta_c; R=1e4 trials of 128 steps (simulation seed 2), with spikes."""
    h, J = sk_couplings(128, seed=0, beta=critical_beta())
    return h, J, _simulated_moments(h, J, 128, 10_000, seed=2, spins=True)


def test_forward_accuracy_at_critical_point_n512():
    """Target 5 as measured on our seed-0 draw at N=512, R=2000 (docs/meanfield.md, "Forward accuracy").

    The paper's "Plefka2[t] at least 5x below Plefka[t] on eps_C" does not reproduce on this draw
    (measured eps_C 6.8e-8 vs 5.0e-8, a tie at the noise floor 3.8e-8), nor on the seed-7 draw
    chosen to match the paper's <m> (reversed there). It is not an implementation discrepancy: our
    TAP, Plefka[t] and Plefka2[t] match the reference's update functions to 3e-14 (target 4,
    tests/test_meanfield_forward.py). So this test asserts what was measured and what we trust:
    Plefka[t] and Plefka2[t] both beat TAP (eps_C 4.3e-6) and Plefka[t-1] (4.4e-6) by >= 10x
    (measured >= 60x), tie with each other within 3x, and their final <C> lie within 5% of the
    simulated 0.00423 (measured 0.00433 and 0.00424).
    """
    h, J = sk_couplings(512, seed=0, beta=critical_beta())
    sim = _simulated_moments(h, J, 128, 2000, seed=1)
    eps, final_C = {}, {}
    for method, order in (("plefka2_t", 2), ("plefka_t", 2), ("tap", 2), ("plefka_t1", 1)):
        out = forward(h, J, method=method, order=order, steps=128)
        eps[method] = np.mean((out["C"] - sim["C"]) ** 2)
        final_C[method] = out["C"][-1].mean()
    for good in ("plefka_t", "plefka2_t"):
        assert eps[good] * 10 <= min(eps["tap"], eps["plefka_t1"]), (good, eps)
        assert final_C[good] == pytest.approx(sim["C"][-1].mean(), rel=0.05), (good, final_C)
    assert 1 / 3 <= eps["plefka_t"] / eps["plefka2_t"] <= 3, eps
    assert sim["C"][-1].mean() == pytest.approx(0.00423, rel=0.05)


def test_inverse_at_critical_point_n128(n128_run):
    """Target 6: Plefka[t], Plefka2[t] and Plefka[t-1] reach eps_J <= 2e-6; TAP reports its status."""
    h, J, sim = n128_run
    data = {k: sim[k][2:].mean(0) for k in ("m", "C", "D")}
    data.update({k + "_prev": sim[k][1:-1].mean(0) for k in ("m", "C", "D")})
    for method in ("plefka_t", "plefka2_t", "plefka_t1"):
        fit = inverse(data, method=method)
        assert fit.converged
        assert np.mean((fit.J - J) ** 2) <= 2e-6
    tap = inverse(data, method="tap", warn=False)
    assert tap.converged == (max(tap.residual_m, tap.residual_D) <= 1e-9)  # never silent


def test_exact_ml_from_spikes_n128(n128_run):
    """Target 6, exact-ML clause, as measured (docs/meanfield.md, "Exact ML against the mean-field inverse").

    On the spikes of the very trials whose conditional-expectation moments feed the mean-field
    inverse (1.28e6 transitions), exact ML (l2 = 0) measured eps_J 1.74e-6 and eps_h 4.0e-5. That
    is below every mean-field inverse of the *same spikes'* moments (best: Plefka[t] 1.95e-6;
    eps_h >= 8.4e-4) and within 10% of the Cramer-Rao expectation, i.e. limited by sampling noise.
    It is not below the mean-field inverse of the conditional-expectation moments (1.35e-6 for
    Plefka[t]): those are computed with the true (h, J) and are less noisy than any function of
    the spikes, so that comparison is not asserted here.
    """
    h, J, sim = n128_run
    raster = sim["raster"]
    assert raster.n_transitions == 1_280_000
    model = KineticIsing(l2=0.0, device="cpu").fit(raster)
    assert model.converged_
    eps_h, eps_J = np.mean((model.h_ - h) ** 2), np.mean((model.J_ - J) ** 2)
    assert eps_J <= 2.0e-6, eps_J  # the bound the mean-field methods meet (target 6)
    spike_moments = statistics(raster, skip=2)  # steps 3..128, the window of the moments above
    for method in ("plefka_t", "plefka2_t", "plefka_t1"):
        fit = inverse(spike_moments, method=method)
        assert fit.converged
        assert eps_J * 1.05 <= np.mean((fit.J - J) ** 2), method  # measured >= 1.12x
        assert eps_h * 10 <= np.mean((fit.h - h) ** 2), method  # measured >= 20x
    rows = np.arange(0, 128, 16)
    ratio = np.mean((model.J_[rows] - J[rows]) ** 2) / _cramer_rao_eps_J(raster, h, J, rows)
    assert 0.8 <= ratio <= 1.3, ratio
