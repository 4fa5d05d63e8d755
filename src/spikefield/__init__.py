"""spikefield: neural population recordings to statistical-physics circuit models.

The public API is what this module exports; see the README and ``docs/`` for a tour.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from . import simulate
from .errors import (
    ConvergenceWarning,
    DeviceError,
    NotFittedError,
    RasterError,
    ReaderError,
    RecordingError,
    SpikefieldError,
    ValidationError,
)
from .io import read
from .raster import Raster
from .recording import Recording
from .timeseries import TimeSeries

# Heavier sub-packages and estimators load on first use: ``sf.meanfield`` or
# ``sf.KineticIsing`` import their module then, which keeps ``import spikefield`` fast.
_LAZY = {
    "KineticIsing": ("spikefield.models.kinetic_ising", "KineticIsing"),
    "EquilibriumIsing": ("spikefield.models.equilibrium_ising", "EquilibriumIsing"),
    "meanfield": ("spikefield.meanfield", None),
    "thermo": ("spikefield.thermo", None),
    "spatial": ("spikefield.spatial", None),
    "memory": ("spikefield.memory", None),
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        module_name, attr = _LAZY[name]
        module = importlib.import_module(module_name)
        value = module if attr is None else getattr(module, attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'spikefield' has no attribute {name!r}")


try:
    __version__ = version("spikefield")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

__all__ = [
    "__version__",
    "read",
    "Recording",
    "Raster",
    "TimeSeries",
    "simulate",
    "SpikefieldError",
    "RecordingError",
    "ReaderError",
    "RasterError",
    "ValidationError",
    "DeviceError",
    "NotFittedError",
    "ConvergenceWarning",
    "KineticIsing",
    "EquilibriumIsing",
    "meanfield",
    "thermo",
    "spatial",
    "memory",
]
