"""Benchmarks and real-data figures for spikefield.spatial.

    python benchmarks/spatial.py            # decoding speed vs pynapple (10^5 bins x 200 units x 100 positions)
    python benchmarks/spatial.py --quick    # smaller, < 2 min
    python benchmarks/spatial.py --real     # figures on ../shared/data (hc-linear-track, mec-grid-cells)

Prints min / median of repeats and ratios against pynapple measured in the same run.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from pathlib import Path

import numpy as np

import spikefield as sf
from spikefield.spatial import PoissonDecoder, RateMaps

DATA = Path(os.environ.get("SPIKEFIELD_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def timed(func, repeats: int) -> tuple[float, float, object]:
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = func()
        times.append(time.perf_counter() - start)
    return min(times), float(np.median(times)), out


def synthetic_maps(n_units: int, n_positions: int, seed: int = 0) -> RateMaps:
    rng = np.random.default_rng(seed)
    centres = np.linspace(0, 200, n_positions)
    fields = rng.uniform(0, 200, n_units)
    maps = 0.5 + 15 * np.exp(-0.5 * ((centres[None] - fields[:, None]) / 8) ** 2)
    edges = (np.linspace(-1, 201, n_positions + 1),)
    return RateMaps(maps, maps, np.ones(n_positions), edges, "cm", np.arange(n_units))


def bench_decoding(n_bins: int, n_units: int, n_positions: int, repeats: int) -> None:
    maps = synthetic_maps(n_units, n_positions)
    counts = np.random.default_rng(1).poisson(0.3, size=(n_bins, n_units)).astype(np.float64)
    print(f"decoding {n_bins:,} bins x {n_units} units x {n_positions} positions (CPU, "
          f"{os.environ.get('OMP_NUM_THREADS', 'all')} threads)")
    single = PoissonDecoder(device="cpu", precision="single").fit(maps)
    s_best, s_median, ours_single = timed(lambda: single.predict_proba(counts, 0.25), repeats)
    decoder = PoissonDecoder(device="cpu").fit(maps)
    best, median, ours = timed(lambda: decoder.predict_proba(counts, 0.25), repeats)
    print(f"  spikefield PoissonDecoder float64 : min {best:.3f} s  median {median:.3f} s")
    print(f"  spikefield PoissonDecoder float32 : min {s_best:.3f} s  median {s_median:.3f} s  "
          f"(max |posterior diff| vs float64 {np.max(np.abs(ours_single - ours)):.1e})")
    try:
        import pynapple as nap
        import xarray as xr
    except ImportError:
        print("  pynapple not installed: no comparison (pip install pynapple)")
        return
    tuning = xr.DataArray(maps.maps, coords={"unit": np.arange(n_units), "x": maps.bin_centers[0]},
                          dims=("unit", "x"))
    frame = nap.TsdFrame(t=np.arange(n_bins) * 0.25 + 0.125, d=counts, columns=np.arange(n_units))
    epoch = nap.IntervalSet(0.0, n_bins * 0.25)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nap.decode_bayes(tuning, frame[:10], nap.IntervalSet(0, 2.5), bin_size=0.25)  # JIT warm-up
        p_best, p_median, (_, theirs) = timed(lambda: nap.decode_bayes(tuning, frame, epoch, bin_size=0.25), repeats)
    diff = float(np.max(np.abs(ours - np.asarray(theirs))))
    print(f"  pynapple decode_bayes             : min {p_best:.3f} s  median {p_median:.3f} s")
    print(f"  ratio pynapple / spikefield (median): {p_median / median:.1f}x; max |posterior difference| {diff:.2e}")


def real_linear_track(n_shuffles: int) -> None:
    path = DATA / "hc-linear-track"
    if not path.exists():
        print(f"hc-linear-track not found at {path}; set SPIKEFIELD_DATA")
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rec = sf.read(path)
    settings = dict(epoch="tracked", linearize=True, speed_threshold=15.0)
    print(f"hc-linear-track: {rec.n_units} units; position unit {rec.position.unit} (no calibration: px)")
    start = time.perf_counter()
    info = sf.spatial.spatial_information(rec, 10.0, smooth=10.0, n_shuffles=n_shuffles, seed=0, **settings)
    informative = info.index[info["p_value"] < 0.01]
    print(f"  spatially informative units (p<0.01, {n_shuffles} circular shifts, 10 px bins, smooth 10 px, "
          f"speed >= 15 px/s): {len(informative)} of {rec.n_units}  [{time.perf_counter() - start:.1f} s]")
    stable = sf.spatial.stability(rec, 10.0, smooth=10.0, method="laps", **settings)
    print(f"  odd/even-lap map correlation, informative units: median r = {stable[informative].median():.3f}")
    for time_bin in (0.25, 0.5):
        result = sf.spatial.decode(rec, 10.0, time_bin=time_bin, n_folds=5, **settings)
        print(f"  decoding, 5 contiguous folds, {time_bin * 1000:.0f} ms bins, all units: median error "
              f"{result.median_error:.1f} px ({result.median_error_bins:.2f} bins), mean {result.mean_error:.1f} px, "
              f"{result.times.size} bins")
    result = sf.spatial.decode(rec.select(units=informative), 10.0, time_bin=0.25, n_folds=5, **settings)
    print(f"  decoding with the informative units only (250 ms): median error {result.median_error:.1f} px")
    rest = rec.epochs["untracked"][-1:]
    start = time.perf_counter()
    events = sf.spatial.detect_replay(rec, run_epoch="tracked", rest_epoch=rest, linearize=True, speed_threshold=15.0,
                                      units=informative, n_shuffles=n_shuffles, seed=0)
    elapsed = time.perf_counter() - start
    n_sig = int(events["significant"].sum())
    either = int(((events["p_line_time"] < 0.05) & (events["p_line_field"] < 0.05)).sum())
    corr = int(((events["p_corr_time"] < 0.05) & (events["p_corr_field"] < 0.05)).sum())
    print(f"  replay (rest {rest[0, 0]:.1f}-{rest[0, 1]:.1f} s, MUA z>3, 50-500 ms, 20 ms bins, {n_shuffles} "
          f"shuffles each): {len(events)} candidate events, {n_sig} significant (line fit beats both shuffles, "
          f"p<0.05; {either} by the same rule), {corr} by weighted correlation; expected by chance ~"
          f"{len(events) * 0.05 * 0.05:.1f}-{len(events) * 0.05:.0f}  [{elapsed:.1f} s]")
    if n_sig:
        print(events[events["significant"]][["start", "duration", "weighted_corr", "line_score", "slope",
                                             "p_line_time", "p_line_field"]].round(3).to_string())
    try:
        import pynapple as nap
    except ImportError:
        return
    maps = sf.spatial.rate_maps(rec, 20.0, speed_threshold=0.0, epoch="tracked")
    pos = rec.position
    keep = pos.valid_mask()
    feature = nap.TsdFrame(pos.timestamps[keep], pos.values[keep], columns=["x", "y"])
    group = nap.TsGroup({i: nap.Ts(np.asarray(t)) for i, t in enumerate(rec.spike_times)})
    epoch = nap.IntervalSet(rec.epochs["tracked"][:, 0], rec.epochs["tracked"][:, 1])
    fs = 1 / np.median(np.diff(pos.timestamps))
    theirs = np.asarray(nap.compute_tuning_curves(group, feature, bins=list(maps.bin_edges), epochs=epoch, fs=fs))
    both = np.isfinite(maps.maps) & np.isfinite(theirs)
    exact = np.isclose(maps.maps[both], theirs[both], rtol=1e-9, atol=1e-12)
    largest = np.max(np.abs(maps.maps[both] - theirs[both]))
    print(f"  2-D rate maps vs pynapple compute_tuning_curves (20 px bins, no speed filter): "
          f"{exact.mean() * 100:.2f}% of bins identical, max |diff| {largest:.3f} Hz "
          "(difference: spikes in tracking gaps > 2.5 frames are dropped here)")


def real_grid_cells() -> None:
    path = DATA / "mec-grid-cells"
    if not path.exists():
        print(f"mec-grid-cells not found at {path}")
        return
    rec = sf.read(path)
    start = time.perf_counter()
    maps = sf.spatial.rate_maps(rec, 3.0, speed_threshold=5.0, smooth=3.0)
    scores = sf.spatial.grid_score(maps)
    module = np.isfinite(rec.units["module"].to_numpy(dtype=float))
    print(f"mec-grid-cells: {rec.n_units} units, position unit {rec.position.unit!r} (~cm); 3-unit bins, smooth 3, "
          f"speed >= 5/s: grid score > 0.3 for {int(np.sum(scores[module] > 0.3))} of {module.sum()} cells with a "
          f"module number and {int(np.sum(scores[~module] > 0.3))} of {(~module).sum()} others; median score "
          f"{np.nanmedian(scores[module]):.2f} vs {np.nanmedian(scores[~module]):.2f} "
          f"[{time.perf_counter() - start:.1f} s]")
    result = sf.spatial.decode(rec, 10.0, time_bin=0.5, n_folds=5, speed_threshold=5.0)
    print(f"  2-D decoding (10-unit bins, 500 ms, 5 folds): median error {result.median_error:.1f} units")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller problem, < 2 min")
    parser.add_argument("--real", action="store_true", help="figures on the real data sets")
    parser.add_argument("--shuffles", type=int, default=None,
                        help="shuffles for --real (default 1000; 200 with --quick)")
    args = parser.parse_args()
    if args.real:
        shuffles = args.shuffles or (200 if args.quick else 1000)
        real_linear_track(shuffles)
        real_grid_cells()
        return
    if args.quick:
        bench_decoding(20_000, 200, 100, repeats=3)
    else:
        bench_decoding(100_000, 200, 100, repeats=5)


if __name__ == "__main__":
    main()
