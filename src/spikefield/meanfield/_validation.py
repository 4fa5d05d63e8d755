"""Argument checks shared by the mean-field functions (one precise message per failure)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..errors import ValidationError, did_you_mean

METHODS = ("nmf", "tap", "plefka_t", "plefka_t1", "plefka2_t")
# Accepted spellings -> canonical name; "plefka_t1_t" is the paper's name of the nMF/TAP family.
ALIASES = {"plefka_t1_t": "tap", "plefka2": "plefka2_t", "p2_t": "plefka2_t", "mf": "nmf"}
ALLOWED_ORDERS = {"nmf": (1,), "tap": (2,), "plefka_t": (1, 2), "plefka_t1": (1,), "plefka2_t": (1, 2)}


def canonical_method(method: Any, order: int | None) -> tuple[str, int]:
    """Resolve a method name (and optional order) to ``(canonical name, order)``."""
    if not isinstance(method, str):
        raise ValidationError(f"method must be a string, one of {list(METHODS)}; got {method!r}.")
    name = method.lower().replace("-", "_").replace("[", "_").replace("]", "")
    if name == "plefka_t1_t" and order == 1:
        name = "nmf"
    name = ALIASES.get(name, name)
    if name not in METHODS:
        raise ValidationError(f"method={method!r} is not a mean-field method; expected one of "
                              f"{list(METHODS)}.{did_you_mean(name, METHODS)}")
    allowed = ALLOWED_ORDERS[name]
    if order is None:
        return name, allowed[-1]
    if order not in allowed:
        raise ValidationError(f"order={order!r} is not available for method={name!r}; expected one of {list(allowed)}.")
    return name, int(order)


def as_dtype(dtype: Any) -> torch.dtype:
    """Accept ``torch.float64``/``torch.float32`` or their names."""
    table = {"float64": torch.float64, "double": torch.float64, "float32": torch.float32, "float": torch.float32}
    if isinstance(dtype, torch.dtype) and dtype in (torch.float64, torch.float32):
        return dtype
    if isinstance(dtype, str) and dtype in table:
        return table[dtype]
    raise ValidationError(f"dtype must be torch.float64 or torch.float32 (or their names); got {dtype!r}.")


def as_vector(value: Any, name: str, size: int | None = None) -> np.ndarray:
    """A finite float64 vector of length ``size``."""
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim != 1 or (size is not None and arr.size != size):
        expected = f"({size},)" if size is not None else "(N,)"
        raise ValidationError(f"{name} must have shape {expected}; got shape {arr.shape}.")
    if not np.all(np.isfinite(arr)):
        raise ValidationError(f"{name} must be finite; found {int(np.sum(~np.isfinite(arr)))} NaN/inf entries.")
    return arr


def as_square(value: Any, name: str, size: int) -> np.ndarray:
    """A finite float64 ``(size, size)`` matrix."""
    arr = np.asarray(value, dtype=np.float64)
    if arr.shape != (size, size):
        raise ValidationError(f"{name} must have shape ({size}, {size}); got shape {arr.shape}.")
    if not np.all(np.isfinite(arr)):
        raise ValidationError(f"{name} must be finite; found {int(np.sum(~np.isfinite(arr)))} NaN/inf entries.")
    return arr


def as_params(h: Any, J: Any) -> tuple[np.ndarray, np.ndarray]:
    """Fields ``h`` (N,) and couplings ``J`` (N, N), finite float64."""
    h = as_vector(h, "h")
    return h, as_square(J, "J", h.size)


def as_magnetisation(value: Any, name: str, size: int) -> np.ndarray:
    """A vector of magnetisations strictly inside ``(-1, 1)`` (needed by artanh and 1/(1−m²))."""
    arr = as_vector(value, name, size)
    if np.any(np.abs(arr) >= 1):
        raise ValidationError(f"{name} must lie strictly between -1 and 1; found {int(np.sum(np.abs(arr) >= 1))} "
                              "entries with |m| >= 1 (a neuron that never or always fires cannot be fitted).")
    return arr


def positive_int(value: Any, name: str) -> int:
    """A positive integer."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValidationError(f"{name} must be a positive integer; got {value!r}.")
    return int(value)


def positive_float(value: Any, name: str) -> float:
    """A positive finite number."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating) \
            or not np.isfinite(value) or value <= 0:
        raise ValidationError(f"{name} must be a positive number; got {value!r}.")
    return float(value)
