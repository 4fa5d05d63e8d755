"""Report internals: validation kernels, section registry, failure reporting, page assembly."""

from __future__ import annotations

import numpy as np
import pytest

import spikefield as sf
from spikefield.config import RunConfig
from spikefield.errors import ValidationError
from spikefield.report import (
    RunContext,
    Section,
    SectionOutput,
    SectionResult,
    compute_sections,
    register_section,
    sections,
    unregister_section,
)
from spikefield.report.core_sections import CORE_SECTIONS, unit_order
from spikefield.report.validation import (
    field_peaks,
    independent_log_likelihood,
    per_neuron_log_likelihood,
    spin_moments,
)
from spikefield.runs import execute_run


# ---------------------------------------------------------------------- kernels vs brute force
def _two_segment_raster(rng, n_bins=400, n_units=4):
    spikes = rng.random((n_bins, n_units)) < 0.3
    return sf.Raster(spikes, 0.01, segments=[[0, 150], [150, n_bins]]), spikes


def test_per_neuron_log_likelihood_matches_brute_force(rng):
    raster, spikes = _two_segment_raster(rng)
    s = np.where(spikes, 1.0, -1.0)
    h = rng.normal(0, 0.5, 4)
    J = rng.normal(0, 0.3, (4, 4))
    expected = np.zeros(4)
    count = 0
    for a, b in ((0, 150), (150, 400)):  # pairs never cross the segment boundary
        for t in range(a + 1, b):
            u = h + J @ s[t - 1]
            expected += s[t] * u - np.log(2 * np.cosh(u))
            count += 1
    np.testing.assert_allclose(per_neuron_log_likelihood(raster, h, J), expected / count, rtol=1e-12)


def test_independent_log_likelihood_is_binary_entropy_at_own_rates(rng):
    raster, _ = _two_segment_raster(rng, n_bins=2000)
    targets = np.concatenate([raster.to_spins(np.float64)[1:150], raster.to_spins(np.float64)[151:]])
    m = targets.mean(axis=0)
    p = (1 + m) / 2
    entropy = -(p * np.log(p) + (1 - p) * np.log(1 - p))
    np.testing.assert_allclose(independent_log_likelihood(raster, m), -entropy, rtol=1e-10)


def test_spin_moments_match_numpy(rng):
    raster, spikes = _two_segment_raster(rng)
    s = np.where(spikes, 1.0, -1.0)
    out = spin_moments(raster)
    m = s.mean(axis=0)
    np.testing.assert_allclose(out["m"], m)
    np.testing.assert_allclose(out["C"], np.cov(s.T, bias=True), atol=1e-12)
    pairs = [(t, t - 1) for t in range(1, 400) if t != 150]
    D = np.mean([np.outer(s[t], s[u]) for t, u in pairs], axis=0) - np.outer(m, m)
    np.testing.assert_allclose(out["D"], D, atol=1e-12)
    # Arrays of spins and of 0/1 spikes give the same moments (one segment).
    np.testing.assert_allclose(spin_moments(s)["C"], spin_moments(spikes)["C"])


def test_field_peaks_find_simulated_fields():
    sim = sf.simulate.place_cells(20, run_duration=120, fraction_place=1.0, seed=2)
    peaks = field_peaks(sim.recording)
    assert peaks is not None
    # Coarse 5 cm bins: the peak lies within two bins of the true centre for nearly every cell.
    assert np.mean(np.abs(peaks - sim.field_centers) <= 10.0) >= 0.9
    order, key = unit_order(sim.recording)
    assert key.startswith("place-field peak")
    assert np.all(np.diff(sim.field_centers[order][:15]) > -10.0)


def test_unit_order_without_position_uses_area_then_rate():
    rec = sf.Recording([[0.1, 0.2, 0.3], [0.5], [0.1, 0.9]], unit_ids=["a", "b", "c"],
                       units=__import__("pandas").DataFrame({"area": ["CA3", "CA1", "CA3"]}))
    order, key = unit_order(rec)
    assert key.startswith("brain area")
    assert [rec.unit_ids[i] for i in order] == ["b", "a", "c"]


# ---------------------------------------------------------------------- registry
def test_core_sections_are_registered_in_order():
    names = [s.name for s in sections()]
    assert names[:6] == [s.name for s in CORE_SECTIONS]
    assert {"spatial", "thermo", "memory"} <= set(names)


@pytest.mark.parametrize(("section", "message"), [
    ("not a section", r"expected a Section, got str"),
    (Section("summary", "again", 1, lambda c: SectionResult(), lambda r: SectionOutput()),
     r"'summary' is already registered"),
])
def test_register_section_errors(section, message):
    with pytest.raises(ValidationError, match=message):
        register_section(section)


class _TinyModel:
    """A fitted-model stand-in with known parameters (the report only needs h_, J_ and scoring)."""

    def __init__(self, n):
        self.h_, self.J_ = np.full(n, -0.8), np.zeros((n, n))
        self.converged_, self.n_iter_ = True, 0

    def fit(self, raster):
        return self

    def log_likelihood(self, raster):
        return float(per_neuron_log_likelihood(raster, self.h_, self.J_).mean())

    null_log_likelihood = log_likelihood

    def sample(self, n_steps, seed=None):
        return sf.simulate.kinetic_ising(self.h_, self.J_, n_steps, seed=seed)


@pytest.fixture
def tiny_context():
    sim = sf.simulate.place_cells(6, run_duration=30, seed=1)
    rec = sim.recording.select(epoch="run")
    raster = rec.bin(0.01)
    train, test = raster.split(0.8)
    config = RunConfig(n_sample_bins=500, analyses=[])
    return RunContext(rec, sim.recording, raster, train, test, _TinyModel(6), config)


@pytest.fixture
def failing_section():
    def explode(ctx):
        raise RuntimeError("the analysis blew up\nsecond line")

    section = register_section(Section("exploding", "Exploding analysis", 95, explode,
                                       lambda r: SectionOutput(), optional=True))
    yield section
    unregister_section("exploding")


def test_optional_failure_is_recorded_with_reason(tiny_context, failing_section):
    records = compute_sections(tiny_context, include=["exploding"])
    by_name = {r.name: r for r in records}
    assert by_name["exploding"].status == "failed"
    assert by_name["exploding"].reason == "RuntimeError: the analysis blew up"
    assert all(by_name[s.name].status == "ok" for s in CORE_SECTIONS)
    assert "thermo" not in by_name  # not included


def test_strict_mode_reraises_optional_failures(tiny_context, failing_section):
    with pytest.raises(RuntimeError, match="blew up"):
        compute_sections(tiny_context, include=["exploding"], strict=True)


def test_core_failure_stops_the_run(tiny_context):
    def broken(ctx):
        raise ValueError("core broke")

    original = [s for s in sections() if s.name == "raster"][0]
    register_section(Section("raster", "Raster", 20, broken, original.render), replace=True)
    try:
        with pytest.raises(ValueError, match="core broke"):
            compute_sections(tiny_context)
    finally:
        register_section(original, replace=True)


def test_unknown_analysis_name_is_rejected(tmp_path, monkeypatch):
    monkeypatch.setattr("spikefield.runs._make_model", lambda config: _TinyModel(5))
    sim = sf.simulate.place_cells(5, run_duration=30, seed=4)
    with pytest.raises(ValidationError, match=r"analyses: unknown section 'spatail'\. Did you mean 'spatial'\?"):
        execute_run(RunConfig(epoch="run", analyses=["spatail"]), tmp_path / "run", recording=sim.recording,
                    progress=False)
    assert not list(tmp_path.iterdir())


@pytest.fixture(scope="module")
def computed_records():
    """All sections (core and every optional one) computed once on a small simulated run."""
    sim = sf.simulate.place_cells(6, run_duration=60, rest_duration=20, seed=1)
    rec = sim.recording.select(epoch="run")
    raster = rec.bin(0.01)
    train, test = raster.split(0.8)
    ctx = RunContext(rec, sim.recording, raster, train, test, _TinyModel(6), RunConfig(n_sample_bins=500))
    return compute_sections(ctx, strict=True)


def test_every_figure_has_labelled_axes_and_a_caption(computed_records):
    records = computed_records
    assert {r.name for r in records} >= {s.name for s in sections()}
    seen = 0
    for record in records:
        assert record.status == "ok", (record.name, record.reason)
        section = [s for s in sections() if s.name == record.name][0]
        for spec in section.render(record.result).figures:
            seen += 1
            assert spec.caption.endswith(".") and len(spec.caption.split()) >= 8, spec.caption
            for ax in spec.figure.axes:
                if ax.get_label() == "<colorbar>":
                    assert ax.get_ylabel(), f"{spec.name}: colour bar without label"
                    continue
                # A panel sharing its x axis with a labelled one (stacked plots) needs no own x label.
                shared = ax.get_shared_x_axes().get_siblings(ax)
                assert any(other.get_xlabel() for other in shared), f"{spec.name}: unlabelled x axis"
                assert ax.get_ylabel(), f"{spec.name}: unlabelled y axis"
    assert seen >= 6


def test_memory_section_renders_when_no_attractor_was_resolved():
    # Every start can end in a long transient or cycle; the section must still render (no IndexError).
    from spikefield.report import get_section

    empty = np.zeros(0)
    result = SectionResult(
        values={"n_attractors": 0, "n_fixed_points": 0, "n_cycles": 0, "n_starts": 512, "n_unresolved": 512,
                "warnings": []},
        arrays={"basin_fraction": empty, "period": empty, "mean_activity": empty})
    output = get_section("memory").render(result)
    assert ("starts not settled within the step limit", "512") in output.table
    assert not any(label == "largest basin" for label, _ in output.table)
