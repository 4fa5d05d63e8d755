"""Optional report sections backed by the analysis packages (spatial, thermo, memory).

Each imports its package inside ``compute`` so a missing or broken package turns into a
"section failed: <reason>" entry in the report instead of an import error for the whole CLI.
"""

from __future__ import annotations

import math

import numpy as np

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
    table = spatial.spatial_information(rec, bin_size, n_shuffles=100, seed=ctx.config.seed,
                                        speed_threshold=speed_threshold, smooth=bin_size,
                                        linearize=True if linear else None)
    p = table["p_value"].to_numpy(float)
    values = {"position_unit": maps.unit, "bin_size": bin_size, "speed_threshold": speed_threshold,
              "n_units": int(maps.n_units), "n_informative_p01": int(np.sum(p < 0.01)),
              "median_bits_per_spike": float(np.nanmedian(table["bits_per_spike"])),
              "linearized": bool(linear)}
    arrays = {"maps": maps.maps.reshape(maps.n_units, -1), "centers": maps.bin_centers[0],
              "bits_per_spike": table["bits_per_spike"].to_numpy(float), "p_value": p}
    truth = ctx.ground_truth.get("field_centers")
    peaks = np.asarray(maps.peak_position(), dtype=float).reshape(maps.n_units, -1)[:, 0]
    if truth is not None and not linear:
        truth = np.asarray(truth, dtype=float)
        has = np.isfinite(truth) & np.isfinite(peaks)
        if has.any():
            values["fraction_fields_within_one_bin"] = float(np.mean(np.abs(peaks[has] - truth[has]) <= bin_size))
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
        table.append(("place-field peaks within one bin of the truth",
                      f"{100 * v['fraction_fields_within_one_bin']:.0f}% of cells with a field"))
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
def _memory_compute(ctx: RunContext) -> SectionResult:
    import spikefield.memory as memory

    if not hasattr(memory, "attractors"):
        raise SectionSkipped("spikefield.memory.attractors is not available in this version")
    found = memory.attractors(ctx.model, n_starts=512, seed=ctx.config.seed)
    frame = found if hasattr(found, "columns") else getattr(found, "table", None)
    if frame is None:
        raise TypeError(f"memory.attractors returned {type(found).__name__}, expected a table")
    values = {"n_attractors": int(len(frame)), "columns": [str(c) for c in frame.columns]}
    arrays = {}
    for column in ("basin_size", "period"):
        if column in frame.columns:
            arrays[column] = frame[column].to_numpy(float)
    return SectionResult(values=values, arrays=arrays)


def _memory_render(result: SectionResult) -> SectionOutput:
    v, a = result.values, result.arrays
    figures = []
    if "basin_size" in a and a["basin_size"].size:
        fig, ax = new_figure(6.0, 3.2)
        basins = np.sort(a["basin_size"])[::-1]
        ax.bar(np.arange(basins.size), basins, color="#117733")
        ax.set_xlabel("attractor (sorted by basin size)")
        ax.set_ylabel("basin size (fraction of starts)")
        figures.append(FigureSpec("attractor_basins", fig,
                                  f"Basin sizes of the {v['n_attractors']} fixed points and cycles reached by the "
                                  "fitted network's zero-temperature dynamics from random starting states."))
    table = [("attractors found (fixed points and cycles)", str(v["n_attractors"]))]
    return SectionOutput(figures=figures, table=table)


ANALYSIS_SECTIONS = (
    Section("spatial", "Spatial coding", 70, _spatial_compute, _spatial_render, optional=True),
    Section("thermo", "Entropy production", 80, _thermo_compute, _thermo_render, optional=True),
    Section("memory", "Attractors of the fitted network", 90, _memory_compute, _memory_render, optional=True),
)

for _section in ANALYSIS_SECTIONS:
    register_section(_section, replace=True)
