"""Benchmark: KineticIsing exact ML against the fits users run today, on the same data.

    python benchmarks/kinetic_ising.py            # CPU N=300, T=3e5 (+ GPU section when CUDA exists)
    python benchmarks/kinetic_ising.py --quick    # CPU N=100, T=3e4: under 2 minutes

Peers, all with the same ridge penalty (``l2/2 ‖J‖²`` on the mean log-loss ⇔ sklearn
``C = 16/(l2·T)``), scored on the same held-out transitions:

* scikit-learn ``LogisticRegression`` (lbfgs) fitted neuron by neuron on the previous bin's
  0/1 spikes. Neurons are independent problems, so its time is exactly additive over neurons;
  ``--sklearn-neurons k`` times k of them and scales by N/k (stated in the output);
* a plain full-batch ``torch.optim.LBFGS`` loop (strong Wolfe) on the ±1 spin form;
* GPU only: nemos ``PopulationGLM`` (Bernoulli, Ridge), when CUDA and nemos are present.

Prints min/median over repeats, ratios, iterations and held-out log-likelihoods (nats per
transition per neuron), then a table of time and peak memory against N and T (each point in a
fresh process so its peak resident memory is its own).
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import statistics
import subprocess
import sys
import threading
import time
from typing import Any

import numpy as np
import torch

import spikefield as sf
from spikefield.models.conversions import glm_to_spins
from spikefield.models.kinetic_ising import KineticIsing

L2 = 1e-4


def make_data(n_neurons: int, n_bins: int, seed: int = 0, device: str = "cpu") -> tuple[sf.Raster, sf.Raster]:
    """Asymmetric SK network near its order–disorder point (Js = 0.5, β = 1.35); train + held-out.

    ``device="cuda"`` simulates on the GPU (the GPU section's N = 1000 and 8000 at T = 2^20 would
    take many minutes on the CPU).
    """
    h, J = sf.simulate.sk_couplings(n_neurons, J0=1.0, Js=0.5, H0=0.5, beta=1.35, seed=seed)
    n_trials = 10
    train = sf.simulate.kinetic_ising(h, J, n_bins // n_trials, n_trials=n_trials, seed=seed + 1, burn_in=100,
                                      device=device)
    test = sf.simulate.kinetic_ising(h, J, max(n_bins // 5 // n_trials, 1000), n_trials=n_trials, seed=seed + 2,
                                     burn_in=100, device=device)
    return train, test


def held_out(h: np.ndarray, J: np.ndarray, test: sf.Raster, rows: np.ndarray | None = None) -> float:
    """Mean held-out log-likelihood per transition per neuron (optionally of neurons ``rows`` only).

    A neuron's conditional likelihood depends only on its own row of (h, J), so a subset of
    neurons is scored exactly.
    """
    rows = np.arange(h.size) if rows is None else rows
    spins = test.to_spins(np.float64)
    total, count = 0.0, 0
    for a, b in test.segments:
        u = spins[a:b - 1] @ J[rows].T + h[rows]
        target = spins[a + 1:b][:, rows]
        total += float(np.sum(target * u - np.logaddexp(u, -u)))
        count += target.size
    return total / count


def design(raster: sf.Raster) -> tuple[np.ndarray, np.ndarray]:
    spikes = raster.to_numpy().astype(np.float64)
    inputs = np.concatenate([spikes[a:b - 1] for a, b in raster.segments])
    targets = np.concatenate([spikes[a + 1:b] for a, b in raster.segments])
    return inputs, targets


def fit_ours(train: sf.Raster, device: str = "cpu", dtype: str = "float64") -> tuple[KineticIsing, float]:
    start = time.perf_counter()
    model = KineticIsing(l2=L2, device=device, dtype=dtype).fit(train)
    if device != "cpu":
        torch.cuda.synchronize()
    return model, time.perf_counter() - start


def fit_sklearn(train: sf.Raster, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, float]:
    from sklearn.linear_model import LogisticRegression

    inputs, targets = design(train)
    C = 16.0 / (L2 * len(inputs))
    bias, weights, iters = np.zeros(len(rows)), np.zeros((len(rows), train.n_units)), []
    start = time.perf_counter()
    for k, i in enumerate(rows):
        reg = LogisticRegression(C=C, max_iter=2000).fit(inputs, targets[:, i])
        bias[k], weights[k] = reg.intercept_[0], reg.coef_[0]
        iters.append(int(reg.n_iter_[0]))
    elapsed = time.perf_counter() - start
    return bias, weights, elapsed, float(np.mean(iters))


def fit_torch_lbfgs(train: sf.Raster, device: str = "cpu") -> tuple[np.ndarray, np.ndarray, float, int]:
    """The loop a user writes: full-batch torch.optim.LBFGS on the ±1 spin log-likelihood."""
    spins = torch.as_tensor(train.to_spins(np.float64), device=device)
    prev = torch.cat([spins[a:b - 1] for a, b in train.segments])
    nxt = torch.cat([spins[a + 1:b] for a, b in train.segments])
    n = train.n_units
    h = torch.zeros(n, dtype=torch.float64, device=device, requires_grad=True)
    J = torch.zeros((n, n), dtype=torch.float64, device=device, requires_grad=True)
    opt = torch.optim.LBFGS([h, J], lr=1, max_iter=2000, history_size=10, tolerance_grad=1e-7,
                            tolerance_change=1e-12, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        u = prev @ J.T + h
        loss = (torch.logaddexp(u, -u) - nxt * u).mean() + L2 / 2 * (J**2).sum() / n
        loss.backward()
        return loss

    start = time.perf_counter()
    opt.step(closure)
    elapsed = time.perf_counter() - start
    return h.detach().cpu().numpy(), J.detach().cpu().numpy(), elapsed, int(opt.state[h]["n_iter"])


def summary(times: list[float]) -> str:
    return f"min {min(times):7.2f} s  median {statistics.median(times):7.2f} s"


def cpu_section(n_neurons: int, n_bins: int, repeats: int, sklearn_neurons: int, with_torch_lbfgs: bool) -> None:
    print(f"\n== CPU: N={n_neurons}, T={n_bins} (train), threads={torch.get_num_threads()}, l2={L2} ==", flush=True)
    train, test = make_data(n_neurons, n_bins)
    ours_times = []
    for _ in range(repeats):
        model, elapsed = fit_ours(train)
        ours_times.append(elapsed)
    ll_ours = model.log_likelihood(test)
    print(f"ours (KineticIsing)     {summary(ours_times)}  iters {model.n_iter_:4d}  "
          f"data passes {model.n_data_passes_:.1f}  held-out LL {ll_ours:.6f}", flush=True)

    rows = np.linspace(0, n_neurons - 1, min(sklearn_neurons, n_neurons)).round().astype(int)
    bias, weights, t_sk, it_sk = fit_sklearn(train, rows)
    h_sk, J_sk = glm_to_spins(bias, weights)
    h_full, J_full = model.h_.copy(), model.J_.copy()
    h_full[rows], J_full[rows] = h_sk, J_sk
    ll_sk = held_out(h_full, J_full, test, rows)
    ll_ours_rows = held_out(model.h_, model.J_, test, rows)
    t_sk_all = t_sk * n_neurons / len(rows)
    print(f"sklearn per neuron      {t_sk_all:9.2f} s (timed {len(rows)} neurons: {t_sk:.2f} s, x{n_neurons}/"
          f"{len(rows)})  mean iters {it_sk:.0f}  held-out LL on those neurons {ll_sk:.6f} (ours {ll_ours_rows:.6f})",
          flush=True)

    best = min(ours_times)
    peers = [("sklearn", ll_sk, ll_ours_rows)]
    print(f"speed-up vs sklearn: {t_sk_all / best:6.1f}x")
    if with_torch_lbfgs:
        h_tl, J_tl, t_tl, it_tl = fit_torch_lbfgs(train)
        ll_tl = held_out(h_tl, J_tl, test)
        print(f"torch LBFGS full batch  {t_tl:9.2f} s  iters {it_tl:4d}  held-out LL {ll_tl:.6f}", flush=True)
        print(f"speed-up vs torch LBFGS: {t_tl / best:6.1f}x")
        peers.append(("torch LBFGS", ll_tl, ll_ours))
    for name, ll_peer, ll_ref in peers:
        diff = ll_ref - ll_peer
        verdict = "equal within 1e-4" if abs(diff) <= 1e-4 else "NOT equal within 1e-4"
        print(f"held-out LL ours - {name}: {diff:+.2e} ({verdict})")


def _resident_mb() -> float:
    with open("/proc/self/statm") as stream:
        return int(stream.read().split()[1]) * resource.getpagesize() / 2**20


def worker(n_neurons: int, n_bins: int) -> dict[str, Any]:
    """Fit once; sample resident memory every 5 ms in a thread (torch's CPU allocations are invisible
    to tracemalloc) and report the peak above the level before ``fit``."""
    train, _ = make_data(n_neurons, n_bins, seed=5)
    gc.collect()
    base, peak, done = _resident_mb(), [0.0], threading.Event()

    def sampler() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _resident_mb())
            time.sleep(0.005)

    thread = threading.Thread(target=sampler)
    thread.start()
    model, elapsed = fit_ours(train)
    done.set()
    thread.join()
    return {"N": n_neurons, "T": n_bins, "seconds": elapsed, "iters": model.n_iter_,
            "passes": model.n_data_passes_, "fit_memory_mb": peak[0] - base,
            "raster_mb": n_neurons * n_bins / 2**20}


def scaling_section(grid: list[tuple[int, int]]) -> None:
    print("\n== time and memory vs N and T (CPU, one fresh process per point) ==")
    print(f"{'N':>6} {'T':>9} {'seconds':>9} {'iters':>6} {'passes':>7} {'s/pass':>8} {'fit peak MB':>12} "
          f"{'raster MB':>10}")
    for n_neurons, n_bins in grid:
        out = subprocess.run([sys.executable, __file__, "--worker", str(n_neurons), str(n_bins)],
                             capture_output=True, text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{r['N']:>6} {r['T']:>9} {r['seconds']:>9.2f} {r['iters']:>6} {r['passes']:>7.1f} "
              f"{r['seconds'] / r['passes']:>8.3f} {r['fit_memory_mb']:>12.0f} {r['raster_mb']:>10.1f}",
              flush=True)


def gpu_section(quick: bool) -> None:
    print("\n== GPU ==")
    if not torch.cuda.is_available():
        print("skipped: CUDA is not available on this machine (GPU figures are not measured here).")
        return
    name = torch.cuda.get_device_name()
    n_neurons, n_bins = (200, 1 << 16) if quick else (1000, 1 << 20)
    train, test = make_data(n_neurons, n_bins, device="cuda")
    for dtype in ("float32", "tf32"):
        times = []
        for _ in range(3):
            torch.cuda.reset_peak_memory_stats()
            model, elapsed = fit_ours(train, device="cuda", dtype=dtype)
            times.append(elapsed)
        flops = 4.0 * train.n_transitions * n_neurons**2 * model.n_data_passes_
        print(f"{name} ours {dtype}: N={n_neurons} T={n_bins} {summary(times)} iters {model.n_iter_} "
              f"held-out LL {model.log_likelihood(test):.6f} TFLOP/s {flops / min(times) / 1e12:.1f} "
              f"peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB", flush=True)
    try:
        import nemos  # noqa: F401
    except ImportError:
        print("nemos PopulationGLM peer skipped: nemos is not installed (pip install nemos[jax-cuda]).")
    else:
        _nemos_peer(train, test)
    if not quick:
        big, _ = make_data(8000, 1 << 20, device="cuda")
        torch.cuda.reset_peak_memory_stats()
        model = KineticIsing(l2=L2, device="cuda", dtype="tf32", max_iter=3).fit(big)
        print(f"N=8000 T=2^20 (3 iterations): peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB")
        del model


def _nemos_peer(train: sf.Raster, test: sf.Raster) -> None:
    import nemos as nmo

    inputs, targets = design(train)
    model = nmo.glm.PopulationGLM(observation_model=nmo.observation_models.BernoulliObservations(),
                                  regularizer="Ridge", regularizer_strength=L2 / 16)
    start = time.perf_counter()
    model.fit(inputs.astype(np.float32), targets.astype(np.float32))
    elapsed = time.perf_counter() - start
    h, J = glm_to_spins(np.asarray(model.intercept_, dtype=np.float64), np.asarray(model.coef_, dtype=np.float64).T)
    print(f"nemos PopulationGLM: {elapsed:.2f} s held-out LL {held_out(h, J, test):.6f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, under 2 minutes")
    parser.add_argument("--n-neurons", type=int)
    parser.add_argument("--n-bins", type=int)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sklearn-neurons", type=int, default=30, help="neurons timed for the sklearn peer")
    parser.add_argument("--skip-scaling", action="store_true", help="leave out the N/T table")
    parser.add_argument("--skip-torch-lbfgs", action="store_true", help="leave out the slowest peer")
    parser.add_argument("--worker", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(*args.worker)))
        return
    n_neurons = args.n_neurons or (80 if args.quick else 300)
    n_bins = args.n_bins or (20_000 if args.quick else 300_000)
    print(f"spikefield {sf.__version__}, torch {torch.__version__}, machine: {torch.get_num_threads()} CPU threads")
    cpu_section(n_neurons, n_bins, 2 if args.quick else args.repeats,
                min(args.sklearn_neurons, 10) if args.quick else args.sklearn_neurons, not args.skip_torch_lbfgs)
    grid = [(40, 10_000), (80, 10_000), (80, 20_000)] if args.quick else \
        [(100, 100_000), (200, 100_000), (300, 100_000), (300, 300_000)]
    if not args.skip_scaling:
        scaling_section(grid)
    gpu_section(args.quick)


if __name__ == "__main__":
    main()
