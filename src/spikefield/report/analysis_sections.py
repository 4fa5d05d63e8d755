"""Optional report sections backed by the analysis packages (spatial, thermo, memory).

Each imports its package inside ``compute`` so a missing or broken package turns into a
"section failed: <reason>" entry in the report instead of an import error for the whole CLI.
"""

from __future__ import annotations

import math

import numpy as np
from matplotlib.ticker import MaxNLocator

from .figures import new_figure
from .registry import FigureSpec, RunContext, Section, SectionOutput, SectionResult, SectionSkipped, register_section

_N_SPATIAL_BINS = 40


def _fmt(value: float, digits: int = 3) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.{digits}g}"


# ---------------------------------------------------------------------- spatial coding
def _spatial_compute(ctx: RunContext) -> SectionResult:
    rec = ctx.recording
    pos = rec.position
    if pos is None or pos.valid_mask().sum() < 100:
        raise SectionSkipped("the recording has no (tracked) position")
    import spikefield.spatial as spatial

    valid = pos.values[pos.valid_mask()]
    extent = float(np.max(np.ptp(valid, axis=0)))
    bin_size = extent / _N_SPATIAL_BINS
    # Speed threshold ~5 cm/s on a 2 m track, expressed in the position's own unit (px or cm).
    speed_threshold = extent / _N_SPATIAL_BINS
    linear = pos.n_dims > 1
    maps = spatial.rate_maps(rec, bin_size, speed_threshold=speed_threshold, smooth=bin_size,
                             linearize=True if linear else None)
    # Shuffles shift spikes by at least 20 s, or a quarter of a short recording.
    min_shift = min(20.0, rec.duration / 4)
    table = spatial.spatial_information(rec, bin_size, n_shuffles=100, seed=ctx.config.seed, min_shift=min_shift,
                                        speed_threshold=speed_threshold, smooth=bin_size,
                                        linearize=True if linear else None)
    p = table["p_value"].to_numpy(float)
    values = {"position_unit": maps.unit, "bin_size": bin_size, "speed_threshold": speed_threshold,
              "n_units": int(maps.n_units), "n_informative_p01": int(np.sum(p < 0.01)),
              "median_bits_per_spike": float(np.nanmedian(table["bits_per_spike"])),
              "linearized": bool(linear)}
    ctx.cache["rate_maps"] = (maps.maps.reshape(maps.n_units, -1), maps.bin_centers[0])
    arrays = {"maps": maps.maps.reshape(maps.n_units, -1), "centers": maps.bin_centers[0],
              "bits_per_spike": table["bits_per_spike"].to_numpy(float), "p_value": p}
    truth = ctx.truth("field_centers")
    peaks = np.asarray(maps.peak_position(), dtype=float).reshape(maps.n_units, -1)[:, 0]
    if truth is not None and not linear:
        has = np.isfinite(truth) & np.isfinite(peaks)
        if has.any():
            offset = peaks[has] - truth[has]
            values["fraction_fields_within_one_bin"] = float(np.mean(np.abs(offset) <= bin_size))
            values["median_field_offset"] = float(np.median(offset))
    if hasattr(spatial, "decode"):
        decoded = spatial.decode(rec, bin_size=bin_size, time_bin=0.25, n_folds=5)
        values["decoding_median_error"] = float(decoded.median_error)
    return SectionResult(values=values, arrays=arrays)


def _spatial_render(result: SectionResult) -> SectionOutput:
    v, a = result.values, result.arrays
    maps = a["maps"]
    peak = np.nanmax(np.where(np.isfinite(maps), maps, np.nan), axis=1, initial=0.0)
    normalised = maps / np.where(peak > 0, peak, 1.0)[:, None]
    order = np.argsort(np.nanargmax(np.nan_to_num(normalised, nan=-1.0), axis=1), kind="stable")
    centers = a["centers"]
    unit = v["position_unit"]
    fig, axes = new_figure(9.0, 3.8, ncols=2, width_ratios=[2, 1])
    image = axes[0].imshow(normalised[order], aspect="auto", cmap="viridis", interpolation="nearest",
                           extent=[centers[0] - v["bin_size"] / 2, centers[-1] + v["bin_size"] / 2,
                                   maps.shape[0] - 0.5, -0.5], vmin=0, vmax=1)
    axes[0].set_xlabel(f"{'linearised ' if v['linearized'] else ''}position ({unit})")
    axes[0].set_ylabel("unit (ordered by peak)")
    fig.colorbar(image, ax=axes[0], shrink=0.85).set_label("rate / peak rate")
    bits = a["bits_per_spike"]
    informative = a["p_value"] < 0.01
    axes[1].hist([bits[informative], bits[~informative]], bins=20, stacked=True,
                 color=["#4477aa", "#bbbbbb"], label=["p < 0.01", "p ≥ 0.01"])
    axes[1].set_xlabel("spatial information (bits/spike)")
    axes[1].set_ylabel("number of units")
    axes[1].legend(frameon=False, fontsize=8)
    caption = (f"Occupancy-normalised rate maps (left, each unit scaled to its peak, ordered by peak position) and "
               f"Skaggs spatial information with a 100-shift shuffle test (right): {v['n_informative_p01']} of "
               f"{v['n_units']} units are spatially informative at p < 0.01.")
    table = [("spatial bin / speed threshold", f"{v['bin_size']:.3g} {unit} / {v['speed_threshold']:.3g} {unit}/s"),
             ("spatially informative units (p < 0.01)", f"{v['n_informative_p01']} of {v['n_units']}"),
             ("median information", f"{_fmt(v['median_bits_per_spike'])} bits/spike")]
    if "fraction_fields_within_one_bin" in v:
        table.append(("rate-map peaks within one bin of the simulated field centre",
                      f"{100 * v['fraction_fields_within_one_bin']:.0f}% of cells with a field (median offset "
                      f"{v['median_field_offset']:+.1f} {unit}; couplings shift firing along the direction of travel)"))
    if "decoding_median_error" in v:
        table.append(("decoding median error (5-fold, contiguous)", f"{_fmt(v['decoding_median_error'])} {unit}"))
    return SectionOutput(figures=[FigureSpec("rate_maps", fig, caption)], table=table)


# ---------------------------------------------------------------------- entropy production
def _epoch_rasters(ctx: RunContext) -> dict[str, object]:
    """The fitted units binned in each named epoch of the recording (the fitted test block first)."""
    out: dict[str, object] = {"held-out test": ctx.test}
    keep = [str(u) for u in ctx.recording.unit_ids]
    units = ctx.full_recording.select(units=keep)
    for name in ctx.full_recording.epochs:
        out[name] = units.bin(ctx.raster.bin_size, epoch=name)
    return out


def _thermo_compute(ctx: RunContext) -> SectionResult:
    import spikefield.thermo as thermo

    names, per_bin, per_second, per_spike, stderr = [], [], [], [], []
    for name, raster in _epoch_rasters(ctx).items():
        ep = thermo.entropy_production(ctx.model, raster, method="model")

        def get(key: str, ep=ep) -> float:
            return float(ep[key] if isinstance(ep, dict) else getattr(ep, key))

        names.append(name)
        per_bin.append(get("ep_per_bin"))
        per_second.append(get("ep_per_second"))
        per_spike.append(get("ep_per_spike"))
        stderr.append(get("stderr"))
    values = {"epochs": names, "ep_per_bin": per_bin, "ep_per_second": per_second, "ep_per_spike": per_spike,
              "stderr_per_bin": stderr}
    return SectionResult(values=values)


def _thermo_render(result: SectionResult) -> SectionOutput:
    v = result.values
    fig, ax = new_figure(6.0, 3.4)
    x = np.arange(len(v["epochs"]))
    ax.bar(x, v["ep_per_bin"], yerr=np.nan_to_num(np.asarray(v["stderr_per_bin"], float)), capsize=4,
           color="#cc6677")
    ax.set_xticks(x, v["epochs"])
    ax.set_xlabel("epoch")
    ax.set_ylabel("entropy production (nats / bin)")
    caption = ("Model-based entropy production of the fitted kinetic Ising network (time irreversibility) per "
               "epoch, with block-bootstrap standard errors.")
    table = [(name, f"{_fmt(b)} ± {_fmt(s)} nats/bin = {_fmt(sec)} nats/s = {_fmt(sp)} nats/spike")
             for name, b, s, sec, sp in zip(v["epochs"], v["ep_per_bin"], v["stderr_per_bin"], v["ep_per_second"],
                                            v["ep_per_spike"], strict=True)]
    return SectionOutput(figures=[FigureSpec("entropy_production", fig, caption)], table=table)


# ---------------------------------------------------------------------- memory / attractors
def _place_patterns(ctx: RunContext) -> tuple[np.ndarray, np.ndarray] | None:
    """Population patterns along the track: unit i is +1 at position x when its rate there is at least
    half its peak (from the spatial section's rate maps), one pattern per spatial bin."""
    found = ctx.cache.get("rate_maps")
    if found is None:
        return None
    maps, centers = found
    peak = np.nanmax(np.where(np.isfinite(maps), maps, -np.inf), axis=1)
    active = np.nan_to_num(maps, nan=0.0) >= 0.5 * np.where(peak > 0, peak, np.inf)[:, None]
    return np.where(active.T, 1, -1).astype(np.int8), centers


def _memory_compute(ctx: RunContext) -> SectionResult:
    import warnings

    import spikefield.memory as memory

    patterns = _place_patterns(ctx)
    options = {} if patterns is None else {"patterns": patterns[0], "pattern_labels": list(patterns[1])}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = memory.attractors(ctx.model, n_starts=512, seed=ctx.config.seed, device="cpu", **options)
    values = {"n_attractors": int(len(table)), "n_fixed_points": int(np.sum(table["period"] == 1)),
              "n_cycles": int(np.sum(table["period"] > 1)), "n_starts": int(table.attrs.get("n_starts", 512)),
              "n_unresolved": int(table.attrs.get("n_unresolved", 0)),
              "warnings": sorted({str(w.message) for w in caught})}
    arrays = {"basin_fraction": table["basin_fraction"].to_numpy(float), "period": table["period"].to_numpy(float),
              "mean_activity": table["mean_activity"].to_numpy(float)}
    if "best_overlap" in table.columns:
        arrays["best_overlap"] = table["best_overlap"].to_numpy(float)
        arrays["best_pattern"] = np.asarray(table["best_pattern"], dtype=float)
        values["pattern_unit"] = ctx.recording.position.unit
    return SectionResult(values=values, arrays=arrays)


def _memory_render(result: SectionResult) -> SectionOutput:
    v, a = result.values, result.arrays
    shown = min(20, a["basin_fraction"].size)
    fig, ax = new_figure(7.0, 3.4)
    colours = np.where(a["period"][:shown] > 1, "#ee7733", "#117733")
    ax.bar(np.arange(shown), a["basin_fraction"][:shown], color=colours, width=0.8)
    ax.set_xlim(-0.7, max(shown, 5) - 0.3)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("attractor (largest basin first; green fixed point, orange cycle)")
    ax.set_ylabel("basin (fraction of random starts)")
    caption = (f"Basins of the {v['n_attractors']} fixed points and cycles that the fitted network's zero-temperature "
               f"parallel dynamics reaches from {v['n_starts']} random starting states (largest {shown} shown).")
    table = [("attractors (fixed points / cycles)", f"{v['n_attractors']} ({v['n_fixed_points']} / {v['n_cycles']})")]
    if shown:  # every run can end unresolved (long transients or cycles): then there is no basin to show
        table.append(("largest basin", f"{100 * a['basin_fraction'][0]:.0f}% of starts, mean activity "
                                       f"{a['mean_activity'][0]:.2f} (fraction of active units)"))
    if v["n_unresolved"]:
        table.append(("starts not settled within the step limit", str(v["n_unresolved"])))
    if "best_overlap" in a:
        # A silent state overlaps strongly with any sparse pattern, so only active attractors count here.
        active = np.flatnonzero(a["mean_activity"] > 0.02)
        if active.size:
            k = active[int(np.argmax(np.abs(a["best_overlap"][active])))]
            table.append(("best overlap of an active attractor with a place-cell pattern",
                          f"{a['best_overlap'][k]:+.2f} (pattern at {a['best_pattern'][k]:.0f} {v['pattern_unit']}, "
                          f"basin {100 * a['basin_fraction'][k]:.1f}%)"))
        else:
            table.append(("place-cell patterns", "every attractor is (nearly) silent: no stored place sequence"))
    return SectionOutput(figures=[FigureSpec("attractor_basins", fig, caption)], table=table)


ANALYSIS_SECTIONS = (
    Section("spatial", "Spatial coding", 70, _spatial_compute, _spatial_render, optional=True),
    Section("thermo", "Entropy production", 80, _thermo_compute, _thermo_render, optional=True),
    Section("memory", "Attractors of the fitted network", 90, _memory_compute, _memory_render, optional=True),
)

for _section in ANALYSIS_SECTIONS:
    register_section(_section, replace=True)
