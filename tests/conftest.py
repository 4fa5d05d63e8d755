"""Shared fixtures: real data location, device parametrisation, seeded generators."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

SHARED_DATA = Path(os.environ.get("SPIKEFIELD_SHARED_DATA",
                                  Path(__file__).resolve().parents[1].parent / "shared" / "data"))


def _data_dir(name: str) -> Path:
    path = SHARED_DATA / name
    if not path.is_dir():
        reason = (f"real data folder {path} is absent (set SPIKEFIELD_SHARED_DATA to the "
                  "shared/data folder to run real-data tests)")
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but {reason}")
        pytest.skip(reason)
    return path


@pytest.fixture(scope="session")
def hc_linear_track() -> Path:
    """Folder of the real CA1 linear-track recording (MatClust + Trodes position)."""
    return _data_dir("hc-linear-track")


@pytest.fixture(scope="session")
def mec_grid_cells() -> Path:
    """Folder of the real Moser-lab MEC grid-cell session."""
    return _data_dir("mec-grid-cells")


@pytest.fixture(scope="session")
def nwb_psb() -> Path:
    """Path of the real Neuropixels NWB file."""
    return _data_dir("nwb-psb-neuropixels") / "A8604-211122.nwb"


@pytest.fixture(scope="session")
def allen_couplings() -> Path:
    """Folder of the Allen nonequilibrium-MaxEnt coupling matrix."""
    return _data_dir("allen-np-couplings")


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def pytest_collection_modifyitems(config, items):
    """CUDA tests (marked ``gpu``) skip with a visible reason when no GPU is present."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device; run `pytest -m gpu` on the GPU machine")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
