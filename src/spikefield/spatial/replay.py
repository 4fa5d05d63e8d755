"""Replay: candidate population bursts during rest, decoded with run-trained maps, scored
for sequential structure and tested against shuffles."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from numpy.typing import ArrayLike, NDArray
from scipy.ndimage import gaussian_filter1d

from ..errors import ValidationError
from ..intervals import intersect
from ..recording import Recording
from ._validation import positive, positive_int
from .decoding import PoissonDecoder, bin_counts, poisson_log_posterior
from .occupancy import rate_maps

__all__ = ["candidate_events", "weighted_correlation", "line_fit_score", "detect_replay"]


def candidate_events(rec: Recording, epoch: str | ArrayLike | None = "rest", *, threshold_sd: float = 3.0,
                     boundary_sd: float = 0.0, mua_bin: float = 0.001, mua_smooth: float = 0.015,
                     min_duration: float = 0.05, max_duration: float = 0.5,
                     speed_threshold: float = 5.0) -> pd.DataFrame:
    """Population bursts: multi-unit activity (MUA) above a z-score threshold while immobile.

    All spikes are binned at ``mua_bin`` s within the epoch, smoothed with a Gaussian of
    ``mua_smooth`` s (s.d.) and z-scored over the epoch. An event is a stretch where the z-score
    exceeds ``boundary_sd`` and that reaches ``threshold_sd``; it is kept when its duration is
    within limits and the animal's speed (where the position is tracked) stays below
    ``speed_threshold`` (position unit/s). Events in untracked stretches (e.g. a sleep box out
    of the camera's view) are kept, with ``speed`` NaN.

    Returns
    -------
    pandas.DataFrame with ``start``, ``stop`` (s), ``duration`` (s), ``peak_z``, ``speed``.
    """
    where = "candidate_events"
    for name, value in (("mua_bin", mua_bin), ("mua_smooth", mua_smooth), ("min_duration", min_duration),
                        ("max_duration", max_duration), ("threshold_sd", threshold_sd)):
        positive(value, name, where)
    positive(speed_threshold, "speed_threshold", where, allow_zero=True)
    if boundary_sd >= threshold_sd:
        raise ValidationError(f"{where}: boundary_sd ({boundary_sd}) must be below threshold_sd ({threshold_sd}).")
    intervals = rec.support if epoch is None else intersect(rec.support, rec.epoch_intervals(epoch))
    traces = _mua_traces(rec, intervals, mua_bin, mua_smooth)
    if not traces:
        raise ValidationError(f"{where}: epoch {epoch!r} is too short to compute multi-unit activity.")
    pooled = np.concatenate([trace for _, trace in traces])
    mean, sd = pooled.mean(), pooled.std()
    if not sd > 0:
        raise ValidationError(f"{where}: multi-unit activity is constant in epoch {epoch!r}; no events.")
    rows = []
    timestamps = None if rec.position is None else rec.position.timestamps
    speed = None if rec.position is None else rec.position.speed()
    for edges, trace in traces:
        z = (trace - mean) / sd
        above = np.r_[False, z > boundary_sd, False].astype(np.int8)
        for a, b in np.flatnonzero(np.diff(above)).reshape(-1, 2):
            peak, duration = z[a:b].max(), (b - a) * mua_bin
            if peak < threshold_sd or not (min_duration <= duration <= max_duration):
                continue
            event_speed = _max_speed(timestamps, speed, edges[a], edges[b])
            if event_speed > speed_threshold:
                continue
            rows.append((edges[a], edges[b], duration, peak, event_speed))
    return pd.DataFrame(rows, columns=["start", "stop", "duration", "peak_z", "speed"])


def _mua_traces(rec: Recording, intervals: NDArray[np.float64], mua_bin: float,
                mua_smooth: float) -> list[tuple[NDArray[np.float64], NDArray[np.float64]]]:
    """(bin edges, smoothed population rate in Hz) for each interval long enough to bin."""
    times, _ = rec.spikes()
    traces = []
    for start, stop in intervals:
        edges = start + mua_bin * np.arange(int(np.floor((stop - start) / mua_bin)) + 1)
        if edges.size < 3:
            continue
        rate = np.diff(np.searchsorted(times, edges)) / mua_bin
        traces.append((edges, gaussian_filter1d(rate, mua_smooth / mua_bin, mode="nearest")))
    return traces


def event_counts(spike_times: list[NDArray[np.float64]], start: float, stop: float,
                 time_bin: float) -> tuple[NDArray[np.int64], int]:
    """Spike counts (T, N) of an event in bins of ``time_bin`` s, trimmed to its first..last busy bin.

    Empty time bins at the edges carry only the no-spike likelihood (which favours the quietest
    positions), so they are trimmed and the event spans its first to last spike. Returns the
    counts and the index of the first kept bin (0 when nothing is trimmed; ``T = 0`` when the
    event holds no spike).
    """
    n_time = max(2, int(np.ceil((stop - start) / time_bin - 1e-9)))
    counts = bin_counts(spike_times, start + time_bin * np.arange(n_time + 1))
    busy = np.flatnonzero(counts.sum(axis=1) > 0)
    if busy.size == 0:
        return counts[:0], 0
    return counts[busy[0]:busy[-1] + 1], int(busy[0])


def _max_speed(timestamps: NDArray[np.float64] | None, speed: NDArray[np.float64] | None, start: float,
               stop: float) -> float:
    """Largest tracked speed (unit/s) within ``[start, stop]``; NaN when untracked there."""
    if timestamps is None or speed is None:
        return np.nan
    lo, hi = np.searchsorted(timestamps, [start, stop], side="left")
    speed = speed[lo:hi]
    speed = speed[np.isfinite(speed)]
    return float(speed.max()) if speed.size else np.nan


def weighted_correlation(posterior: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """Posterior-weighted Pearson correlation between time and position.

    Parameters
    ----------
    posterior : (..., T, B) posterior per time bin.
    positions : (B,) position of each spatial bin.

    Returns
    -------
    (...) r, with weights ``P(x_b | t)`` (Davidson et al. 2009).
    """
    n_time = posterior.shape[-2]
    t = torch.arange(n_time, dtype=posterior.dtype, device=posterior.device)[:, None]
    x = positions.to(posterior.dtype)[None, :]
    total = posterior.sum(dim=(-2, -1), keepdim=True)
    mean_t = (posterior * t).sum(dim=(-2, -1), keepdim=True) / total
    mean_x = (posterior * x).sum(dim=(-2, -1), keepdim=True) / total
    cov = (posterior * (t - mean_t) * (x - mean_x)).sum(dim=(-2, -1)) / total[..., 0, 0]
    var_t = (posterior * (t - mean_t) ** 2).sum(dim=(-2, -1)) / total[..., 0, 0]
    var_x = (posterior * (x - mean_x) ** 2).sum(dim=(-2, -1)) / total[..., 0, 0]
    return cov / torch.sqrt(var_t * var_x)


def line_fit_score(posterior: torch.Tensor, band: int = 1,
                   positions: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Best straight-line fit (Radon-style) of a decoded trajectory.

    Every line from a start bin to an end bin across the event is scored by the mean over
    time bins of the posterior within ``band`` spatial bins of the line (Davidson et al. 2009);
    the best line's score and slope are returned. All ``B^2`` lines are evaluated at once.

    Parameters
    ----------
    posterior : (..., T, B) posterior per time bin (T >= 2).
    band : half-width of the band around the line, in spatial bins.
    positions : (B,) position of each spatial bin, optional. The mapped bins of a decoder can
        skip unvisited bins, so bin indices are not proportional to position; with ``positions``
        the slope is measured between the positions of the line's end bins.

    Returns
    -------
    score : (...) best mean posterior in the band, in [0, 1].
    slope : (...) slope of the best line in spatial bins per time bin, or in position units per
        time bin when ``positions`` is given.
    """
    *lead, n_time, n_bins = posterior.shape
    device, dtype = posterior.device, posterior.dtype
    ends = torch.arange(n_bins, device=device, dtype=dtype)
    start, stop = torch.meshgrid(ends, ends, indexing="ij")
    start, stop = start.reshape(-1), stop.reshape(-1)  # (L,)
    frac = torch.arange(n_time, device=device, dtype=dtype) / max(n_time - 1, 1)
    centre = torch.round(start[:, None] + (stop - start)[:, None] * frac[None, :])  # (L, T)
    # Band indicator of every line as a (L, T*B) matrix: all line scores are then one matmul,
    # far faster than gathering band sums line by line.
    distance = (ends[None, None, :] - centre[:, :, None]).abs()
    band_matrix = (distance <= band).to(dtype).reshape(centre.shape[0], n_time * n_bins)
    scores = posterior.reshape(-1, n_time * n_bins) @ band_matrix.T / n_time  # (M, L)
    best, which = scores.max(dim=-1)
    if positions is None:
        travelled = (stop - start)[which]
    else:
        x = positions.to(device=device, dtype=dtype)
        travelled = x[stop[which].long()] - x[start[which].long()]
    slope = travelled / max(n_time - 1, 1)
    return best.reshape(lead), slope.reshape(lead)


def _event_scores(posterior: torch.Tensor, positions: torch.Tensor, band: int) -> tuple[torch.Tensor, ...]:
    line, slope = line_fit_score(posterior, band, positions)
    return weighted_correlation(posterior, positions), line, slope


def detect_replay(rec: Recording, decoder: PoissonDecoder | None = None, *, run_epoch: str | ArrayLike = "run",
                  rest_epoch: str | ArrayLike | None = "rest", bin_size: float | None = None,
                  time_bin: float = 0.02, speed_threshold: float = 5.0, threshold_sd: float = 3.0,
                  min_duration: float = 0.05, max_duration: float = 0.5, min_active_units: int = 4,
                  n_shuffles: int = 500, band: int = 1, alpha: float = 0.05, seed: int | None = 0,
                  linearize: bool | ArrayLike | None = None, units: ArrayLike | None = None,
                  device: str = "auto") -> pd.DataFrame:
    """Detect and score replay events during rest.

    1. Candidate events: :func:`candidate_events` (multi-unit activity of all units) on
       ``rest_epoch``; events with fewer than ``min_active_units`` active decoding units are
       dropped. ``units`` (unit ids, e.g. the spatially informative ones) restricts the units
       used for decoding; by default all units decode.
    2. Each event is cut into ``time_bin`` bins and decoded with ``decoder`` (default: a flat
       prior :class:`PoissonDecoder` on 1-D maps of ``run_epoch``, smoothed by one bin).
    3. Scores: :func:`weighted_correlation` and :func:`line_fit_score`.
    4. Significance against two shuffles of ``n_shuffles`` each: the time-bin shuffle permutes
       the order of the event's time bins; the circular place-field shuffle rotates each unit's
       rate map by an independent random number of bins and re-decodes. p-values are
       ``(1 + #{shuffle >= observed}) / (1 + n_shuffles)`` (``|r|`` for the correlation).

    Returns
    -------
    pandas.DataFrame
        One row per candidate: ``start``, ``stop``, ``duration`` (s), ``peak_z``, ``speed``,
        ``n_active_units``, ``n_time_bins``, ``weighted_corr``, ``line_score``, ``slope``
        (position unit/s), ``p_corr_time``, ``p_corr_field``, ``p_line_time``, ``p_line_field``
        and ``significant``: the line score beats both shuffles (each p < ``alpha``).
        ``attrs["unit"]`` is the position unit.

    Examples
    --------
    >>> import spikefield as sf
    >>> sim = sf.simulate.place_cells(n_cells=80, run_duration=200, rest_duration=60, n_replay_events=5,
    ...                               peak_rate=40, seed=0)
    >>> events = sf.spatial.detect_replay(sim.recording, n_shuffles=100, seed=0)
    >>> len(events), bool(events["significant"].any())   # the 5 inserted sweeps are the candidates
    (5, True)
    """
    where = "detect_replay"
    positive(time_bin, "time_bin", where)
    min_active_units = positive_int(min_active_units, "min_active_units", where)
    n_shuffles = positive_int(n_shuffles, "n_shuffles", where)
    band = positive_int(band, "band", where, minimum=0)
    decoding_rec = rec if units is None else rec.select(units=units)
    if decoder is None:
        maps = rate_maps(decoding_rec, 1.0, epoch=run_epoch, speed_threshold=speed_threshold, linearize=linearize) \
            if bin_size is None else None
        if bin_size is None:
            extent = maps.bin_edges[0][-1] - maps.bin_edges[0][0]
            bin_size = extent / 40
        positive(bin_size, "bin_size", where)
        maps = rate_maps(decoding_rec, bin_size, epoch=run_epoch, speed_threshold=speed_threshold, smooth=bin_size,
                         linearize=linearize)
        decoder = PoissonDecoder(prior="flat", device=device).fit(maps)
    elif not hasattr(decoder, "rates_"):
        raise ValidationError(f"{where}: decoder is not fitted; call decoder.fit(rate_maps) first.")
    if decoder.rates_.shape[0] != decoding_rec.n_units:
        raise ValidationError(f"{where}: the decoder has {decoder.rates_.shape[0]} units but {decoding_rec.n_units} "
                              "units decode; pass the same units the decoder was fitted on.")
    if decoder.maps_.n_dims != 1:
        raise ValidationError(f"{where}: replay scoring needs 1-D maps; pass linearize=True for a 2-D track.")
    events = candidate_events(rec, rest_epoch, threshold_sd=threshold_sd, min_duration=min_duration,
                              max_duration=max_duration, speed_threshold=speed_threshold)
    dev, dtype = decoder.device_, decoder.dtype_
    rng = np.random.default_rng(seed)
    generator = torch.Generator(device="cpu").manual_seed(int(rng.integers(2**62)))
    rates = decoder.rates_
    n_units, n_bins = rates.shape
    positions = torch.as_tensor(decoder.bin_centers_[:, 0], dtype=dtype, device=dev)
    log_rates = torch.as_tensor(np.log(rates), dtype=dtype, device=dev)
    log_prior = torch.as_tensor(decoder.log_prior_, dtype=dtype, device=dev)
    rows = []
    for event in events.itertuples(index=False):
        counts_np, _ = event_counts(decoding_rec.spike_times, event.start, event.stop, time_bin)
        if counts_np.shape[0] < 2:
            continue
        n_time = counts_np.shape[0]
        n_active = int(np.sum(counts_np.sum(axis=0) > 0))
        if n_active < min_active_units:
            continue
        counts = torch.as_tensor(counts_np, dtype=dtype, device=dev)
        expected = torch.as_tensor(time_bin * rates.sum(axis=0), dtype=dtype, device=dev)
        posterior = poisson_log_posterior(counts, log_rates, expected, log_prior).exp()
        corr, line, slope = _event_scores(posterior, positions, band)
        # Time-bin shuffle: random permutations of the event's time bins.
        order = torch.argsort(torch.rand(n_shuffles, n_time, generator=generator), dim=1).to(dev)
        corr_t, line_t, _ = _event_scores(posterior[order], positions, band)
        # Circular place-field shuffle: rotate each unit's map independently and re-decode.
        shift = torch.randint(0, n_bins, (n_shuffles, n_units, 1), generator=generator).to(dev)
        rolled_index = (torch.arange(n_bins, device=dev)[None, None, :] - shift) % n_bins
        rolled = torch.gather(log_rates.expand(n_shuffles, -1, -1), 2, rolled_index)
        rolled_expected = time_bin * rolled.exp().sum(dim=1, keepdim=True)  # (S, 1, B)
        log_post = counts @ rolled - rolled_expected + log_prior
        posterior_f = (log_post - torch.logsumexp(log_post, dim=-1, keepdim=True)).exp()
        corr_f, line_f, _ = _event_scores(posterior_f, positions, band)

        def p_value(shuffled: torch.Tensor, observed: torch.Tensor) -> float:
            return float((1 + (shuffled >= observed).sum()) / (1 + n_shuffles))

        rows.append(dict(
            start=event.start, stop=event.stop, duration=event.duration, peak_z=event.peak_z, speed=event.speed,
            n_active_units=n_active, n_time_bins=n_time, weighted_corr=float(corr), line_score=float(line),
            slope=float(slope) / time_bin,
            p_corr_time=p_value(corr_t.abs(), corr.abs()), p_corr_field=p_value(corr_f.abs(), corr.abs()),
            p_line_time=p_value(line_t, line), p_line_field=p_value(line_f, line)))
    columns = ["start", "stop", "duration", "peak_z", "speed", "n_active_units", "n_time_bins", "weighted_corr",
               "line_score", "slope", "p_corr_time", "p_corr_field", "p_line_time", "p_line_field"]
    table = pd.DataFrame(rows, columns=columns)
    table["significant"] = (table["p_line_time"] < alpha) & (table["p_line_field"] < alpha)
    table.attrs["unit"] = decoder.maps_.unit
    return table


def _intervals_hit(events: pd.DataFrame, truth: NDArray[np.float64]) -> NDArray[np.bool_]:
    """Which ``truth`` intervals (K, 2+) overlap a detected event (helper for tests/benchmarks)."""
    if len(events) == 0:
        return np.zeros(len(truth), dtype=bool)
    detected = events[["start", "stop"]].to_numpy()
    return np.array([bool(np.any((detected[:, 0] < t1) & (detected[:, 1] > t0))) for t0, t1 in truth[:, :2]])


