"""Mean-field statistics and inverse on a real CA1 recording (shared data; skips when absent)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import spikefield as sf
from spikefield.errors import ConvergenceWarning
from spikefield.meanfield import inverse, statistics

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def ca1_statistics(hc_linear_track):
    raster = sf.read(hc_linear_track).bin(0.02)
    activity = raster.mean_activity()
    active = raster.select_units(np.flatnonzero((activity > 0.01) & (activity < 0.9)))
    return active, statistics(active)


def test_statistics_of_real_raster(ca1_statistics):
    raster, stats = ca1_statistics
    assert stats["n_transitions"] == raster.n_bins - len(raster.segments)
    np.testing.assert_allclose(stats["m"], 2 * raster.mean_activity() - 1, atol=1e-3)
    eigenvalues = np.linalg.eigvalsh(stats["C"])
    assert eigenvalues.min() > 0  # a proper covariance of distinct units


def test_closed_form_inverse_on_real_data(ca1_statistics):
    _, stats = ca1_statistics
    fit = inverse(stats, method="plefka_t", order=1, solver="closed")
    assert fit.converged and fit.residual_D < 1e-12 and np.all(np.isfinite(fit.J))
    # CA1 units fire in bursts longer than a 20 ms bin: positive self-coupling on average
    assert np.mean(np.diag(fit.J)) > 0


def test_moment_matching_on_real_data_is_never_silent(ca1_statistics):
    _, stats = ca1_statistics
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = inverse(stats, method="plefka2_t", max_iter=50)
    warned = any(issubclass(w.category, ConvergenceWarning) for w in caught)
    assert fit.converged != warned
    assert fit.converged == (max(fit.residual_m, fit.residual_D) <= 1e-9)
