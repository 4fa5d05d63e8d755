"""Moments of binned spikes (as ±1 spins) for the mean-field inverse problem."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from .._device import resolve_device
from ..errors import RasterError, ValidationError
from ..raster import Raster

__all__ = ["statistics"]


class _Sums:
    """Running sums of spins and their products (float64, on the compute device)."""

    def __init__(self, size: int, device: torch.device) -> None:
        zeros = lambda *shape: torch.zeros(shape, dtype=torch.float64, device=device)  # noqa: E731
        self.count, self.count_pp = 0, 0
        self.cur, self.prev, self.prev_pp, self.before_pp = zeros(size), zeros(size), zeros(size), zeros(size)
        self.cur_cur, self.prev_prev, self.cur_prev, self.prev_before = (zeros(size, size) for _ in range(4))

    def add(self, block: torch.Tensor, lead: int) -> None:
        """Add the transitions whose previous rows are ``block[lead:-1]``; ``block[0]`` is the row
        before them when ``lead == 1`` (used only for the triples of ``D_prev``)."""
        prev, cur = block[lead:-1], block[lead + 1:]
        self.count += cur.shape[0]
        self.cur += cur.sum(0)
        self.prev += prev.sum(0)
        self.cur_cur += cur.T @ cur
        self.prev_prev += prev.T @ prev
        self.cur_prev += cur.T @ prev
        # triples (t−2, t−1, t): the previous row needs its own predecessor inside the segment
        middle, before = (prev, block[:-2]) if lead else (prev[1:], prev[:-1])
        self.count_pp += middle.shape[0]
        self.prev_pp += middle.sum(0)
        self.before_pp += before.sum(0)
        self.prev_before += middle.T @ before


def _blocks(raster: Raster, skip: int, chunk_bins: int) -> Any:
    """``(first_row, stop_row, lead)``: previous rows ``[a, b−1)`` of at most ``chunk_bins``
    transitions inside one segment (after its first ``skip`` bins), read with one extra row on
    each side where it exists, so every transition and triple is counted exactly once."""
    for start, stop in raster.segments:
        first = int(start) + skip
        for a in range(first, int(stop) - 1, chunk_bins):
            lead = 1 if a > first else 0
            yield a - lead, min(a + chunk_bins, int(stop) - 1) + 1, lead


def statistics(raster: Raster, *, skip: int = 0, chunk_bins: int = 65536, device: str = "cpu") -> dict[str, Any]:
    """Magnetisations, equal-time and delayed covariances of a raster, in spins ``s = 2·spike − 1``.

    Pairs ``(s_{t−1}, s_t)`` never straddle a segment boundary. "Current" moments are over the
    target bins ``t``, "previous" moments over their predecessors ``t−1``; ``D_prev`` over the
    triples ``(t−2, t−1)`` inside a segment.

    Parameters
    ----------
    raster : Raster
        Binary (or count: any spike = +1) activity.
    skip : int
        Bins dropped at the start of every segment (e.g. a transient from a fixed initial state).
    chunk_bins : int
        Rows read at a time (memory O(chunk·N + N²)).
    device : str
        Where to accumulate (``"cpu"``, ``"cuda"``, ``"auto"``).

    Returns
    -------
    dict
        ``m``, ``m_prev`` (N,); ``C``, ``C_prev``, ``D``, ``D_prev`` (N, N) float64 arrays, where
        ``D[i, l] = <s_i,t s_l,t−1> − m_i m_prev_l``; and ``n_transitions``.

    Examples
    --------
    >>> import numpy as np
    >>> from spikefield import Raster
    >>> X = Raster.from_array(np.random.default_rng(0).random((1000, 5)) < 0.3, bin_size=0.01)
    >>> stats = statistics(X)
    >>> stats["m"].shape, stats["D"].shape, stats["n_transitions"]
    ((5,), (5, 5), 999)
    """
    if not isinstance(raster, Raster):
        raise ValidationError(f"statistics expects a spikefield.Raster; got {type(raster).__name__}.")
    if isinstance(skip, bool) or not isinstance(skip, int | np.integer) or skip < 0:
        raise ValidationError(f"skip must be a non-negative integer number of bins; got {skip!r}.")
    if isinstance(chunk_bins, bool) or not isinstance(chunk_bins, int | np.integer) or chunk_bins < 2:
        raise ValidationError(f"chunk_bins must be an integer >= 2; got {chunk_bins!r}.")
    dev = resolve_device(device)
    sums = _Sums(raster.n_units, dev)
    for a, b, lead in _blocks(raster, int(skip), int(chunk_bins)):
        sums.add(raster.to_torch(dev, torch.float64, spins=True, start=a, stop=b), lead)
    if sums.count < 2:
        raise RasterError(f"statistics: the raster has {sums.count} transitions after skipping {skip} bins per "
                          "segment; at least 2 are needed.")
    return _moments(sums)


def _moments(s: _Sums) -> dict[str, Any]:
    def cov(product: torch.Tensor, left: torch.Tensor, right: torch.Tensor, n: int) -> NDArray[np.float64]:
        return (product / n - torch.outer(left / n, right / n)).cpu().numpy()

    out = {
        "m": (s.cur / s.count).cpu().numpy(),
        "m_prev": (s.prev / s.count).cpu().numpy(),
        "C": cov(s.cur_cur, s.cur, s.cur, s.count),
        "C_prev": cov(s.prev_prev, s.prev, s.prev, s.count),
        "D": cov(s.cur_prev, s.cur, s.prev, s.count),
        "n_transitions": int(s.count),
    }
    out["D_prev"] = (cov(s.prev_before, s.prev_pp, s.before_pp, s.count_pp) if s.count_pp
                     else np.zeros_like(out["D"]))
    return out
