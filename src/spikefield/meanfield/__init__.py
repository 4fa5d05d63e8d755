"""Plefka-family mean-field theory of kinetic Ising networks (Aguilera, Moosavi & Shimazaki 2021).

Forward problem (predict m_t, C_t, D_t from h, J), inverse problem (h, J from measured moments),
mean-field entropy production and the critical point of the benchmark ensemble. See
``docs/meanfield.md`` and PHYSICS.md §2–3.

>>> import spikefield as sf
>>> h, J = sf.simulate.sk_couplings(64, seed=0)
>>> out = sf.meanfield.forward(h, J, method="plefka2_t", steps=16)
>>> fit = sf.meanfield.inverse(out["m"][-1], out["C"][-1], out["D"][-1], method="plefka_t", order=1,
...                            m_prev=out["m"][-2], C_prev=out["C"][-2], D_prev=out["D"][-2])
"""

from .critical import critical_beta
from .entropy import entropy_production
from .forward import ForwardResult, forward
from .inverse import InverseResult, inverse
from .quadrature import gauss_hermite_rule
from .statistics import statistics
from .transition import plot_transition, reconstruct_transition

__all__ = ["forward", "ForwardResult", "inverse", "InverseResult", "statistics", "critical_beta",
           "entropy_production", "reconstruct_transition", "plot_transition", "gauss_hermite_rule"]
