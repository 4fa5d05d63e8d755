"""The report's core sections: recording summary, raster, rates, couplings, likelihood, moments."""

from __future__ import annotations

import math

import numpy as np

from .figures import heatmap, histogram, identity_scatter, new_figure
from .registry import FigureSpec, RunContext, Section, SectionOutput, SectionResult, register_section
from .validation import (
    field_peaks,
    independent_log_likelihood,
    per_neuron_log_likelihood,
    principal_axis,
    spin_moments,
)

__all__ = ["unit_order"]

_SNIPPET_SECONDS = 20.0


def _fmt(value, digits: int = 4) -> str:
    if isinstance(value, float):
        return "n/a" if not math.isfinite(value) else f"{value:.{digits}g}"
    return str(value)


def _correlation(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson r, NaN (not a warning) when either side is constant."""
    if x.size < 3 or x.std() == 0 or y.std() == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


def unit_order(recording) -> tuple[np.ndarray, str]:
    """Unit order for figures: by place-field peak when position exists, else by brain area, else
    by firing rate; returns (indices, a description of the key)."""
    peaks = field_peaks(recording)
    if peaks is not None and np.isfinite(peaks).sum() >= max(2, recording.n_units // 4):
        # Units without a peak go last, in their original order.
        key = np.where(np.isfinite(peaks), peaks, np.inf)
        return np.argsort(key, kind="stable"), "place-field peak (estimated from the recording)"
    units = recording.units
    rates = units["rate_hz"].to_numpy()
    if "area" in units.columns:
        frame = units.assign(_neg_rate=-rates).reset_index(drop=True)
        order = frame.sort_values(["area", "_neg_rate"], kind="stable").index.to_numpy()
        return order, "brain area, then firing rate"
    return np.argsort(-rates, kind="stable"), "firing rate (highest first)"


def _cached_order(ctx: RunContext) -> tuple[np.ndarray, str]:
    if "unit_order" not in ctx.cache:
        ctx.cache["unit_order"] = unit_order(ctx.recording)
    return ctx.cache["unit_order"]


# ---------------------------------------------------------------------- summary
def _summary_compute(ctx: RunContext) -> SectionResult:
    rec, raster = ctx.recording, ctx.raster
    rates = rec.units["rate_hz"].to_numpy()
    values = {
        "source": rec.source,
        "n_units": rec.n_units,
        "n_units_in_file": ctx.full_recording.n_units,
        "n_spikes": rec.n_spikes,
        "duration_s": rec.duration,
        "epoch": ctx.config.epoch or "whole recording",
        "bin_size_s": raster.bin_size,
        "n_bins": raster.n_bins,
        "n_train_bins": ctx.train.n_bins,
        "n_test_bins": ctx.test.n_bins,
        "n_segments": len(raster.segments),
        "rate_hz_min": float(np.min(rates)), "rate_hz_median": float(np.median(rates)),
        "rate_hz_max": float(np.max(rates)),
        "epochs": {k: float(np.sum(v[:, 1] - v[:, 0])) for k, v in ctx.full_recording.epochs.items()},
        "behaviour": [f"{k} ({ts.n_dims}-D, {ts.unit})" for k, ts in ctx.full_recording.series.items()],
        "simulated": bool(ctx.ground_truth),
    }
    return SectionResult(values=values)


def _summary_render(result: SectionResult) -> SectionOutput:
    v = result.values
    epochs = ", ".join(f"{k} {d:.1f} s" for k, d in v["epochs"].items()) or "none"
    rows = [
        ("source", v["source"] + (" (simulated, ground truth known)" if v["simulated"] else "")),
        ("units fitted / in file", f"{v['n_units']} / {v['n_units_in_file']}"),
        ("spikes", f"{v['n_spikes']:,}"),
        ("fitted epoch", f"{v['epoch']} ({v['duration_s']:.1f} s)"),
        ("epochs in file", epochs),
        ("behaviour", ", ".join(v["behaviour"]) or "none"),
        ("firing rate min / median / max", f"{v['rate_hz_min']:.3g} / {v['rate_hz_median']:.3g} / "
                                           f"{v['rate_hz_max']:.3g} Hz"),
        ("bins", f"{v['n_bins']:,} of {v['bin_size_s'] * 1e3:g} ms in {v['n_segments']} segment(s): "
                 f"{v['n_train_bins']:,} train, {v['n_test_bins']:,} held-out test (contiguous)"),
    ]
    return SectionOutput(table=rows)


# ---------------------------------------------------------------------- raster snippet
def _busiest_window(recording, seconds: float) -> tuple[float, float]:
    """The ``seconds``-long window (on a grid of half-windows) of the first support interval with the
    most spikes, so the snippet shows activity rather than, e.g., a silent start of the session."""
    start, stop = float(recording.support[0, 0]), float(recording.support[0, 1])
    if stop - start <= seconds:
        return start, stop
    times, _ = recording.spikes()
    starts = np.arange(start, stop - seconds + 1e-9, seconds / 2)
    counts = np.searchsorted(times, starts + seconds) - np.searchsorted(times, starts)
    best = float(starts[int(np.argmax(counts))])
    return best, best + seconds


def _raster_compute(ctx: RunContext) -> SectionResult:
    rec = ctx.recording
    order, key = _cached_order(ctx)
    t0, t1 = _busiest_window(rec, _SNIPPET_SECONDS)
    rank = np.empty(rec.n_units, dtype=np.int64)
    rank[order] = np.arange(rec.n_units)
    times, rows = [], []
    for k, train in enumerate(rec.spike_times):
        sel = train[(train >= t0) & (train < t1)]
        times.append(sel)
        rows.append(np.full(sel.size, rank[k]))
    arrays = {"spike_times": np.concatenate([*times, np.zeros(0)]),
              "spike_rows": np.concatenate([*rows, np.zeros(0, np.int64)])}
    pos = rec.position
    values = {"t_start": t0, "t_stop": t1, "n_units": rec.n_units, "order_by": key}
    if pos is not None and len(pos):
        valid = pos.valid_mask()
        if valid.sum() > 10:
            coords = pos.values[valid]
            # 2-D tracks are shown along their first principal axis (a linear track's length).
            linear = coords[:, 0] if coords.shape[1] == 1 else principal_axis(coords)
            window = (pos.timestamps[valid] >= t0) & (pos.timestamps[valid] < t1)
            if window.sum() > 1:
                arrays["position_t"] = pos.timestamps[valid][window]
                arrays["position"] = linear[window] - (linear.min() if coords.shape[1] > 1 else 0.0)
                values["position_unit"] = pos.unit
                values["position_label"] = "position" if coords.shape[1] == 1 else "linearised position"
    return SectionResult(values=values, arrays=arrays)


def _raster_render(result: SectionResult) -> SectionOutput:
    v, a = result.values, result.arrays
    has_pos = "position" in a
    fig, axes = new_figure(9.0, 4.6 if has_pos else 3.6, nrows=2 if has_pos else 1, sharex=True,
                           height_ratios=[1, 3] if has_pos else None)
    ax_r = axes[1] if has_pos else axes
    if has_pos:
        axes[0].plot(a["position_t"], a["position"], color="#228833", linewidth=1)
        axes[0].set_ylabel(f"{v['position_label']}\n({v['position_unit']})", fontsize=8)
    ax_r.scatter(a["spike_times"], a["spike_rows"], marker="|", s=6, color="black", linewidths=0.6)
    ax_r.set_xlim(v["t_start"], v["t_stop"])
    ax_r.set_ylim(-0.5, v["n_units"] - 0.5)
    ax_r.set_xlabel("time (s)")
    ax_r.set_ylabel(f"unit (ordered by {v['order_by'].split(' (')[0]})")
    caption = (f"Spikes of all {v['n_units']} fitted units in the busiest {v['t_stop'] - v['t_start']:.0f} s "
               f"of the fitted epoch, units ordered by {v['order_by']}"
               + (", with the animal's position above." if has_pos else "."))
    return SectionOutput(figures=[FigureSpec("raster", fig, caption)])


# ---------------------------------------------------------------------- rates
def _rates_compute(ctx: RunContext) -> SectionResult:
    return SectionResult(values={}, arrays={"rate_hz": ctx.recording.units["rate_hz"].to_numpy(float)})


def _rates_render(result: SectionResult) -> SectionOutput:
    rates = result.arrays["rate_hz"]
    positive = rates[rates > 0]
    fig, ax = new_figure(6.0, 3.2)
    if positive.size:
        bins = np.logspace(np.log10(positive.min()) - 0.05, np.log10(positive.max()) + 0.05, 25)
        histogram(ax, positive, bins=bins, xlabel="firing rate (Hz, log scale)", ylabel="number of units")
        ax.set_xscale("log")
    caption = (f"Distribution of mean firing rates of the {rates.size} fitted units over the fitted epoch "
               f"(median {np.median(rates):.3g} Hz).")
    return SectionOutput(figures=[FigureSpec("firing_rates", fig, caption)])


# ---------------------------------------------------------------------- couplings
def _couplings_compute(ctx: RunContext) -> SectionResult:
    J = np.asarray(ctx.model.J_, dtype=np.float64)
    h = np.asarray(ctx.model.h_, dtype=np.float64)
    order, key = _cached_order(ctx)
    off = J[~np.eye(J.shape[0], dtype=bool)]
    values = {"order_by": key, "J_offdiag_mean": float(off.mean()) if off.size else float("nan"),
              "J_offdiag_std": float(off.std()) if off.size else float("nan"),
              "J_asymmetry": float(np.linalg.norm(J - J.T) / max(np.linalg.norm(J + J.T), 1e-300))}
    arrays = {"J": J, "h": h, "order": np.asarray(order)}
    truth = ctx.truth("couplings")
    if truth is not None:
        mask = ~np.eye(J.shape[0], dtype=bool)
        values["J_true_correlation"] = _correlation(J[mask], truth[mask])
        arrays["J_true"] = truth
    return SectionResult(values=values, arrays=arrays)


def _couplings_render(result: SectionResult) -> SectionOutput:
    v, a = result.values, result.arrays
    J, order = a["J"], a["order"]
    n = J.shape[0]
    figures = []
    fig, ax = new_figure(6.0, 5.0)
    heatmap(ax, J[np.ix_(order, order)], label="coupling J (spin units, per bin)")
    ax.set_xlabel("source unit j at t−1 (rank)")
    ax.set_ylabel("target unit i at t (rank)")
    figures.append(FigureSpec("coupling_matrix", fig,
                              f"Fitted kinetic-Ising couplings J_ij between {n} units, ordered by {v['order_by']}; "
                              "red entries excite, blue inhibit."))
    mask = ~np.eye(n, dtype=bool)
    fig, ax = new_figure(6.0, 3.2)
    histogram(ax, J[mask], bins=60, xlabel="coupling J_ij (spin units, per bin)", ylabel="number of pairs",
              log_y=True)
    ax.axvline(0, color="gray", linewidth=0.8)
    figures.append(FigureSpec("coupling_distribution", fig,
                              f"Distribution of the {int(mask.sum()):,} off-diagonal couplings (log count), "
                              f"mean {v['J_offdiag_mean']:.3g}, s.d. {v['J_offdiag_std']:.3g}."))
    table = [("units ordered by", v["order_by"]),
             ("asymmetry ‖J−Jᵀ‖/‖J+Jᵀ‖", _fmt(v["J_asymmetry"], 3))]
    if "J_true" in a:
        fig, ax = new_figure(4.6, 4.2)
        identity_scatter(ax, a["J_true"][mask], J[mask], xlabel="true coupling (spin units)",
                         ylabel="fitted coupling (spin units)")
        figures.append(FigureSpec("coupling_recovery", fig,
                                  "Fitted versus true (simulated) couplings for every ordered pair; points on the "
                                  "identity line are recovered exactly."))
        table.append(("correlation with true couplings", _fmt(v["J_true_correlation"], 3)))
    return SectionOutput(figures=figures, table=table)


# ---------------------------------------------------------------------- held-out likelihood
def _likelihood_compute(ctx: RunContext) -> SectionResult:
    model, train, test = ctx.model, ctx.train, ctx.test
    h, J = np.asarray(model.h_, np.float64), np.asarray(model.J_, np.float64)
    mean_spin_train = 2.0 * train.mean_activity() - 1.0
    per_model = per_neuron_log_likelihood(test, h, J)
    per_null = independent_log_likelihood(test, mean_spin_train)
    values = {
        "ll_train": float(model.log_likelihood(train)),
        "ll_test": float(model.log_likelihood(test)),
        "ll_null_test": float(model.null_log_likelihood(test)),
        "ll_test_recomputed": float(per_model.mean()),
        "ll_null_test_train_rates": float(per_null.mean()),
        "fraction_units_improved": float(np.mean(per_model > per_null)),
        "bin_size_s": test.bin_size,
    }
    values["ll_gain_test"] = values["ll_test"] - values["ll_null_test"]
    values["ll_gain_bits_per_s_per_unit"] = values["ll_gain_test"] / math.log(2) / test.bin_size
    return SectionResult(values=values, arrays={"ll_test_per_unit": per_model, "ll_null_per_unit": per_null})


def _likelihood_render(result: SectionResult) -> SectionOutput:
    v, a = result.values, result.arrays
    gain = (a["ll_test_per_unit"] - a["ll_null_per_unit"]) * 1e3
    fig, axes = new_figure(9.0, 3.6, ncols=2)
    identity_scatter(axes[0], a["ll_null_per_unit"], a["ll_test_per_unit"],
                     xlabel="independent model (nats / bin)", ylabel="kinetic Ising (nats / bin)",
                     title="held-out, per unit")
    axes[1].bar(np.arange(gain.size), np.sort(gain)[::-1], color="#4477aa", width=1.0)
    axes[1].axhline(0, color="gray", linewidth=0.8)
    axes[1].set_xlabel("unit (sorted by gain)")
    axes[1].set_ylabel("held-out gain (millinats / bin)")
    caption = ("Held-out log-likelihood of each unit under the fitted kinetic Ising model versus independent neurons "
               "with the training rates (left; above the line = better) and the per-unit gain (right): the model "
               f"improves {100 * v['fraction_units_improved']:.0f}% of units.")
    table = [("held-out log-likelihood (nats/bin/unit)", _fmt(v["ll_test"], 6)),
             ("independent model, same bins", _fmt(v["ll_null_test"], 6)),
             ("gain over independence", f"{v['ll_gain_test']:.3g} nats/bin/unit = "
                                        f"{v['ll_gain_bits_per_s_per_unit']:.3g} bits/s/unit"),
             ("training log-likelihood", _fmt(v["ll_train"], 6))]
    return SectionOutput(figures=[FigureSpec("log_likelihood", fig, caption)], table=table)


# ---------------------------------------------------------------------- predicted moments
def model_samples(ctx: RunContext) -> np.ndarray:
    """Free-running samples of the fitted model (cached): a (T, N) array of ±1 spins."""
    if "samples" not in ctx.cache:
        n_steps = int(min(ctx.config.n_sample_bins, max(ctx.test.n_bins, 1000)))
        sample = ctx.model.sample(n_steps, seed=ctx.config.seed)
        spins = sample.to_spins(np.int8) if hasattr(sample, "to_spins") else np.asarray(sample)
        spins = spins.reshape(-1, spins.shape[-1])
        ctx.cache["samples"] = np.where(spins > 0, 1, -1).astype(np.int8)
    return ctx.cache["samples"]


def _moments_compute(ctx: RunContext) -> SectionResult:
    samples = model_samples(ctx)
    observed = spin_moments(ctx.test)
    predicted = spin_moments(samples)
    n = observed["C"].shape[0]
    upper = np.triu_indices(n, k=1)
    off = ~np.eye(n, dtype=bool)
    arrays = {"m_obs": observed["m"], "m_pred": predicted["m"],
              "C_obs": observed["C"][upper], "C_pred": predicted["C"][upper],
              "D_obs": observed["D"][off], "D_pred": predicted["D"][off]}

    values = {"n_sample_bins": int(samples.shape[0]), "r_mean": _correlation(arrays["m_obs"], arrays["m_pred"]),
              "r_equal_time": _correlation(arrays["C_obs"], arrays["C_pred"]),
              "r_delayed": _correlation(arrays["D_obs"], arrays["D_pred"])}
    return SectionResult(values=values, arrays=arrays)


def _moments_render(result: SectionResult) -> SectionOutput:
    v, a = result.values, result.arrays
    fig, axes = new_figure(11.0, 3.7, ncols=3)
    identity_scatter(axes[0], a["m_obs"], a["m_pred"], xlabel="observed mean spin ⟨σ_i⟩",
                     ylabel="model mean spin", title="means")
    identity_scatter(axes[1], a["C_obs"], a["C_pred"], xlabel="observed C_ij (equal time)",
                     ylabel="model C_ij", title="pairwise")
    identity_scatter(axes[2], a["D_obs"], a["D_pred"], xlabel="observed D_ij (lag one bin)",
                     ylabel="model D_ij", title="delayed")
    caption = (f"Means, connected equal-time and one-bin-delayed spin correlations of the held-out data versus "
               f"{v['n_sample_bins']:,} bins sampled from the fitted model (dimensionless, spins ±1).")
    table = [("Pearson r, means / pairwise / delayed",
              f"{_fmt(v['r_mean'], 3)} / {_fmt(v['r_equal_time'], 3)} / {_fmt(v['r_delayed'], 3)}")]
    text = ("The model is stationary: activity driven by behaviour (e.g. position) that the couplings do not "
            "explain shows up as a mismatch here.")
    return SectionOutput(figures=[FigureSpec("moments", fig, caption)], table=table, text=text)


CORE_SECTIONS = (
    Section("summary", "Recording summary", 10, _summary_compute, _summary_render),
    Section("raster", "Raster snippet", 20, _raster_compute, _raster_render),
    Section("firing_rates", "Firing-rate distribution", 30, _rates_compute, _rates_render),
    Section("couplings", "Fitted couplings", 40, _couplings_compute, _couplings_render),
    Section("likelihood", "Held-out log-likelihood", 50, _likelihood_compute, _likelihood_render),
    Section("moments", "Predicted vs observed correlations", 60, _moments_compute, _moments_render),
)

for _section in CORE_SECTIONS:
    register_section(_section, replace=True)
