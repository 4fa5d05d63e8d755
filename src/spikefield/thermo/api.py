"""One entry point for every EP estimator: :func:`entropy_production`."""

from __future__ import annotations

from typing import Any

from ..errors import ValidationError, did_you_mean
from ..raster import Raster
from ._common import EntropyProductionResult
from .bounds import bound_entropy_production
from .maxent import maxent_entropy_production
from .meanfield_ep import meanfield_entropy_production
from .model_based import model_entropy_production

__all__ = ["entropy_production", "METHODS"]

METHODS = ("model", "meanfield", "maxent", "newton", "tur")


def entropy_production(model: Any, raster: Raster, method: str = "model", **options: Any) -> EntropyProductionResult:
    """Entropy production of population activity, from a fitted model or from the spikes alone.

    Parameters
    ----------
    model : KineticIsing, object with ``h_``/``J_``, ``(h, J)`` tuple, or None
        Needed for ``method="model"`` and ``"meanfield"``; must be None for the model-free methods.
    raster : Raster
        Binned activity (a spike = +1 spin); transitions never cross segment boundaries.
    method : {"model", "meanfield", "maxent", "newton", "tur"}
        ``"model"``: exact kinetic-Ising EP along the data (:func:`model_entropy_production`).
        ``"meanfield"``: the model's stationary EP ``Σ (J−Jᵀ)_ij D_ij`` with D predicted by a
        Plefka-family approximation, ``approximation="plefka2_t"`` by default
        (:func:`meanfield_entropy_production`).
        ``"maxent"``: nonequilibrium-MaxEnt lower bound (:func:`maxent_entropy_production`).
        ``"newton"`` / ``"tur"``: cheaper, looser lower bounds (:func:`bound_entropy_production`).
    **options
        Passed to the method's function (e.g. ``areas=``, ``form=`` for "model"; ``split=``,
        ``patience=``, ``device=`` for "maxent").

    Returns
    -------
    EntropyProductionResult
        ``ep_per_bin``, ``ep_per_second``, ``ep_per_spike``, ``stderr`` and diagnostics.

    Examples
    --------
    >>> import spikefield as sf
    >>> h, J = sf.simulate.sk_couplings(10, J0=0.0, Js=1.0, H0=0.0, seed=0)
    >>> X = sf.simulate.kinetic_ising(h, J, 4000, n_trials=2, seed=1)
    >>> exact = sf.thermo.entropy_production((h, J), X)
    >>> bound = sf.thermo.entropy_production(None, X, method="maxent")
    >>> bound.ep_per_bin < exact.ep_per_bin + 3 * exact.stderr
    True
    """
    if method not in METHODS:
        raise ValidationError(f"method must be one of {list(METHODS)}, got {method!r}.{did_you_mean(method, METHODS)}")
    if method in ("model", "meanfield"):
        if model is None:
            raise ValidationError(f"method={method!r} needs a fitted model (KineticIsing, object with h_/J_, or "
                                  "(h, J)); got None. Use method='maxent' to estimate the EP from the spikes alone.")
        if method == "meanfield":
            return meanfield_entropy_production(model, raster, **options)
        return model_entropy_production(model, raster, **options)
    if model is not None:
        raise ValidationError(f"method={method!r} is model-free and takes model=None; got {type(model).__name__}.")
    if method == "maxent":
        return maxent_entropy_production(raster, **options)
    return bound_entropy_production(raster, method, **options)
