"""Critical point of the uniform-field asymmetric SK ensemble of the 2021 benchmark (PHYSICS.md §3.1)."""

from __future__ import annotations

import math

import numpy as np
import scipy.optimize

from ._validation import positive_float
from .quadrature import gauss_hermite_rule

__all__ = ["critical_beta"]

_RULE = gauss_hermite_rule(200)


def _order_function(beta: float, H0: float, J0: float, Js: float) -> float:
    """``(J0/H0) <tanh(β (H0 + Js z))>_z − 1`` by 200-point Gauss–Hermite quadrature.

    The integrand is analytic in z with poles at imaginary distance π/(2β Js) from the real axis,
    so the rule is exact to rounding for every Js of interest (checked against scipy's adaptive
    ``quad`` in the tests).
    """
    nodes, weights = _RULE
    return J0 / H0 * float(weights @ np.tanh(beta * (H0 + Js * nodes))) - 1.0


def critical_beta(H0: float = 0.5, J0: float = 1.0, Js: float = 0.1) -> float:
    """Inverse temperature β_c where ``(J0/H0) <tanh(β (H0 + Js z))>_z = 1``.

    For fields ``h_i ~ U(−H0, H0)`` and couplings ``J_ij ~ N(J0/N, Js²/N)``, this is the
    order–disorder point of the N→∞ theory, the "maximally fluctuating" β of the 2021 paper.

    Parameters
    ----------
    H0 : float
        Half-width of the uniform field distribution (> 0).
    J0 : float
        Mean coupling times N (> H0, else there is no transition).
    Js : float
        Coupling standard deviation times sqrt(N) (>= 0).

    Returns
    -------
    float
        β_c (dimensionless), accurate to about 1e-12.

    Examples
    --------
    >>> f"{critical_beta(0.5, 1.0, 0.1):.6f}"
    '1.110840'
    """
    H0, J0 = positive_float(H0, "H0"), positive_float(J0, "J0")
    Js = 0.0 if Js == 0 else positive_float(Js, "Js")
    limit = J0 / H0 * math.erf(H0 / (Js * math.sqrt(2))) if Js > 0 else J0 / H0
    if limit <= 1.0:
        from ..errors import ValidationError

        raise ValidationError(f"critical_beta: no transition for H0={H0}, J0={J0}, Js={Js}: (J0/H0)<sign(H0 + Js z)> "
                              f"= {limit:.4g} <= 1; expected J0 larger than H0 (and Js small enough).")
    upper = 1.0
    while _order_function(upper, H0, J0, Js) < 0:
        upper *= 2.0
    return float(scipy.optimize.brentq(_order_function, 0.0, upper, args=(H0, J0, Js), xtol=1e-14, rtol=1e-15))
