"""Binning throughput: spikes per second for 10^7 and 10^8 spikes into 10^6 bins x 1000 units.

Run: ``python benchmarks/binning.py`` (``--quick`` for 10^6 / 10^7 spikes). Prints min / median
of repeats and the ratio against a per-unit ``np.histogram`` loop (what users write by hand),
measured in the same run.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from spikefield.raster import bin_spikes


def make_trains(n_spikes: int, n_units: int, duration: float, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    per_unit = rng.multinomial(n_spikes, np.full(n_units, 1 / n_units))
    return [np.sort(rng.uniform(0, duration, k)) for k in per_unit]


def time_it(fn, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def histogram_peer(trains, duration, bin_size):
    edges = np.arange(0, duration + bin_size / 2, bin_size)
    out = np.zeros((edges.size - 1, len(trains)), dtype=np.uint8)
    for j, t in enumerate(trains):
        out[:, j] = np.histogram(t, edges)[0]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="10^6 and 10^7 spikes instead of 10^7, 10^8")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    sizes = [10**6, 10**7] if args.quick else [10**7, 10**8]
    n_units, n_bins, bin_size = 1000, 10**6, 0.001
    duration = n_bins * bin_size
    support = np.array([[0.0, duration]])
    print(f"binning into {n_bins:,} bins x {n_units} units (bin {bin_size * 1e3:g} ms)")
    print(f"{'spikes':>12} {'dtype':>7} {'min s':>8} {'median s':>9} {'Mspikes/s':>10} "
          f"{'np.histogram s':>15} {'ratio':>6}")
    for n_spikes in sizes:
        trains = make_trains(n_spikes, n_units, duration)
        for dtype in (bool, "counts"):
            times = time_it(lambda trains=trains, dtype=dtype: bin_spikes(trains, support, bin_size, dtype=dtype),
                            args.repeats)
            raster = bin_spikes(trains, support, bin_size, dtype="counts")
            assert raster.spike_counts().sum() == n_spikes  # conservation, checked on the real output
            peer = ""
            ratio = ""
            if dtype == "counts" and n_spikes == sizes[0]:  # the peer is slow: measure it once
                peer_times = time_it(lambda trains=trains: histogram_peer(trains, duration, bin_size), 1)
                peer = f"{min(peer_times):15.2f}"
                ratio = f"{min(peer_times) / min(times):6.1f}"
            print(f"{n_spikes:>12,} {str(getattr(dtype, '__name__', dtype)):>7} {min(times):8.2f} "
                  f"{statistics.median(times):9.2f} {n_spikes / min(times) / 1e6:10.1f} {peer:>15} {ratio:>6}")
            del raster


if __name__ == "__main__":
    main()
