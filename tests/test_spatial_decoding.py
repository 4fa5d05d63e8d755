"""Bayesian decoding of position (spikefield.spatial.decode / PoissonDecoder)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import poisson

import spikefield as sf
from spikefield._device import available_devices
from spikefield.errors import NotFittedError, ValidationError
from spikefield.spatial import PoissonDecoder, decode


@pytest.fixture(scope="module")
def sim():
    return sf.simulate.place_cells(n_cells=50, run_duration=240, seed=5)


@pytest.fixture(scope="module")
def maps(sim):
    return sf.spatial.rate_maps(sim.recording, 5.0, smooth=5.0)


def test_decoding_median_error_within_two_bins(sim):
    result = decode(sim.recording, bin_size=5.0, time_bin=0.25, n_folds=5)
    assert result.unit == "cm"
    assert result.median_error_bins <= 2.0
    assert result.mean_error >= result.median_error * 0.5
    assert sorted(set(result.fold.tolist())) == [0, 1, 2, 3, 4]
    assert np.all(np.diff(result.fold) >= 0)  # contiguous folds
    np.testing.assert_allclose(result.posterior.sum(axis=1), 1.0, atol=1e-9)
    confusion = result.confusion_matrix()
    visited = np.isfinite(confusion).all(axis=1)
    np.testing.assert_allclose(confusion[visited].sum(axis=1), 1.0, atol=1e-9)
    assert np.mean(np.argmax(confusion[visited], axis=1) == np.flatnonzero(visited)) > 0.8


def test_auto_bin_size_and_shuffled_spikes_decode_badly(sim):
    auto = decode(sim.recording, time_bin=0.25, n_folds=4)
    assert auto.bin_size == pytest.approx(np.ptp(sim.recording.position.values) / 40, rel=1e-9)
    # Break the spike-position relation: decoding error must rise to chance level.
    shifted = sf.Recording([np.sort((np.asarray(t) + 97.0) % 240.0) for t in sim.recording.spike_times],
                           series=dict(sim.recording.series), support=sim.recording.support)
    chance = decode(shifted, 5.0, time_bin=0.25, n_folds=4)
    assert chance.median_error > 5 * auto.median_error


def test_posterior_equals_brute_force_poisson_bayes(maps):
    rng = np.random.default_rng(0)
    counts = rng.poisson(0.5, size=(20, maps.n_units)).astype(float)
    for prior in ("flat", "occupancy"):
        decoder = PoissonDecoder(prior=prior, rate_floor=1e-3).fit(maps)
        rates = decoder.rates_ * 0.1
        log_like = poisson.logpmf(counts[:, :, None], rates[None]).sum(axis=1)
        weights = maps.occupancy[decoder.mask_] if prior == "occupancy" else np.ones(rates.shape[1])
        log_post = log_like + np.log(weights / weights.sum())
        expected = np.exp(log_post - np.logaddexp.reduce(log_post, axis=1, keepdims=True))
        np.testing.assert_allclose(decoder.predict_proba(counts, 0.1), expected, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("device", [d for d in ("cpu", "cuda") if d in available_devices()])
def test_decoder_devices_agree_with_cpu(maps, device):
    counts = np.random.default_rng(1).poisson(1.0, size=(50, maps.n_units))
    cpu = PoissonDecoder(device="cpu").fit(maps).predict_proba(counts, 0.25)
    other = PoissonDecoder(device=device, chunk_size=7).fit(maps).predict_proba(counts, 0.25)
    np.testing.assert_allclose(other, cpu, atol=1e-5)


def test_decode_two_dimensional_open_field():
    rng = np.random.default_rng(2)
    t = np.arange(0, 600, 0.02)
    # A smooth random walk reflected inside a 100 x 100 cm box.
    steps = rng.normal(0, 1.2, (t.size, 2)).cumsum(axis=0)
    xy = 50 + 50 * np.sin(steps / 40)
    centres = rng.uniform(5, 95, (60, 2))
    rates = 0.2 + 10 * np.exp(-0.5 * ((xy[:, None, :] - centres[None]) ** 2).sum(-1) / 10**2)
    spikes = rng.random(rates.shape) < rates * 0.02
    trains = [t[spikes[:, i]] + 0.01 for i in range(60)]
    rec = sf.Recording(trains, series={"position": sf.TimeSeries(t, xy, unit="cm")})
    result = decode(rec, 10.0, time_bin=0.5, n_folds=4, speed_threshold=0.0)
    assert result.posterior.shape[1:] == (10, 10)
    assert result.median_error_bins <= 2.0


@pytest.mark.parametrize("kwargs, match", [
    (dict(n_folds=1), "n_folds must be an integer >= 2"),
    (dict(time_bin=0.0), "time_bin must be a positive"),
    (dict(prior="gaussian"), "prior must be one of"),
    (dict(bin_size="5cm"), "bin_size must be a positive"),
    (dict(speed_threshold=1e6), "time bins pass the filters"),
])
def test_decode_rejects_bad_arguments(sim, kwargs, match):
    with pytest.raises(ValidationError, match=match):
        decode(sim.recording, **{"bin_size": 5.0, **kwargs})


def test_decoder_errors(maps):
    with pytest.raises(NotFittedError, match="not fitted"):
        PoissonDecoder().predict(np.zeros((1, maps.n_units)), 0.1)
    with pytest.raises(ValidationError, match=r"counts must have shape \(T, 50\)"):
        PoissonDecoder().fit(maps).predict(np.zeros((3, 4)), 0.1)
    with pytest.raises(ValidationError, match="maps must be a RateMaps"):
        PoissonDecoder().fit(np.ones((3, 4)))


def test_decoder_matches_pynapple_decode_bayes(maps):
    nap = pytest.importorskip("pynapple", reason="pynapple not installed (pip install pynapple)")
    import xarray as xr

    rng = np.random.default_rng(4)
    counts = rng.poisson(0.8, size=(300, maps.n_units))
    tuning = xr.DataArray(maps.maps, coords={"unit": np.arange(maps.n_units), "x": maps.bin_centers[0]},
                          dims=("unit", "x"), attrs={"occupancy": maps.occupancy})
    frame = nap.TsdFrame(t=np.arange(300) * 0.25 + 0.125, d=counts, columns=np.arange(maps.n_units))
    epoch = nap.IntervalSet(0.0, 75.0)
    decoded, theirs = nap.decode_bayes(tuning, frame, epoch, bin_size=0.25)
    ours = PoissonDecoder(rate_floor=1e-300).fit(maps)
    np.testing.assert_allclose(ours.predict_proba(counts, 0.25), np.asarray(theirs), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(ours.predict(counts, 0.25)[:, 0], np.asarray(decoded))


def test_real_linear_track_decoding(hc_linear_track):
    rec = sf.read(hc_linear_track)
    result = decode(rec, 10.0, time_bin=0.25, n_folds=5, epoch="tracked", linearize=True, speed_threshold=15.0)
    assert result.unit == "px"
    extent = result.bin_edges[0][-1] - result.bin_edges[0][0]
    assert result.median_error < 0.12 * extent  # ~30 px on a ~430 px track
    assert torch.get_default_dtype() == torch.float32  # decoding did not change global torch state
