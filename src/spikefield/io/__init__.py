"""Readers: every supported format becomes a :class:`~spikefield.Recording`.

``spikefield.read(path)`` sniffs the format; ``format=`` forces one. Each reader lives in its own
module and is registered in :data:`FORMATS` with a cheap ``sniff(path) -> bool`` test.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ReaderError, did_you_mean
from ..recording import Recording

__all__ = ["read", "FORMATS", "detect_format"]


@dataclass(frozen=True)
class _Format:
    module: str
    reader: str
    sniffer: str
    description: str

    def load(self, attr: str):
        return getattr(importlib.import_module(f"spikefield.io.{self.module}"), attr)


#: Registered formats, tried in this order when sniffing.
FORMATS: dict[str, _Format] = {
    "nwb": _Format("nwb", "read_nwb", "sniff", "NWB 2.x file (.nwb, HDF5) with a Units table"),
    "phy": _Format("phy", "read_phy", "sniff", "phy / Kilosort output folder (spike_times.npy, spike_clusters.npy)"),
    "matclust": _Format("matclust", "read_matclust", "sniff",
                        "Frank-lab MatClust spikes.mat (+ Trodes .videoPositionTracking) folder or file"),
    "moser": _Format("moser", "read_moser", "sniff",
                     "Moser-lab grid-cell session: <session>_pos.mat + <session>_TxxCy.mat per cell"),
}


def detect_format(path: str | Path) -> str:
    """Name of the format of ``path``, by sniffing each registered reader in turn."""
    path = Path(path)
    if not path.exists():
        raise ReaderError(f"{path}: no such file or folder.")
    for name, fmt in FORMATS.items():
        try:
            if fmt.load(fmt.sniffer)(path):
                return name
        except (OSError, ValueError, ImportError):
            continue
    listing = "\n".join(f"  - {k}: {v.description}" for k, v in FORMATS.items())
    raise ReaderError(
        f"{path}: not a recognised recording format. Supported formats:\n{listing}\n"
        "Pass format=... to force one, or build a Recording with Recording.from_arrays()."
    )


def read(path: str | Path, format: str | None = None, **options: Any) -> Recording:
    """Read a recording file or folder into a :class:`~spikefield.Recording`.

    Parameters
    ----------
    path : str or Path
        An NWB file, a phy/Kilosort folder, a MatClust folder or a Moser-lab session folder.
    format : str, optional
        Force a format (one of :data:`FORMATS`) instead of sniffing.
    **options
        Passed to the format's reader (e.g. ``good_only=True`` for phy, ``pixels_per_cm=`` for
        uncalibrated position).

    Examples
    --------
    >>> import spikefield as sf
    >>> rec = sf.read("../shared/data/nwb-psb-neuropixels/A8604-211122.nwb")  # doctest: +SKIP
    """
    path = Path(path)
    if format is None:
        format = detect_format(path)
    elif format not in FORMATS:
        raise ReaderError(
            f"format={format!r} is not supported; choose one of {sorted(FORMATS)}."
            f"{did_you_mean(format, FORMATS)}"
        )
    if not path.exists():
        raise ReaderError(f"{path}: no such file or folder.")
    fmt = FORMATS[format]
    return fmt.load(fmt.reader)(path, **options)
