"""Shared helpers of :mod:`spikefield.memory`: validation, seeding, spin conversions, dynamics.

The dynamics kernel :func:`run_dynamics` serves every network of the package (classical,
sequence, fitted kinetic/equilibrium Ising): ``u = h + s Jᵀ`` is the local field, and a spin
becomes ``sign(u)`` at zero temperature or ``+1`` with probability ``σ(2u/T)`` at temperature
``T`` (Glauber). ``J[i, j]`` is the coupling from neuron j to neuron i, as everywhere in
spikefield.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray

from .._device import resolve_device
from ..errors import ValidationError, did_you_mean

__all__ = ["as_spins", "corrupt", "mattis_overlaps", "run_dynamics", "params_from_model"]

MODES = ("async", "sync")
ASYNC_BLOCK = 64  # neurons per BLAS block of the asynchronous sweep (any value gives the same dynamics)


def torch_generator(seed: int | None | np.random.SeedSequence, device: torch.device) -> torch.Generator:
    """A torch generator on ``device`` seeded from ``seed`` (never the global RNG)."""
    sequence = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    generator = torch.Generator(device=device)
    generator.manual_seed(int(sequence.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1)))
    return generator


def default_dtype(device: torch.device) -> torch.dtype:
    """float64 on the CPU (exact sums of ±1 terms); float32 on CUDA, where float64 is slow."""
    return torch.float64 if device.type == "cpu" else torch.float32


def as_spins(array: ArrayLike, name: str = "patterns", *, ndim: int = 2) -> NDArray[np.int8]:
    """Validate a ±1 (or 0/1 / boolean) array and return it as int8 spins.

    0/1 and boolean input is read as spikes (``1 -> +1``, ``0 -> -1``), following the spin
    convention ``σ = 2·spike − 1``.

    Examples
    --------
    >>> as_spins([[1, 0, 1]]).tolist()
    [[1, -1, 1]]
    """
    arr = np.asarray(array)
    if arr.ndim == ndim - 1 and ndim == 2:
        arr = arr[None, :]
    if arr.ndim != ndim or arr.size == 0:
        raise ValidationError(f"{name} must be a non-empty {ndim}-D array of ±1 spins; got shape {arr.shape}.")
    if arr.dtype == bool:
        return np.where(arr, 1, -1).astype(np.int8)
    if not np.issubdtype(arr.dtype, np.number):
        raise ValidationError(f"{name} must be numeric ±1 or 0/1 values; got dtype {arr.dtype}.")
    values = np.unique(arr)
    if np.all(np.isin(values, (-1, 1))):
        return arr.astype(np.int8)
    if np.all(np.isin(values, (0, 1))):
        return (2 * arr - 1).astype(np.int8)
    raise ValidationError(
        f"{name} must hold ±1 spins (or 0/1 spikes); got values {values[:6].tolist()}."
    )


def check_fraction(value: float, name: str, *, low_open: bool = False) -> float:
    """A number in [0, 1] (or (0, 1] with ``low_open``)."""
    try:
        value = float(value)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"{name} must be a number in [0, 1]; got {value!r}.") from exc
    if not (0.0 < value <= 1.0 if low_open else 0.0 <= value <= 1.0):
        interval = "(0, 1]" if low_open else "[0, 1]"
        raise ValidationError(f"{name} must lie in {interval}; got {value!r}.")
    return value


def check_positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValidationError(f"{name} must be a positive integer; got {value!r}.")
    return int(value)


def check_nonnegative(value: Any, name: str) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"{name} must be a non-negative number; got {value!r}.") from exc
    if not (np.isfinite(value) and value >= 0):
        raise ValidationError(f"{name} must be a finite non-negative number; got {value!r}.")
    return value


def check_choice(value: Any, name: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValidationError(
            f"{name} must be one of {list(choices)}; got {value!r}.{did_you_mean(value, choices)}"
        )
    return value


def corrupt(patterns: ArrayLike, flip_fraction: float, *, seed: int | None = None) -> NDArray[np.int8]:
    """Noisy cues: flip exactly ``round(flip_fraction·N)`` randomly chosen spins of each pattern.

    Parameters
    ----------
    patterns : (P, N) array of ±1 (or 0/1)
    flip_fraction : float in [0, 1]
        Fraction of spins flipped per pattern; the initial overlap is ``1 − 2·flip_fraction``.
    seed : int, optional

    Returns
    -------
    (P, N) int8 array of ±1

    Examples
    --------
    >>> cues = corrupt(np.ones((2, 10)), 0.2, seed=0)
    >>> (cues == -1).sum(axis=1).tolist()
    [2, 2]
    """
    spins = as_spins(patterns, "patterns")
    flip_fraction = check_fraction(flip_fraction, "flip_fraction")
    rng = np.random.default_rng(seed)
    n_flip = int(round(flip_fraction * spins.shape[1]))
    # argsort of uniforms gives an independent random subset per row in one vectorised call.
    order = np.argsort(rng.random(spins.shape), axis=1)[:, :n_flip]
    out = spins.copy()
    np.put_along_axis(out, order, -np.take_along_axis(out, order, axis=1), axis=1)
    return out


def mattis_overlaps(states: ArrayLike, patterns: ArrayLike) -> NDArray[np.float64]:
    """Overlaps ``m_μ = ξ^μ·s / N`` of states (..., N) with ±1 patterns (P, N) -> (..., P)."""
    states = np.asarray(states, dtype=np.float64)
    patterns = np.asarray(patterns, dtype=np.float64)
    if states.shape[-1] != patterns.shape[-1]:
        raise ValidationError(
            f"states have {states.shape[-1]} neurons but patterns have {patterns.shape[-1]}."
        )
    return states @ patterns.T / patterns.shape[-1]


def params_from_model(model_or_params: Any, name: str = "model") -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(h, J) from a fitted estimator (attributes ``h_``, ``J_``) or an ``(h, J)`` pair."""
    if hasattr(model_or_params, "J_"):
        h = getattr(model_or_params, "h_", None)
        J = np.asarray(model_or_params.J_, dtype=np.float64)
        h = np.zeros(J.shape[0]) if h is None else np.asarray(h, dtype=np.float64)
    elif isinstance(model_or_params, tuple | list) and len(model_or_params) == 2:
        h, J = (np.asarray(a, dtype=np.float64) for a in model_or_params)
    else:
        raise ValidationError(
            f"{name} must be a fitted model with h_ and J_ attributes (KineticIsing, EquilibriumIsing, "
            f"Hopfield) or an (h, J) pair; got {type(model_or_params).__name__}."
        )
    if J.ndim != 2 or J.shape[0] != J.shape[1] or h.shape != (J.shape[0],):
        raise ValidationError(
            f"{name}: expected fields h of shape (N,) and couplings J of shape (N, N); got {h.shape} and {J.shape}."
        )
    if not (np.all(np.isfinite(h)) and np.all(np.isfinite(J))):
        raise ValidationError(f"{name}: h and J must be finite.")
    return h, J


def _update(fields: torch.Tensor, previous: torch.Tensor, temperature: float,
            generator: torch.Generator | None, uniform: torch.Tensor | None = None) -> torch.Tensor:
    """New spins from local fields: sign at T = 0 (a zero field keeps the old spin), Glauber at T > 0."""
    if temperature == 0:
        return torch.where(fields == 0, previous, torch.sign(fields))
    p_up = torch.sigmoid(2.0 * fields / temperature)
    if uniform is None:
        uniform = torch.rand(p_up.shape, generator=generator, device=p_up.device, dtype=p_up.dtype)
    return torch.where(uniform < p_up, 1.0, -1.0).to(previous.dtype)


def run_dynamics(states: torch.Tensor, couplings: torch.Tensor, fields: torch.Tensor | None, steps: int, *,
                 temperature: float = 0.0, mode: str = "async",
                 generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Run ``steps`` sweeps of Hopfield/Glauber dynamics on a batch of states.

    ``sync``: all spins at once, ``s ← f(h + s Jᵀ)`` (the kinetic Ising / parallel update).
    ``async``: one sweep visits every neuron once in a random order (shared by the batch), each
    update seeing the spins already changed in the sweep (the classical Hopfield update, which
    converges to fixed points when J is symmetric with a non-negative diagonal).

    Parameters
    ----------
    states : Tensor (B, N) or (G, B, N) of ±1
        Initial states (not modified). A leading group axis G runs G networks at once (one
        coupling matrix each), which amortises Python overhead over independent trials.
    couplings : Tensor (N, N) or (G, N, N)
        ``J[i, j]``, from j to i.
    fields : Tensor (N,) or (G, N), or None
    steps : int
        Maximum number of sweeps.
    temperature : float
        0 for deterministic dynamics.
    mode : {"async", "sync"}
    generator : torch.Generator, optional
        Source of the update order and thermal noise.

    Returns
    -------
    states : Tensor shaped like ``states``
    converged : Bool tensor (B,) or (G, B)
        At ``T = 0``: the state is a fixed point (a sweep changed nothing). Always False at
        ``T > 0``, where the dynamics never stop.
    n_sweeps : int
        Sweeps run (stops early once every state is a fixed point at ``T = 0``).
    """
    grouped = states.dim() == 3
    state = (states if grouped else states[None]).clone()
    matrix = couplings if grouped else couplings[None]
    n_groups, _, n_neurons = state.shape
    if fields is None:
        bias = torch.zeros((n_groups, n_neurons), dtype=state.dtype, device=state.device)
    else:
        bias = fields if grouped else fields[None]
    runner = _run_sync if mode == "sync" else _run_async
    state, converged, n_sweeps = runner(state, matrix, bias, steps, temperature, generator)
    return (state, converged, n_sweeps) if grouped else (state[0], converged[0], n_sweeps)


def _retire(state: torch.Tensor, converged: torch.Tensor, active: torch.Tensor, current: torch.Tensor,
            done: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Store finished states and keep only the columns some group is still working on.

    At T = 0 a fixed point stays one, so finished columns leave the batch: the few slow cues
    near a capacity limit then no longer drag the whole batch through every sweep.
    ``current`` is (G, B_active, N); ``done`` is (G, B_active).
    """
    converged[:, active] |= done
    state[:, active] = current
    keep = ~done.all(dim=0)
    return active[keep], current[:, keep]


def _run_sync(state, matrix, bias, steps, temperature, generator):
    converged = torch.zeros(state.shape[:2], dtype=torch.bool, device=state.device)
    active = torch.arange(state.shape[1], device=state.device)
    current, n_sweeps = state, 0
    for n_sweeps in range(1, steps + 1):  # noqa: B007 - n_sweeps is reported
        new = _update(torch.baddbmm(bias[:, None, :], current, matrix.transpose(1, 2)), current,
                      temperature, generator)
        if temperature == 0:
            done = (new == current).all(dim=2)
            active, current = _retire(state, converged, active, new, done)
            if active.numel() == 0:
                break
        else:
            current = new
    state[:, active] = current
    return state, converged, n_sweeps


# Tests flip this to run the torch inner loop (the CUDA path) on the CPU and compare.
_FORCE_TORCH_INNER_LOOP = [False]


def _block_updates_torch(block_fields, within, spins, neurons, temperature, uniforms):
    """Sequential updates of one block's neurons, in place (torch: the CUDA path)."""
    for position, neuron in enumerate(neurons):
        new = _update(block_fields[:, position], spins[:, neuron], temperature, None,
                      None if uniforms is None else uniforms[:, position])
        delta = new - spins[:, neuron]
        spins[:, neuron] = new
        block_fields[:, position + 1:].addcmul_(within[:, position + 1:, position, None], delta[:, None, :])


def _block_updates_numpy(block_fields, within, spins, neurons, temperature, uniforms):
    """The same updates on NumPy views of the same CPU memory.

    Hand-written twin of :func:`_block_updates_torch`: each step works on a few hundred numbers,
    where a torch call's dispatch overhead (~10 µs) dominates and made the torch loop 2x slower
    than a plain NumPy loop on the CPU; NumPy's is ~1 µs. Results are identical (tested).
    """
    fields, couplings, states = block_fields.numpy(), within.numpy(), spins.numpy()
    noise = None if uniforms is None else uniforms.numpy()
    for position, neuron in enumerate(neurons):
        field, old = fields[:, position], states[:, neuron]
        if noise is None:
            # A spin flips iff its field opposes it (a zero field keeps it); near a fixed point
            # most neurons flip nowhere in the batch, and their step ends here.
            flip = field * old < 0
            if not flip.any():
                continue
            delta = np.where(flip, -2.0 * old, 0.0)
        else:
            p_up = 1.0 / (1.0 + np.exp(-2.0 * field / temperature))
            delta = np.where(noise[:, position] < p_up, 1.0, -1.0) - old
        states[:, neuron] += delta
        fields[:, position + 1:] += couplings[:, position + 1:, position, None] * delta[:, None, :]


def _run_async(state, matrix, bias, steps, temperature, generator):
    # Exactly sequential updates, organised in blocks of the random order: the fields of a
    # block's neurons come from one BLAS product with the current spins, and inside the block
    # each update corrects the fields of the block's later neurons only (a K x B rank-1 update).
    # Maintaining all N x B fields with a rank-1 update per neuron is memory-bound and ~10x
    # slower on a CPU.
    converged = torch.zeros(state.shape[:2], dtype=torch.bool, device=state.device)
    active = torch.arange(state.shape[1], device=state.device)
    # (G, N, B): a neuron's spins contiguous over the batch. clone, not contiguous(): with a size-1
    # axis the transpose already counts as contiguous and would alias ``state``.
    spins = state.transpose(1, 2).clone(memory_format=torch.contiguous_format)
    n_sweeps = 0
    for n_sweeps in range(1, steps + 1):  # noqa: B007
        before = spins.clone() if temperature == 0 else None
        order = torch.randperm(spins.shape[1], generator=generator,
                               device=spins.device if generator is None else generator.device).to(spins.device)
        for block in torch.split(order, ASYNC_BLOCK):
            rows = matrix[:, block]  # (G, K, N)
            block_fields = torch.baddbmm(bias[:, block, None], rows, spins)  # (G, K, B)
            within = rows[:, :, block]  # within[g, a, b] = J[g, block[a], block[b]]
            # Thermal noise for the whole block in one draw (one generator call per block).
            uniforms = None if temperature == 0 else torch.rand(
                block_fields.shape, generator=generator, device=spins.device, dtype=spins.dtype)
            inner = _block_updates_numpy if spins.device.type == "cpu" and not _FORCE_TORCH_INNER_LOOP[0] \
                else _block_updates_torch
            inner(block_fields, within, spins, block.tolist(), temperature, uniforms)
        if temperature == 0:
            done = (spins == before).all(dim=1)
            active, current = _retire(state, converged, active, spins.transpose(1, 2), done)
            spins = current.transpose(1, 2).clone(memory_format=torch.contiguous_format)
            if active.numel() == 0:
                break
    state[:, active] = spins.transpose(1, 2)
    return state, converged, n_sweeps


def prepare(array: ArrayLike, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    return torch.as_tensor(np.asarray(array), device=device).to(dtype)


def resolve(device: Any) -> torch.device:
    return resolve_device(device)
