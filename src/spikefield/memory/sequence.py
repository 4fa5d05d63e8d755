"""Asymmetric (sequence) Hopfield network — a kinetic Ising model that stores a sequence.

Couplings (Sompolinsky & Kanter 1986; Kleinfeld 1986; for the parallel update used here,
Düring, Coolen & Sherrington 1998)::

    J = (1/N) Σ_μ ξ^{μ+1} ξ^{μ ᵀ}  +  λ (1/N) Σ_μ ξ^μ ξ^{μ ᵀ}

With parallel (synchronous) zero-temperature dynamics ``s_{t+1} = sign(h + J s_t)`` the state
steps from ``ξ^μ`` to ``ξ^{μ+1}``. At temperature T the parallel Glauber dynamics
``P(s_i,t+1 = +1) = σ(2 u_i / T)`` is exactly the kinetic Ising model of spikefield with
parameters ``(h/T, J/T)``; :meth:`SequenceHopfield.to_kinetic_ising_params` and
:meth:`SequenceHopfield.from_kinetic_ising` convert between the two.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray

from ..errors import ValidationError
from ._common import (
    as_spins,
    check_nonnegative,
    check_positive_int,
    default_dtype,
    mattis_overlaps,
    params_from_model,
    prepare,
    resolve,
    run_dynamics,
    torch_generator,
)

__all__ = ["SequenceHopfield", "sequence_couplings"]


def sequence_couplings(sequence: torch.Tensor, *, cyclic: bool = False, symmetric_strength: float = 0.0,
                       self_couplings: bool = False) -> torch.Tensor:
    """Couplings ``J = (1/N) Σ_μ ξ^{μ+1} ξ^{μᵀ} + λ (1/N) Σ_μ ξ^μ ξ^{μᵀ}`` of a sequence (..., P, N).

    With ``cyclic=True`` the last pattern leads back to the first.
    """
    n_neurons = sequence.shape[-1]
    successors = torch.roll(sequence, -1, dims=-2) if cyclic else sequence[..., 1:, :]
    predecessors = sequence if cyclic else sequence[..., :-1, :]
    couplings = successors.transpose(-2, -1) @ predecessors / n_neurons
    if symmetric_strength:
        couplings = couplings + symmetric_strength * (sequence.transpose(-2, -1) @ sequence) / n_neurons
    if not self_couplings:
        couplings.diagonal(dim1=-2, dim2=-1).zero_()
    return couplings


class SequenceHopfield:
    """Asymmetric Hopfield network that recalls a stored sequence of ±1 patterns in order.

    Parameters
    ----------
    sequence : (P, N) array of ±1 (or 0/1)
        Patterns in the order they should be recalled (P ≥ 2).
    cyclic : bool
        Also store the transition from the last pattern back to the first (a limit cycle).
    symmetric_strength : float
        λ ≥ 0, weight of the symmetric (Hebbian) part; it stabilises each pattern for a while
        under asynchronous dynamics but slows parallel recall.
    self_couplings : bool
        Keep the diagonal of J (default False).
    device : {"auto", "cpu", "cuda"}

    Attributes
    ----------
    sequence_ : (P, N) int8 array or None
        The stored sequence (None for a network built by :meth:`from_kinetic_ising`).
    J_ : (N, N) float64 array
        Couplings, ``J_[i, j]`` from neuron j at t−1 to neuron i at t.
    h_ : (N,) float64 array
        Fields (zero unless built from a kinetic Ising model).

    Examples
    --------
    >>> from spikefield.memory import SequenceHopfield, corrupt
    >>> rng = np.random.default_rng(0)
    >>> sequence = rng.choice([-1, 1], size=(5, 300))
    >>> net = SequenceHopfield(sequence, device="cpu")
    >>> trajectory = net.recall(corrupt(sequence[0], 0.1, seed=1), steps=4)
    >>> overlaps = net.overlap(trajectory[0])          # (steps + 1, P)
    >>> np.argmax(overlaps, axis=1).tolist()
    [0, 1, 2, 3, 4]
    """

    def __init__(self, sequence: ArrayLike, *, cyclic: bool = False, symmetric_strength: float = 0.0,
                 self_couplings: bool = False, device: str = "auto") -> None:
        self.cyclic = bool(cyclic)
        self.symmetric_strength = check_nonnegative(symmetric_strength, "symmetric_strength")
        self.self_couplings = bool(self_couplings)
        self.device = device
        spins = as_spins(sequence, "sequence")
        if spins.shape[0] < 2:
            raise ValidationError(f"sequence must hold at least 2 patterns (rows); got shape {spins.shape}.")
        self.sequence_ = spins
        self._device = resolve(device)
        couplings = sequence_couplings(prepare(spins, self._device, torch.float64), cyclic=self.cyclic,
                                       symmetric_strength=self.symmetric_strength,
                                       self_couplings=self.self_couplings)
        self._set_params(np.zeros(spins.shape[1]), couplings.cpu().numpy())

    def _set_params(self, fields: NDArray[np.float64], couplings: NDArray[np.float64]) -> None:
        self.h_ = fields
        self.J_ = couplings
        self.n_neurons_ = couplings.shape[0]
        dtype = default_dtype(self._device)
        self._fields = prepare(fields, self._device, dtype)
        self._couplings = prepare(couplings, self._device, dtype)

    def __repr__(self) -> str:
        length = None if self.sequence_ is None else self.sequence_.shape[0]
        return f"SequenceHopfield(n_neurons={self.n_neurons_}, sequence_length={length}, cyclic={self.cyclic})"

    # ------------------------------------------------------------------ kinetic Ising
    def to_kinetic_ising_params(self, temperature: float = 1.0) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Kinetic Ising ``(h, J)`` whose parallel Glauber dynamics is this network at temperature T.

        ``P(s_i,t = +1 | s_{t−1}) = σ(2 (h_i + Σ_j J_ij s_j,t−1))`` with ``(h, J) = (h_/T, J_/T)``;
        feed them to :func:`spikefield.simulate.kinetic_ising` or compare with a fitted
        ``KineticIsing``.
        """
        temperature = check_nonnegative(temperature, "temperature")
        if temperature == 0:
            raise ValidationError("temperature must be > 0 for kinetic Ising parameters (T = 0 is deterministic).")
        return self.h_ / temperature, self.J_ / temperature

    @classmethod
    def from_kinetic_ising(cls, model: Any, *, temperature: float = 1.0, sequence: ArrayLike | None = None,
                           device: str = "auto") -> SequenceHopfield:
        """Network with the couplings of a kinetic Ising model (fitted ``KineticIsing`` or ``(h, J)``).

        The result runs the model's own dynamics at ``temperature=1`` (``recall(...,
        temperature=1.0)`` samples the model) and its zero-temperature limit at
        ``temperature=0``. ``temperature`` here scales the parameters:
        ``(h_, J_) = T·(h, J)``, the inverse of :meth:`to_kinetic_ising_params`.

        Parameters
        ----------
        model : fitted estimator with ``h_`` and ``J_``, or an ``(h, J)`` pair
        temperature : float
        sequence : (P, N) array, optional
            Patterns to measure overlaps against (e.g. population vectors along a track).
        """
        fields, couplings = params_from_model(model, "model")
        temperature = check_nonnegative(temperature, "temperature")
        if temperature == 0:
            raise ValidationError("temperature must be > 0 (it scales the model's parameters); "
                                  "use recall(..., temperature=0) for the deterministic limit.")
        net = cls.__new__(cls)
        net.cyclic, net.symmetric_strength, net.self_couplings, net.device = False, 0.0, True, device
        net._device = resolve(device)
        net.sequence_ = None
        if sequence is not None:
            net.sequence_ = as_spins(sequence, "sequence")
            if net.sequence_.shape[1] != couplings.shape[0]:
                raise ValidationError(f"sequence must have {couplings.shape[0]} columns (the model's neurons); "
                                      f"got shape {net.sequence_.shape}.")
        net._set_params(fields * temperature, couplings * temperature)
        return net

    # ------------------------------------------------------------------ dynamics
    def recall(self, cues: ArrayLike, steps: int | None = None, temperature: float = 0.0, *,
               seed: int | None = None) -> NDArray[np.int8]:
        """Parallel dynamics from a batch of cues; returns every visited state.

        Parameters
        ----------
        cues : (B, N) or (N,) array of ±1
        steps : int, optional
            Number of parallel updates (default: sequence length − 1, one step per transition).
        temperature : float
            0 for deterministic recall; T > 0 samples the kinetic Ising model ``(h_/T, J_/T)``.
        seed : int, optional

        Returns
        -------
        (B, steps + 1, N) int8 array
            The trajectory, starting with the cues.
        """
        spins = as_spins(cues, "cues")
        if spins.shape[1] != self.n_neurons_:
            raise ValidationError(f"cues must have {self.n_neurons_} neurons (columns); got shape {spins.shape}.")
        if steps is None:
            if self.sequence_ is None:
                raise ValidationError("steps must be given for a network built without a sequence.")
            steps = self.sequence_.shape[0] - 1
        steps = check_positive_int(steps, "steps")
        temperature = check_nonnegative(temperature, "temperature")
        generator = torch_generator(seed, self._device)
        state = prepare(spins, self._device, self._couplings.dtype)
        trajectory = torch.empty((steps + 1, *state.shape), dtype=torch.int8, device=self._device)
        trajectory[0] = state.to(torch.int8)
        for step in range(1, steps + 1):
            state, _, _ = run_dynamics(state, self._couplings, self._fields, 1, temperature=temperature,
                                       mode="sync", generator=generator)
            trajectory[step] = state.to(torch.int8)
        return trajectory.transpose(0, 1).cpu().numpy()

    def overlap(self, states: ArrayLike, patterns: ArrayLike | None = None) -> NDArray[np.float64]:
        """Overlaps ``ξ^μ·s / N`` of states (..., N) with the stored sequence (or ``patterns``) -> (..., P)."""
        reference = self.sequence_ if patterns is None else as_spins(patterns, "patterns")
        if reference is None:
            raise ValidationError("patterns must be given: this network was built without a sequence.")
        return mattis_overlaps(np.asarray(states), reference)
