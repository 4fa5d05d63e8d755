"""Capacity and pruning experiments, attractors of (fitted) networks."""

from __future__ import annotations

import itertools

import matplotlib
import numpy as np
import pandas as pd
import pytest

import spikefield as sf
from spikefield.errors import ConvergenceWarning, ValidationError
from spikefield.memory import (
    AGS_CRITICAL_LOAD,
    Hopfield,
    SequenceHopfield,
    attractors,
    capacity_curve,
    corrupt,
    critical_load,
    finite_size_critical_load,
    pattern_overlaps,
    plot_attractors,
    plot_capacity,
    plot_pruning,
    prune,
    pruning_curve,
)

matplotlib.use("Agg")


# ---------------------------------------------------------------- capacity
def test_hebbian_retrieval_collapses_between_loads_010_and_018():
    """Default-size check of the AGS transition (N=500): the full α_c reproduction is marked slow."""
    curve = capacity_curve("hebbian", 500, [0.10, 0.18], n_trials=2, seed=0, device="cpu")
    success = curve.groupby("load").fraction_retrieved.mean()
    assert success[0.10] >= 0.97
    assert success[0.18] <= 0.6
    assert np.all(curve.fraction_converged == 1.0)
    assert list(curve.columns) == ["network", "n_neurons", "n_patterns", "load", "trial", "flip_fraction",
                                   "criterion", "fraction_retrieved", "mean_overlap", "fraction_converged"]


@pytest.mark.slow
def test_classical_critical_load_reproduces_amit_gutfreund_sompolinsky():
    """α_c from the crossing of the N=500 and N=1000 retrieval curves lies within 0.01 of 0.138.

    ~10 minutes on 2 CPU cores (20 pattern sets at N=500, 8 at N=1000: 11,000 cues near the
    transition); ``benchmarks/memory.py`` runs the same and adds N=2000.
    """
    loads = [0.12, 0.13, 0.14, 0.15, 0.16, 0.17]
    curve = pd.concat([capacity_curve("hebbian", 500, loads, n_trials=20, seed=1, device="cpu"),
                       capacity_curve("hebbian", 1000, loads, n_trials=8, seed=2, device="cpu")])
    assert abs(finite_size_critical_load(curve) - AGS_CRITICAL_LOAD) <= 0.01


def test_other_networks_capacity_tables():
    modern = capacity_curve("modern", 64, [10.0], n_trials=1, flip_fraction=0.1, seed=0, device="cpu")
    assert modern.fraction_retrieved.iloc[0] == 1.0 and modern.n_patterns.iloc[0] == 640
    projector = capacity_curve("pseudoinverse", 100, [0.5], n_trials=1, seed=0, device="cpu")
    assert projector.fraction_retrieved.iloc[0] == 1.0
    sequence = capacity_curve("sequence", 300, [0.05, 0.6], n_trials=1, seed=0, device="cpu")
    assert sequence.fraction_retrieved.tolist()[0] == 1.0 and sequence.fraction_retrieved.tolist()[1] < 0.5


def test_capacity_curve_is_reproducible_and_independent_of_grouping(monkeypatch):
    first = capacity_curve("hebbian", 120, [0.1, 0.16], n_trials=3, flip_fraction=0.1, seed=5, device="cpu")
    pd.testing.assert_frame_equal(first, capacity_curve("hebbian", 120, [0.1, 0.16], n_trials=3,
                                                        flip_fraction=0.1, seed=5, device="cpu"))
    # Trials run as one batch; patterns and cues depend on the trial's own seed only.
    monkeypatch.setattr("spikefield.memory.capacity._group_size", lambda n_neurons, n_trials: 1)
    alone = capacity_curve("hebbian", 120, [0.1, 0.16], n_trials=3, flip_fraction=0.1, seed=5, device="cpu")
    pd.testing.assert_frame_equal(first[first.trial == 0], alone[alone.trial == 0])


def test_critical_load_interpolates_and_reports_no_crossing():
    curve = pd.DataFrame({"load": [0.1, 0.1, 0.2, 0.2, 0.3], "fraction_retrieved": [1.0, 0.8, 0.6, 0.6, 0.0]})
    assert critical_load(curve) == pytest.approx(0.2 + 0.1 * (0.1 / 0.6))
    assert np.isnan(critical_load(curve.assign(fraction_retrieved=1.0)))


def test_finite_size_crossing_is_found_between_sizes():
    loads = np.array([0.10, 0.14, 0.18])
    small = pd.DataFrame({"n_neurons": 500, "load": loads, "fraction_retrieved": [0.9, 0.7, 0.4]})
    large = pd.DataFrame({"n_neurons": 1000, "load": loads, "fraction_retrieved": [1.0, 0.7, 0.2]})
    assert finite_size_critical_load(pd.concat([small, large])) == pytest.approx(0.14)
    with pytest.raises(ValidationError, match=r"at least two network sizes.*\[500\]"):
        finite_size_critical_load(small)


def test_finite_size_crossing_ignores_loads_where_both_curves_saturate():
    # Both sizes retrieve everything at low loads and nothing at high ones: equal values there
    # are not crossings; the true crossing is between 0.15 and 0.20.
    loads = np.array([0.05, 0.10, 0.15, 0.20, 0.25])
    small = pd.DataFrame({"n_neurons": 500, "load": loads, "fraction_retrieved": [1.0, 1.0, 0.9, 0.3, 0.0]})
    large = pd.DataFrame({"n_neurons": 1000, "load": loads, "fraction_retrieved": [1.0, 1.0, 1.0, 0.2, 0.0]})
    assert finite_size_critical_load(pd.concat([small, large])) == pytest.approx(0.15 + 0.05 * 0.1 / 0.2)
    never = small.assign(fraction_retrieved=[1.0, 1.0, 0.9, 0.1, 0.0])  # below the large curve, or equal
    assert np.isnan(finite_size_critical_load(pd.concat([never, large])))


@pytest.mark.parametrize("kwargs, match", [
    ({"network": "hopfield"}, r"network must be one of.*got 'hopfield'"),
    ({"loads": [-0.1]}, r"loads must be a non-empty 1-D sequence of positive numbers"),
    ({"loads": []}, r"loads must be a non-empty"),
    ({"n_trials": 0}, r"n_trials must be a positive integer; got 0"),
    ({"flip_fraction": 1.5}, r"flip_fraction must lie in \[0, 1\]; got 1.5"),
    ({"criterion": 0}, r"criterion must lie in \(0, 1\]; got 0"),
    ({"mode": "random"}, r"mode must be one of \['async', 'sync'\]"),
])
def test_capacity_curve_errors(kwargs, match):
    with pytest.raises(ValidationError, match=match):
        capacity_curve(**{"n_neurons": 20, "loads": [0.1], **kwargs})


# ---------------------------------------------------------------- pruning
def test_prune_keeps_the_requested_number_of_synapses(rng):
    A = rng.normal(size=(50, 50))
    J = A + A.T  # no exact zeros off the diagonal, so kept synapses can be counted
    J[np.diag_indices(50)] = 0.3
    for method in ("magnitude", "random"):
        pruned = prune(J, 0.2, method, seed=0)
        np.testing.assert_array_equal(pruned, pruned.T)
        np.testing.assert_array_equal(np.diag(pruned), 0.3)
        upper = pruned[np.triu_indices(50, 1)]
        assert np.count_nonzero(upper) == round(0.2 * 50 * 49 / 2)
    kept = np.abs(prune(J, 0.2, "magnitude", seed=0)[np.triu_indices(50, 1)])
    dropped = np.abs(J[np.triu_indices(50, 1)])[kept == 0]
    assert kept[kept > 0].min() >= dropped.max()
    np.testing.assert_array_equal(prune(J, 1.0), J)
    # Hebbian couplings are multiples of 1/N: ties at the threshold are broken at random, seeded.
    hebbian = Hopfield(rng.choice([-1, 1], size=(10, 50)), device="cpu").J_
    np.testing.assert_array_equal(prune(hebbian, 0.3, seed=4), prune(hebbian, 0.3, seed=4))
    assert not np.array_equal(prune(hebbian, 0.3, seed=4), prune(hebbian, 0.3, seed=5))
    asymmetric = rng.normal(size=(6, 6))
    assert np.count_nonzero(prune(asymmetric, 0.5, "random", seed=1) - np.diag(np.diag(asymmetric))) == 15


def test_magnitude_pruning_retrieves_better_than_random_pruning():
    curve = pruning_curve(300, 0.05, fractions_kept=[1.0, 0.15], n_trials=1, seed=0, device="cpu")
    by = curve.set_index(["method", "fraction_kept"]).mean_overlap
    assert by["magnitude", 1.0] == by["random", 1.0] and curve.fraction_retrieved.max() == 1.0
    assert by["magnitude", 0.15] > by["random", 0.15] + 0.05
    ax = plot_pruning(curve)
    assert ax.get_xlabel() == "fraction of synapses kept"


@pytest.mark.parametrize("call, match", [
    (lambda: prune(np.ones((2, 3)), 0.5), r"couplings must be a finite square \(N, N\) array; got shape \(2, 3\)"),
    (lambda: prune(np.ones((3, 3)), 2.0), r"fraction_kept must lie in \[0, 1\]; got 2.0"),
    (lambda: prune(np.ones((3, 3)), 0.5, "largest"), r"method must be one of \['magnitude', 'random'\]"),
    (lambda: pruning_curve(20, methods=["magnitud"]), r"Did you mean 'magnitude'"),
    (lambda: pruning_curve(20, load=-0.1), r"load must be a finite non-negative number; got -0.1"),
    (lambda: pruning_curve(20, load="many"), r"load must be a non-negative number; got 'many'"),
    (lambda: pruning_curve(20, load=0), r"load must be > 0"),
    (lambda: plot_pruning(pd.DataFrame({"method": []}), value="x"), r"value must be a column of curve"),
])
def test_pruning_errors(call, match):
    with pytest.raises(ValidationError, match=match):
        call()


# ---------------------------------------------------------------- attractors
def brute_force_attractors(h: np.ndarray, J: np.ndarray) -> dict[frozenset, int]:
    """Independent reference: iterate every state of a small network until it repeats."""
    basins: dict[frozenset, int] = {}
    for start in itertools.product([-1, 1], repeat=h.size):
        seen, state = [], np.array(start)
        while tuple(state) not in seen:
            seen.append(tuple(state))
            field = h + J @ state
            state = np.where(field > 0, 1, np.where(field < 0, -1, state))
        cycle = frozenset(seen[seen.index(tuple(state)):])
        basins[cycle] = basins.get(cycle, 0) + 1
    return basins


def test_attractors_match_exhaustive_search_on_a_small_asymmetric_network(rng):
    n_neurons = 8
    h, J = rng.normal(0, 0.3, n_neurons), rng.normal(0, 1, (n_neurons, n_neurons))
    states = np.array(list(itertools.product([-1, 1], repeat=n_neurons)))
    table = attractors((h, J), starts=states, max_period=2 ** n_neurons, max_steps=600, device="cpu")
    expected = brute_force_attractors(h, J)
    found = {frozenset(map(tuple, row.states)): row.basin_size for row in table.itertuples()}
    assert found == expected
    assert table.basin_fraction.sum() == pytest.approx(1.0) and table.attrs["n_unresolved"] == 0
    assert list(table.basin_size) == sorted(table.basin_size, reverse=True)


def test_stored_patterns_and_their_mirrors_are_fixed_points(rng):
    stored = rng.choice([-1, 1], size=(3, 120))
    table = attractors(Hopfield(stored, device="cpu"), n_starts=300, seed=0, patterns=stored,
                       pattern_labels=["a", "b", "c"], mode="async")
    assert (table.period == 1).all()
    strong = table[table.best_overlap.abs() > 0.99]
    assert sorted(zip(strong.best_pattern, np.sign(strong.best_overlap), strict=True)) == [
        ("a", -1), ("a", 1), ("b", -1), ("b", 1), ("c", -1), ("c", 1)]
    fig = plot_attractors(table, top=4)
    assert len(fig.axes) == 3  # basins, overlaps, colour bar


def test_a_stored_cycle_is_found_with_its_pattern_sequence(rng):
    sequence = rng.choice([-1, 1], size=(4, 200))
    net = SequenceHopfield(sequence, cyclic=True, device="cpu")
    starts = np.concatenate([corrupt(sequence, 0.15, seed=s) for s in range(5)])
    table = attractors(net, starts=starts, patterns=sequence, device="cpu")
    assert len(table) == 1 and table.period[0] == 4 and table.basin_fraction[0] == 1.0
    steps = table.pattern_sequence[0]
    assert steps in ([0, 1, 2, 3], [1, 2, 3, 0], [2, 3, 0, 1], [3, 0, 1, 2])
    np.testing.assert_allclose(np.max(table.overlaps[0], axis=1), 1.0)


def test_unresolved_runs_warn():
    sequence = np.random.default_rng(0).choice([-1, 1], size=(12, 200))
    net = SequenceHopfield(sequence, cyclic=True, device="cpu")
    with pytest.warns(ConvergenceWarning, match=r"5 of 5 runs reached neither.*period <= 3"):
        table = attractors(net, starts=sequence[:5], max_period=3, device="cpu")
    assert table.empty and table.attrs["n_unresolved"] == 5


def test_pattern_overlaps_use_correlation_for_rate_vectors(rng):
    states = rng.choice([-1, 1], size=(5, 30))
    rates = rng.gamma(2.0, 3.0, size=(4, 30))
    expected = np.corrcoef(np.vstack([states, rates]))[:5, 5:]
    np.testing.assert_allclose(pattern_overlaps(states, rates), expected, atol=1e-12)
    assert np.isnan(pattern_overlaps(-np.ones((1, 30)), rates)).all()  # the silent state has no correlation
    np.testing.assert_allclose(pattern_overlaps(states, states > 0), states @ states.T / 30)


def test_fitted_place_cell_network_holds_a_forward_sequence():
    """Place cells with forward couplings: a cue at the track start makes the network sweep ahead.

    Uses the simulation's ground-truth spin couplings (fitting a KineticIsing takes ~1 min on
    two cores; docs/memory.md does that). Positions are the cells' field centres.
    """
    sim = sf.simulate.place_cells(n_cells=80, run_duration=5, coupling_strength=1.0, seed=3)
    has_field = np.isfinite(sim.field_centers)
    J = sim.couplings
    h = np.full(80, -1.0) + J.sum(axis=1)  # a silent background; couplings as in the 0/1 model
    cue = np.where(has_field & (sim.field_centers < 30), 1, -1)
    trajectory = SequenceHopfield.from_kinetic_ising((h, J), device="cpu").recall(cue, steps=6)[0]
    centres = [np.nanmean(sim.field_centers[s > 0]) for s in trajectory]
    assert np.all(np.diff(centres) > 0), centres
    table = attractors((h, J), n_starts=200, seed=0, start_activity=0.1, device="cpu")
    assert table.basin_fraction.sum() == pytest.approx(1.0)


@pytest.mark.parametrize("call, match", [
    (lambda: attractors(np.eye(3)), r"model must be a fitted model with h_ and J_"),
    (lambda: attractors((np.zeros(3), np.eye(3)), starts=np.ones((2, 4))), r"starts must have 3 columns.*\(2, 4\)"),
    (lambda: attractors((np.zeros(3), np.eye(3)), patterns=np.ones((2, 4))),
     r"patterns must be \(K, N\) with N = 3 neurons.*\(2, 4\)"),
    (lambda: attractors((np.zeros(3), np.eye(3)), patterns=np.ones((2, 3)), pattern_labels=["x"]),
     r"pattern_labels must have 2 entries"),
    (lambda: attractors((np.zeros(3), np.eye(3)), pattern_labels=["x"]), r"pass patterns too"),
    (lambda: attractors((np.zeros(3), np.eye(3)), patterns=np.full((1, 3), np.nan)), r"patterns must be finite"),
    (lambda: attractors((np.zeros(3), np.eye(3)), n_starts=0), r"n_starts must be a positive integer; got 0"),
    (lambda: attractors((np.zeros(3), np.eye(3)), start_activity=2), r"start_activity must lie in \[0, 1\]"),
    (lambda: attractors((np.zeros(3), np.full((3, 3), np.inf))), r"h and J must be finite"),
    (lambda: plot_attractors(pd.DataFrame({"x": [1]})), r"table must come from attractors\(\)"),
])
def test_attractor_errors(call, match):
    with pytest.raises(ValidationError, match=match):
        call()


def test_plot_capacity_draws_one_line_per_network():
    curve = pd.concat([capacity_curve("hebbian", 60, [0.05, 0.3], n_trials=1, seed=0, device="cpu"),
                       capacity_curve("modern", 60, [0.05, 0.3], n_trials=1, seed=0, device="cpu")])
    ax = plot_capacity(curve)
    assert len(ax.get_lines()) >= 3  # two curves and the α_c reference
