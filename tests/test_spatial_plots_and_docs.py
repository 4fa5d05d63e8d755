"""Figures and docstring examples of spikefield.spatial."""

from __future__ import annotations

import doctest
import importlib

import numpy as np
import pytest

import spikefield as sf

matplotlib = pytest.importorskip("matplotlib", reason="matplotlib is needed for spatial figures")
matplotlib.use("Agg")


def test_figures_render(tmp_path):
    import matplotlib.pyplot as plt

    from spikefield.spatial.plots import plot_decoding, plot_rate_maps, plot_replay_event

    sim = sf.simulate.place_cells(n_cells=60, run_duration=120, rest_duration=40, n_replay_events=4,
                                  peak_rate=40.0, seed=3)
    maps = sf.spatial.rate_maps(sim.recording, 5.0, epoch="run", smooth=5.0)
    fig, axes = plt.subplots(1, 3, figsize=(12, 3))
    plot_rate_maps(maps, axes[0])
    result = sf.spatial.decode(sim.recording, 5.0, n_folds=3)
    plot_decoding(result, axes[1])
    events = sf.spatial.detect_replay(sim.recording, n_shuffles=20, seed=0)
    decoder = sf.spatial.PoissonDecoder().fit(sf.spatial.rate_maps(sim.recording, 5.0, epoch="run", smooth=5.0))
    plot_replay_event(sim.recording, decoder, events.iloc[0], ax=axes[2])
    # The event panel shows the trimmed time bins that detect_replay scored.
    assert axes[2].collections[0].get_array().shape == (decoder.bin_centers_.shape[0], events.iloc[0]["n_time_bins"])
    path = tmp_path / "spatial.png"
    fig.savefig(path)
    plt.close(fig)
    assert path.stat().st_size > 10_000
    # Rows of the rate-map image are ordered by peak position.
    image = axes[0].collections[0].get_array().reshape(-1, maps.shape[0])
    peaks = np.nanargmax(np.where(np.isfinite(image), image, -1), axis=1)
    assert np.all(np.diff(peaks) >= 0)


@pytest.mark.parametrize("module", ["track", "occupancy", "information", "fields", "decoding", "replay", "plots"])
def test_docstring_examples(module):
    mod = importlib.import_module(f"spikefield.spatial.{module}")
    result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
