"""Benchmarks of spikefield.memory: classical capacity (α_c), modern capacity, pruning, speed.

Run ``python benchmarks/memory.py`` (full: α_c at N = 500, 1000 and 2000, ~30 min on 2 busy
CPU cores) or ``python benchmarks/memory.py --quick`` (< 2 min). Sections can be picked with
``--only capacity,modern,pruning,speed``. Timings print min / median of repeats and the ratio
against the peer measured in the same run (``torch.nn.functional.scaled_dot_product_attention``
for the modern update; a plain NumPy loop for asynchronous Hopfield sweeps).
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import torch

from spikefield.memory import (
    AGS_CRITICAL_LOAD,
    capacity_curve,
    critical_load,
    finite_size_critical_load,
    pruning_curve,
)
from spikefield.memory._common import run_dynamics, torch_generator
from spikefield.memory.capacity import random_patterns
from spikefield.memory.hopfield import hebbian_couplings
from spikefield.memory.modern import modern_hopfield_update


def timed(function, repeats: int) -> tuple[float, float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return float(np.min(times)), float(np.median(times))


def capacity_section(quick: bool) -> None:
    print("\n## Classical Hebbian capacity (async T=0 dynamics, cue = stored pattern, "
          "retrieved if final overlap >= 0.95)")
    wide = [0.10, 0.12, 0.13, 0.14, 0.15, 0.16, 0.17, 0.18, 0.20]
    narrow = [0.12, 0.14, 0.15, 0.16, 0.18]
    plan = [(500, 2, [0.12, 0.14, 0.16, 0.18])] if quick else [(500, 20, wide), (1000, 8, wide), (2000, 2, narrow)]
    curves = {}
    for n_neurons, n_trials, loads in plan:
        start = time.perf_counter()
        curve = capacity_curve("hebbian", n_neurons, loads, n_trials=n_trials, seed=2024, device="cpu")
        elapsed = time.perf_counter() - start
        curves[n_neurons] = curve
        table = curve.groupby("load")[["fraction_retrieved", "mean_overlap"]].mean()
        print(f"N={n_neurons}, trials={n_trials} ({elapsed:.0f} s)")
        print(table.round(3).to_string())
        print(f"  load where half the patterns are retrieved: {critical_load(curve):.4f} "
              f"(AGS alpha_c = {AGS_CRITICAL_LOAD})")
    import pandas as pd

    sizes = sorted(curves)
    for small, large in zip(sizes, sizes[1:], strict=False):
        both = pd.concat([curves[small], curves[large]])
        print(f"  finite-size estimate (curves N={small} and N={large} cross): alpha_c = "
              f"{finite_size_critical_load(both):.4f}")


def modern_section(quick: bool) -> None:
    print("\n## Modern Hopfield capacity (one softmax update, beta=1, cues with 10% spins flipped)")
    n_neurons = 64 if quick else 128
    loads = [1.0, 10.0] if quick else [1.0, 5.0, 10.0, 20.0, 50.0]
    modern = capacity_curve("modern", n_neurons, loads, n_trials=2, flip_fraction=0.1, beta=1.0, seed=1,
                            device="cpu")
    classical = capacity_curve("hebbian", n_neurons, [0.05, 0.14, 1.0], n_trials=2, flip_fraction=0.1, seed=1,
                               device="cpu")
    for name, curve in (("modern", modern), ("hebbian", classical)):
        table = curve.groupby("load")[["n_patterns", "fraction_retrieved", "mean_overlap"]].mean()
        print(f"{name}, N={n_neurons}")
        print(table.round(3).to_string())


def pruning_section(quick: bool) -> None:
    print("\n## Pruning a Hebbian network (alpha=0.05, cues with 10% flips, async T=0)")
    n_neurons = 300 if quick else 1000
    curve = pruning_curve(n_neurons, 0.05, fractions_kept=[1.0, 0.5, 0.25, 0.1, 0.05],
                          n_trials=1 if quick else 3, seed=3, device="cpu")
    table = curve.groupby(["method", "fraction_kept"])[["fraction_retrieved", "mean_overlap"]].mean()
    print(f"N={n_neurons}")
    print(table.round(3).to_string())


def numpy_async_sweep(spins: np.ndarray, couplings: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Peer: the textbook per-neuron asynchronous sweep in NumPy (fields recomputed per neuron)."""
    spins = spins.copy()
    for i in order:
        field = spins @ couplings[i]
        spins[:, i] = np.where(field > 0, 1.0, np.where(field < 0, -1.0, spins[:, i]))
    return spins


def speed_section(quick: bool) -> None:
    repeats = 3 if quick else 7
    print(f"\n## Speed (CPU, torch threads={torch.get_num_threads()}, min / median of {repeats})")
    n_neurons, n_patterns = (500, 50) if quick else (1000, 100)
    patterns = torch.as_tensor(random_patterns(n_patterns, n_neurons, 0), dtype=torch.float64)
    couplings = hebbian_couplings(patterns)
    cues = torch.where(torch.rand(patterns.shape, generator=torch.Generator().manual_seed(0)) < 0.45,
                       -patterns, patterns)  # far cues, so every sweep flips many spins
    order = np.random.default_rng(0).permutation(n_neurons)
    generator = torch_generator(0, cues.device)
    ours = timed(lambda: run_dynamics(cues, couplings, None, 1, mode="async", generator=generator), repeats)
    peer = timed(lambda: numpy_async_sweep(cues.numpy(), couplings.numpy(), order), repeats)
    print(f"async sweep N={n_neurons}, batch={n_patterns}: spikefield {ours[0] * 1e3:.1f} / {ours[1] * 1e3:.1f} ms; "
          f"numpy per-neuron loop {peer[0] * 1e3:.1f} / {peer[1] * 1e3:.1f} ms; ratio (peer/ours, median) "
          f"{peer[1] / ours[1]:.2f}")
    sync = timed(lambda: run_dynamics(cues, couplings, None, 1, mode="sync"), repeats)
    print(f"sync sweep: {sync[0] * 1e3:.2f} / {sync[1] * 1e3:.2f} ms")
    generator = torch.Generator().manual_seed(1)
    shape_q, shape_k = (8, 4, 256, 64), (8, 4, 1024, 64)
    queries = torch.randn(shape_q, generator=generator)
    keys = torch.randn(shape_k, generator=generator)
    values = torch.randn(shape_k, generator=generator)
    beta = 1 / 8
    ours = timed(lambda: modern_hopfield_update(queries, keys, values, beta), repeats)
    peer = timed(lambda: torch.nn.functional.scaled_dot_product_attention(queries, keys, values, scale=beta), repeats)
    error = (modern_hopfield_update(queries, keys, values, beta)
             - torch.nn.functional.scaled_dot_product_attention(queries, keys, values, scale=beta)).abs().max()
    print(f"modern update (B,H,L,S,d)=(8,4,256,1024,64) float32: spikefield {ours[0] * 1e3:.1f} / "
          f"{ours[1] * 1e3:.1f} ms; SDPA {peer[0] * 1e3:.1f} / {peer[1] * 1e3:.1f} ms; "
          f"ratio (ours/SDPA, median) {ours[1] / peer[1]:.2f}; max |difference| {float(error):.1e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, < 2 minutes")
    parser.add_argument("--only", default="capacity,modern,pruning,speed",
                        help="comma-separated sections: capacity, modern, pruning, speed")
    args = parser.parse_args()
    print(f"spikefield.memory benchmark ({'quick' if args.quick else 'full'}); {platform.processor() or 'cpu'}, "
          f"{os.cpu_count()} cores, torch {torch.__version__}, CUDA available: {torch.cuda.is_available()}")
    sections = {"capacity": capacity_section, "modern": modern_section, "pruning": pruning_section,
                "speed": speed_section}
    for name in args.only.split(","):
        sections[name.strip()](args.quick)


if __name__ == "__main__":
    main()
