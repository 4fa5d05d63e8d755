"""Benchmark scripts that are not run by CI in full: they work end to end on small inputs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
SCRIPT = BENCHMARKS / "plefka2021.py"


def test_plefka2021_script_writes_table_and_figures(tmp_path):
    out = tmp_path / "results"
    command = [sys.executable, str(SCRIPT), "--size", "32", "--trials", "400", "--steps", "16", "--n-betas", "3",
               "--inverse", "--out", str(out)]
    finished = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr
    assert {p.name for p in out.iterdir()} == {"table.csv", "forward.png", "inverse.png"}  # no temporaries left
    table = pd.read_csv(out / "table.csv")
    assert len(table) == 3 * 4 and set(np.round(table.beta_ratio, 3)) == {0.7, 1.0, 1.3}
    assert table.inverse_converged.all()
    np.testing.assert_allclose(table.eps_C_minus_floor, table.eps_C - table.floor_C)
    # Plefka[t] and Plefka2[t] keep the correlations that TAP drops, in both directions of the problem.
    for _, at_beta in table.groupby("beta_ratio"):
        by_method = at_beta.set_index("method")
        assert by_method.loc["Plefka2[t]", "eps_C"] < by_method.loc["Plefka[t-1,t]", "eps_C"]
        assert by_method.loc["Plefka[t]", "eps_J"] < by_method.loc["Plefka[t-1,t]", "eps_J"]


def test_plefka2021_script_rejects_an_even_grid(tmp_path):
    finished = subprocess.run([sys.executable, str(SCRIPT), "--n-betas", "4", "--out", str(tmp_path)],
                              capture_output=True, text=True, timeout=120)
    assert finished.returncode != 0 and "--n-betas must be odd" in finished.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason="with CUDA the sections really run (minutes); see gpu.py")
def test_gpu_driver_reports_skips_and_time_limits(tmp_path):
    driver = BENCHMARKS / "gpu.py"
    finished = subprocess.run([sys.executable, str(driver), "--out", str(tmp_path), "--only", "thermo", "meanfield"],
                              capture_output=True, text=True, timeout=120)
    assert finished.returncode == 0, finished.stderr
    report = (tmp_path / "gpu-report.txt").read_text()
    assert "CUDA not available" in report
    assert "=== thermo: exit 0" in report and "thermo: skipped, CUDA is not available" in report
    assert "=== meanfield: exit 0" in report
    # A section that overruns its limit is stopped and reported; the run then exits non-zero.
    stopped = subprocess.run([sys.executable, str(driver), "--out", str(tmp_path), "--only", "thermo",
                              "--limit-scale", "1e-6"], capture_output=True, text=True, timeout=120)
    assert stopped.returncode == 1
    assert "=== thermo: stopped at its 0 s limit" in (tmp_path / "gpu-report.txt").read_text()
