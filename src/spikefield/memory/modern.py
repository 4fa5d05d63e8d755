"""Modern (dense, continuous) Hopfield network: the attention update of Ramsauer et al. (2021).

Energy of a state ξ (d,) given stored patterns X = (x_1 … x_K) (rows)::

    E(ξ) = −β⁻¹ log Σ_μ exp(β x_μ·ξ) + ½ ξ·ξ + β⁻¹ log K + ½ M²,    M = max_μ ‖x_μ‖

and the update that decreases it (concave–convex procedure) is ``ξ_new = Xᵀ softmax(β X ξ)``.
With separate queries Q, keys K and values V it reads ``softmax(β Q Kᵀ) V``: one step of a
transformer's attention with scale β (``torch.nn.functional.scaled_dot_product_attention``
with ``scale=β`` computes the same thing). The number of patterns retrievable in one step grows
exponentially with the dimension, far beyond the 0.14 N of the classical network.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray
from torch import nn

from ..errors import ValidationError
from ._common import check_positive_int, resolve

__all__ = ["modern_hopfield_update", "modern_hopfield_energy", "ModernHopfield"]


def _check_beta(beta: float) -> float:
    try:
        beta = float(beta)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"beta must be a positive number; got {beta!r}.") from exc
    if not (math.isfinite(beta) and beta > 0):
        raise ValidationError(f"beta must be a positive finite number; got {beta!r}.")
    return beta


def modern_hopfield_update(queries: torch.Tensor, keys: torch.Tensor, values: torch.Tensor,
                           beta: float) -> torch.Tensor:
    """One modern-Hopfield update ``softmax(β Q Kᵀ) V``, batched over leading dimensions.

    Parameters
    ----------
    queries : Tensor (..., L, d)
        States (or queries) to update.
    keys : Tensor (..., S, d)
        Stored patterns to compare against.
    values : Tensor (..., S, d_v)
        What each stored pattern returns (the keys themselves for auto-association).
    beta : float
        Inverse temperature (attention uses ``1/√d``).

    Returns
    -------
    Tensor (..., L, d_v)

    Examples
    --------
    >>> import torch
    >>> keys = torch.eye(3)
    >>> modern_hopfield_update(torch.tensor([[0.9, 0.1, 0.0]]), keys, keys, beta=50.0).round()
    tensor([[1., 0., 0.]])
    """
    beta = _check_beta(beta)
    if queries.shape[-1] != keys.shape[-1] or keys.shape[-2] != values.shape[-2]:
        raise ValidationError(
            f"queries (..., L, d), keys (..., S, d) and values (..., S, d_v) do not match: got "
            f"{tuple(queries.shape)}, {tuple(keys.shape)}, {tuple(values.shape)}."
        )
    weights = torch.softmax(beta * queries @ keys.transpose(-2, -1), dim=-1)
    return weights @ values


def modern_hopfield_energy(states: torch.Tensor, patterns: torch.Tensor, beta: float) -> torch.Tensor:
    """Energy ``−β⁻¹ lse(β X ξ) + ½‖ξ‖² + β⁻¹ log K + ½ M²`` of states (..., d) -> (...).

    ``patterns`` is (K, d); the constant terms make the energy non-negative (Ramsauer et al.
    2021, Lemma A1) and do not change its minima.
    """
    beta = _check_beta(beta)
    scores = beta * states @ patterns.T
    largest_norm = patterns.norm(dim=-1).max()
    return (-torch.logsumexp(scores, dim=-1) / beta + 0.5 * (states * states).sum(-1)
            + math.log(patterns.shape[0]) / beta + 0.5 * largest_norm**2)


class ModernHopfield(nn.Module):
    """Modern Hopfield layer: ``n_steps`` updates ``ξ ← softmax(β ξ Kᵀ) V``.

    Used two ways: as an attention-like layer (``forward(queries, keys, values)``), or as an
    associative memory over stored patterns (``patterns=...``, then ``forward(queries)`` or
    the numpy-facing :meth:`retrieve`). Keys/values are not learned here; wrap the layer with
    ``nn.Linear`` projections to obtain a trainable Hopfield layer.

    Parameters
    ----------
    beta : float
        Inverse temperature β > 0.
    n_steps : int
        Updates per call (iteration needs values = keys, i.e. auto-association).
    patterns : (K, d) array, optional
        Stored patterns, registered as a buffer (moves with ``.to(device)``).

    Examples
    --------
    >>> from spikefield.memory import ModernHopfield, corrupt
    >>> rng = np.random.default_rng(0)
    >>> patterns = rng.choice([-1, 1], size=(1000, 100))   # load α = 10, far beyond 0.14
    >>> memory = ModernHopfield(beta=1.0, patterns=patterns)
    >>> retrieved = memory.retrieve(corrupt(patterns[:20], 0.1, seed=1))
    >>> bool(np.all(retrieved == patterns[:20]))
    True
    """

    stored_patterns: torch.Tensor | None

    def __init__(self, beta: float = 1.0, n_steps: int = 1, patterns: ArrayLike | None = None) -> None:
        super().__init__()
        self.beta = _check_beta(beta)
        self.n_steps = check_positive_int(n_steps, "n_steps")
        stored = None
        if patterns is not None:
            arr = np.asarray(patterns, dtype=np.float64)
            if arr.ndim != 2 or arr.size == 0 or not np.all(np.isfinite(arr)):
                raise ValidationError(f"patterns must be a finite non-empty (K, d) array; got shape {arr.shape}.")
            stored = torch.as_tensor(arr)
        self.register_buffer("stored_patterns", stored)

    def extra_repr(self) -> str:
        shape = None if self.stored_patterns is None else tuple(self.stored_patterns.shape)
        return f"beta={self.beta}, n_steps={self.n_steps}, stored_patterns={shape}"

    def forward(self, queries: torch.Tensor, keys: torch.Tensor | None = None,
                values: torch.Tensor | None = None) -> torch.Tensor:
        """Update ``queries`` (..., L, d); keys/values default to the stored patterns."""
        if keys is None:
            if self.stored_patterns is None:
                raise ValidationError("keys must be given: this ModernHopfield stores no patterns.")
            keys = self.stored_patterns.to(queries.dtype)
        values = keys if values is None else values
        if self.n_steps > 1 and values.shape != keys.shape:
            raise ValidationError(
                f"n_steps={self.n_steps} iterates the update, which needs values shaped like keys "
                f"{tuple(keys.shape)}; got {tuple(values.shape)}."
            )
        state = queries
        for _ in range(self.n_steps):
            state = modern_hopfield_update(state, keys, values, self.beta)
        return state

    def energy(self, states: torch.Tensor) -> torch.Tensor:
        """Energy of states (..., d) with respect to the stored patterns (see :func:`modern_hopfield_energy`)."""
        if self.stored_patterns is None:
            raise ValidationError("energy needs stored patterns: build ModernHopfield(patterns=...).")
        return modern_hopfield_energy(states, self.stored_patterns.to(states.dtype), self.beta)

    @torch.no_grad()
    def retrieve(self, cues: ArrayLike, *, binarize: bool = True, device: str = "auto",
                 batch_size: int = 4096) -> NDArray:
        """Retrieve stored patterns from cues (B, d) (numpy in, numpy out).

        ``binarize=True`` returns ``sign`` of the updated states as int8 (±1 patterns);
        otherwise the continuous states (float64). Cues are processed in batches of
        ``batch_size`` so the (B, K) similarity matrix stays bounded.
        """
        if self.stored_patterns is None:
            raise ValidationError("retrieve needs stored patterns: build ModernHopfield(patterns=...).")
        arr = np.asarray(cues, dtype=np.float64)
        arr = arr[None, :] if arr.ndim == 1 else arr
        if arr.ndim != 2 or arr.shape[1] != self.stored_patterns.shape[1]:
            raise ValidationError(f"cues must be (B, {self.stored_patterns.shape[1]}); got shape {arr.shape}.")
        target = resolve(device)
        dtype = torch.float64 if target.type == "cpu" else torch.float32
        keys = self.stored_patterns.to(target, dtype)
        batch_size = check_positive_int(batch_size, "batch_size")
        outputs = []
        for start in range(0, arr.shape[0], batch_size):
            chunk = torch.as_tensor(arr[start:start + batch_size], device=target, dtype=dtype)
            outputs.append(self.forward(chunk, keys).cpu())
        states = torch.cat(outputs).numpy().astype(np.float64)
        return np.where(states >= 0, 1, -1).astype(np.int8) if binarize else states
