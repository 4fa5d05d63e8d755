"""Benchmarks of spikefield.thermo: accuracy against ground truth and speed.

    python benchmarks/thermo.py            # full size (long: 10^6 samples per spin, several β)
    python benchmarks/thermo.py --quick    # reduced sizes, under 2 minutes on 2 cores

Sections
--------
1. MaxEnt on the multipartite (sequential) spin model (PHYSICS.md target 8): N = 100, k = 6,
   J0 = 0, DJ = 1; Σ_g / Σ, Newton-1 / Σ, TUR / Σ and the fit time per β (min / median of repeats),
   float64 and float32. The reference scripts' fit time (~45 s per β, 100 spins, 2 cores, float32)
   is quoted from PHYSICS.md §4.2 [measured there]; it is not re-run here (GPL code, numba).
2. MaxEnt on parallel dynamics (target 9): N = 50, k = 6, 10^5 steps (and N = 100, 10^6 steps with
   --parallel-large); Σ_g / Σ, cap, convergence, contiguous against random splits, L-BFGS against
   trust-region Newton-CG.
3. Model-based EP of the N = 512 asymmetric SK model at β = 1 against the exact N -> ∞ value
   (target 3) and its throughput.
4. GPU (only when CUDA is present): MaxEnt at N = 1000 on 10^6 transitions.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np
import torch

import spikefield as sf
from spikefield.thermo import (
    asymmetric_sk,
    entropy_production,
    maxent_multipartite,
    sequential_entropy_production,
    sequential_glauber,
)

REFERENCE_SECONDS_PER_BETA = 45.0  # PHYSICS.md §4.2, reference MaxEnt fit, N = 100, 10^6 samples/spin


def diluted_couplings(n: int, k: int = 6, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    J = (rng.random((n, n)) < k / (n - 1)) * rng.standard_normal((n, n)) / np.sqrt(k)
    np.fill_diagonal(J, 0.0)
    return J


def timed(function, repeats: int):
    """Result, min and median wall time over repeats, and the min process (CPU) time, in seconds."""
    times, cpu, result = [], [], None
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        result = function()
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return result, min(times), statistics.median(times), min(cpu)


def section_multipartite(quick: bool, betas: tuple[float, ...] | None = None, compare_lbfgs: bool = False,
                         sim_seeds: tuple[int, ...] = (1,)) -> None:
    n_samples = 30_000 if quick else 1_000_000
    betas = betas or ((1.35,) if quick else (0.5, 1.0, 1.35, 2.0, 2.5, 4.0))
    repeats = 1 if quick else 2
    J = diluted_couplings(100, seed=0)
    print(f"\n[1] multipartite spin model, N=100, k=6, {n_samples:.0e} samples, 70/20/10 contiguous split, "
          f"simulation seeds {list(sim_seeds)}, load average {os.getloadavg()[0]:.1f}")
    print("beta  seed  Sigma    Sg/S    Newton1/S  TUR/S   R2(asym)  bfgs32 wall min/med, cpu (s)  iters  "
          "ref45s/bfgs32  sim (s)")
    for beta in betas:
        ratios = []
        for sim_seed in sim_seeds:
            ratios.append(_multipartite_row(J, beta, sim_seed, n_samples, quick, repeats, compare_lbfgs))
        if len(ratios) > 1:
            print(f"      beta {beta:4.2f}: Sg/S over {len(ratios)} independent simulations: mean "
                  f"{np.mean(ratios):.4f}, sd {np.std(ratios, ddof=1):.4f}, min {min(ratios):.4f}, "
                  f"max {max(ratios):.4f}", flush=True)


def _multipartite_row(J: np.ndarray, beta: float, sim_seed: int, n_samples: int, quick: bool, repeats: int,
                      compare_lbfgs: bool) -> float:
    """One simulation and fit of section 1; prints a table row and returns Σ_g / Σ."""
    start = time.perf_counter()
    S, F = sequential_glauber(J, n_samples, beta=beta, n_chains=1000 if quick else 5000,
                              warmup_sweeps=10 if quick else 20, seed=sim_seed)
    simulation = time.perf_counter() - start
    true, _ = sequential_entropy_production(J, S, beta=beta)
    r32, min32, med32, cpu32 = timed(lambda: maxent_multipartite(S, F, baselines=False, dtype=torch.float32),
                                     repeats)
    full = maxent_multipartite(S, F, baselines=True, dtype=torch.float32)
    upper = np.triu_indices(J.shape[0], 1)
    theta = r32.multipliers
    r2 = np.corrcoef((theta - theta.T)[upper], (beta * (J - J.T))[upper])[0, 1] ** 2
    print(f"{beta:4.2f}  {sim_seed:4d}  {true:7.4f}  {r32.ep / true:6.4f}  {full.ep_newton / true:7.3f}  "
          f"{full.ep_tur / true:6.3f}  {r2:7.4f}   {min32:7.1f} / {med32:7.1f}, {cpu32:7.1f}          "
          f"{r32.details['n_iter']:4d}  {REFERENCE_SECONDS_PER_BETA / min32:6.1f}x        {simulation:6.1f}   "
          f"stops {stop_counts(r32)}", flush=True)
    if compare_lbfgs or quick:
        r64, t64, _, c64 = timed(lambda: maxent_multipartite(S, F, baselines=False), 1)
        lb, tlb, _, clb = timed(lambda: maxent_multipartite(S, F, baselines=False, optimizer="lbfgs",
                                                            dtype=torch.float32), 1)
        print(f"      bfgs float64: Sg/S {r64.ep / true:.4f} ({t64:.1f} s wall, {c64:.1f} s cpu, "
              f"{r64.details['n_iter']} iterations; Sg32/Sg64 = {r32.ep / r64.ep:.5f}); "
              f"L-BFGS float32: Sg/S {lb.ep / true:.4f} ({tlb:.1f} s wall, {clb:.1f} s cpu, "
              f"{lb.details['n_iter']} iterations, stops {stop_counts(lb)})", flush=True)
    return r32.ep / true


def stop_counts(result) -> dict[str, int]:
    names, counts = np.unique(result.details["stopped_by"].astype(str), return_counts=True)
    return {str(k): int(v) for k, v in zip(names, counts, strict=True)}


def section_parallel(quick: bool, large: bool = False) -> None:
    betas = (0.2,) if quick else (0.05, 0.1, 0.2, 0.3)
    settings = [(50, 100_000, betas)] + ([(100, 1_000_000, (0.1, 0.2, 0.3))] if large else [])
    for n, steps, grid in settings:
        J = diluted_couplings(n, seed=0)
        print(f"\n[2] parallel kinetic Ising, N={n}, k=6, {steps:.0e} steps, {n * (n - 1) // 2} observables, "
              f"load average {os.getloadavg()[0]:.1f}")
        print("beta  Sigma_true  optimizer  Sg(contig)/S  +-se    val/S  Sg(random)/S  ln n_test  capped  "
              "stopped_by   iters  fit (s)")
        for beta in grid:
            X = sf.simulate.kinetic_ising(np.zeros(n), beta * J, steps // 100, n_trials=100, burn_in=100, seed=3)
            true = entropy_production((np.zeros(n), beta * J), X).ep_per_bin
            for optimizer in ("lbfgs", "newton-cg"):
                fit, t_min, _, _ = timed(lambda X=X, o=optimizer: entropy_production(None, X, method="maxent",
                                                                                     optimizer=o), 1)
                shuffled = entropy_production(None, X, method="maxent", split="random", optimizer=optimizer)
                d = fit.details
                print(f"{beta:4.2f}  {true:9.4f}  {optimizer:9}  {fit.ep_per_bin / true:11.3f}  "
                      f"{fit.stderr / true:6.3f}  {d['validation_objective'] / true:6.3f}  "
                      f"{shuffled.ep_per_bin / true:12.3f}  {d['ln_n_test']:8.2f}  {d['capped']!s:6}  "
                      f"{d['stopped_by']:11}  {d['n_iter']:5d}  {t_min:6.1f}", flush=True)


def section_model_based(quick: bool) -> None:
    n_trials = 16 if quick else 64
    h, J = sf.simulate.sk_couplings(512, J0=1.0, Js=0.5, H0=0.0, beta=1.0, seed=0)
    X = sf.simulate.kinetic_ising(h, J, 400, n_trials=n_trials, burn_in=100, seed=1)
    result, t_min, t_med, _ = timed(lambda: entropy_production((h, J), X, form="stationary", device="cpu"), 3)
    exact = asymmetric_sk(1.0).ep_per_spin
    print(f"\n[3] model-based EP, asymmetric SK N=512, beta=1, {X.n_transitions} transitions")
    print(f"sigma/N simulated {result.ep_per_bin / 512:.4f} +- {result.stderr / 512:.4f}, exact N->inf {exact:.4f}, "
          f"ratio {result.ep_per_bin / 512 / exact:.3f}; trajectory form "
          f"{result.details['trajectory_ep_per_bin'] / 512:.4f}; time min/median {t_min:.2f}/{t_med:.2f} s")


def section_gpu() -> None:
    if not torch.cuda.is_available():
        print("\n[4] GPU: CUDA not available on this machine; section skipped.")
        return
    n = 1000
    J = diluted_couplings(n, k=20, seed=0) * 0.2
    X = sf.simulate.kinetic_ising(np.zeros(n), J, 10_000, n_trials=100, seed=0, device="cuda")
    _, t_min, t_med, _ = timed(lambda: entropy_production(None, X, method="maxent", device="cuda"), 2)
    print(f"\n[4] GPU MaxEnt N={n}, {X.n_transitions} transitions: min/median {t_min:.1f}/{t_med:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="reduced sizes (< 2 min on 2 cores)")
    parser.add_argument("--sections", default="1234", help="which sections to run, e.g. '13'")
    parser.add_argument("--betas", default=None, help="section 1's β values, e.g. '0.5,1.35,4'")
    parser.add_argument("--sim-seeds", default="1",
                        help="section 1's simulation seeds, e.g. '1,2,3,4,5' (several give the spread of Sg/S)")
    parser.add_argument("--parallel-large", action="store_true",
                        help="section 2: also N=100 on 10^6 transitions (about 30 min on 2 cores)")
    parser.add_argument("--compare-lbfgs", action="store_true",
                        help="section 1: also fit with L-BFGS (float32) and Newton in float64 at every β")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, cpus {os.cpu_count()}, "
          f"python {sys.version.split()[0]}, quick={args.quick}")
    if "1" in args.sections:
        betas = tuple(float(b) for b in args.betas.split(",")) if args.betas else None
        sim_seeds = tuple(int(k) for k in args.sim_seeds.split(","))
        section_multipartite(args.quick, betas, args.compare_lbfgs, sim_seeds)
    if "2" in args.sections:
        section_parallel(args.quick, args.parallel_large)
    if "3" in args.sections:
        section_model_based(args.quick)
    if "4" in args.sections:
        section_gpu()


if __name__ == "__main__":
    main()
