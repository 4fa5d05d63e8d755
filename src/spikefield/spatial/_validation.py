"""Argument checks shared by the spatial modules; every message names the argument."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from ..errors import ValidationError, did_you_mean


def positive(value: Any, name: str, where: str, *, allow_zero: bool = False) -> float:
    """Return ``value`` as float, or raise naming ``name`` when it is not a positive number."""
    ok = isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)
    if ok:
        value = float(value)
        ok = np.isfinite(value) and (value >= 0 if allow_zero else value > 0)
    if not ok:
        kind = "non-negative" if allow_zero else "positive"
        raise ValidationError(f"{where}: {name} must be a {kind} finite number, got {value!r}.")
    return value


def positive_int(value: Any, name: str, where: str, *, minimum: int = 1) -> int:
    """Return ``value`` as int, or raise when it is not an integer >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValidationError(f"{where}: {name} must be an integer >= {minimum}, got {value!r}.")
    return int(value)


def choice(value: Any, name: str, where: str, choices: Iterable[Any]) -> Any:
    """Return ``value`` if it is one of ``choices``, else raise listing them."""
    choices = list(choices)
    if value not in choices:
        hint = did_you_mean(value, [c for c in choices if isinstance(c, str)]) if isinstance(value, str) else ""
        raise ValidationError(f"{where}: {name} must be one of {choices}, got {value!r}.{hint}")
    return value


def fraction(value: Any, name: str, where: str) -> float:
    """Return ``value`` if it lies strictly between 0 and 1."""
    value = positive(value, name, where)
    if value >= 1:
        raise ValidationError(f"{where}: {name} must lie in (0, 1), got {value!r}.")
    return value
