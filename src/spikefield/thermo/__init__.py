"""Entropy production (time irreversibility) of neural populations.

Model-based (a kinetic Ising model's exact EP along the data), model-free (the nonequilibrium
MaxEnt lower bound, with one-Newton-step and TUR baselines), tidy per-condition / per-area tables,
EP against population size, and the exact thermodynamics of the asymmetric SK model.

>>> import spikefield as sf
>>> round(sf.thermo.asymmetric_sk(2.0).m, 4)
0.7247
"""

from __future__ import annotations

from ._common import EntropyProductionResult
from .api import METHODS, entropy_production
from .asymmetric_sk import AsymmetricSKResult, asymmetric_sk, critical_beta
from .bounds import bound_entropy_production
from .maxent import maxent_entropy_production, split_transitions
from .meanfield_ep import meanfield_entropy_production
from .model_based import model_entropy_production, transition_log_ratios
from .multipartite import MultipartiteResult, maxent_multipartite, sequential_entropy_production, sequential_glauber
from .tables import ep_by_condition, ep_vs_population_size

__all__ = [
    "METHODS",
    "EntropyProductionResult",
    "entropy_production",
    "model_entropy_production",
    "maxent_entropy_production",
    "meanfield_entropy_production",
    "bound_entropy_production",
    "transition_log_ratios",
    "split_transitions",
    "ep_by_condition",
    "ep_vs_population_size",
    "AsymmetricSKResult",
    "asymmetric_sk",
    "critical_beta",
    "MultipartiteResult",
    "sequential_glauber",
    "sequential_entropy_production",
    "maxent_multipartite",
]
