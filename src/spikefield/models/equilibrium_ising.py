"""EquilibriumIsing: the pairwise maximum-entropy (symmetric Ising / Hopfield) model of a population.

``P(s) = Z⁻¹ exp(Σ_i h_i s_i + Σ_{i<j} J_ij s_i s_j)`` over spins ``s = 2·spike − 1``, fitted to
the equal-time statistics of binned activity (PHYSICS.md §6). Bins are treated as samples of the
stationary distribution: their time order (and the raster's segments) does not matter.
"""

from __future__ import annotations

import warnings
from typing import Any, ClassVar

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray

from ..errors import ConvergenceWarning, RasterError, ValidationError, did_you_mean
from ..raster import Raster
from . import _equilibrium_closed_form as closed_form
from ._base import BaseModel, resolve_dtype
from ._equilibrium_exact import MAX_EXACT_NEURONS, energies, exact_moments, fit_exact
from ._equilibrium_mcmc import (
    boltzmann_learning,
    centred_fisher_max_eigenvalue,
    descend,
    gibbs_sweeps,
    heat_capacity,
    random_spins,
)
from ._equilibrium_rows import fit_rows, row_losses
from ._equilibrium_statistics import (
    EnergyLandscape,
    HeatCapacityCurve,
    ModelComparison,
    SpinStatistics,
    choose_triplets,
    spin_statistics,
    torch_chunks,
)

__all__ = ["EquilibriumIsing", "METHODS"]

METHODS = ("exact", "pseudolikelihood", "mpf", "nmf", "tap", "sessak-monasson", "boltzmann")
_DEFAULT_MAX_ITER = {"exact": 500, "pseudolikelihood": 200, "mpf": 200, "boltzmann": 2000}
INITS = ("sessak-monasson", "nmf", "independent")
# Bins spread over the recording from which Boltzmann learning estimates its curvature (step size):
# λ_max is a top eigenvalue well separated from the bulk, so 4096 bins give it to a few per cent.
_CURVATURE_BINS = 4096
_DEFAULT_TOL = {"exact": 1e-8, "pseudolikelihood": 1e-5, "mpf": 1e-5}
_CHUNK = 65536
_DTYPES = ("auto", "float64", "float32")


def _torch_generator(seed: int | None, device: torch.device) -> torch.Generator:
    generator = torch.Generator(device=device)
    generator.manual_seed(int(np.random.SeedSequence(seed).generate_state(1)[0]))
    return generator


def _spread_rows(raster: Raster, n_rows: int) -> torch.Tensor:
    """Up to ``n_rows`` bins spread evenly over the raster, as float64 spins on the CPU."""
    picks = np.unique(np.linspace(0, raster.n_bins - 1, min(n_rows, raster.n_bins)).astype(np.int64))
    parts = []
    for start in range(0, raster.n_bins, _CHUNK):
        stop = min(start + _CHUNK, raster.n_bins)
        local = picks[(picks >= start) & (picks < stop)] - start
        if local.size:
            parts.append(raster.to_torch("cpu", torch.float64, start=start, stop=stop)[torch.from_numpy(local)])
    return torch.cat(parts)


def _given_start(init: tuple[ArrayLike, ArrayLike], n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """User-given starting (h, J), checked against the raster's N (never repaired)."""
    fields, couplings = (np.asarray(part, dtype=np.float64) for part in init)
    if fields.shape != (n,) or couplings.shape != (n, n):
        raise ValidationError(f"The 'init' parameter of EquilibriumIsing must be (h, J) of shapes ({n},) and "
                              f"({n}, {n}) for this raster; got {fields.shape} and {couplings.shape}.")
    if not (np.all(np.isfinite(fields)) and np.all(np.isfinite(couplings))):
        raise ValidationError("The 'init' parameter of EquilibriumIsing must hold finite (h, J); got NaN or inf.")
    if not np.allclose(couplings, couplings.T, rtol=0, atol=1e-12) or np.any(np.diag(couplings) != 0):
        raise ValidationError("The 'init' parameter of EquilibriumIsing must have J symmetric with zero diagonal "
                              "(the equilibrium model's couplings).")
    return torch.as_tensor(fields), torch.as_tensor(couplings)


def _plain(value: Any) -> Any:
    """A diagnostic as plain Python numbers/lists, so ``save`` can store it in its JSON header."""
    if isinstance(value, torch.Tensor | np.ndarray | np.generic):
        return np.asarray(value.cpu() if isinstance(value, torch.Tensor) else value).tolist()
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


class EquilibriumIsing(BaseModel):
    """Pairwise maximum-entropy model ``P(s) ∝ exp(h·s + ½ sᵀJs)`` (J symmetric, zero diagonal).

    Parameters
    ----------
    method : str
        ``"pseudolikelihood"`` (default; all neurons at once, symmetrised), ``"mpf"`` (minimum
        probability flow), ``"exact"`` (maximum likelihood by enumeration, N ≤ 20), ``"nmf"``,
        ``"tap"``, ``"sessak-monasson"`` (closed forms from means and correlations) or
        ``"boltzmann"`` (persistent-chain MCMC moment matching).
    l2 : float
        Ridge on the couplings: ``l2/2 · Σ_j J_ij²`` added to each neuron's mean objective
        (pseudolikelihood, MPF), to the mean negative log-likelihood (exact, per pair i<j) or
        as weight decay (Boltzmann). Not used by closed forms (see ``shrinkage``).
    shrinkage : float
        Closed forms only: ``C ← (1 − α)C + α diag(C)`` before inverting, α in [0, 1).
    max_iter, tol : int, float, optional
        Iteration cap and tolerance; ``None`` picks the method's default. Tolerance is on the
        largest gradient entry (pseudolikelihood, MPF: 1e-5; exact: 1e-8) or on the RMS moment
        mismatch of the final check (Boltzmann: twice that mismatch's Monte Carlo standard
        error, measured from independent groups of chains). Boltzmann runs exactly ``max_iter``
        updates (default 2000).
    n_chains, sweeps_per_iter : int, int
        Boltzmann learning: parallel persistent chains and Gibbs sweeps per update. The default
        tolerance needs ``n_chains >= 2`` (its error bar is a spread across chains).
    learning_rate : float, optional
        Boltzmann learning: step size in the centred parameters, held for the first half of
        the updates and decayed to a tenth over the second. ``None`` (default) uses
        ``2/λ_max``, the stability limit of a constant step, with λ_max the largest curvature of
        the log-likelihood estimated from 4096 bins of the data; λ_max grows with N (measured
        31 / 16 / 52 at N = 20 / 50 / 100 on SK networks), so no fixed step suits every N.
    init : str or (h, J) pair
        Boltzmann learning's starting point: ``"sessak-monasson"`` (default; the closed form,
        regularised by ``shrinkage``), ``"nmf"``, ``"independent"`` (``h = artanh m``, ``J = 0``)
        or user-given fields ``(N,)`` and symmetric couplings ``(N, N)`` with zero diagonal.
    device : str
        ``"auto"``, ``"cpu"`` or ``"cuda"``.
    dtype : str
        ``"auto"`` (float64 on CPU, float32 on CUDA), ``"float64"`` or ``"float32"``: precision of
        the (samples × neurons) arrays; parameters are always accumulated in float64.
    seed : int, optional
        Seed of the Boltzmann-learning chains (fits are reproducible for a given seed, device and
        dtype).
    chunk_bins : int, optional
        Pseudolikelihood and MPF: bins per chunk of the data passes, so working memory is
        O(chunk_bins·N + N²) besides the data (held as B·N booleans). ``None`` picks ~2 MB
        chunks on a CPU (2621 bins at N = 100) and 65,536 bins on a GPU.

    Attributes
    ----------
    h_ : (N,) array
        Fields.
    J_ : (N, N) array
        Couplings, symmetric with zero diagonal.
    converged_ : bool
    n_iter_ : int
    n_features_in_ : int
    diagnostics_ : dict
        Method-specific: ``max_gradient``, ``data_passes``, ``tap_fallbacks``; Boltzmann:
        ``moment_error``, ``moment_noise``, ``tolerance``, ``r_hat`` (of the final check),
        ``learning_rate`` (the step used), ``init`` and ``history`` (plain numbers and lists;
        saved by ``save``).

    Examples
    --------
    >>> import spikefield as sf
    >>> h, J = sf.simulate.sk_couplings(20, J0=0, Js=0.5, symmetric=True, seed=0)
    >>> X = sf.simulate.equilibrium_ising(h, J, 20_000, n_chains=200, seed=1)
    >>> model = sf.EquilibriumIsing(method="pseudolikelihood").fit(X)
    >>> model.J_.shape, bool(np.allclose(model.J_, model.J_.T))
    ((20, 20), True)
    """

    _fitted_arrays: ClassVar[tuple[str, ...]] = ("h_", "J_", "unit_ids_")
    _fitted_scalars: ClassVar[tuple[str, ...]] = ("converged_", "n_iter_", "n_features_in_", "method_used_",
                                                  "diagnostics_")

    def __init__(self, method: str = "pseudolikelihood", *, l2: float = 0.0, shrinkage: float = 0.0,
                 max_iter: int | None = None, tol: float | None = None, n_chains: int = 1000,
                 sweeps_per_iter: int = 1, learning_rate: float | None = None,
                 init: str | tuple[ArrayLike, ArrayLike] = "sessak-monasson", device: str = "auto",
                 dtype: str = "auto", seed: int | None = None, chunk_bins: int | None = None) -> None:
        self.method = method
        self.l2 = l2
        self.shrinkage = shrinkage
        self.max_iter = max_iter
        self.tol = tol
        self.n_chains = n_chains
        self.sweeps_per_iter = sweeps_per_iter
        self.learning_rate = learning_rate
        self.init = init
        self.device = device
        self.dtype = dtype
        self.seed = seed
        self.chunk_bins = chunk_bins

    # ------------------------------------------------------------------ validation
    def _validate_params(self) -> None:
        name = type(self).__name__
        if self.method not in METHODS:
            raise ValidationError(f"The 'method' parameter of {name} must be one of {list(METHODS)}; "
                                  f"got {self.method!r}.{did_you_mean(str(self.method), METHODS)}")
        checks = [("l2", self.l2, lambda v: v >= 0, "a finite number >= 0"),
                  ("shrinkage", self.shrinkage, lambda v: 0 <= v < 1, "a number in [0, 1)")]
        for label in ("tol", "learning_rate"):
            if getattr(self, label) is not None:
                checks.append((label, getattr(self, label), lambda v: v > 0, "None or a finite number > 0"))
        for label, value, ok, expected in checks:
            if not (isinstance(value, int | float | np.floating | np.integer) and not isinstance(value, bool)
                    and np.isfinite(value) and ok(value)):
                raise ValidationError(f"The '{label}' parameter of {name} must be {expected}; got {value!r}.")
        for label, value in (("max_iter", self.max_iter), ("n_chains", self.n_chains),
                             ("sweeps_per_iter", self.sweeps_per_iter), ("chunk_bins", self.chunk_bins)):
            if label in ("max_iter", "chunk_bins") and value is None:
                continue
            if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < 1:
                raise ValidationError(f"The '{label}' parameter of {name} must be a positive integer; got {value!r}.")
        if isinstance(self.init, str):
            if self.init not in INITS:
                raise ValidationError(f"The 'init' parameter of {name} must be one of {list(INITS)} or an (h, J) "
                                      f"pair; got {self.init!r}.{did_you_mean(self.init, INITS)}")
        elif not (isinstance(self.init, list | tuple) and len(self.init) == 2):
            raise ValidationError(f"The 'init' parameter of {name} must be one of {list(INITS)} or an (h, J) pair "
                                  f"of arrays; got {type(self.init).__name__}.")
        self._compute_dtype(torch.device("cpu"))

    def _compute_dtype(self, device: torch.device) -> torch.dtype:
        if isinstance(self.dtype, str) and self.dtype == "auto":
            return torch.float64 if device.type == "cpu" else torch.float32
        if not (isinstance(self.dtype, torch.dtype) or self.dtype in _DTYPES):
            # resolve_dtype's own message would omit "auto" and offer "tf32", which this model ignores.
            raise ValidationError(f"The 'dtype' parameter of {type(self).__name__} must be one of {list(_DTYPES)}; "
                                  f"got {self.dtype!r}.{did_you_mean(str(self.dtype), _DTYPES)}")
        dtype, _ = resolve_dtype(self.dtype, type(self).__name__)
        return dtype

    def _validate_raster(self, raster: Any, role: str = "raster") -> Raster:
        if not isinstance(raster, Raster):
            raise ValidationError(f"{role} must be a spikefield Raster (e.g. rec.bin(0.02) or Raster.from_array); "
                                  f"got {type(raster).__name__}.")
        if raster.n_bins < 2 or raster.n_units < 2:
            raise RasterError(f"{role} needs at least 2 bins and 2 units; got {raster.n_bins} x {raster.n_units}.")
        return raster

    # ------------------------------------------------------------------ fitting
    def fit(self, raster: Raster, y: Any = None) -> EquilibriumIsing:
        """Fit fields and couplings to the equal-time statistics of ``raster``.

        Parameters
        ----------
        raster : Raster
            Binned activity; a bin with at least one spike is ``s = +1``.
        y : ignored
            Present for scikit-learn compatibility.

        Returns
        -------
        EquilibriumIsing
            ``self``, with ``h_``, ``J_``, ``converged_``, ``n_iter_`` and ``diagnostics_`` set.
        """
        del y
        self._validate_params()
        raster = self._validate_raster(raster)
        device = self._device()
        dtype = self._compute_dtype(device)
        n = raster.n_units
        if self.method == "exact" and n > MAX_EXACT_NEURONS:
            raise ValidationError(f"method='exact' enumerates 2^N states and supports N <= {MAX_EXACT_NEURONS}; "
                                  f"the raster has {n} units. Use method='pseudolikelihood' or 'boltzmann'.")
        means = raster.mean_activity() * 2 - 1
        constant = np.flatnonzero(np.abs(means) >= 1)
        if constant.size:
            ids = raster.unit_ids[constant][:10].tolist()
            raise RasterError(f"units {ids} are {'silent' if means[constant[0]] < 0 else 'active'} in every bin "
                              f"({constant.size} constant units): their fields are infinite. Remove them first, "
                              "e.g. raster.select_units(raster.mean_activity() > 0).")
        fitter = {"exact": self._fit_exact, "pseudolikelihood": self._fit_rows, "mpf": self._fit_rows,
                  "nmf": self._fit_closed_form, "tap": self._fit_closed_form,
                  "sessak-monasson": self._fit_closed_form, "boltzmann": self._fit_boltzmann}[self.method]
        fields, couplings, n_iter, converged, diagnostics = fitter(raster, device, dtype)
        couplings = (couplings + couplings.T) / 2
        couplings.fill_diagonal_(0.0)
        self.h_ = fields.double().cpu().numpy()
        self.J_ = couplings.double().cpu().numpy()
        self.unit_ids_ = np.asarray(raster.unit_ids)
        self.n_iter_ = int(n_iter)
        self.converged_ = bool(converged)
        self.n_features_in_ = n
        self.method_used_ = self.method
        self.diagnostics_ = {key: _plain(value) for key, value in diagnostics.items()}
        if not converged and self.method in _DEFAULT_MAX_ITER:
            advice = ("raise max_iter or n_chains; r_hat >= 1.1 means the chains mix slowly (strong couplings, "
                      "near a critical point): raise sweeps_per_iter, or add l2 > 0"
                      if self.method == "boltzmann" else "raise max_iter, add l2 > 0 or use more bins")
            summary = {k: v for k, v in diagnostics.items() if k != "history"}
            warnings.warn(f"EquilibriumIsing(method={self.method!r}) stopped after {n_iter} iterations without "
                          f"meeting tol ({summary}); {advice}.", ConvergenceWarning, stacklevel=2)
        return self

    def _data_moments(self, raster: Raster) -> tuple[torch.Tensor, torch.Tensor]:
        """⟨s⟩ and ⟨s sᵀ⟩ in float64 on the CPU, read in chunks of rows."""
        first = torch.zeros(raster.n_units, dtype=torch.float64)
        second = torch.zeros((raster.n_units, raster.n_units), dtype=torch.float64)
        for start in range(0, raster.n_bins, _CHUNK):
            block = raster.to_torch("cpu", torch.float64, start=start, stop=min(start + _CHUNK, raster.n_bins))
            first += block.sum(dim=0)
            second += block.T @ block
        return first / raster.n_bins, second / raster.n_bins

    def _fit_rows(self, raster: Raster, device: torch.device, dtype: torch.dtype):
        # Booleans (B·N bytes); the solver casts chunk_bins rows at a time to the compute dtype.
        spikes = raster.to_torch(device, torch.bool, spins=False)
        result = fit_rows(spikes, self.method, l2=float(self.l2), max_iter=self._max_iter(),
                          tol=self._tol(raster), memory=10,
                          chunk_bins=None if self.chunk_bins is None else int(self.chunk_bins), dtype=dtype)
        return (result.fields, result.couplings, result.n_iter, result.converged,
                {"max_gradient": result.max_gradient, "data_passes": result.n_passes})

    def _fit_exact(self, raster: Raster, device: torch.device, dtype: torch.dtype):
        means, second = self._data_moments(raster)
        result = fit_exact(means, second, l2=float(self.l2), max_iter=self._max_iter(), tol=self._tol(raster))
        return (result.fields, result.couplings, result.n_iter, result.converged,
                {"max_gradient": result.max_gradient})

    def _fit_closed_form(self, raster: Raster, device: torch.device, dtype: torch.dtype):
        means, second = self._data_moments(raster)
        covariance = closed_form.shrink(second - torch.outer(means, means), float(self.shrinkage))
        diagnostics: dict[str, Any] = {}
        if self.method == "nmf":
            fields, couplings = closed_form.naive_mean_field(means, covariance)
        elif self.method == "tap":
            fields, couplings, fallbacks = closed_form.tap(means, covariance)
            diagnostics["tap_fallbacks"] = fallbacks
        else:
            fields, couplings = closed_form.sessak_monasson(means, covariance)
        return fields, couplings, 0, True, diagnostics

    def _fit_boltzmann(self, raster: Raster, device: torch.device, dtype: torch.dtype):
        means, second = self._data_moments(raster)
        generator = _torch_generator(self.seed, device)
        fields, couplings = self._boltzmann_start(means, second)
        if self.learning_rate is None:
            curvature = centred_fisher_max_eigenvalue(_spread_rows(raster, _CURVATURE_BINS).to(device),
                                                      means.to(device), generator)
            learning_rate = 2.0 / (curvature + float(self.l2))
        else:
            learning_rate = float(self.learning_rate)
        result = boltzmann_learning(means.to(device), second.to(device), fields.to(device), couplings.to(device),
                                    n_chains=int(self.n_chains), sweeps_per_iter=int(self.sweeps_per_iter),
                                    learning_rate=learning_rate, max_iter=self._max_iter(), tol=self._tol(raster),
                                    l2=float(self.l2), generator=generator, dtype=dtype)
        diagnostics = {"moment_error": result.moment_error, "moment_noise": result.moment_noise,
                       "tolerance": result.tolerance, "r_hat": result.r_hat, "learning_rate": learning_rate,
                       "init": self.init if isinstance(self.init, str) else "given", "history": result.history}
        return result.fields, result.couplings, result.n_iter, result.converged, diagnostics

    def _boltzmann_start(self, means: torch.Tensor, second: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Starting (h, J) of Boltzmann learning, float64 on the CPU (see ``init``)."""
        n = len(means)
        if not isinstance(self.init, str):
            return _given_start(self.init, n)
        if self.init == "independent":
            return torch.atanh(means), torch.zeros((n, n), dtype=torch.float64)
        covariance = closed_form.shrink(second - torch.outer(means, means), float(self.shrinkage))
        try:
            if self.init == "nmf":
                return closed_form.naive_mean_field(means, covariance)
            return closed_form.sessak_monasson(means, covariance)
        except ValidationError as exc:
            raise ValidationError(f"init={self.init!r}: {exc} Or start from init='independent'.") from exc

    def _max_iter(self) -> int:
        return int(self.max_iter) if self.max_iter is not None else _DEFAULT_MAX_ITER.get(self.method, 1)

    def _tol(self, raster: Raster) -> float | None:
        """The tolerance; Boltzmann's default (None) is set from the final check's Monte Carlo error."""
        if self.tol is None and self.method == "boltzmann":
            return None
        if self.tol is not None:
            return float(self.tol)
        return _DEFAULT_TOL.get(self.method, 0.0)

    # ------------------------------------------------------------------ evaluation
    def _params(self, device: torch.device | str = "cpu",
                dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
        self._check_is_fitted()
        return (torch.as_tensor(self.h_, dtype=dtype, device=device),
                torch.as_tensor(self.J_, dtype=dtype, device=device))

    def _as_spins(self, states: Raster | ArrayLike, role: str = "states") -> torch.Tensor:
        self._check_is_fitted()
        if isinstance(states, Raster):
            spins = states.to_torch("cpu", torch.float64)
        else:
            arr = np.asarray(states)
            if arr.ndim == 1:
                arr = arr[None, :]
            if arr.ndim != 2 or arr.dtype.kind not in "biuf":
                raise ValidationError(f"{role} must be a Raster or a (B, N) array of ±1 spins or 0/1 spikes; "
                                      f"got shape {arr.shape}, dtype {arr.dtype}.")
            values = np.unique(arr)
            if set(values.tolist()) <= {0, 1}:
                arr = 2 * arr.astype(np.float64) - 1
            elif not set(values.tolist()) <= {-1, 1}:
                raise ValidationError(f"{role} must hold ±1 spins or 0/1 spikes; found values {values[:6].tolist()}.")
            spins = torch.as_tensor(arr, dtype=torch.float64)
        if spins.shape[1] != self.n_features_in_:
            raise ValidationError(f"{role} has {spins.shape[1]} units; the model was fitted on {self.n_features_in_}.")
        return spins

    def energy(self, states: Raster | ArrayLike) -> NDArray[np.float64]:
        """Energy ``E(s) = −h·s − ½ sᵀJs`` of each state (dimensionless; ``P ∝ e^{−E}``).

        Parameters
        ----------
        states : Raster or (B, N) array
            ±1 spins or 0/1 spikes (a 1-D array is one state).

        Returns
        -------
        (B,) array

        Examples
        --------
        >>> model.energy(np.ones(model.n_features_in_)).shape  # doctest: +SKIP
        (1,)
        """
        fields, couplings = self._params()
        spins = self._as_spins(states)
        return torch.cat([energies(c, fields, couplings) for c in torch_chunks(spins)]).numpy()

    def pseudo_log_likelihood(self, raster: Raster) -> float:
        """Mean ``ln P(s_i | s_−i)`` per bin per neuron, in nats (higher is better; held-out score).

        Examples
        --------
        >>> model.pseudo_log_likelihood(test)  # doctest: +SKIP
        -0.43
        """
        raster = self._validate_raster(raster)
        spins = self._as_spins(raster, "raster")
        fields, couplings = self._params()
        total = sum(float(row_losses(c, fields, couplings, "pseudolikelihood").sum()) * c.shape[0]
                    for c in torch_chunks(spins))
        return -total / (spins.shape[0] * spins.shape[1])

    def score(self, raster: Raster, y: Any = None) -> float:
        """Same as :meth:`pseudo_log_likelihood` (scikit-learn's higher-is-better score)."""
        del y
        return self.pseudo_log_likelihood(raster)

    def log_likelihood(self, raster: Raster) -> float:
        """Exact mean ``ln P(s)`` per bin per neuron in nats, by enumeration (N ≤ 20 only)."""
        raster = self._validate_raster(raster)
        if self.n_features_in_ > MAX_EXACT_NEURONS:
            raise ValidationError(f"log_likelihood needs the partition function, computed exactly only for N <= "
                                  f"{MAX_EXACT_NEURONS} (model has {self.n_features_in_}); use "
                                  "pseudo_log_likelihood instead.")
        fields, couplings = self._params()
        log_z = exact_moments(fields, couplings).log_partition
        return float(-(self.energy(raster).mean()) - log_z) / self.n_features_in_

    # ------------------------------------------------------------------ sampling
    def sample(self, n_samples: int, seed: int | None = None, *, n_chains: int = 100, burn_in: int = 200,
               thin: int = 1, temperature: float = 1.0) -> Raster:
        """Draw states by Gibbs sampling, ``n_chains`` chains in parallel on the model's device.

        Parameters
        ----------
        n_samples : int
            Number of states returned.
        seed : int, optional
            Seed (results are reproducible for a given seed, device and dtype).
        n_chains, burn_in, thin : int
            Parallel chains (one Raster segment each), sweeps discarded first, sweeps between
            kept states.
        temperature : float
            Sample ``P_T(s) ∝ exp(−E(s)/T)``; ``T = 1`` is the fitted model.

        Returns
        -------
        Raster
            ``n_samples`` rows, ``bin_size`` 1, spike = +1.

        Examples
        --------
        >>> X = model.sample(10_000, seed=0)  # doctest: +SKIP
        """
        for label, value in (("n_samples", n_samples), ("n_chains", n_chains), ("thin", thin)):
            if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < 1:
                raise ValidationError(f"sample: {label} must be a positive integer; got {value!r}.")
        if not isinstance(burn_in, int | np.integer) or burn_in < 0:
            raise ValidationError(f"sample: burn_in must be an integer >= 0; got {burn_in!r}.")
        if not (isinstance(temperature, int | float) and np.isfinite(temperature) and temperature > 0):
            raise ValidationError(f"sample: temperature must be a finite number > 0; got {temperature!r}.")
        device = self._device()
        dtype = self._compute_dtype(device)
        fields, couplings = self._params(device, dtype)
        generator = _torch_generator(seed, device)
        n_chains = min(int(n_chains), int(n_samples))
        per_chain = -(-int(n_samples) // n_chains)
        state = random_spins(n_chains, self.n_features_in_, generator, dtype, device)
        beta = 1.0 / temperature
        state, _, _ = gibbs_sweeps(state, fields, couplings, int(burn_in), generator, beta=beta)
        kept = torch.empty((n_chains, per_chain, self.n_features_in_), dtype=torch.bool, device=device)
        for k in range(per_chain):
            state, _, _ = gibbs_sweeps(state, fields, couplings, int(thin), generator, beta=beta)
            kept[:, k] = state > 0
        data = kept.reshape(-1, self.n_features_in_)[:n_samples].cpu().numpy()
        # Rows are chain-major and truncated, so the first chains are complete and the rest short.
        lengths = np.clip(int(n_samples) - per_chain * np.arange(n_chains), 0, per_chain)
        return Raster(data, 1.0, 0.0, unit_ids=self.unit_ids_, segments=lengths[lengths > 0])

    # ------------------------------------------------------------------ model quality
    def compare(self, raster: Raster, *, n_samples: int = 100_000, seed: int | None = 0,
                max_triplets: int = 5000, exact_below: int = 16) -> ModelComparison:
        """Observed against predicted means, correlations, P(K) and third-order correlations.

        Model statistics are exact (enumeration) when N ≤ ``min(exact_below, 20)`` (third-order ones
        from MCMC samples), otherwise from ``n_samples`` Gibbs samples (1000 chains, 200 burn-in
        sweeps, 2 sweeps apart).

        Examples
        --------
        >>> model.compare(test).summary()["covariance_r"]  # doctest: +SKIP
        0.97
        """
        raster = self._validate_raster(raster)
        spins = self._as_spins(raster, "raster")
        n = self.n_features_in_
        triplets = choose_triplets(n, max_triplets, seed)
        observed = spin_statistics(torch_chunks(spins), n, triplets)
        samples = self.sample(n_samples, seed=seed, n_chains=1000, burn_in=200, thin=2)
        predicted = spin_statistics(torch_chunks(samples.to_torch("cpu", torch.float64)), n, triplets)
        source = "mcmc"
        if n <= min(exact_below, MAX_EXACT_NEURONS):  # 2^N states: enumeration stops at 20
            fields, couplings = self._params()
            exact = exact_moments(fields, couplings)
            m = exact.means.numpy()
            predicted = SpinStatistics(m, exact.second.numpy() - np.outer(m, m), exact.count_distribution.numpy(),
                                       triplets, predicted.third_order, predicted.n_samples)
            source = "exact"
        return ModelComparison(observed, predicted, source)

    def energy_landscape(self, states: Raster | ArrayLike, *, max_flips: int | None = None) -> EnergyLandscape:
        """Local minima reached from each observed state by zero-temperature descent, and basin sizes.

        Examples
        --------
        >>> land = model.energy_landscape(test)  # doctest: +SKIP
        >>> land.minima.shape[0], land.basin_sizes[:3]  # doctest: +SKIP
        """
        spins = self._as_spins(states)
        fields, couplings = self._params()
        budget = 10 * self.n_features_in_ if max_flips is None else int(max_flips)
        minima_parts, ok = [], True
        for chunk in torch_chunks(spins):
            minima, done = descend(chunk, fields, couplings, budget)
            minima_parts.append(minima)
            ok &= done
        minima = torch.cat(minima_parts)
        unique, inverse, counts = torch.unique(minima, dim=0, return_inverse=True, return_counts=True)
        order = torch.argsort(counts, descending=True, stable=True)
        rank = torch.empty_like(order)
        rank[order] = torch.arange(len(order))
        unique = unique[order]
        return EnergyLandscape(unique.to(torch.int8).numpy(), energies(unique, fields, couplings).numpy(),
                               counts[order].numpy().astype(np.int64), rank[inverse].numpy().astype(np.int64),
                               energies(spins, fields, couplings).numpy(), bool(ok))

    def heat_capacity(self, temperatures: ArrayLike, *, n_chains: int = 50, n_sweeps: int = 400,
                      burn_in: int = 200, seed: int | None = 0, exact_below: int = 16) -> HeatCapacityCurve:
        """Heat capacity per neuron ``c(T) = Var(E)/(N T²)`` of ``P_T ∝ exp(−E/T)`` with error bars.

        Exact by enumeration when N ≤ ``min(exact_below, 20)`` (error bars 0), otherwise MCMC: all
        temperatures run as one batch of ``n_chains`` chains each; the error bar is the standard
        error across chains and ``r_hat`` the split-R̂ of the energy per temperature.

        Examples
        --------
        >>> curve = model.heat_capacity(np.linspace(0.8, 2.0, 13))  # doctest: +SKIP
        >>> curve.peak_temperature  # doctest: +SKIP
        """
        temps = np.asarray(temperatures, dtype=np.float64).reshape(-1)
        if temps.size == 0 or not np.all(np.isfinite(temps)) or np.any(temps <= 0):
            raise ValidationError(f"heat_capacity: temperatures must be finite and > 0; got {temps[:5].tolist()}.")
        # Error bars are a spread across chains and Var(E) a spread across sweeps: both need two.
        for label, value, low in (("n_chains", n_chains, 2), ("n_sweeps", n_sweeps, 2), ("burn_in", burn_in, 0)):
            if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < low:
                raise ValidationError(f"heat_capacity: {label} must be an integer >= {low}; got {value!r}.")
        self._check_is_fitted()
        n = self.n_features_in_
        if n <= min(exact_below, MAX_EXACT_NEURONS):  # 2^N states: enumeration stops at 20
            fields, couplings = self._params()
            values = np.array([exact_moments(fields, couplings, beta=1 / t).energy_variance / (n * t * t)
                               for t in temps])
            zeros = np.zeros_like(values)
            return HeatCapacityCurve(temps, values, zeros, np.ones_like(values), "exact")
        device = self._device()
        dtype = self._compute_dtype(device)
        fields, couplings = self._params(device, dtype)
        result = heat_capacity(fields, couplings, temps, n_chains=int(n_chains), n_sweeps=int(n_sweeps),
                               burn_in=int(burn_in), generator=_torch_generator(seed, device))
        return HeatCapacityCurve(result.temperatures, result.heat_capacity, result.standard_error, result.r_hat,
                                 "mcmc")
