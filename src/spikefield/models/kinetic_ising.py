"""Kinetic Ising (asymmetric Hopfield) network fitted by exact maximum likelihood.

Model (PHYSICS.md §1.1), spins ``s = 2·spike − 1``, parallel Glauber dynamics::

    P(s_t | s_{t−1}) = Π_i exp(s_i,t u_i,t) / (2 cosh u_i,t),     u_i,t = h_i + Σ_j J_ij s_j,t−1

``J_ij`` is the directed coupling from neuron j at t−1 to neuron i at t (row = target).
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Iterable, Iterator
from typing import Any, ClassVar

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray
from torch import Tensor

from ..errors import ConvergenceWarning, RasterError, SpikefieldError, ValidationError, did_you_mean
from ..raster import Raster
from . import _logistic
from ._base import BaseModel, resolve_dtype
from .conversions import glm_to_spins, spins_to_glm

__all__ = ["KineticIsing", "METHODS"]

#: ``"ml"`` is exact maximum likelihood; the others are mean-field inversions (spikefield.meanfield).
METHODS = ("ml", "nmf", "tap", "plefka_t", "plefka_t1", "plefka2_t")
_MIN_TRANSITIONS = 10


class KineticIsing(BaseModel):
    """Kinetic Ising network: directed couplings between neurons from one bin to the next.

    Fitting maximises the exact log-likelihood of every transition ``s_{t−1} → s_t`` inside the
    raster's segments (never across a gap), for all neurons at once. Each neuron is an
    independent logistic regression on the previous bin's spikes; the solver is L-BFGS with
    one curvature history and one line search per neuron, in coordinates where the inputs are
    centred and scaled to unit variance (see ``docs/kinetic_ising.md`` for the measurements
    behind this choice). Parameters are reported in the spin convention.

    Parameters
    ----------
    method : {"ml", "nmf", "tap", "plefka_t", "plefka_t1", "plefka2_t"}
        ``"ml"``: exact maximum likelihood (default). The others invert the mean-field
        moment equations with :func:`spikefield.meanfield.inverse` (fast, approximate; ``l1``,
        ``l2`` and ``fit_self_couplings`` do not apply).
    l2 : float
        Ridge penalty ``l2/2 · Σ_ij J_ij²`` added to the mean negative log-likelihood per
        transition (nats). ``l2 = 16/(C·T)`` matches scikit-learn's ``LogisticRegression(C=C)``
        fitted per neuron on 0/1 inputs over T transitions (``w = 4J``).
    l1 : float
        Lasso penalty ``l1 · Σ_ij |J_ij|`` for sparse couplings (solved by accelerated proximal
        gradient, slower than the smooth case).
    fit_self_couplings : bool
        Fit ``J_ii`` (a neuron's own previous bin, i.e. refractoriness/bursting). If False,
        ``J_ii = 0``.
    max_iter : int
        Iteration cap of the solver.
    tol : float
        Convergence criterion: every neuron's largest absolute partial derivative of the
        penalised mean objective with respect to ``(h_i, J_i·)`` is below ``tol``. The
        derivative is a moment mismatch, ``⟨s_i,t s_j,t−1⟩ − ⟨tanh(u_i,t) s_j,t−1⟩`` (+ penalty),
        so ``tol`` is in the units of a correlation.
    device : {"auto", "cpu", "cuda"}
        Where to compute.
    dtype : {"float64", "float32", "tf32"}
        Compute precision of the big products; sums are accumulated in float64 and the
        parameters kept in float64 whatever this is. ``"tf32"`` allows TensorFloat-32 matrix
        products on CUDA during ``fit`` only (same as float32 on CPU).
    chunk_bins : int
        Bins per chunk: memory is O(chunk_bins·N + N²) whatever the recording length.

    Attributes
    ----------
    h_ : (N,) array
        Fields (nats per bin, spin convention).
    J_ : (N, N) array
        Couplings, ``J_[i, j]`` from neuron j at t−1 onto neuron i at t.
    rates_ : (N,) array
        Training spike probability per bin, per neuron (for :meth:`null_log_likelihood`).
    n_iter_ : int
        Solver iterations.
    converged_ : bool
        Whether every neuron met the criterion.
    loss_curve_ : (n_iter_,) array
        Mean penalised negative log-likelihood per transition per neuron after each iteration.
    max_gradient_ : float
        Final value of the convergence criterion.
    bin_size_ : float
        Bin width (s) of the training raster; used by :meth:`sample`.

    Examples
    --------
    >>> import spikefield as sf
    >>> h, J = sf.simulate.sk_couplings(20, Js=0.5, seed=0)
    >>> train = sf.simulate.kinetic_ising(h, J, 5000, seed=1)
    >>> model = sf.KineticIsing(device="cpu").fit(train)
    >>> model.J_.shape, model.converged_
    ((20, 20), True)
    >>> bool(model.log_likelihood(train) > model.null_log_likelihood(train))
    True
    """

    _fitted_arrays: ClassVar[tuple[str, ...]] = ("h_", "J_", "rates_", "loss_curve_")
    _fitted_scalars: ClassVar[tuple[str, ...]] = ("n_iter_", "converged_", "max_gradient_", "bin_size_")

    def __init__(self, method: str = "ml", *, l2: float = 0.0, l1: float = 0.0, fit_self_couplings: bool = True,
                 max_iter: int = 200, tol: float = 1e-6, device: str = "auto", dtype: str = "float64",
                 chunk_bins: int = 65536) -> None:
        self.method = method
        self.l2 = l2
        self.l1 = l1
        self.fit_self_couplings = fit_self_couplings
        self.max_iter = max_iter
        self.tol = tol
        self.device = device
        self.dtype = dtype
        self.chunk_bins = chunk_bins

    # ------------------------------------------------------------------ fit
    def fit(self, raster: Raster, y: Any = None) -> KineticIsing:
        """Fit fields and couplings to the transitions of ``raster``.

        Parameters
        ----------
        raster : Raster
            Binned activity (any spike in a bin = +1). Transitions are taken inside segments.
        y : ignored
            For scikit-learn compatibility.

        Returns
        -------
        KineticIsing
            ``self``, with ``h_``, ``J_``, ``n_iter_``, ``converged_`` … set.
        """
        del y
        self._validate_params()
        _check_raster(raster, "fit")
        if self.method != "ml":
            return self._fit_meanfield(raster)
        device = self._device()
        dtype, allow_tf32 = resolve_dtype(self.dtype, type(self).__name__)
        source = _TransitionSource(raster, device, dtype, self.chunk_bins)
        stats = source.statistics()
        mask = None
        if not self.fit_self_couplings:
            mask = 1.0 - torch.eye(raster.n_units, dtype=torch.float64, device=device)
        with _tf32(allow_tf32 and device.type == "cuda"):
            result = _logistic.fit_logistic(
                source.chunks, raster.n_units, raster.n_transitions, mean=stats["input_mean"],
                scale=stats["input_scale"], target_mean=stats["target_mean"], l2=float(self.l2), l1=float(self.l1),
                weight_mask=mask, max_iter=int(self.max_iter), tol=float(self.tol))
        h, J = glm_to_spins(result.bias.cpu().numpy(), result.weights.cpu().numpy())
        self._set_fitted(h, J, raster, stats["target_mean"].cpu().numpy(), result.n_iter,
                         bool(result.converged.all()), np.asarray(result.loss_curve), float(result.max_gradient.max()))
        self.n_data_passes_ = float(result.n_passes)
        if not self.converged_:
            n_bad = int((~result.converged).sum())
            warnings.warn(
                f"KineticIsing did not converge: {n_bad} of {raster.n_units} neurons still have a gradient above "
                f"tol={self.tol:g} (largest {self.max_gradient_:.2e}) after {self.n_iter_} iterations. Try a larger "
                "max_iter, dtype='float64' if you used float32, a looser tol, or some l2 (neurons that never or "
                "always spike, or perfectly predictable ones, have no finite optimum without it).",
                ConvergenceWarning, stacklevel=2)
        return self

    def _fit_meanfield(self, raster: Raster) -> KineticIsing:
        try:
            from .. import meanfield
        except ImportError as exc:  # the package is optional in a partial installation
            raise SpikefieldError(f"method={self.method!r} needs spikefield.meanfield, which failed to import "
                                  f"({exc}); use method='ml'.") from exc
        device = str(self._device())
        stats = meanfield.statistics(raster, chunk_bins=int(self.chunk_bins), device=device)
        result = meanfield.inverse(stats, method=self.method, device=device, warn=False)
        self._set_fitted(np.asarray(result.h, dtype=np.float64), np.asarray(result.J, dtype=np.float64), raster,
                         _target_rates(raster), int(result.n_iter), bool(result.converged), np.zeros(0),
                         float(max(result.residual_m, result.residual_D)))
        if not self.converged_:
            warnings.warn(f"KineticIsing(method={self.method!r}): the mean-field inversion did not converge "
                          f"({result.message}); residuals m {result.residual_m:.1e}, D {result.residual_D:.1e}. "
                          "Try method='ml' (exact) or another mean-field method.", ConvergenceWarning, stacklevel=3)
        return self

    def _set_fitted(self, h: NDArray, J: NDArray, raster: Raster, rates: NDArray, n_iter: int, converged: bool,
                    loss_curve: NDArray, max_gradient: float) -> None:
        self.h_, self.J_ = h, J
        self.rates_ = np.asarray(rates, dtype=np.float64)
        self.n_iter_, self.converged_ = int(n_iter), bool(converged)
        self.loss_curve_, self.max_gradient_ = loss_curve, max_gradient
        self.bin_size_ = float(raster.bin_size)

    # ------------------------------------------------------------------ evaluation
    def log_likelihood(self, raster: Raster) -> float:
        """Exact mean log-likelihood per transition per neuron (nats) of ``raster``'s transitions.

        Examples
        --------
        >>> import spikefield as sf
        >>> h, J = sf.simulate.sk_couplings(10, seed=0)
        >>> X = sf.simulate.kinetic_ising(h, J, 2000, seed=1)
        >>> model = sf.KineticIsing(device="cpu").fit(X)
        >>> -0.7 < model.log_likelihood(X) < 0
        True
        """
        self._check_is_fitted()
        self._check_units(raster, "log_likelihood")
        bias, weights = spins_to_glm(self.h_, self.J_)
        device = self._device()
        source = _TransitionSource(raster, device, torch.float64, int(self.chunk_bins))
        loss = _logistic.accumulate(lambda: source.chunks(None), torch.as_tensor(weights, device=device),
                                    torch.as_tensor(bias, device=device), with_grad=False).loss
        return -float(loss.sum()) / (raster.n_transitions * raster.n_units)

    def score(self, raster: Raster, y: Any = None) -> float:
        """Same as :meth:`log_likelihood` (higher is better), for scikit-learn model selection."""
        del y
        return self.log_likelihood(raster)

    def null_log_likelihood(self, raster: Raster) -> float:
        """Log-likelihood (nats per transition per neuron) of independent neurons with the training rates.

        This is the model with ``J = 0`` and each neuron's spike probability fixed at ``rates_``;
        the gain of :meth:`log_likelihood` over it is what the couplings explain.
        """
        self._check_is_fitted()
        self._check_units(raster, "null_log_likelihood")
        rates = np.clip(self.rates_, 1e-12, 1 - 1e-12)
        counts = np.zeros(raster.n_units)
        for start, stop in raster.iter_transitions(int(self.chunk_bins)):
            counts += (raster.rows(start + 1, stop + 1) > 0).sum(axis=0)
        n = raster.n_transitions
        total = counts @ np.log(rates) + (n - counts) @ np.log1p(-rates)
        return float(total) / (n * raster.n_units)

    def sample(self, n_steps: int, n_trials: int = 1, *, seed: int | None = None, init: ArrayLike | str | None = None,
               burn_in: int = 0) -> Raster:
        """Simulate the fitted network (parallel Glauber dynamics) with :func:`spikefield.simulate.kinetic_ising`.

        Parameters
        ----------
        n_steps : int
            Bins per trial.
        n_trials : int
            Independent trajectories (one Raster segment each).
        seed : int, optional
            Seed of the sampler (no global random state is used).
        init : None, "ones" or array of ±1
            Initial state; None draws it at random.
        burn_in : int
            Steps discarded before recording.

        Returns
        -------
        Raster
            ``n_trials·n_steps`` bins of width ``bin_size_``.
        """
        self._check_is_fitted()
        from .. import simulate

        return simulate.kinetic_ising(self.h_, self.J_, n_steps, n_trials, seed=seed, init=init, burn_in=burn_in,
                                      bin_size=self.bin_size_, device=str(self._device()))

    # ------------------------------------------------------------------ validation
    def _validate_params(self) -> None:
        name = type(self).__name__
        if not isinstance(self.method, str) or self.method not in METHODS:
            raise ValidationError(f"The 'method' parameter of {name} must be one of {list(METHODS)}; got "
                                  f"{self.method!r}.{did_you_mean(str(self.method), METHODS)}")
        for key in ("l2", "l1"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
                raise ValidationError(f"The '{key}' parameter of {name} must be a finite float >= 0; got {value!r}.")
        if not isinstance(self.fit_self_couplings, bool | np.bool_):
            raise ValidationError(f"The 'fit_self_couplings' parameter of {name} must be True or False; got "
                                  f"{self.fit_self_couplings!r}.")
        for key in ("max_iter", "chunk_bins"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
                raise ValidationError(f"The '{key}' parameter of {name} must be an integer >= 1; got {value!r}.")
        if isinstance(self.tol, bool) or not isinstance(self.tol, int | float) or not self.tol > 0:
            raise ValidationError(f"The 'tol' parameter of {name} must be a float > 0; got {self.tol!r}.")
        resolve_dtype(self.dtype, name)
        self._device()

    def _check_units(self, raster: Raster, where: str) -> None:
        _check_raster(raster, where)
        if raster.n_units != self.J_.shape[0]:
            raise ValidationError(f"{type(self).__name__}.{where}: raster has {raster.n_units} units, the model was "
                                  f"fitted on {self.J_.shape[0]}.")


# ---------------------------------------------------------------------- data access
def _check_raster(raster: Any, where: str) -> None:
    if not isinstance(raster, Raster):
        raise ValidationError(f"KineticIsing.{where}: expected a spikefield Raster (e.g. rec.bin(0.01)); got "
                              f"{type(raster).__name__}. Wrap arrays with sf.Raster.from_array(array, bin_size).")
    if raster.n_transitions < _MIN_TRANSITIONS:
        raise RasterError(f"KineticIsing.{where}: raster has {raster.n_transitions} transitions inside its segments; "
                          f"at least {_MIN_TRANSITIONS} are needed.")


def _target_rates(raster: Raster) -> NDArray[np.float64]:
    counts = np.zeros(raster.n_units)
    for start, stop in raster.iter_transitions():
        counts += (raster.rows(start + 1, stop + 1) > 0).sum(axis=0)
    return counts / raster.n_transitions


class _TransitionSource:
    """Chunks ``(inputs = n_{t−1}, targets = n_t)`` of 0/1 spikes, never across a segment boundary.

    A dense raster is moved to the device once as booleans (T·N bytes) and each chunk is cast
    to the compute dtype when it is used, so the float copy is only ever O(chunk·N).
    """

    def __init__(self, raster: Raster, device: torch.device, dtype: torch.dtype, chunk_bins: int) -> None:
        self.raster, self.device, self.dtype, self.chunk_bins = raster, device, dtype, chunk_bins
        self._spikes = None
        if not raster.is_sparse:
            self._spikes = torch.from_numpy(np.ascontiguousarray(raster.to_numpy() > 0)).to(device)

    def _block(self, start: int, stop: int) -> Tensor:
        if self._spikes is not None:
            return self._spikes[start:stop].to(self.dtype)
        rows = torch.from_numpy(np.ascontiguousarray(self.raster.rows(start, stop) > 0))
        return rows.to(device=self.device, dtype=self.dtype)

    def chunks(self, columns: Tensor | None) -> Iterator[tuple[Tensor, Tensor]]:
        for start, stop in self.raster.iter_transitions(self.chunk_bins):
            block = self._block(start, stop + 1)
            targets = block[1:] if columns is None else block[1:, columns]
            yield block[:-1], targets

    def statistics(self) -> dict[str, Tensor]:
        """Input means and standard deviations and target means over all transitions (float64)."""
        n_units = self.raster.n_units
        sums = torch.zeros(3, n_units, dtype=torch.float64, device=self.device)
        for inputs, targets in self.chunks(None):
            sums[0] += inputs.sum(dim=0, dtype=torch.float64)
            sums[1] += targets.sum(dim=0, dtype=torch.float64)
        n = self.raster.n_transitions
        mean = sums[0] / n
        # 0/1 inputs: the variance is m(1 − m) exactly; a silent (or always-on) input gets scale 1.
        variance = mean * (1 - mean)
        scale = torch.where(variance > 0, torch.sqrt(variance), torch.ones_like(variance))
        return {"input_mean": mean, "input_scale": scale, "target_mean": sums[1] / n}


@contextlib.contextmanager
def _tf32(enabled: bool) -> Iterable[None]:
    """Allow TF32 matrix products inside the block only, restoring the user's setting after."""
    if not enabled:
        yield
        return
    previous = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = True
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = previous
