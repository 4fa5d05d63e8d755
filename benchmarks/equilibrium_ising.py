"""Benchmark: EquilibriumIsing speed, memory and accuracy against peers, measured in the same run.

Data: symmetric SK networks (``sk_couplings(N, J0=0, Js=1, H0=0.5, symmetric=True)``) sampled with
``spikefield.simulate.equilibrium_ising`` (1000 chains, 200 burn-in sweeps, 2 sweeps apart).
Accuracy: correlation r and RMS error of the upper-triangle couplings against the true J.

Every fit runs in a fresh child process (``multiprocessing`` spawn) so that its peak memory
(growth of VmHWM over the child's resident size before the fit) and a time limit can be
measured for every package alike. Times are min over repeats inside the child, wall clock and
process CPU time (``time.process_time``, both threads); the load average is printed.

Peers:

* a plain all-at-once torch pseudolikelihood (autograd + ``torch.optim.LBFGS``, strong-Wolfe,
  float64), the baseline named in issue 8 (full run only: it is slow);
* ConIII 2.4.3 (Lee & Daniels 2019): ``Pseudo``, ``MPF``, ``Enumerate``, ``MCH`` (Monte Carlo
  histogram, next to our Boltzmann learning) and ``RegularizedMeanField`` (next to nMF). It is not a
  dependency of spikefield. Its wheel pins ``numpy<2``, which this environment does not have,
  so install it without dependencies, plus the two it needs that are missing::

      pip install dill multiprocess && pip install --no-deps coniii==2.4.3

  ConIII 2.4.3 calls NumPy functions through the SciPy namespace (``scipy.exp``,
  ``scipy.log``, ...), which SciPy >= 1.12 removed; :func:`import_coniii` restores those names
  as aliases of the NumPy functions before importing it (benchmark only; no ConIII code is
  changed or shipped).

Run ``OMP_NUM_THREADS=1 python benchmarks/equilibrium_ising.py --quick`` (about 2 min; on a shared,
loaded machine one thread per process avoids OpenMP barrier stalls) or
without ``--quick`` (full: N = 20, 50, 100; ConIII Pseudo at N = 100 takes minutes, enable it
with ``--coniii-max-n 100``). ``--boltzmann`` runs only the Boltzmann-learning section (N = 20, 50,
100, 100,000 samples; about 3 min with one thread). A CUDA section runs only when CUDA is present.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

# NumPy functions that ConIII 2.4.3 reaches through the SciPy namespace.
_SCIPY_ALIASES = ("exp", "log", "cosh", "tanh", "sqrt", "diag", "inf", "sum", "ones", "dot", "array", "zeros",
                  "repeat", "outer", "tri", "shape", "real_if_close", "mean", "linspace", "concatenate",
                  "transpose", "pi", "diagonal")


def import_coniii():
    """Import ConIII, first restoring the ``scipy.<numpy function>`` aliases it needs (see module doc)."""
    import scipy

    for name in _SCIPY_ALIASES:
        if not hasattr(scipy, name):
            setattr(scipy, name, getattr(np, name))
    import coniii

    return coniii


def coniii_available() -> bool:
    try:
        import_coniii()
    except Exception:  # noqa: BLE001 - any import failure means "not available"
        return False
    return True


# ---------------------------------------------------------------------- data and scoring
def simulate(n: int, n_samples: int, seed: int = 0):
    import spikefield as sf

    h, J = sf.simulate.sk_couplings(n, J0=0.0, Js=1.0, H0=0.5, symmetric=True, seed=seed)
    X = sf.simulate.equilibrium_ising(h, J, n_samples, n_chains=1000, burn_in=200, thin=2, seed=seed + 1)
    return h, J, X


def accuracy(J_true: np.ndarray, J_hat: np.ndarray) -> tuple[float, float]:
    upper = np.triu_indices(len(J_true), 1)
    return (float(np.corrcoef(J_true[upper], J_hat[upper])[0, 1]),
            float(np.sqrt(np.mean((J_true[upper] - J_hat[upper]) ** 2))))


# ---------------------------------------------------------------------- fitters (run in the child)
def fit_spikefield(spins: np.ndarray, method: str, **kwargs) -> tuple[np.ndarray, str]:
    import spikefield as sf
    from spikefield.models.equilibrium_ising import EquilibriumIsing

    raster = sf.Raster.from_array((spins > 0).astype(np.uint8), 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sf.ConvergenceWarning)
        model = EquilibriumIsing(method, **kwargs).fit(raster)
    notes = {k: (round(v, 6) if isinstance(v, float) else v) for k, v in model.diagnostics_.items()
             if k != "history"}
    return model.J_, f"iters {model.n_iter_} converged {model.converged_} {notes}"


def fit_plain_torch(spins: np.ndarray, max_iter: int = 200) -> tuple[np.ndarray, str]:
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
    return (J + J.T) / 2, ""


def fit_coniii(spins: np.ndarray, method: str) -> tuple[np.ndarray, str]:
    """ConIII's solver on the same ±1 samples; returns symmetric J in our convention.

    ConIII's multipliers are ``(h, J_{i<j})`` in ``squareform`` (row-major upper-triangle) order
    for ``E = −Σ h_i s_i − Σ_{i<j} J_ij s_i s_j`` on ±1 spins, as ours.
    """
    coniii = import_coniii()
    n = spins.shape[1]
    sample = spins.astype(np.int64)
    if method == "mch":
        # The usage guide's settings (ConIII's notebook), with a 10x larger MCMC sample for accuracy.
        solver = coniii.MCH(sample, sample_size=10_000, rng=np.random.RandomState(0), n_cpus=1,
                            sampler_kw={"boost": True}, iprint=False)
        multipliers = solver.solve(maxiter=40, custom_convergence_f=lambda i: {"maxdlamda": np.exp(-i / 5),
                                                                               "eta": np.exp(-i / 5)})
    elif method == "regularized-mean-field":
        solver = coniii.RegularizedMeanField(sample, sample_size=100, rng=np.random.RandomState(0), n_cpus=1)
        multipliers = solver.solve()
    else:
        solver = {"pseudo": coniii.Pseudo, "mpf": coniii.MPF, "enumerate": coniii.Enumerate}[method](sample,
                                                                                                   iprint=False)
        multipliers = solver.solve()
    J = np.zeros((n, n))
    J[np.triu_indices(n, 1)] = multipliers[n:]
    return J + J.T, ""


_FITTERS: dict[str, Callable[..., tuple[np.ndarray, str]]] = {
    "spikefield": fit_spikefield, "plain": fit_plain_torch, "coniii": fit_coniii}


def _peak_reset() -> int:
    """Reset the kernel's peak-RSS mark (VmHWM) to the current RSS; return the current RSS in bytes."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return _status("VmRSS")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _status(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _child(queue, kind: str, spins: np.ndarray, args: tuple, kwargs: dict, repeats: int) -> None:
    try:
        fitter = _FITTERS[kind]
        # Imports are not part of a fit's time or memory.
        import_coniii() if kind == "coniii" else __import__("spikefield.models.equilibrium_ising")
        walls, cpus, peak = [], [], 0
        for _ in range(repeats):
            base = _peak_reset()
            t0, c0 = time.perf_counter(), time.process_time()
            J, notes = fitter(spins, *args, **kwargs)
            walls.append(time.perf_counter() - t0)
            cpus.append(time.process_time() - c0)
            peak = max(peak, _status("VmHWM") - base)
        queue.put(("ok", J, min(walls), float(np.median(walls)), min(cpus), peak, notes))
    except Exception as exc:  # noqa: BLE001 - report a peer's failure, keep benchmarking
        queue.put(("failed", f"{type(exc).__name__}: {str(exc)[:200]}"))


def run_isolated(kind: str, spins: np.ndarray, *args, repeats: int = 1, timeout: float = 600, **kwargs):
    """Run one fitter in a fresh process; returns a dict, or a string saying why not."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    process = ctx.Process(target=_child, args=(queue, kind, spins, args, kwargs, repeats))
    process.start()
    try:
        message = queue.get(timeout=timeout)
    except Exception:  # noqa: BLE001 - queue.Empty: the child ran past the limit
        process.kill()
        process.join()
        return f"timed out after {timeout:.0f} s"
    process.join()
    if message[0] != "ok":
        return f"failed ({message[1]})"
    _, J, wall_min, wall_median, cpu_min, peak, notes = message
    return {"J": J, "wall": wall_min, "wall_median": wall_median, "cpu": cpu_min, "peak_mib": peak / 2**20,
            "notes": notes}


def report(label: str, result, J_true: np.ndarray, reference: float | None = None) -> float | None:
    if isinstance(result, str):
        print(f"  {label:<34s} {result}", flush=True)
        return None
    r, rms = accuracy(J_true, result["J"])
    ratio = f" ratio {result['wall'] / reference:7.1f}x" if reference else ""
    print(f"  {label:<34s} wall {result['wall']:8.3f} s (median {result['wall_median']:.3f})  cpu "
          f"{result['cpu']:8.3f} s  peak +{result['peak_mib']:7.1f} MiB  r {r:.4f}  rmsJ {rms:.4f}{ratio} "
          f"{result['notes']}", flush=True)
    return result["wall"]


# ---------------------------------------------------------------------- sections
def section_pseudolikelihood(n: int, n_samples: int, repeats: int, *, plain: bool, coniii_max_n: int,
                             timeout: float) -> None:
    print(f"\n== pseudolikelihood at N={n}, {n_samples} samples (load average {os.getloadavg()[0]:.1f}) ==",
          flush=True)
    _, J, X = simulate(n, n_samples)
    spins = X.to_spins()
    print(f"  (data: {spins.nbytes / 2**20:.0f} MiB as int8 spins; B x N^2 float64 would be "
          f"{n_samples * n * n * 8 / 2**30:.2f} GiB)")
    ours = report("spikefield PL float64", run_isolated("spikefield", spins, "pseudolikelihood",
                                                        repeats=repeats, timeout=timeout), J)
    report("spikefield PL float32", run_isolated("spikefield", spins, "pseudolikelihood", dtype="float32",
                                                 repeats=repeats, timeout=timeout), J, ours)
    if plain:
        report("plain torch PL (autograd + LBFGS)", run_isolated("plain", spins, timeout=timeout), J, ours)
    if coniii_available() and n <= coniii_max_n:
        report("ConIII Pseudo", run_isolated("coniii", spins, "pseudo", timeout=timeout), J, ours)


def section_methods(n: int, n_samples: int, *, coniii_max_n: int, timeout: float, coniii_mpf: bool = True) -> None:
    print(f"\n== every method at N={n}, {n_samples} samples (load average {os.getloadavg()[0]:.1f}) ==", flush=True)
    _, J, X = simulate(n, n_samples, seed=10 + n)
    spins = X.to_spins()
    methods = ["exact"] if n <= 20 else []
    methods += ["pseudolikelihood", "mpf", "nmf", "tap", "sessak-monasson", "boltzmann"]
    walls = {}
    for method in methods:
        kwargs = {"seed": 0} if method == "boltzmann" else {}
        walls[method] = report(method, run_isolated("spikefield", spins, method, timeout=timeout, **kwargs), J)
    if coniii_available() and n <= coniii_max_n:
        peers = (("pseudo", "pseudolikelihood"),) + ((("mpf", "mpf"),) if coniii_mpf else ())
        # ConIII's Enumerate needs a generated equation file; it ships them for N <= 9 only.
        peers += (("enumerate", "exact"),) if n <= 20 else ()
        # ConIII's sampling solvers, next to our closest counterparts.
        peers += (("mch", "boltzmann"), ("regularized-mean-field", "nmf"))
        for method, ours in peers:
            report(f"ConIII {method}", run_isolated("coniii", spins, method, timeout=timeout), J, walls.get(ours))


def section_boltzmann(n: int, n_samples: int, timeout: float) -> None:
    """Boltzmann learning against pseudolikelihood on the data of :func:`section_methods`.

    Rows: the defaults (Sessak–Monasson start, step 1/λ_max, 2000 updates of one sweep, Polyak
    average, final check of 200 sweeps on fresh chains); a cold start (h = artanh m, J = 0); and
    the previous default step 0.2 with the current update, which diverges once 0.2 > 2/λ_max.
    """
    print(f"\n== Boltzmann learning at N={n}, {n_samples} samples (load average {os.getloadavg()[0]:.1f}) ==",
          flush=True)
    _, J, X = simulate(n, n_samples, seed=10 + n)
    spins = X.to_spins()
    report("pseudolikelihood (reference)", run_isolated("spikefield", spins, "pseudolikelihood", timeout=timeout), J)
    for label, kwargs in (("boltzmann (defaults)", {}), ("boltzmann init='independent'", {"init": "independent"}),
                          ("boltzmann learning_rate=0.2", {"learning_rate": 0.2})):
        report(label, run_isolated("spikefield", spins, "boltzmann", timeout=timeout, seed=0, **kwargs), J)


def section_exact(n: int, n_samples: int, timeout: float) -> None:
    """Exact maximum likelihood against ConIII's Enumerate, at an N for which ConIII ships its equations."""
    print(f"\n== exact enumeration at N={n}, {n_samples} samples (load average {os.getloadavg()[0]:.1f}) ==",
          flush=True)
    _, J, X = simulate(n, n_samples, seed=10 + n)
    spins = X.to_spins()
    ours = report("spikefield exact", run_isolated("spikefield", spins, "exact", repeats=2, timeout=timeout), J)
    if coniii_available():
        report("ConIII Enumerate", run_isolated("coniii", spins, "enumerate", timeout=timeout), J, ours)


def section_cuda() -> None:
    if not torch.cuda.is_available():
        print("\n== CUDA: not available on this machine; GPU figures not measured ==")
        return
    import spikefield as sf
    from spikefield.models.equilibrium_ising import EquilibriumIsing

    print("\n== CUDA: N=1000 pseudolikelihood on 10^6 samples ==", flush=True)
    h, J = sf.simulate.sk_couplings(1000, J0=0.0, Js=1.0, H0=0.5, symmetric=True, seed=0)
    teacher = EquilibriumIsing(device="cuda")
    teacher.h_, teacher.J_, teacher.n_features_in_, teacher.unit_ids_ = h, J, 1000, np.arange(1000)
    X = teacher.sample(1_000_000, seed=1, n_chains=10_000, burn_in=200, thin=2)
    times = []
    for _ in range(2):
        torch.cuda.synchronize()
        start = time.perf_counter()
        model = EquilibriumIsing(device="cuda", dtype="float32").fit(X)
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    r, rms = accuracy(J, model.J_)
    print(f"  spikefield PL cuda float32: min {min(times):.2f} s  r {r:.4f}  rmsJ {rms:.4f}  "
          f"iters {model.n_iter_} converged {model.converged_}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small settings (about 2 min)")
    parser.add_argument("--coniii-max-n", type=int, default=50,
                        help="largest N at which ConIII runs (its Pseudo takes minutes at N=100)")
    parser.add_argument("--sizes", type=int, nargs="*", default=[20, 50, 100], help="N values of the full run")
    parser.add_argument("--timeout", type=float, default=600, help="time limit per fit, seconds")
    parser.add_argument("--boltzmann", action="store_true",
                        help="only the Boltzmann-learning section at --sizes (about 1.5 min per N=100, one thread)")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, cpus {os.cpu_count()}, "
          f"ConIII {'available' if coniii_available() else 'not installed'}, "
          f"load average {os.getloadavg()[0]:.1f}")
    if args.boltzmann:
        for n in args.sizes:
            section_boltzmann(n, 100_000, timeout=args.timeout)
        return
    if args.quick:
        section_pseudolikelihood(100, 50_000, repeats=2, plain=False, coniii_max_n=20, timeout=args.timeout)
        section_exact(9, 20_000, timeout=args.timeout)
        section_methods(12, 20_000, coniii_max_n=12, timeout=args.timeout, coniii_mpf=False)
    else:
        section_exact(9, 50_000, timeout=args.timeout)
        for n in args.sizes:
            section_pseudolikelihood(n, 50_000, repeats=3, plain=n <= 50, coniii_max_n=args.coniii_max_n,
                                     timeout=args.timeout)
        for n in args.sizes:
            section_methods(n, 100_000, coniii_max_n=args.coniii_max_n, timeout=args.timeout)
    section_cuda()


if __name__ == "__main__":
    main()
