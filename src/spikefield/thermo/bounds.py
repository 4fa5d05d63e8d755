"""Cheap lower bounds on the EP from lag-1 antisymmetric observables: one Newton step and the TUR.

Both need the covariance of the M = N(N-1)/2 observables ``g_ij = x_i,1 x_j,0 - x_i,0 x_j,1``, so
they cost O(T M²) and are meant for small populations (``max_observables``). Both are fitted on
the training split and **evaluated on the test split**, so they are lower bounds in expectation:

* one Newton step from λ = 0 (the "Gaussian" estimate Σ̂_g): ``λ̂ = (Cov(g) + εI)⁻¹ 2⟨g⟩``, then
  the MaxEnt objective ``λ̂ᵀ⟨g⟩ - ln⟨exp(-λ̂ᵀg)⟩`` at λ̂ (≤ Σ_g ≤ Σ);
* the multidimensional thermodynamic uncertainty relation with the mixture covariance (the mean
  of g under ``(p + p̃)/2`` is 0, so its covariance is the second-moment matrix ``S = ⟨g gᵀ⟩``):
  for the direction ``v = (S + εI)⁻¹⟨g⟩`` and ``φ = vᵀg``, ``Σ ≥ ln(1 + 2⟨φ⟩²/⟨φ²⟩)``. The
  reference code uses the forward covariance instead, which gives the larger
  ``ln((1+u)/(1-u))`` and is not guaranteed to stay below Σ (PHYSICS.md anomaly 13).
"""

from __future__ import annotations

import numpy as np
import torch

from .._device import resolve_device
from ..errors import ValidationError
from ..raster import Raster
from ._common import BlockAccumulator, EntropyProductionResult, bootstrap_means, check_raster, normalised_result
from .maxent import _test_result, _TransitionSet, split_transitions

__all__ = ["bound_entropy_production"]


def _observables(previous: torch.Tensor, current: torch.Tensor, upper: torch.Tensor) -> torch.Tensor:
    """Materialised ``g_ij`` for i < j (T x M): only for the small-N baselines."""
    i, j = upper
    return current[:, i] * previous[:, j] - previous[:, i] * current[:, j]


def bound_entropy_production(raster: Raster, method: str = "newton", *, split: str = "contiguous",
                             fractions: tuple[float, float, float] = (0.7, 0.2, 0.1), n_chunks: int = 10,
                             ridge: float = 1e-4, max_observables: int = 5000, n_blocks: int = 50,
                             n_boot: int = 1000, seed: int | None = 0, device: str = "auto",
                             chunk_bins: int = 16384) -> EntropyProductionResult:
    """One-Newton-step (``method="newton"``) or TUR (``method="tur"``) lower bound on the EP.

    Parameters
    ----------
    raster : Raster
        Binary activity.
    method : {"newton", "tur"}
    split, fractions, n_chunks, seed
        As in :func:`maxent_entropy_production` (the validation part is unused).
    ridge : float
        ε added to the covariance diagonal (1e-4, as in the reference).
    max_observables : int
        Refuse populations with more than this many pairs (the M x M covariance is the cost).
    n_blocks, n_boot : int
        Block bootstrap of the test-set value.
    device : {"auto", "cpu", "cuda"}
    chunk_bins : int
        Transitions per chunk when building covariances.

    Returns
    -------
    EntropyProductionResult
        Test-set lower bound in nats per bin / second / spike.

    Examples
    --------
    >>> import spikefield as sf
    >>> h, J = sf.simulate.sk_couplings(8, J0=0.0, Js=1.0, H0=0.0, seed=0)
    >>> X = sf.simulate.kinetic_ising(h, J, 5000, n_trials=2, seed=1)
    >>> sf.thermo.entropy_production(None, X, method="tur").is_lower_bound
    True
    """
    raster = check_raster(raster, min_transitions=10)
    if method not in ("newton", "tur"):
        raise ValidationError(f"method must be 'newton' or 'tur' for the bounds, got {method!r}.")
    if not (isinstance(ridge, int | float | np.floating) and np.isfinite(ridge) and ridge >= 0):
        raise ValidationError(f"ridge must be a finite number >= 0, got {ridge!r}.")
    n = raster.n_units
    n_obs = n * (n - 1) // 2
    if n_obs > max_observables:
        raise ValidationError(f"the {method} bound needs the covariance of {n_obs} pair observables ({n} units), "
                              f"more than max_observables={max_observables}; select fewer units or raise the limit.")
    dev = resolve_device(device)
    dtype = torch.float64
    train_rows, _, test_rows = split_transitions(raster, fractions, split, n_chunks, seed)
    spins = raster.to_spins(np.int8)
    train = _TransitionSet(spins, train_rows, dev, dtype, chunk_bins)
    test = _TransitionSet(spins, test_rows, dev, dtype, chunk_bins)
    upper = torch.triu_indices(n, n, offset=1, device=dev)
    mean = torch.zeros(n_obs, dtype=dtype, device=dev)
    second = torch.zeros((n_obs, n_obs), dtype=dtype, device=dev)
    for _, _, x0, x1 in train.chunks():
        g = _observables(x0, x1, upper)
        mean += g.sum(0)
        second += g.T @ g
    mean /= train.n
    second /= train.n
    eye = ridge * torch.eye(n_obs, dtype=dtype, device=dev)
    if method == "newton":
        # One Newton step from λ = 0: gradient 2⟨g⟩, Hessian -Cov(g) (PHYSICS.md §4.2).
        step = torch.linalg.solve(second - torch.outer(mean, mean) + eye, 2 * mean)
        multipliers = torch.zeros((n, n), dtype=dtype, device=dev)
        multipliers[upper[0], upper[1]] = step
        multipliers = multipliers - multipliers.T
        return _test_result("newton", raster, test, test.scores(multipliers), n_blocks, n_boot, seed, details={
            "multipliers": multipliers.cpu().numpy(), "ridge": ridge, "split": split})
    direction = torch.linalg.solve(second + eye, mean)
    phi = torch.cat([_observables(x0, x1, upper) @ direction for _, _, x0, x1 in test.chunks()]).cpu().numpy()
    spikes = (test.current > 0).sum(dim=1).cpu().numpy().astype(np.float64)
    acc = BlockAccumulator(test.n, n_blocks, 3)
    acc.add(0, np.stack([phi, phi**2, spikes], axis=1))
    means = acc.means()
    boot = bootstrap_means(acc.sums, acc.counts, n_boot, seed)
    value = float(np.log1p(2 * means[0] ** 2 / means[1]))
    boot_values = np.log1p(2 * boot[:, 0] ** 2 / boot[:, 1])
    return normalised_result("tur", boot_values, value, boot[:, 2], float(means[2]), raster, test.n, True,
                             details={"ridge": ridge, "split": split})
