"""Per-condition / per-area EP tables, EP against population size, and real-data checks."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import spikefield as sf
from spikefield.errors import ValidationError
from spikefield.thermo import ep_by_condition, ep_vs_population_size


@pytest.fixture(scope="module")
def two_condition_recording():
    """Epoch 'driven' from asymmetric couplings, epoch 'equilibrium' from their symmetric part."""
    n, steps, bin_size = 10, 20000, 0.01
    h, J = sf.simulate.sk_couplings(n, J0=0.0, Js=0.7, H0=0.3, seed=11)
    # 10 trials glued end to end: 9 spurious transitions out of 20000 do not matter here.
    driven = sf.simulate.kinetic_ising(h, J, steps // 10, n_trials=10, burn_in=100, seed=12).to_numpy()
    equilibrium = sf.simulate.kinetic_ising(h, (J + J.T) / 2, steps // 10, n_trials=10, burn_in=100,
                                            seed=13).to_numpy()
    offset = steps * bin_size + 5.0  # a gap between the epochs
    trains = [np.concatenate([(np.flatnonzero(driven[:, i]) + 0.5) * bin_size,
                              offset + (np.flatnonzero(equilibrium[:, i]) + 0.5) * bin_size]) for i in range(n)]
    epochs = {"driven": [[0.0, steps * bin_size]], "equilibrium": [[offset, offset + steps * bin_size]]}
    units = pd.DataFrame({"area": ["V1"] * 5 + ["LM"] * 5})
    return sf.Recording.from_arrays(trains, [f"u{i}" for i in range(n)], epochs=epochs, units=units), bin_size


def test_table_per_epoch_and_area(two_condition_recording):
    recording, bin_size = two_condition_recording
    table = ep_by_condition(recording, bin_size, by="area", pairs=True, method="maxent")
    assert len(table) == 2 * 3
    assert set(table["group"]) == {"LM", "V1", "LM+V1"}
    driven = table[table.epoch == "driven"].set_index("group")
    equilibrium = table[table.epoch == "equilibrium"].set_index("group")
    # Irreversibility is detected where it exists and not where it does not.
    assert driven.loc["LM+V1", "ep_per_bin"] > 5 * driven.loc["LM+V1", "stderr"]
    assert abs(equilibrium.loc["LM+V1", "ep_per_bin"]) < 3 * equilibrium.loc["LM+V1", "stderr"] + 1e-3
    # The union of two areas carries at least the EP of either area alone (more observables).
    assert driven.loc["LM+V1", "ep_per_bin"] > max(driven.loc["LM", "ep_per_bin"], driven.loc["V1", "ep_per_bin"])
    assert (table["n_units"] == table["group"].map({"LM": 5, "V1": 5, "LM+V1": 10})).all()


def test_table_with_model_factory(two_condition_recording):
    recording, bin_size = two_condition_recording
    table = ep_by_condition(recording, bin_size, method="model", model_factory=lambda X: sf.KineticIsing().fit(X))
    values = table.set_index("epoch")["ep_per_bin"]
    assert values["driven"] > 10 * abs(values["equilibrium"])


def test_small_groups_are_reported_not_dropped(two_condition_recording):
    recording, bin_size = two_condition_recording
    table = ep_by_condition(recording, bin_size, epochs=["driven"], by="area", method="tur", min_units=6)
    assert table["ep_per_bin"].isna().all()
    assert table["note"].str.contains("fewer than 6 units").all()


def test_ep_grows_with_population_size(two_condition_recording):
    recording, bin_size = two_condition_recording
    X = recording.bin(bin_size, epoch="driven")
    table = ep_vs_population_size(X, [3, 6, 10], n_repeats=3, method="maxent", seed=1)
    assert table.groupby("n_units").size().to_dict() == {3: 3, 6: 3, 10: 1}
    means = table.groupby("n_units")["ep_per_bin"].mean()
    assert means[3] < means[6] < means[10]


@pytest.mark.parametrize(("call", "match"), [
    (lambda rec: ep_by_condition(rec, 0.01, epochs=["runn"]), "no epoch named 'runn'"),
    (lambda rec: ep_by_condition(rec, 0.01, by="aera"), "Did you mean 'area'"),
    (lambda rec: ep_by_condition(rec, 0.01, method="model"), "needs model_factory"),
    (lambda rec: ep_by_condition(rec.bin(0.01), 0.01), "recording must be a spikefield Recording"),
    (lambda rec: ep_vs_population_size(rec.bin(0.01, epoch="driven"), [1, 11]), r"between 2 and .* got \[1, 11\]"),
    (lambda rec: ep_vs_population_size(rec, [2]), "raster must be a spikefield Raster"),
    (lambda rec: ep_vs_population_size(rec.bin(0.01, epoch="driven"), [2], n_repeats=0), "n_repeats"),
    (lambda rec: ep_vs_population_size(rec.bin(0.01, epoch="driven"), [2], method="model"), "needs model_factory"),
])
def test_bad_arguments(two_condition_recording, call, match):
    recording, _ = two_condition_recording
    with pytest.raises((ValidationError, sf.RecordingError), match=match):
        call(recording)


def test_hc_linear_track_run_vs_rest(hc_linear_track):
    # Real CA1 data: EP during running (tracked epoch) and rest (last untracked interval), 25 ms bins.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        recording = sf.read(hc_linear_track)
    rest = recording.epochs["untracked"][-1:]
    results = {}
    for name, epoch in (("run", recording.epochs["tracked"]), ("rest", rest)):
        X = recording.bin(0.025, epoch=epoch)
        results[name] = sf.thermo.entropy_production(None, X, method="maxent")
    for result in results.values():
        assert result.n_units == 31 and result.details["converged"] and not result.details["capped"]
        assert np.isfinite(result.ep_per_bin) and result.stderr >= 0
        assert result.ci_per_bin[0] <= result.ep_per_bin <= result.ci_per_bin[1]
        assert abs(result.ep_per_bin) < 0.05  # sparse firing (~0.3 spikes per bin): a weak signal at most


def test_allen_couplings_as_ground_truth(allen_couplings):
    # The published θ* (Allen Neuropixels) as a realistic antisymmetric coupling matrix: a
    # 40-unit block simulated as a kinetic Ising network, MaxEnt must recover most of its EP.
    data = np.load(allen_couplings / "coupling_coefficients_N200_obs2.npz")
    theta = data["th"].astype(np.float64)[:40, :40]
    J = 4 * (theta - theta.T) / 2  # antisymmetric part, scaled up so the signal is measurable
    h = np.full(40, -1.0)           # sparse firing, as in 10 ms bins
    X = sf.simulate.kinetic_ising(h, J, 1000, n_trials=40, burn_in=100, seed=0)
    true = sf.thermo.entropy_production((h, J), X)
    bound = sf.thermo.entropy_production(None, X, method="maxent")
    assert 0.8 * true.ep_per_bin <= bound.ep_per_bin <= true.ep_per_bin + 2 * bound.stderr
