"""Run every benchmark in this folder, one after another, and print their tables.

    python benchmarks/run_all.py            # full sizes (long: tens of minutes on 2 cores)
    python benchmarks/run_all.py --quick    # reduced sizes, a few minutes
    python benchmarks/run_all.py --only kinetic_ising binning

Each benchmark is a standalone script (``python benchmarks/<name>.py [--quick]``) that measures
spikefield and its named peers in the same run and prints min/median of repeats and ratios.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="pass --quick to every benchmark")
    parser.add_argument("--only", nargs="*", default=None, help="benchmark names (file stems) to run")
    args = parser.parse_args()
    # gpu.py is the device-session driver that calls the other scripts' GPU sections, not a benchmark.
    scripts = sorted(p for p in HERE.glob("*.py")
                     if p.name not in (Path(__file__).name, "gpu.py") and not p.name.startswith("_"))
    if args.only:
        scripts = [p for p in scripts if p.stem in args.only]
    failures = 0
    for script in scripts:
        cmd = [sys.executable, str(script)] + (["--quick"] if args.quick else [])
        print(f"\n=== {script.stem} ({' '.join(cmd[1:])}) ===", flush=True)
        t0 = time.perf_counter()
        code = subprocess.call(cmd)
        print(f"--- {script.stem}: exit {code}, {time.perf_counter() - t0:.1f} s", flush=True)
        failures += code != 0
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
