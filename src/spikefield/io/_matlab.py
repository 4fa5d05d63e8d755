"""MAT-file loading shared by the lab-format readers, with one-line :class:`ReaderError` messages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import scipy.io

from ..errors import ReaderError

#: First bytes of every MATLAB 5 / 7 / 7.3 MAT-file ("MATLAB 5.0 MAT-file, ..." text header).
MAT_MAGIC = b"MATLAB"


def is_mat_file(path: Path) -> bool:
    """True when ``path`` is a file starting with the MAT-file text header (never raises)."""
    try:
        with path.open("rb") as handle:
            return handle.read(len(MAT_MAGIC)) == MAT_MAGIC
    except OSError:
        return False


def load_mat(path: Path, *, squeeze_me: bool = False) -> dict[str, Any]:
    """Load a MAT-file's variables (``__header__`` and friends removed).

    MATLAB 5/7 files go through :func:`scipy.io.loadmat`; v7.3 (HDF5) files holding plain numeric
    arrays are read with h5py (arrays transposed back to MATLAB's row/column order).

    Raises
    ------
    ReaderError
        When the file is missing, not a MAT-file, or truncated/corrupt.
    """
    if not path.is_file():
        raise ReaderError(f"{path}: no such file; expected a MATLAB .mat file.")
    try:
        raw = scipy.io.loadmat(str(path), squeeze_me=squeeze_me)
    except NotImplementedError:  # scipy's message for v7.3 (HDF5) files
        return _load_mat_v73(path)
    except Exception as exc:  # scipy raises ValueError, OSError, IndexError, MatReadError... on damaged files
        size = path.stat().st_size
        raise ReaderError(
            f"{path}: cannot be read as a MATLAB 5/7 MAT-file ({size:,} bytes; {exc}); the file is "
            "truncated, corrupt or of another type: copy it again from its source."
        ) from exc
    return {k: v for k, v in raw.items() if not k.startswith("__")}


def _load_mat_v73(path: Path) -> dict[str, Any]:
    import h5py

    out: dict[str, Any] = {}
    try:
        with h5py.File(path, "r") as handle:
            for name, item in handle.items():
                if isinstance(item, h5py.Dataset) and item.dtype.kind in "fiub":
                    out[name] = np.asarray(item[()]).T  # HDF5 stores MATLAB arrays transposed
    except OSError as exc:
        raise ReaderError(f"{path}: MATLAB v7.3 (HDF5) file cannot be opened ({exc}); it is truncated "
                          "or corrupt: copy it again from its source.") from exc
    return out


def require(variables: dict[str, Any], path: Path, names: tuple[str, ...], what: str) -> tuple[str, Any]:
    """Return ``(name, value)`` of the first of ``names`` present, else a ReaderError naming them."""
    for name in names:
        if name in variables:
            return name, variables[name]
    found = sorted(variables) or ["no variables"]
    raise ReaderError(
        f"{path}: no variable {' or '.join(repr(n) for n in names)} ({what}); found {found}. "
        "Is this the right file for this format?"
    )


def as_vector(value: Any, path: Path, name: str) -> np.ndarray:
    """A MAT numeric array of shape (n,), (n, 1), (1, n) or (0, 0) as a float64 vector."""
    arr = np.asarray(value)
    if arr.dtype.kind not in "fiub":
        raise ReaderError(f"{path}: variable {name!r} holds {arr.dtype} values; expected numbers.")
    if arr.size == 0:
        return np.zeros(0, dtype=np.float64)
    if arr.ndim > 2 or (arr.ndim == 2 and min(arr.shape) != 1):
        raise ReaderError(f"{path}: variable {name!r} has shape {arr.shape}; expected a vector (n x 1 or 1 x n).")
    return arr.astype(np.float64).reshape(-1)
