"""Validation kernels used by the report: per-neuron likelihoods, moment matching, unit ordering.

These are independent re-implementations of the kinetic Ising likelihood (PHYSICS.md §1), kept
small on purpose: the report cross-checks the model's own ``log_likelihood`` against them.
"""

from __future__ import annotations

import numpy as np
import torch
from numpy.typing import NDArray
from scipy.ndimage import gaussian_filter1d

__all__ = ["per_neuron_log_likelihood", "independent_log_likelihood", "spin_moments", "field_peaks", "principal_axis"]

_CHUNK_BINS = 65_536


def _log_2cosh(u: torch.Tensor) -> torch.Tensor:
    # log(2 cosh u) = |u| + log1p(exp(-2|u|)), stable for large |u|.
    a = u.abs()
    return a + torch.log1p(torch.exp(-2.0 * a))


def per_neuron_log_likelihood(raster, h: NDArray, J: NDArray) -> NDArray[np.float64]:
    """Mean log-likelihood (nats per transition) of each neuron under a kinetic Ising model.

    ``L_i = <σ_i,t u_i,t − log 2cosh u_i,t>`` with ``u_t = h + J σ_{t−1}``, averaged over the
    raster's transitions (never across segment boundaries), float64 on the CPU.

    Parameters
    ----------
    raster : Raster
    h : (N,) array
        Fields.
    J : (N, N) array
        Couplings, ``J[i, j]`` from neuron j at t−1 to neuron i at t.

    Returns
    -------
    (N,) array of nats per bin.

    Examples
    --------
    >>> import numpy as np, spikefield as sf
    >>> X = sf.Raster.from_array(np.random.default_rng(0).random((500, 3)) < 0.2, 0.01)
    >>> per_neuron_log_likelihood(X, np.full(3, -0.7), np.zeros((3, 3))).shape
    (3,)
    """
    h_t = torch.as_tensor(np.asarray(h, dtype=np.float64))
    J_t = torch.as_tensor(np.asarray(J, dtype=np.float64))
    total = torch.zeros_like(h_t)
    count = 0
    for a, b in raster.iter_transitions(_CHUNK_BINS):
        block = raster.to_torch("cpu", torch.float64, spins=True, start=a, stop=b + 1)
        fields = h_t + block[:-1] @ J_t.T
        total += (block[1:] * fields - _log_2cosh(fields)).sum(dim=0)
        count += b - a
    return (total / max(count, 1)).numpy()


def independent_log_likelihood(raster, mean_spin: NDArray) -> NDArray[np.float64]:
    """Per-neuron log-likelihood (nats per transition) of independent neurons with the given
    mean spins ``m_i`` (fields ``atanh m_i``), over the same transitions as the kinetic model."""
    m = np.clip(np.asarray(mean_spin, dtype=np.float64), -1 + 1e-9, 1 - 1e-9)
    return per_neuron_log_likelihood(raster, np.arctanh(m), np.zeros((m.size, m.size)))


def spin_moments(spins_or_raster) -> dict[str, NDArray[np.float64]]:
    """Means ``m``, connected equal-time ``C`` and delayed ``D`` correlations of ±1 spins.

    ``C_ij = <σ_i,t σ_j,t> − m_i m_j`` and ``D_ij = <σ_i,t+1 σ_j,t> − m_i m_j``, where ``D`` only
    pairs bins inside one segment. Accepts a :class:`~spikefield.Raster` or a (T, N) array of
    spins (±1) or spikes (0/1, bool).
    """
    if hasattr(spins_or_raster, "iter_transitions"):
        raster = spins_or_raster
        spins = torch.as_tensor(raster.to_spins(np.float64))
        pairs = list(raster.iter_transitions(_CHUNK_BINS))
    else:
        arr = np.asarray(spins_or_raster)
        arr = np.where(arr > 0, 1.0, -1.0)
        spins = torch.as_tensor(arr)
        pairs = [(0, arr.shape[0] - 1)]
    m = spins.mean(dim=0)
    C = spins.T @ spins / spins.shape[0] - torch.outer(m, m)
    D = torch.zeros_like(C)
    n = 0
    for a, b in pairs:
        D += spins[a + 1:b + 1].T @ spins[a:b]
        n += b - a
    D = D / max(n, 1) - torch.outer(m, m)
    return {"m": m.numpy(), "C": C.numpy(), "D": D.numpy()}


def principal_axis(xy: NDArray) -> NDArray:
    """Coordinates of (T, D) points along their first principal axis (a linear track's length)."""
    centered = xy - xy.mean(axis=0)
    _, _, vt = np.linalg.svd(centered, full_matrices=False)
    return centered @ vt[0]


def field_peaks(recording, n_bins: int = 40) -> NDArray[np.float64] | None:
    """Peak position of each unit's coarse 1-D rate map (position units along the track), or None.

    2-D positions are projected on their first principal axis (a linear track); occupancy and
    spike counts are smoothed by one bin before dividing. This is only used to order units in
    figures; :mod:`spikefield.spatial` holds the full analysis.
    """
    pos = recording.position
    if pos is None or len(pos) < 10:
        return None
    valid = pos.valid_mask()
    if valid.sum() < 10:
        return None
    coords = pos.values[valid]
    linear = coords[:, 0] if coords.shape[1] == 1 else principal_axis(coords)
    edges = np.linspace(linear.min(), linear.max() + 1e-9, n_bins + 1)
    occupancy = gaussian_filter1d(np.histogram(linear, edges)[0].astype(float), 1.0)
    times = pos.timestamps[valid]
    centres = 0.5 * (edges[1:] + edges[:-1])
    peaks = np.full(recording.n_units, np.nan)
    for k, train in enumerate(recording.spike_times):
        train = train[(train >= times[0]) & (train <= times[-1])]
        if train.size == 0:
            continue
        # Position of each spike: the first valid sample at or after it (no interpolation across gaps).
        nearest = np.clip(np.searchsorted(times, train), 0, times.size - 1)
        counts = gaussian_filter1d(np.histogram(linear[nearest], edges)[0].astype(float), 1.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            rate = np.where(occupancy > 0.5, counts / occupancy, 0.0)
        if rate.max() > 0:
            peaks[k] = centres[int(np.argmax(rate))]
    return peaks
