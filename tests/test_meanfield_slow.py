"""Full-size reproductions of PHYSICS.md targets 5 and 6 (``pytest -m slow``; minutes on a CPU).

The same runs, with timings and tables, are in ``benchmarks/meanfield.py``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spikefield.meanfield import critical_beta, forward, inverse
from spikefield.simulate import sk_couplings

pytestmark = pytest.mark.slow


def _simulated_moments(h, J, steps, trials, seed):
    """Trial-averaged m_t, C_t, D_t from s_0 = +1 with conditional-expectation estimators."""
    gen = torch.Generator().manual_seed(seed)
    h_t, J_t = torch.as_tensor(h), torch.as_tensor(J)
    s = torch.ones((trials, h.size), dtype=torch.float64)
    out = {"m": [], "C": [], "D": []}
    m_prev = s.mean(0)
    for _ in range(steps):
        th = torch.tanh(h_t + s @ J_t.T)
        m = th.mean(0)
        C = th.T @ th / trials - torch.outer(m, m)
        C.diagonal().copy_(1 - m * m)
        out["m"].append(m.numpy())
        out["C"].append(C.numpy())
        out["D"].append((th.T @ s / trials - torch.outer(m, m_prev)).numpy())
        s = (torch.rand(th.shape, generator=gen, dtype=torch.float64) < (1 + th) / 2).double() * 2 - 1
        m_prev = m
    return {k: np.array(v) for k, v in out.items()}


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


def test_inverse_at_critical_point_n128():
    """Target 6: Plefka[t], Plefka2[t] and Plefka[t-1] reach eps_J <= 2e-6; TAP reports its status."""
    h, J = sk_couplings(128, seed=0, beta=critical_beta())
    sim = _simulated_moments(h, J, 128, 10_000, seed=2)
    data = {k: sim[k][2:].mean(0) for k in ("m", "C", "D")}
    data.update({k + "_prev": sim[k][1:-1].mean(0) for k in ("m", "C", "D")})
    for method in ("plefka_t", "plefka2_t", "plefka_t1"):
        fit = inverse(data, method=method)
        assert fit.converged
        assert np.mean((fit.J - J) ** 2) <= 2e-6
    tap = inverse(data, method="tap", warn=False)
    assert tap.converged == (max(tap.residual_m, tap.residual_D) <= 1e-9)  # never silent
