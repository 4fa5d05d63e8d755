"""Replay detection and sequence scores (spikefield.spatial.detect_replay)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import spikefield as sf
from spikefield.errors import RecordingError, ValidationError
from spikefield.spatial import candidate_events, detect_replay, line_fit_score, weighted_correlation


def _overlaps(events, truth) -> np.ndarray:
    detected = events[["start", "stop"]].to_numpy()
    return np.array([bool(np.any((detected[:, 0] < t1) & (detected[:, 1] > t0))) for t0, t1 in truth[:, :2]])


@pytest.fixture(scope="module")
def sim():
    return sf.simulate.place_cells(n_cells=80, run_duration=200, rest_duration=120, n_replay_events=10,
                                   peak_rate=40.0, seed=1)


def _diagonal(n_time: int = 8, n_bins: int = 40, step: int = 4) -> torch.Tensor:
    posterior = torch.zeros(n_time, n_bins, dtype=torch.float64)
    posterior[torch.arange(n_time), 3 + step * torch.arange(n_time)] = 1.0
    return posterior


def test_sequence_scores_on_ideal_trajectories():
    forward = _diagonal()
    positions = torch.arange(40, dtype=torch.float64) * 5.0
    assert float(weighted_correlation(forward, positions)) == pytest.approx(1.0)
    assert float(weighted_correlation(forward.flip(0), positions)) == pytest.approx(-1.0)
    score, slope = line_fit_score(forward, band=1)
    assert float(score) == pytest.approx(1.0) and float(slope) == pytest.approx(4.0)
    back_score, back_slope = line_fit_score(forward.flip(0), band=1)
    assert float(back_score) == pytest.approx(1.0) and float(back_slope) == pytest.approx(-4.0)
    # Mapped bins with a gap (unvisited bins dropped): the slope follows the positions, not the indices.
    gapped = torch.cat([torch.arange(20.0), torch.arange(30.0, 50.0)]).double() * 5.0
    # the best line runs from bin 3 to bin 31 in 7 time steps; bin 31 sits at position 41 * 5 after the gap
    assert float(line_fit_score(forward, band=1, positions=gapped)[1]) == pytest.approx((41 - 3) * 5.0 / 7)
    assert float(line_fit_score(forward, band=1, positions=positions)[1]) == pytest.approx(20.0)
    # A flat posterior scores the band fraction (3 of 40 bins) whatever the line.
    flat = torch.full((8, 40), 1 / 40, dtype=torch.float64)
    assert float(line_fit_score(flat, band=1)[0]) == pytest.approx(3 / 40)
    # Shuffling time bins destroys the line; batched over a leading axis.
    generator = torch.Generator().manual_seed(0)
    shuffled = torch.stack([forward[torch.randperm(8, generator=generator)] for _ in range(20)])
    scores, _ = line_fit_score(shuffled, band=1)
    assert scores.shape == (20,) and float(scores.max()) < 1.0


def test_detect_replay_finds_inserted_events(sim):
    events = detect_replay(sim.recording, n_shuffles=200, seed=0)
    truth = sim.replay_events
    assert events.attrs["unit"] == "cm"
    assert _overlaps(events, truth).all()  # every inserted event is a candidate
    significant = events[events["significant"]]
    assert _overlaps(significant, truth).sum() >= 5
    # Significant events are inserted ones (no false positives), with the right direction.
    hits = [np.flatnonzero((truth[:, 0] < row.stop) & (truth[:, 1] > row.start)) for row in significant.itertuples()]
    assert all(h.size == 1 for h in hits)
    directions = np.array([truth[h[0], 2] for h in hits])
    assert np.all(np.sign(significant["slope"].to_numpy()) == directions)
    assert np.all(np.sign(significant["weighted_corr"].to_numpy()) == directions)
    again = detect_replay(sim.recording, n_shuffles=200, seed=0)
    np.testing.assert_array_equal(events["p_line_field"], again["p_line_field"])  # seeded


def test_candidate_events_respect_duration_and_threshold(sim):
    loose = candidate_events(sim.recording, "rest", threshold_sd=2.0)
    strict = candidate_events(sim.recording, "rest", threshold_sd=6.0)
    assert len(strict) <= len(loose)
    assert loose["duration"].between(0.05, 0.5).all()
    assert (strict["peak_z"] >= 6.0).all()
    assert loose["speed"].isna().all()  # no position during the simulated rest


def test_replay_units_argument_and_decoder_mismatch(sim):
    ids = sim.recording.unit_ids[np.isfinite(sim.field_centers)]
    events = detect_replay(sim.recording, n_shuffles=50, seed=0, units=ids)
    assert len(events) > 0
    maps = sf.spatial.rate_maps(sim.recording, 5.0, epoch="run", smooth=5.0)
    decoder = sf.spatial.PoissonDecoder().fit(maps)
    with pytest.raises(ValidationError, match="the decoder has 80 units"):
        detect_replay(sim.recording, decoder, n_shuffles=10, units=ids)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(time_bin=-0.02), ValidationError, "time_bin must be a positive"),
    (dict(n_shuffles=0), ValidationError, "n_shuffles must be an integer >= 1"),
    (dict(band=-1), ValidationError, "band must be an integer >= 0"),
    (dict(rest_epoch="sleep"), RecordingError, "no epoch named 'sleep'"),
    (dict(decoder=sf.spatial.PoissonDecoder()), ValidationError, "decoder is not fitted"),
])
def test_detect_replay_rejects_bad_arguments(sim, kwargs, error, match):
    with pytest.raises(error, match=match):
        detect_replay(sim.recording, **kwargs)


def test_candidate_events_rejects_bad_thresholds(sim):
    with pytest.raises(ValidationError, match="boundary_sd"):
        candidate_events(sim.recording, "rest", threshold_sd=1.0, boundary_sd=2.0)


@pytest.mark.slow
def test_real_linear_track_replay_runs(hc_linear_track):
    """Slow (~2-4 min): full rest session of the real linear track with place cells decoding."""
    rec = sf.read(hc_linear_track)
    info = sf.spatial.spatial_information(rec, 10.0, epoch="tracked", linearize=True, speed_threshold=15.0,
                                          smooth=10.0, n_shuffles=200, seed=0)
    rest = rec.epochs["untracked"][-1:]
    events = detect_replay(rec, run_epoch="tracked", rest_epoch=rest, linearize=True, speed_threshold=15.0,
                           units=info.index[info["p_value"] < 0.01], n_shuffles=200, seed=0)
    assert len(events) > 100
    assert events["start"].min() >= rest[0, 0]
    # p-values are valid probabilities and not all tiny: most rest bursts are not replay.
    assert events["p_line_time"].between(0, 1).all() and events["p_line_time"].median() > 0.2
