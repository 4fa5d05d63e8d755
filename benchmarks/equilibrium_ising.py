"""Benchmark: EquilibriumIsing speed and accuracy against peers, measured in the same run.

Data: symmetric SK networks (``sk_couplings(N, J0=0, Js=1, H0=0.5, symmetric=True)``) sampled with
``spikefield.simulate.equilibrium_ising`` (1000 chains, 200 burn-in sweeps, 2 sweeps apart).

Peers:
* a plain all-at-once torch pseudolikelihood (autograd + torch.optim.LBFGS, strong-Wolfe line
  search, float64): the baseline named in issue 8 (4 s at N = 100 on 50,000 samples);
* ConIII (Lee & Daniels 2019) when it is importable: its Pseudo, MPF and Enumerate solvers.

Run ``python benchmarks/equilibrium_ising.py`` (full) or ``--quick`` (< 2 min on a quiet 2-core
machine). Prints min/median seconds of repeats, coupling correlation r and RMS error against the
true couplings, and speed ratios. A CUDA section runs only when CUDA is present.
"""

from __future__ import annotations

import argparse
import os
import resource
import time
import warnings

import numpy as np
import torch

import spikefield as sf
from spikefield.models.equilibrium_ising import EquilibriumIsing


def simulate(n: int, n_samples: int, seed: int = 0):
    h, J = sf.simulate.sk_couplings(n, J0=0.0, Js=1.0, H0=0.5, symmetric=True, seed=seed)
    X = sf.simulate.equilibrium_ising(h, J, n_samples, n_chains=1000, burn_in=200, thin=2, seed=seed + 1)
    return h, J, X


def accuracy(J_true: np.ndarray, J_hat: np.ndarray) -> tuple[float, float]:
    upper = np.triu_indices(len(J_true), 1)
    return (float(np.corrcoef(J_true[upper], J_hat[upper])[0, 1]),
            float(np.sqrt(np.mean((J_true[upper] - J_hat[upper]) ** 2))))


def timed(function, repeats: int):
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return result, min(times), float(np.median(times))


def plain_torch_pseudolikelihood(spins: np.ndarray, max_iter: int = 200) -> np.ndarray:
    """The naive all-at-once PL: full (N, N) parameter, autograd, torch LBFGS, then symmetrise."""
    s = torch.as_tensor(spins, dtype=torch.float64)
    n = s.shape[1]
    mask = 1 - torch.eye(n, dtype=torch.float64)
    fields = torch.zeros(n, dtype=torch.float64, requires_grad=True)
    couplings = torch.zeros((n, n), dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([fields, couplings], max_iter=max_iter, tolerance_grad=1e-5,
                                  tolerance_change=1e-12, history_size=10, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        u = fields + s @ (couplings * mask).T
        loss = torch.nn.functional.softplus(-2 * s * u).mean(0).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    J = (couplings * mask).detach().numpy()
    return (J + J.T) / 2


def coniii_available() -> bool:
    try:
        import coniii  # noqa: F401
    except Exception:  # noqa: BLE001 - any import failure means "not available"
        return False
    return True


def coniii_fit(method: str, spins: np.ndarray) -> np.ndarray:
    """ConIII's solver on the same ±1 samples; returns symmetric J in our convention."""
    import coniii
    from coniii.utils import define_ising_helper_functions, pair_corr

    n = spins.shape[1]
    upper = np.triu_indices(n, 1)
    if method == "pseudo":
        solver = coniii.Pseudo(spins)
        multipliers = solver.solve()
    elif method == "mpf":
        solver = coniii.MPF(spins)
        multipliers = solver.solve()
    else:
        calc_e, calc_observables, mch_approximation = define_ising_helper_functions()
        del calc_e, calc_observables, mch_approximation
        solver = coniii.Enumerate(spins)
        multipliers = solver.solve(constraints=np.concatenate(pair_corr(spins, concat=False)))
    J = np.zeros((n, n))
    J[upper] = multipliers[n:]
    return J + J.T


def row(label: str, seconds_min: float, seconds_median: float, r: float, rms: float, extra: str = "") -> None:
    print(f"  {label:<38s} min {seconds_min:8.3f} s  median {seconds_median:8.3f} s  r {r:.4f}  rmsJ {rms:.4f} {extra}")


def section_pseudolikelihood(n: int, n_samples: int, repeats: int) -> None:
    print(f"\n== pseudolikelihood at N={n}, {n_samples} samples (load average {os.getloadavg()[0]:.1f}) ==")
    _, J, X = simulate(n, n_samples)
    spins = X.to_spins()
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    ours = {}
    for dtype in ("float64", "float32"):
        model, t_min, t_med = timed(lambda dtype=dtype: EquilibriumIsing(dtype=dtype).fit(X), repeats)
        r, rms = accuracy(J, model.J_)
        ours[dtype] = t_min
        row(f"spikefield PL ({dtype})", t_min, t_med, r, rms, f"iters {model.n_iter_}")
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"  peak RSS grew by {(rss1 - rss0) / 1024:.0f} MiB (data itself: {spins.nbytes * 8 / 2**20:.0f} MiB "
          f"as float64; B x N^2 would be {n_samples * n * n * 8 / 2**30:.1f} GiB)")
    J_plain, t_min, t_med = timed(lambda: plain_torch_pseudolikelihood(spins), 1)
    r, rms = accuracy(J, J_plain)
    row("plain torch PL (autograd + LBFGS)", t_min, t_med, r, rms,
        f"ratio plain/ours(float64) {t_min / ours['float64']:.1f}x, /ours(float32) {t_min / ours['float32']:.1f}x")
    if coniii_available() and n <= 50:
        J_c, t_min, t_med = timed(lambda: coniii_fit("pseudo", spins), 1)
        r, rms = accuracy(J, J_c)
        row("ConIII Pseudo", t_min, t_med, r, rms, f"ratio ConIII/ours {t_min / ours['float64']:.1f}x")


def section_methods(n: int, n_samples: int, boltzmann_iter: int) -> None:
    print(f"\n== every method at N={n}, {n_samples} samples (load average {os.getloadavg()[0]:.1f}) ==")
    _, J, X = simulate(n, n_samples, seed=10 + n)
    methods = ["exact"] if n <= 20 else []
    methods += ["pseudolikelihood", "mpf", "nmf", "tap", "sessak-monasson", "boltzmann"]
    for method in methods:
        kwargs = {"max_iter": boltzmann_iter, "seed": 0, "sweeps_per_iter": 2} if method == "boltzmann" else {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", sf.ConvergenceWarning)
            model, t_min, t_med = timed(lambda method=method, kwargs=kwargs: EquilibriumIsing(method, **kwargs).fit(X),
                                        1)
        r, rms = accuracy(J, model.J_)
        extra = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in model.diagnostics_.items()
                 if k != "history"}
        row(method, t_min, t_med, r, rms, f"converged {model.converged_} {extra}")
    if coniii_available() and n <= 20:
        spins = X.to_spins()
        for method in ("pseudo", "mpf"):
            try:
                J_c, t_min, t_med = timed(lambda method=method: coniii_fit(method, spins), 1)
                r, rms = accuracy(J, J_c)
                row(f"ConIII {method}", t_min, t_med, r, rms)
            except Exception as exc:  # noqa: BLE001 - report the peer's failure, keep benchmarking
                print(f"  ConIII {method}: failed ({type(exc).__name__}: {exc})")


def section_cuda() -> None:
    if not torch.cuda.is_available():
        print("\n== CUDA: not available on this machine; GPU figures not measured ==")
        return
    print("\n== CUDA: N=1000 pseudolikelihood on 10^6 samples ==")
    h, J = sf.simulate.sk_couplings(1000, J0=0.0, Js=1.0, H0=0.5, symmetric=True, seed=0)
    teacher = EquilibriumIsing(device="cuda")
    teacher.h_, teacher.J_, teacher.n_features_in_, teacher.unit_ids_ = h, J, 1000, np.arange(1000)
    X = teacher.sample(1_000_000, seed=1, n_chains=10_000, burn_in=200, thin=2)
    model, t_min, t_med = timed(lambda: EquilibriumIsing(device="cuda", dtype="float32").fit(X), 2)
    r, rms = accuracy(J, model.J_)
    row("spikefield PL cuda float32", t_min, t_med, r, rms)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small settings (< 2 min on a quiet machine)")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, cpus {os.cpu_count()}, "
          f"ConIII {'available' if coniii_available() else 'not installed'}")
    if args.quick:
        section_pseudolikelihood(100, 50_000, repeats=2)
        section_methods(20, 20_000, boltzmann_iter=100)
    else:
        for n in (20, 50, 100):
            section_pseudolikelihood(n, 50_000, repeats=3)
        for n in (20, 50, 100):
            section_methods(n, 100_000, boltzmann_iter=300)
    section_cuda()


if __name__ == "__main__":
    main()
