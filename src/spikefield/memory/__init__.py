"""Hopfield-family memories and the attractors of fitted circuit models.

Symmetric Hopfield networks (equilibrium memories), asymmetric sequence networks (the kinetic
Ising model spikefield fits to recordings) and modern Hopfield networks (transformer attention)
in one place, with capacity and pruning experiments and an attractor analysis of fitted
``(h, J)``. See ``docs/memory.md`` for a tutorial.
"""

from __future__ import annotations

from ._common import as_spins, corrupt, mattis_overlaps, run_dynamics
from .attractors import attractors, pattern_overlaps, plot_attractors
from .capacity import AGS_CRITICAL_LOAD, capacity_curve, critical_load, finite_size_critical_load, plot_capacity
from .hopfield import Hopfield, hebbian_couplings, ising_energy, pseudoinverse_couplings
from .modern import ModernHopfield, modern_hopfield_energy, modern_hopfield_update
from .pruning import plot_pruning, prune, pruning_curve
from .sequence import SequenceHopfield, sequence_couplings

__all__ = [
    "Hopfield",
    "SequenceHopfield",
    "ModernHopfield",
    "modern_hopfield_update",
    "modern_hopfield_energy",
    "hebbian_couplings",
    "pseudoinverse_couplings",
    "sequence_couplings",
    "ising_energy",
    "run_dynamics",
    "corrupt",
    "as_spins",
    "mattis_overlaps",
    "capacity_curve",
    "critical_load",
    "finite_size_critical_load",
    "plot_capacity",
    "AGS_CRITICAL_LOAD",
    "prune",
    "pruning_curve",
    "plot_pruning",
    "attractors",
    "pattern_overlaps",
    "plot_attractors",
]
