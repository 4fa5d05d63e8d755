"""The spikefield exception family.

Every error a user can trigger derives from :class:`SpikefieldError`, so one ``except`` clause
catches them all, and each message names the file, field or argument at fault, what was found
and what was expected.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "SpikefieldError",
    "RecordingError",
    "ReaderError",
    "RasterError",
    "ValidationError",
    "DeviceError",
    "NotFittedError",
    "ConvergenceWarning",
    "did_you_mean",
]


class SpikefieldError(Exception):
    """Base class of every error raised by spikefield."""


class ValidationError(SpikefieldError, ValueError):
    """An argument has the wrong type, shape or value."""


class RecordingError(SpikefieldError, ValueError):
    """Spike trains, units, behaviour or epochs are inconsistent or malformed."""


class ReaderError(RecordingError):
    """A file or folder cannot be read: missing, truncated, corrupt or of an unknown format."""


class RasterError(SpikefieldError, ValueError):
    """Binned activity is malformed or an operation on it is impossible."""


class DeviceError(SpikefieldError, ValueError):
    """The requested compute device does not exist on this machine."""


class NotFittedError(SpikefieldError, AttributeError):
    """An estimator was used before ``fit`` was called."""


class ConvergenceWarning(UserWarning):
    """An iterative solver stopped before meeting its convergence criterion."""


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Return ``" Did you mean 'x'?"`` for the closest valid choice, or ``""``."""
    close = difflib.get_close_matches(str(name), [str(c) for c in choices], n=1)
    return f" Did you mean {close[0]!r}?" if close else ""
