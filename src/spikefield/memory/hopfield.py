"""Classical (symmetric) Hopfield network: Hebbian and pseudo-inverse storage, T ≥ 0 dynamics.

Storage rules (``Ξ`` is the P×N matrix of ±1 patterns):

* Hebbian: ``J = Ξᵀ Ξ / N`` (Hopfield 1982). Random patterns are stable up to the load
  ``α = P/N ≈ 0.138`` (Amit, Gutfreund & Sompolinsky 1985, 1987).
* Pseudo-inverse (projection): ``J = Ξᵀ (Ξ Ξᵀ)⁻¹ Ξ``, the orthogonal projector onto the span
  of the patterns (Personnaz, Guyon & Dreyfus 1985; Kanter & Sompolinsky 1987): every pattern
  is a fixed point while the patterns are linearly independent (P < N).

The diagonal is set to zero by default (self-couplings shrink basins of attraction).
"""

from __future__ import annotations

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray

from ..errors import ValidationError
from ._common import (
    MODES,
    as_spins,
    check_choice,
    check_nonnegative,
    check_positive_int,
    default_dtype,
    mattis_overlaps,
    prepare,
    resolve,
    run_dynamics,
    torch_generator,
)

__all__ = ["Hopfield", "hebbian_couplings", "pseudoinverse_couplings", "ising_energy"]

RULES = ("hebbian", "pseudoinverse")


def hebbian_couplings(patterns: torch.Tensor, *, self_couplings: bool = False) -> torch.Tensor:
    """Hebbian couplings ``J = Ξᵀ Ξ / N`` of patterns ``Ξ`` (..., P, N) -> (..., N, N)."""
    couplings = patterns.transpose(-2, -1) @ patterns / patterns.shape[-1]
    if not self_couplings:
        couplings.diagonal(dim1=-2, dim2=-1).zero_()
    return couplings


def pseudoinverse_couplings(patterns: torch.Tensor, *, self_couplings: bool = False) -> torch.Tensor:
    """Projection couplings ``J = Ξᵀ (Ξ Ξᵀ)⁺ Ξ`` of patterns ``Ξ`` (..., P, N) -> (..., N, N).

    The Moore–Penrose pseudo-inverse of the P×P overlap matrix keeps the rule defined when
    patterns are linearly dependent (then J projects on their span).
    """
    transposed = patterns.transpose(-2, -1)
    couplings = transposed @ torch.linalg.pinv(patterns @ transposed, hermitian=True) @ patterns
    if not self_couplings:
        couplings.diagonal(dim1=-2, dim2=-1).zero_()
    return couplings


def ising_energy(states: torch.Tensor, couplings: torch.Tensor, fields: torch.Tensor | None = None) -> torch.Tensor:
    """Energy ``E(s) = −½ sᵀ J s − h·s`` of states (B, N) -> (B,)."""
    energy = -0.5 * ((states @ couplings.T) * states).sum(dim=1)
    if fields is not None:
        energy = energy - states @ fields
    return energy


class Hopfield:
    """Classical Hopfield network storing ±1 patterns in symmetric couplings.

    Storage happens at construction; the couplings are kept as ``J_`` (and zero fields as
    ``h_``), the names of fitted kinetic/equilibrium Ising models, so :func:`attractors` and the
    pruning functions accept a Hopfield network and a fitted model alike.

    Parameters
    ----------
    patterns : (P, N) array of ±1 (or 0/1 spikes)
        Patterns to store.
    rule : {"hebbian", "pseudoinverse"}
        Storage rule (see module docstring).
    self_couplings : bool
        Keep the diagonal of J (default False: zero diagonal).
    device : {"auto", "cpu", "cuda"}
        Where the dynamics run.

    Attributes
    ----------
    patterns_ : (P, N) int8 array
    J_ : (N, N) float64 array
        Couplings, ``J_[i, j]`` from neuron j to neuron i (symmetric).
    h_ : (N,) float64 array
        Fields (zero).
    n_neurons_, n_patterns_ : int
    load_ : float
        ``α = P / N``.

    Examples
    --------
    >>> from spikefield.memory import Hopfield, corrupt
    >>> rng = np.random.default_rng(0)
    >>> patterns = rng.choice([-1, 1], size=(10, 200))
    >>> net = Hopfield(patterns, device="cpu")
    >>> cues = corrupt(patterns, 0.2, seed=1)
    >>> final = net.retrieve(cues, seed=2)
    >>> bool(np.all(np.diag(net.overlap(final)) > 0.95))
    True
    """

    def __init__(self, patterns: ArrayLike, rule: str = "hebbian", *, self_couplings: bool = False,
                 device: str = "auto") -> None:
        self.rule = check_choice(rule, "rule", RULES)
        self.self_couplings = bool(self_couplings)
        self.device = device
        self.patterns_ = as_spins(patterns, "patterns")
        self.n_patterns_, self.n_neurons_ = self.patterns_.shape
        self.load_ = self.n_patterns_ / self.n_neurons_
        self._device = resolve(device)
        self._dtype = default_dtype(self._device)
        # Couplings are computed in float64 whatever the device: the pseudo-inverse needs it.
        stored = prepare(self.patterns_, self._device, torch.float64)
        builder = hebbian_couplings if rule == "hebbian" else pseudoinverse_couplings
        couplings = builder(stored, self_couplings=self.self_couplings)
        self.J_ = couplings.cpu().numpy()
        self.h_ = np.zeros(self.n_neurons_)
        self._couplings = couplings.to(self._dtype)

    def __repr__(self) -> str:
        return (f"Hopfield(n_neurons={self.n_neurons_}, n_patterns={self.n_patterns_}, rule={self.rule!r}, "
                f"load={self.load_:.3f})")

    def _states(self, states: ArrayLike, name: str) -> NDArray[np.int8]:
        spins = as_spins(states, name)
        if spins.shape[1] != self.n_neurons_:
            raise ValidationError(
                f"{name} must have {self.n_neurons_} neurons (columns); got shape {spins.shape}."
            )
        return spins

    def retrieve(self, cues: ArrayLike, steps: int = 100, temperature: float = 0.0, *, mode: str = "async",
                 seed: int | None = None, return_converged: bool = False):
        """Run the dynamics from a batch of cues and return the final states.

        Parameters
        ----------
        cues : (B, N) or (N,) array of ±1
            Initial states (e.g. corrupted patterns from :func:`corrupt`).
        steps : int
            Maximum number of sweeps (each neuron updated once per sweep). At zero temperature
            the run stops early once every state is a fixed point.
        temperature : float
            ``T ≥ 0``; spins are set to ``+1`` with probability ``σ(2u/T)`` of their local field
            ``u`` (Glauber), deterministically to ``sign(u)`` at ``T = 0``.
        mode : {"async", "sync"}
            Random-order sequential updates (converge to fixed points) or all spins at once
            (can end in 2-cycles).
        seed : int, optional
            Seeds the update order and thermal noise.
        return_converged : bool
            Also return a boolean (B,) array: the state is a fixed point (always False at T > 0).

        Returns
        -------
        (B, N) int8 array of ±1 (and the converged flags if asked)
        """
        spins = self._states(cues, "cues")
        steps = check_positive_int(steps, "steps")
        temperature = check_nonnegative(temperature, "temperature")
        mode = check_choice(mode, "mode", MODES)
        generator = torch_generator(seed, self._device)
        final, converged, _ = run_dynamics(prepare(spins, self._device, self._dtype), self._couplings, None, steps,
                                           temperature=temperature, mode=mode, generator=generator)
        out = final.cpu().numpy().astype(np.int8)
        return (out, converged.cpu().numpy()) if return_converged else out

    def energy(self, states: ArrayLike) -> NDArray[np.float64]:
        """Energy ``E(s) = −½ sᵀ J s`` of states (B, N) -> (B,); it never increases under async T = 0 updates."""
        spins = self._states(states, "states")
        return ising_energy(prepare(spins, self._device, torch.float64),
                            self._couplings.to(torch.float64)).cpu().numpy()

    def overlap(self, states: ArrayLike) -> NDArray[np.float64]:
        """Overlaps ``m_μ = ξ^μ·s / N`` of states (B, N) with the stored patterns -> (B, P)."""
        return mattis_overlaps(self._states(states, "states"), self.patterns_)
