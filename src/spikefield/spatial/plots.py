"""Figures for spatial coding (matplotlib; import this module only when plotting)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..errors import ValidationError
from ..recording import Recording
from .decoding import DecodingResult, PoissonDecoder
from .occupancy import RateMaps
from .replay import event_counts

__all__ = ["plot_rate_maps", "plot_decoding", "plot_replay_event"]


def _axes(ax: Any, **figure_kwargs: Any):
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(**figure_kwargs)
    return ax


def plot_rate_maps(maps: RateMaps, ax: Any = None, *, normalize: bool = True, only_active: bool = True):
    """Image of 1-D rate maps, one row per unit, ordered by peak position.

    Parameters
    ----------
    maps : RateMaps (1-D)
    normalize : scale each row to its peak rate.
    only_active : leave out units silent in the mapped bins.

    Returns
    -------
    matplotlib Axes

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> import spikefield as sf
    >>> from spikefield.spatial.plots import plot_rate_maps
    >>> sim = sf.simulate.place_cells(n_cells=10, run_duration=60, seed=0)
    >>> ax = plot_rate_maps(sf.spatial.rate_maps(sim.recording, 5.0, smooth=5.0))
    """
    if maps.n_dims != 1:
        raise ValidationError("plot_rate_maps: needs 1-D maps; plot 2-D maps with imshow(maps.maps[i]).")
    order = maps.order()
    if only_active:
        order = order[np.isfinite(maps.peak_position()[order])]
    image = maps.maps[order]
    if normalize:
        with np.errstate(invalid="ignore", divide="ignore"):
            image = image / np.nanmax(image, axis=1, keepdims=True)
    ax = _axes(ax, figsize=(5, 4))
    edges = maps.bin_edges[0]
    mesh = ax.pcolormesh(edges, np.arange(len(order) + 1), image, cmap="viridis", shading="flat")
    ax.figure.colorbar(mesh, ax=ax, label="rate / peak" if normalize else "rate (Hz)")
    ax.set_xlabel(f"position ({maps.unit})")
    ax.set_ylabel("unit (sorted by peak)")
    return ax


def plot_decoding(result: DecodingResult, ax: Any = None, *, max_bins: int = 2000):
    """True and decoded position against time (1-D), with the posterior as background."""
    ax = _axes(ax, figsize=(8, 3))
    n = min(max_bins, result.times.size)
    if result.posterior.ndim == 2:
        edges = result.bin_edges[0]
        ax.imshow(result.posterior[:n].T, origin="lower", aspect="auto", cmap="Greys",
                  extent=(0, n * result.time_bin, edges[0], edges[-1]))
        elapsed = np.arange(n) * result.time_bin
        ax.plot(elapsed, result.true_position[:n, 0], lw=1, color="tab:blue", label="true")
        ax.plot(elapsed, result.decoded_position[:n, 0], ".", ms=2, color="tab:red", label="decoded")
        ax.set_xlabel("decoded time (s, concatenated bins)")
    else:
        ax.plot(result.true_position[:n, 0], result.true_position[:n, 1], lw=0.5, label="true")
        ax.plot(result.decoded_position[:n, 0], result.decoded_position[:n, 1], ".", ms=2, label="decoded")
        ax.set_xlabel(f"x ({result.unit})")
    ax.set_ylabel(f"position ({result.unit})")
    ax.set_title(f"median error {result.median_error:.1f} {result.unit}")
    ax.legend(loc="upper right", fontsize="small")
    return ax


def _edges_from_centers(centers: np.ndarray) -> np.ndarray:
    """Cell edges halfway between consecutive centres (one extra half-step at each end)."""
    if centers.size == 1:
        return np.array([centers[0] - 0.5, centers[0] + 0.5])
    mid = (centers[1:] + centers[:-1]) / 2
    return np.concatenate([[centers[0] - (mid[0] - centers[0])], mid, [centers[-1] + (centers[-1] - mid[-1])]])


def plot_replay_event(rec: Recording, decoder: PoissonDecoder, event: pd.Series, time_bin: float = 0.02,
                      ax: Any = None, units: Any = None):
    """Posterior of one replay event (a row of :func:`detect_replay`'s table) with its scores."""
    source = rec if units is None else rec.select(units=units)
    # The same trimmed bins that detect_replay scored (first to last spike of the event).
    counts, first = event_counts(source.spike_times, event["start"], event["stop"], time_bin)
    posterior = decoder.predict_proba(counts, time_bin)
    ax = _axes(ax, figsize=(3, 3))
    centers = decoder.bin_centers_[:, 0]
    time_edges = (first + np.arange(counts.shape[0] + 1)) * time_bin * 1000
    # pcolormesh, not imshow: mapped bins can skip unvisited positions, so rows are not evenly spaced.
    ax.pcolormesh(time_edges, _edges_from_centers(centers), posterior.T, cmap="hot", shading="flat")
    ax.set_xlabel("time in event (ms)")
    ax.set_ylabel(f"decoded position ({decoder.maps_.unit})")
    ax.set_title(f"r={event['weighted_corr']:.2f} line={event['line_score']:.2f}\n"
                 f"p={max(event['p_line_time'], event['p_line_field']):.3f}", fontsize="small")
    return ax
