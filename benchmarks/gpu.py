"""Every GPU measurement the open issues ask for, in one prepared run for a device session.

    python benchmarks/gpu.py --out "$OUT" --only tests thermo equilibrium meanfield   # call 1: 420 s of limits
    python benchmarks/gpu.py --out "$OUT" --only kinetic plefka2021                   # call 2: 330 s
    python benchmarks/gpu.py --section meanfield                   # one section in this process

Sections (issue: what is measured), in the default order, with the time limit each gets:

    tests        (all)  pytest -m gpu: CUDA paths against float64 CPU references           90 s
    thermo       (#4)   MaxEnt EP, N = 1000, 10^6 transitions (target: under a minute)      60 s
    equilibrium  (#8)   pseudolikelihood N = 1000 on 10^6 samples (target 30 s);
                        Boltzmann learning N = 1000                                        150 s
    meanfield    (#7)   forward timing of every method, N = 512 (full history) and
                        N = 4096 (final step only)                                         120 s
    kinetic      (#9)   KineticIsing N = 1000, T = 2^20 in float32 and TF32, TFLOP/s,
                        nemos peer when installed, N = 8000 memory                         150 s
    plefka2021   (#7)   Fig. 3 at N = 512 with R = 10^5 trials from the GPU sampler, with
                        the inverse problem (its table is rewritten after every β, so a
                        run stopped at the limit keeps the β values it finished)           180 s

Each section runs in its own process group with its own time limit (the whole group is killed
at the limit), so one that hangs or runs out of memory does not cost the others. The report
(``gpu-report.txt`` under ``--out``) is appended to as each section finishes, so a run cut short
still returns what it measured. The limits add up to 12.5 minutes: with a 15-minute device budget
that includes the machine's start, split them over two calls as above (``--limit-scale`` shrinks
them all). Without CUDA every section says it was skipped.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
LIMITS = {"tests": 90, "thermo": 60, "equilibrium": 150, "meanfield": 120, "kinetic": 150, "plefka2021": 180}


def _device_line() -> str:
    """torch, CUDA and the GPU, asked in a child process: a CUDA context in this driver would hold
    GPU memory for the whole run."""
    script = ("import torch\n"
              "if not torch.cuda.is_available():\n"
              "    print(f'torch {torch.__version__}: CUDA not available')\n"
              "else:\n"
              "    p = torch.cuda.get_device_properties(0)\n"
              "    print(f'torch {torch.__version__}, CUDA {torch.version.cuda}, {p.name}, '\n"
              "          f'{p.total_memory / 2**30:.0f} GiB')\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    return (done.stdout or done.stderr).strip()


def _run_limited(command: list[str], limit: float) -> tuple[str, int | None]:
    """Run ``command`` in its own process group; past ``limit`` seconds kill the whole group.

    Returns the output and the exit code (None when stopped). Killing the group matters: the
    ``tests`` and ``plefka2021`` sections start a grandchild, which would otherwise keep the GPU
    busy while the next section is timed.
    """
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"}, start_new_session=True)
    try:
        output, _ = process.communicate(timeout=limit)
        return output, process.returncode
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        return output, None


def run_section(name: str, out: Path) -> None:
    """Run one section in this process (the driver calls this in a child process)."""
    import torch

    sys.path.insert(0, str(HERE))
    if name != "tests" and not torch.cuda.is_available():
        print(f"{name}: skipped, CUDA is not available on this machine.")
        return
    if name == "tests":
        raise SystemExit(subprocess.call([sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider",
                                          str(ROOT / "tests")], cwd=ROOT))
    if name == "thermo":
        import thermo

        thermo.section_gpu()
    elif name == "equilibrium":
        import equilibrium_ising

        equilibrium_ising.section_cuda()
        boltzmann_fit(1000, "cuda")
    elif name == "meanfield":
        import meanfield

        meanfield.time_forward(512, steps=128, repeats=3, device="cuda")
        meanfield.time_forward(4096, steps=128, repeats=3, device="cuda", history=False)
    elif name == "plefka2021":
        raise SystemExit(subprocess.call([sys.executable, str(HERE / "plefka2021.py"), "--device", "cuda",
                                          "--trials", "100000", "--inverse", "--out", str(out / "plefka2021")]))
    elif name == "kinetic":
        import kinetic_ising

        kinetic_ising.gpu_section(quick=False)
    else:
        raise SystemExit(f"unknown section {name!r}; expected one of {list(LIMITS)}")


def boltzmann_fit(n: int, device: str, n_samples: int = 100_000) -> None:
    """Boltzmann learning on samples of a symmetric SK model (the #8 benchmark's ensemble), timed."""
    import numpy as np
    import torch

    import spikefield as sf
    from spikefield.models.equilibrium_ising import EquilibriumIsing

    print(f"\n== {device}: Boltzmann learning, N={n}, {n_samples:.0e} samples ==", flush=True)
    h, J = sf.simulate.sk_couplings(n, J0=0.0, Js=1.0, H0=0.5, symmetric=True, seed=0)
    teacher = EquilibriumIsing(device=device)
    teacher.h_, teacher.J_, teacher.n_features_in_, teacher.unit_ids_ = h, J, n, np.arange(n)
    X = teacher.sample(n_samples, seed=1, n_chains=min(10_000, n_samples), burn_in=200, thin=2)
    synchronize = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    synchronize()
    start = time.perf_counter()
    model = EquilibriumIsing(method="boltzmann", device=device, dtype="float32").fit(X)
    synchronize()
    seconds = time.perf_counter() - start
    sys.path.insert(0, str(HERE))
    from equilibrium_ising import accuracy

    r, rms = accuracy(J, model.J_)
    print(f"  boltzmann {device} float32: {seconds:.1f} s, r {r:.4f}, rmsJ {rms:.4f}, iterations {model.n_iter_}, "
          f"converged {model.converged_}, " + ", ".join(f"{key} {model.diagnostics_[key]:.4g}" for key in
                                                          ("moment_error", "tolerance", "r_hat")), flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("gpu-results"), help="folder for the report and figures")
    parser.add_argument("--only", nargs="*", choices=list(LIMITS), help="sections to run (default: all)")
    parser.add_argument("--section", choices=list(LIMITS), help="run one section in this process")
    parser.add_argument("--limit-scale", type=float, default=1.0, help="multiply every section's time limit")
    args = parser.parse_args()
    args.out = args.out.resolve()  # the sections run with the repository root as working directory
    args.out.mkdir(parents=True, exist_ok=True)
    if args.section:
        run_section(args.section, args.out)
        return 0
    report = args.out / "gpu-report.txt"
    failures = 0
    with report.open("a") as log:
        log.write(f"# {time.strftime('%Y-%m-%d %H:%M:%S')} {_device_line()}\n")
        for name in args.only or list(LIMITS):
            limit = LIMITS[name] * args.limit_scale
            start = time.perf_counter()
            output, code = _run_limited([sys.executable, __file__, "--section", name, "--out", str(args.out)], limit)
            status = f"exit {code}" if code is not None else f"stopped at its {limit:.0f} s limit"
            failures += code != 0
            block = f"\n=== {name}: {status}, {time.perf_counter() - start:.1f} s ===\n{output}"
            print(block, flush=True)
            log.write(block)
            log.flush()
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
