"""Place-field detection, autocorrelogram and grid score (spikefield.spatial)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

import spikefield as sf
from spikefield.errors import ValidationError
from spikefield.spatial import autocorrelogram, grid_score, place_fields


def _hexagonal(n: int = 40, spacing: float = 12.0, angle: float = 0.0) -> np.ndarray:
    x, y = np.meshgrid(np.arange(n, dtype=float), np.arange(n, dtype=float), indexing="ij")
    k = 4 * np.pi / (np.sqrt(3) * spacing)
    return sum(np.cos(k * (np.cos(a) * x + np.sin(a) * y)) for a in angle + np.array([0, np.pi / 3, 2 * np.pi / 3]))


@pytest.fixture(scope="module")
def sim():
    return sf.simulate.place_cells(n_cells=60, run_duration=300, seed=21)


def test_field_centres_within_one_bin_for_90_percent_of_place_cells(sim):
    bin_size = 5.0
    maps = sf.spatial.rate_maps(sim.recording, bin_size, smooth=bin_size)
    fields = place_fields(maps)
    strongest = fields[fields["field"] == 0].set_index("unit_index")
    has_field = np.flatnonzero(np.isfinite(sim.field_centers))
    found = strongest.reindex(has_field)["center"].to_numpy()
    error = np.abs(found - sim.field_centers[has_field])
    assert np.mean(error <= bin_size) >= 0.9  # NaN (missed field) counts as a failure
    # Non-place cells fire at baseline only: no field above 1 Hz.
    assert set(strongest.index) <= set(has_field)
    # Field extent covers the true centre and has a plausible size (field width 8 cm s.d.).
    rows = strongest.loc[has_field]
    true_centres = sim.field_centers[has_field]
    assert np.mean((rows["start"] <= true_centres) & (rows["stop"] >= true_centres)) > 0.9
    assert rows["size"].median() == pytest.approx(2 * 8.0 * np.sqrt(2 * np.log(5)), rel=0.35)


def test_place_fields_two_fields_size_limits_and_2d():
    edges = (np.arange(0, 101, 5.0),)
    centres = 0.5 * (edges[0][1:] + edges[0][:-1])
    rate = 10 * np.exp(-0.5 * ((centres - 25) / 5) ** 2) + 6 * np.exp(-0.5 * ((centres - 75) / 5) ** 2)
    maps = sf.spatial.RateMaps(rate[None], rate[None], np.ones(20), edges, "cm", np.array(["u"]))
    fields = place_fields(maps)
    assert fields["center"].tolist() == [27.5, 77.5] or fields["center"].tolist() == [22.5, 72.5]
    assert fields["field"].tolist() == [0, 1] and fields["peak_rate_hz"].iloc[0] > fields["peak_rate_hz"].iloc[1]
    assert len(place_fields(maps, min_peak_rate=7.0)) == 1
    assert len(place_fields(maps, max_size=5.0)) == 0
    # 2-D: one Gaussian bump.
    x, y = np.meshgrid(np.arange(20) + 0.5, np.arange(20) + 0.5, indexing="ij")
    bump = 8 * np.exp(-0.5 * ((x - 5.5) ** 2 + (y - 12.5) ** 2) / 4)
    maps2 = sf.spatial.RateMaps(bump[None], bump[None], np.ones((20, 20)), (np.arange(21.0), np.arange(21.0)),
                                "cm", np.array([0]))
    f2 = place_fields(maps2)
    assert len(f2) == 1 and (f2["center_x"].iloc[0], f2["center_y"].iloc[0]) == (5.5, 12.5)
    assert f2["center_of_mass_x"].iloc[0] == pytest.approx(5.5, abs=0.05)


def test_autocorrelogram_matches_brute_force_pearson():
    rng = np.random.default_rng(3)
    rate = gaussian_filter(rng.random((12, 10)), 1.0)
    rate[2, 3] = np.nan
    acorr = autocorrelogram(rate, min_overlap=5)
    assert acorr.shape == (23, 19)
    assert acorr[11, 9] == pytest.approx(1.0)
    for dx, dy in [(1, 0), (0, 2), (-3, 1), (4, -2)]:
        a = rate[max(dx, 0):12 + min(dx, 0), max(dy, 0):10 + min(dy, 0)]
        b = rate[max(-dx, 0):12 + min(-dx, 0), max(-dy, 0):10 + min(-dy, 0)]
        ok = np.isfinite(a) & np.isfinite(b)
        expected = np.corrcoef(a[ok], b[ok])[0, 1]
        assert acorr[11 + dx, 9 + dy] == pytest.approx(expected, abs=1e-9) or \
            acorr[11 - dx, 9 - dy] == pytest.approx(expected, abs=1e-9)


def test_grid_score_separates_hexagonal_from_square_and_noise():
    rng = np.random.default_rng(0)
    hexagonal = grid_score(np.stack([_hexagonal(angle=a) for a in (0.0, 0.3)]))
    x, y = np.meshgrid(np.arange(40.0), np.arange(40.0), indexing="ij")
    square = grid_score(np.cos(2 * np.pi * x / 12) + np.cos(2 * np.pi * y / 12))
    noise = grid_score(gaussian_filter(rng.random((4, 40, 40)), (0, 2, 2)))
    assert np.all(hexagonal > 0.8)
    assert square[0] < 0.0  # 90-degree symmetry, not 60
    assert np.nanmax(noise) < 0.5 < hexagonal.min()


@pytest.mark.parametrize("call, match", [
    (lambda: place_fields(np.ones((2, 5))), "maps must be a RateMaps"),
    (lambda: grid_score(np.ones(5)), "maps must be 2-D rate maps"),
    (lambda: autocorrelogram(np.ones(5)), "rate_map must be 2-D"),
])
def test_field_functions_reject_bad_inputs(call, match):
    with pytest.raises(ValidationError, match=match):
        call()


def test_place_fields_rejects_bad_threshold(sim):
    maps = sf.spatial.rate_maps(sim.recording, 5.0)
    with pytest.raises(ValidationError, match="threshold must lie in"):
        place_fields(maps, threshold=1.5)


def test_real_grid_cells_have_high_grid_scores(mec_grid_cells):
    rec = sf.read(mec_grid_cells)
    module = rec.units["module"].to_numpy(dtype=float)
    grid_units = np.flatnonzero(np.isfinite(module))[:6]
    other_units = np.flatnonzero(~np.isfinite(module))[:6]
    subset = rec.select(units=rec.unit_ids[np.r_[grid_units, other_units]])  # keeps recording order
    in_module = np.isfinite(subset.units["module"].to_numpy(dtype=float))
    maps = sf.spatial.rate_maps(subset, 6.0, speed_threshold=5.0, smooth=6.0)
    scores = grid_score(maps)
    # README: 22 of the 25 cells with a module number exceed a gridness of 0.3.
    assert np.sum(scores[in_module] > 0.3) >= 5
    assert np.nanmedian(scores[in_module]) > np.nanmedian(scores[~in_module]) + 0.3
