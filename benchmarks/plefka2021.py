"""Reproduction of the asymmetric-SK benchmark of Aguilera, Moosavi & Shimazaki (2021), Fig. 3.

    python benchmarks/plefka2021.py                       # N=512, 21 β, R=2000 trials, forward only (CPU: ~1 h)
    python benchmarks/plefka2021.py --inverse             # also the inverse problem at every β
    python benchmarks/plefka2021.py --device cuda --trials 100000 --inverse   # the paper's scale on a GPU
    python benchmarks/plefka2021.py --quick               # N=128, 5 β, R=1000: a few minutes on 2 cores

Protocol (PHYSICS.md §3): ``h_i ~ U(−0.5, 0.5)``, ``J_ij ~ N(1/N, 0.1²/N)`` (``sk_couplings``), scaled
by ``β = β̃ β_c`` for ``β̃ = 1 + 0.3·linspace(−1, 1, 21)``. As in the reference's parameter generator,
h is negated when its mean is negative, so the network stays on the positive symmetry-breaking side
of ``s_0 = +1`` (``benchmark_draw`` in meanfield.py). The reference's own draw is not available and
the paper's ranking depends on the draw (docs/meanfield.md), so ``--seed`` selects one. For each β̃,
R trials of T = 128 parallel Glauber steps from ``s_0 = +1`` give the trial-averaged
``m_t, C_t, D_t`` (conditional-expectation estimators) and split-half noise floors; every
mean-field method runs 128 steps forward from ``s_0`` with the true (h, J), and
``ε_X = mean_t mean_entries (X^MF_t − X^sim_t)²`` is reported raw and minus the floor (C including
its diagonal, as in the paper). With ``--inverse``, (h, J) are inferred from the moments averaged
over steps 3..T by moment matching with each method and ``ε_h = mean (ĥ − h)²``,
``ε_J = mean (Ĵ − J)²``.

Writes ``table.csv`` (one row per β̃ and method), ``forward.png`` (the paper's Fig. 3 layout: means
against t at β_c, scatter at t = T, errors against β̃) and, with ``--inverse``, ``inverse.png``, into
``--out`` (default ``plefka2021-results``), each file written to a temporary name and renamed.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from meanfield import benchmark_draw, simulate_moments  # noqa: E402 - the draw and simulator of meanfield.py

from spikefield.meanfield import critical_beta, forward, inverse  # noqa: E402

# The four approximations of the paper's Fig. 3, with their labels there.
METHODS = {"tap": "Plefka[t-1,t]", "plefka_t": "Plefka[t]", "plefka_t1": "Plefka[t-1]", "plefka2_t": "Plefka2[t]"}
COLUMNS = ["beta_ratio", "beta", "method", "mean_m_T", "mean_C_T", "mean_D_T", "eps_m", "eps_C", "eps_D",
           "floor_m", "floor_C", "floor_D", "eps_m_minus_floor", "eps_C_minus_floor", "eps_D_minus_floor",
           "forward_s", "eps_h", "eps_J",
           "inverse_converged", "inverse_iterations", "inverse_s"]


def forward_errors(h: np.ndarray, J: np.ndarray, sim: dict, method: str, device: str) -> tuple[dict, dict]:
    """ε_m, ε_C, ε_D of one method against the simulation, its final-step means, and the curves to plot."""
    start = time.perf_counter()
    out = forward(h, J, method=method, order=2 if method != "plefka_t1" else 1, steps=sim["m"].shape[0],
                  device=device)
    seconds = time.perf_counter() - start
    floor = sim["floor"]
    row = {f"eps_{k}": float(np.mean((out[k] - sim[k]) ** 2)) for k in ("m", "C", "D")}
    row.update(floor_m=floor["m"], floor_C=floor["C"], floor_D=floor["D"],
               eps_m_minus_floor=row["eps_m"] - floor["m"], eps_C_minus_floor=row["eps_C"] - floor["C"],
               eps_D_minus_floor=row["eps_D"] - floor["D"], forward_s=seconds,
               mean_m_T=float(out["m"][-1].mean()), mean_C_T=float(out["C"][-1].mean()),
               mean_D_T=float(out["D"][-1].mean()))
    curves = {"m": out["m"].mean(axis=1), "C": out["C"].mean(axis=(1, 2)), "D": out["D"].mean(axis=(1, 2)),
              "final": {k: out[k][-1] for k in ("m", "C", "D")}}
    return row, curves


def inverse_errors(h: np.ndarray, J: np.ndarray, sim: dict, method: str, device: str) -> dict:
    """ε_h, ε_J of moment matching with one method on the moments averaged over steps 3..T."""
    steps = sim["m"].shape[0]
    now, prev = slice(2, steps), slice(1, steps - 1)  # drop the first two steps, as the reference does
    data = {"m": sim["m"][now].mean(0), "C": sim["C"][now].mean(0), "D": sim["D"][now].mean(0),
            "m_prev": sim["m"][prev].mean(0), "C_prev": sim["C"][prev].mean(0), "D_prev": sim["D"][prev].mean(0)}
    start = time.perf_counter()
    fit = inverse(data, method=method, order=2 if method != "plefka_t1" else 1, solver="moment-matching",
                  device=device, warn=False)
    return {"eps_h": float(np.mean((fit.h - h) ** 2)), "eps_J": float(np.mean((fit.J - J) ** 2)),
            "inverse_converged": bool(fit.converged), "inverse_iterations": int(fit.n_iter),
            "inverse_s": time.perf_counter() - start}


def write_atomically(path: Path, write) -> None:
    """Call ``write(temporary_path)`` and rename the result onto ``path``."""
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    os.close(handle)
    try:
        write(Path(name))
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(name, 0o666 & ~umask)  # mkstemp creates 0600; give the usual permissions of a new file
        os.replace(name, path)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise


def write_table(path: Path, rows: list[dict]) -> None:
    def write(target: Path) -> None:
        with open(target, "w", newline="") as stream:
            writer = csv.DictWriter(stream, fieldnames=COLUMNS, restval="")
            writer.writeheader()
            writer.writerows(rows)

    write_atomically(path, write)


def plot_forward(path: Path, rows: list[dict], critical: dict) -> None:
    """The paper's Fig. 3 layout: A–C means against t at β_c, D–F scatter at t = T, G–I errors against β̃."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(3, 3, figsize=(12, 10.5))
    sim = critical["simulation"]
    steps = np.arange(1, len(sim["m"]) + 1)
    for col, key in enumerate(("m", "C", "D")):
        truth = sim["final"][key]
        # Scatter a fixed random subset of entries (the off-diagonal ones for C), as many as fit a figure.
        entries = np.flatnonzero(~np.eye(truth.shape[0], dtype=bool)) if key == "C" else np.arange(truth.size)
        entries = np.random.default_rng(0).permutation(entries)[:20_000]
        x = truth.ravel()[entries]
        axes[0, col].plot(steps, sim[key], "k", lw=2, label="simulation")
        axes[1, col].plot([x.min(), x.max()], [x.min(), x.max()], "k", lw=0.8)
        for method, label in METHODS.items():
            curves = critical[method]
            axes[0, col].plot(steps, curves[key], label=label)
            axes[1, col].plot(x, curves["final"][key].ravel()[entries], ".", ms=1, alpha=0.4, label=label)
            chosen = [r for r in rows if r["method"] == label]
            errors = np.array([r[f"eps_{key}_minus_floor"] for r in chosen])
            errors[errors <= 0] = np.nan  # below the noise floor: nothing to draw on a log axis
            axes[2, col].semilogy([r["beta_ratio"] for r in chosen], errors, "o-", ms=3, label=label)
        axes[0, col].set(xlabel="t", ylabel=f"<{key}>_t", title=f"population mean of {key} at beta_c")
        axes[1, col].set(xlabel=f"{key} simulated (t = T{', i != k' if key == 'C' else ''})",
                         ylabel=f"{key} mean field")
        axes[2, col].set(xlabel="beta / beta_c", ylabel=f"eps_{key} - noise floor")
    axes[0, 0].legend(fontsize=8)
    fig.tight_layout()
    write_atomically(path, lambda target: fig.savefig(target, format="png", dpi=110))
    plt.close(fig)


def plot_inverse(path: Path, rows: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    for label in METHODS.values():
        chosen = [r for r in rows if r["method"] == label and r.get("eps_J") not in (None, "")]
        for ax, key in zip(axes, ("eps_h", "eps_J"), strict=True):
            ax.semilogy([r["beta_ratio"] for r in chosen], [r[key] for r in chosen], "o-", ms=3, label=label)
    for ax, key in zip(axes, ("eps_h", "eps_J"), strict=True):
        ax.set(xlabel="beta / beta_c", ylabel=key)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    write_atomically(path, lambda target: fig.savefig(target, format="png", dpi=110))
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--trials", type=int, default=2000, help="simulated trials R per β")
    parser.add_argument("--steps", type=int, default=128)
    parser.add_argument("--n-betas", type=int, default=21, help="points of 1 + 0.3·linspace(−1, 1, n)")
    parser.add_argument("--seed", type=int, default=13,
                        help="draw of sk_couplings (default 13: under the reference's sign convention, the draw "
                             "of seeds 0..31 whose simulated final <m> is closest to the paper's 0.258; "
                             "see docs/meanfield.md)")
    parser.add_argument("--inverse", action="store_true", help="also solve the inverse problem at every β")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (simulation and mean-field runs)")
    parser.add_argument("--out", type=Path, default=Path("plefka2021-results"))
    parser.add_argument("--quick", action="store_true", help="N=128, 5 β, R=1000")
    args = parser.parse_args()
    if args.quick:
        args.size, args.trials, args.n_betas = 128, 1000, 5
    if args.n_betas < 1 or args.n_betas % 2 == 0:
        parser.error("--n-betas must be odd (the grid must contain β_c itself)")
    args.out.mkdir(parents=True, exist_ok=True)
    beta_c = critical_beta()
    h0, J0 = benchmark_draw(args.size, args.seed, 1.0, flip_fields=True)
    ratios = np.round(1 + 0.3 * np.linspace(-1, 1, args.n_betas), 3)
    print(f"N={args.size}, R={args.trials}, T={args.steps}, seed {args.seed} (mean h {h0.mean():+.4f}), "
          f"beta_c={beta_c:.7f}, device {args.device}, torch threads {torch.get_num_threads()}, "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"{'b/b_c':>6} {'method':<14}{'<m>_T':>8}{'<C>_T':>9}{'<D>_T':>9}{'eps_m-fl':>10}{'eps_C-fl':>10}"
          f"{'eps_D-fl':>10}{'eps_h':>10}{'eps_J':>10}{'conv':>6}{'fwd s':>7}{'inv s':>7}")
    rows: list[dict] = []
    critical: dict = {}
    for ratio in ratios:
        beta = float(ratio) * beta_c
        h, J = beta * h0, beta * J0
        start = time.perf_counter()
        sim = simulate_moments(h, J, args.steps, args.trials, seed=1, device=args.device)
        sim_seconds = time.perf_counter() - start
        floor = sim["floor"]
        print(f"{ratio:6.3f} {'simulation':<14}{sim['m'][-1].mean():8.4f}{sim['C'][-1].mean():9.5f}"
              f"{sim['D'][-1].mean():9.5f}   floors m {floor['m']:.1e}, C {floor['C']:.1e}, D {floor['D']:.1e}; "
              f"{sim_seconds:.1f} s",
              flush=True)
        is_critical = abs(ratio - 1.0) < 1e-9
        if is_critical:
            critical["simulation"] = {"m": sim["m"].mean(axis=1), "C": sim["C"].mean(axis=(1, 2)),
                                      "D": sim["D"].mean(axis=(1, 2)),
                                      "final": {k: sim[k][-1] for k in ("m", "C", "D")}}
        for method, label in METHODS.items():
            row, curves = forward_errors(h, J, sim, method, args.device)
            if is_critical:
                critical[method] = curves
            if args.inverse:
                row.update(inverse_errors(h, J, sim, method, args.device))
            row.update(beta_ratio=float(ratio), beta=beta, method=label)
            rows.append(row)
            inverse_part = (f"{row['eps_h']:10.2e}{row['eps_J']:10.2e}{row['inverse_converged']!s:>6}"
                            if args.inverse else f"{'':>26}")
            print(f"{'':6} {label:<14}{row['mean_m_T']:8.4f}{row['mean_C_T']:9.5f}{row['mean_D_T']:9.5f}"
                  f"{row['eps_m_minus_floor']:10.2e}{row['eps_C_minus_floor']:10.2e}{row['eps_D_minus_floor']:10.2e}"
                  f"{inverse_part}{row['forward_s']:7.1f}{row.get('inverse_s', float('nan')):7.1f}", flush=True)
        del sim
        write_table(args.out / "table.csv", rows)  # rewritten after every β, so a long run leaves partial results
    # critical is filled because the odd-length grid contains ratio 1 exactly.
    plot_forward(args.out / "forward.png", rows, critical)
    if args.inverse:
        plot_inverse(args.out / "inverse.png", rows)
    print(f"wrote {args.out / 'table.csv'}, {args.out / 'forward.png'}" + (", inverse.png" if args.inverse else ""))


if __name__ == "__main__":
    main()
