"""Ground-truth generators: SK couplings, kinetic and equilibrium Ising sampling, place cells.

Everything is seeded (``seed`` is an int or a :class:`numpy.random.Generator`-compatible seed)
and never touches global random state. Physics conventions follow ``PHYSICS.md`` §1 and §3.1:
spins ``s = 2*spike - 1``; ``J[i, j]`` is the coupling from j at t-1 to i at t.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray

from ._device import resolve_device
from .errors import ValidationError
from .raster import Raster
from .recording import Recording
from .timeseries import TimeSeries

__all__ = ["sk_couplings", "kinetic_ising", "equilibrium_ising", "place_cells", "PlaceCellSimulation"]


def _check_positive_int(value: int, name: str) -> int:
    if not isinstance(value, int | np.integer) or value < 1:
        raise ValidationError(f"{name} must be a positive integer, got {value!r}.")
    return int(value)


def _check_non_negative_int(value: int, name: str) -> int:
    if not isinstance(value, int | np.integer) or value < 0:
        raise ValidationError(f"{name} must be a non-negative integer, got {value!r}.")
    return int(value)


def _torch_generator(seed: int | None, device: torch.device) -> torch.Generator:
    gen = torch.Generator(device=device)
    gen.manual_seed(int(np.random.SeedSequence(seed).generate_state(1)[0]))
    return gen


def _check_params(h: ArrayLike, J: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    h = np.asarray(h, dtype=np.float64)
    J = np.asarray(J, dtype=np.float64)
    if h.ndim != 1 or J.shape != (h.size, h.size):
        raise ValidationError(
            f"expected fields h of shape (N,) and couplings J of shape (N, N); got {h.shape} and {J.shape}."
        )
    if not (np.all(np.isfinite(h)) and np.all(np.isfinite(J))):
        raise ValidationError("h and J must be finite.")
    return h, J


def sk_couplings(n_neurons: int, J0: float = 1.0, Js: float = 0.1, H0: float = 0.5, beta: float = 1.0,
                 *, symmetric: bool = False, self_couplings: bool = True,
                 seed: int | None = None) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Draw fields and couplings of the (asymmetric) Sherrington–Kirkpatrick ensemble.

    ``h_i ~ U(-H0, H0)`` and ``J_ij ~ N(J0/N, Js^2/N)``, all N² entries independent (PHYSICS.md
    §3.1), then both multiplied by ``beta``. With ``symmetric=True`` the couplings are
    symmetrised (``(J + Jᵀ)/√2`` keeps the variance of the fluctuating part) with zero diagonal,
    as for an equilibrium (Hopfield/Boltzmann) model.

    Returns
    -------
    h : (N,) array
    J : (N, N) array, row i = couplings onto neuron i.

    Examples
    --------
    >>> h, J = sk_couplings(100, seed=0)
    >>> h.shape, J.shape
    ((100,), (100, 100))
    """
    n = _check_positive_int(n_neurons, "n_neurons")
    rng = np.random.default_rng(seed)
    h = rng.uniform(-H0, H0, size=n)
    J = J0 / n + Js / np.sqrt(n) * rng.standard_normal((n, n))
    if symmetric:
        fluct = (J - J0 / n)
        J = J0 / n + (fluct + fluct.T) / np.sqrt(2.0)
        np.fill_diagonal(J, 0.0)
    elif not self_couplings:
        np.fill_diagonal(J, 0.0)
    return beta * h, beta * J


def _initial_state(init: ArrayLike | str | None, n_trials: int, n: int, gen: torch.Generator,
                   device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    if init is None or (isinstance(init, str) and init == "random"):
        bits = torch.randint(0, 2, (n_trials, n), generator=gen, device=device)
        return (2 * bits - 1).to(dtype)
    if isinstance(init, str):
        if init != "ones":
            raise ValidationError(f"init must be None, 'random', 'ones' or an array of +-1; got {init!r}.")
        return torch.ones(n_trials, n, device=device, dtype=dtype)
    arr = np.asarray(init, dtype=np.float64)
    if arr.shape not in ((n,), (n_trials, n)) or not np.all(np.isin(arr, (-1.0, 1.0))):
        raise ValidationError(
            f"init must hold +-1 spins of shape ({n},) or ({n_trials}, {n}); got shape {arr.shape}."
        )
    return torch.as_tensor(np.broadcast_to(arr, (n_trials, n)).copy(), device=device, dtype=dtype)


def kinetic_ising(h: ArrayLike, J: ArrayLike, n_steps: int, n_trials: int = 1, *,
                  seed: int | None = None, init: ArrayLike | str | None = None, burn_in: int = 0,
                  record_initial: bool = False, bin_size: float = 1.0, device: str = "cpu",
                  dtype: torch.dtype = torch.float64) -> Raster:
    """Sample parallel Glauber dynamics of a kinetic Ising network.

    ``P(s_i,t = +1 | s_{t-1}) = (1 + tanh u_i,t) / 2`` with ``u_i,t = h_i + Σ_j J_ij s_j,t-1``;
    all neurons update at once, ``n_trials`` independent trajectories in parallel.

    Parameters
    ----------
    h, J : arrays (N,), (N, N)
        Fields and couplings (β folded in).
    n_steps : int
        Recorded steps per trial (after ``burn_in`` discarded steps). The first recorded bin is
        the state after the first recorded update, not the initial state.
    n_trials : int
        Independent trajectories, each one segment of the returned Raster.
    init : None/'random', 'ones' or +-1 array
        Initial state (before burn-in).
    record_initial : bool
        Also record the state just before the first recorded update (the initial state when
        ``burn_in=0``) as the first bin of each trial, so a transient from a given ``init`` keeps its
        first transition: each trial then has ``n_steps + 1`` bins.
    bin_size : float
        Seconds per step, for the Raster's time axis.

    Returns
    -------
    Raster
        ``n_trials * n_steps`` bins (``n_trials * (n_steps + 1)`` with ``record_initial``) x N
        units (spike = +1), one segment per trial.
    """
    h, J = _check_params(h, J)
    n_steps = _check_positive_int(n_steps, "n_steps")
    n_trials = _check_positive_int(n_trials, "n_trials")
    burn_in = _check_non_negative_int(burn_in, "burn_in")
    dev = resolve_device(device)
    gen = _torch_generator(seed, dev)
    h_t = torch.as_tensor(h, device=dev, dtype=dtype)
    J_t = torch.as_tensor(J, device=dev, dtype=dtype)
    state = _initial_state(init, n_trials, h.size, gen, dev, dtype)
    offset = int(bool(record_initial))
    out = torch.empty((n_trials, n_steps + offset, h.size), dtype=torch.bool, device=dev)
    for step in range(burn_in + n_steps):
        if offset and step == burn_in:
            out[:, 0] = state > 0
        u = torch.addmm(h_t, state, J_t.T)
        p_up = torch.sigmoid(2.0 * u)
        spikes = torch.rand(p_up.shape, generator=gen, device=dev, dtype=dtype) < p_up
        state = spikes.to(dtype).mul_(2).sub_(1)
        if step >= burn_in:
            out[:, step - burn_in + offset] = spikes
    data = out.reshape(n_trials * (n_steps + offset), h.size).cpu().numpy()
    return Raster(data, bin_size, 0.0, segments=np.full(n_trials, n_steps + offset))


def equilibrium_ising(h: ArrayLike, J: ArrayLike, n_samples: int, *, n_chains: int = 100,
                      burn_in: int = 500, thin: int = 1, seed: int | None = None,
                      device: str = "cpu", dtype: torch.dtype = torch.float64) -> Raster:
    """Sample the equilibrium Ising model ``P(s) ∝ exp(h·s + ½ sᵀJs)`` by Gibbs sweeps.

    ``J`` must be symmetric; its diagonal is ignored. ``n_chains`` chains run in parallel
    (batched on torch); each sweep updates the spins one after another (systematic scan), and
    one sample per chain is kept every ``thin`` sweeps after ``burn_in`` sweeps.

    Returns
    -------
    Raster
        ``n_samples`` rows (spike = +1), one segment per chain (rows of a chain are successive,
        weakly correlated samples).
    """
    h, J = _check_params(h, J)
    if not np.allclose(J, J.T, atol=1e-12):
        raise ValidationError("equilibrium_ising: J must be symmetric (the equilibrium model's couplings).")
    n_samples = _check_positive_int(n_samples, "n_samples")
    n_chains = min(_check_positive_int(n_chains, "n_chains"), n_samples)
    thin = _check_positive_int(thin, "thin")
    burn_in = _check_non_negative_int(burn_in, "burn_in")
    dev = resolve_device(device)
    gen = _torch_generator(seed, dev)
    J_t = torch.as_tensor(J - np.diag(np.diag(J)), device=dev, dtype=dtype)
    h_t = torch.as_tensor(h, device=dev, dtype=dtype)
    state = _initial_state(None, n_chains, h.size, gen, dev, dtype)
    per_chain = -(-n_samples // n_chains)
    kept = torch.empty((n_chains, per_chain, h.size), dtype=torch.bool, device=dev)
    n_sweeps = burn_in + per_chain * thin
    for sweep in range(n_sweeps):
        uniforms = torch.rand((h.size, n_chains), generator=gen, device=dev, dtype=dtype)
        for i in range(h.size):
            field = h_t[i] + state @ J_t[i]
            state[:, i] = torch.where(uniforms[i] < torch.sigmoid(2.0 * field), 1.0, -1.0)
        done = sweep - burn_in + 1
        if done > 0 and done % thin == 0:
            kept[:, done // thin - 1] = state > 0
    data = kept.reshape(-1, h.size)[:n_samples].cpu().numpy()
    # Samples are taken chain by chain (row-major), so the first chains are full and the
    # last ones may be short or empty when n_samples is not a multiple of n_chains.
    lengths = np.clip(n_samples - per_chain * np.arange(n_chains), 0, per_chain)
    return Raster(data, 1.0, 0.0, segments=lengths[lengths > 0])


# ---------------------------------------------------------------------- place cells
@dataclass(frozen=True)
class PlaceCellSimulation:
    """Output of :func:`place_cells`: the Recording plus the ground truth behind it.

    Attributes
    ----------
    recording : Recording
        Spikes, 1-D position in cm (``rec.position``), epochs ``run`` (and ``rest``).
    field_centers : (N,) array
        Place-field centres in cm (NaN for cells without a field).
    field_width : float
        Gaussian field s.d. in cm.
    couplings : (N, N) array
        Spin couplings J (kinetic Ising, per ``dt``) used to generate the spikes.
    dt : float
        Generation time step in seconds (bin at this size to match the generative model).
    replay_events : (E, 3) array
        ``start, stop`` (s) and direction (+1 forward along the track, -1 reverse) of the
        replay sweeps inserted during rest.
    """

    recording: Recording
    field_centers: NDArray[np.float64]
    field_width: float
    couplings: NDArray[np.float64]
    dt: float
    replay_events: NDArray[np.float64]


def _track_trajectory(duration: float, dt: float, track_length: float, speed: float,
                      pause: float, rng: np.random.Generator) -> NDArray[np.float64]:
    """Back-and-forth laps: raised-cosine velocity profile, pauses at both ends."""
    pieces, x_end, total = [], 0.0, 0
    n_total = int(round(duration / dt))
    while total < n_total:
        lap_time = track_length / (speed * rng.uniform(0.8, 1.2))
        u = np.linspace(0, 1, max(int(lap_time / dt), 2))
        profile = (1 - np.cos(np.pi * u)) / 2
        lap = x_end + (track_length - 2 * x_end) * profile  # 0 -> L or L -> 0
        hold = np.full(int(pause * rng.uniform(0.5, 1.5) / dt), lap[-1])
        pieces += [lap, hold]
        total += lap.size + hold.size
        x_end = track_length - x_end
    return np.concatenate(pieces)[:n_total]


def _check_place_cell_args(*, run_duration: float, rest_duration: float, track_length: float, speed: float,
                           field_width: float, peak_rate: float, baseline_rate: float, fraction_place: float,
                           n_replay_events: int, dt: float) -> None:
    """Reject place_cells arguments that would crash deep inside numpy or give meaningless data."""
    for name, value in (("run_duration", run_duration), ("track_length", track_length),
                        ("speed", speed), ("field_width", field_width), ("dt", dt),
                        ("peak_rate", peak_rate)):
        if not (np.isfinite(value) and value > 0):
            raise ValidationError(f"place_cells: {name} must be positive, got {value!r}.")
    if peak_rate * dt >= 1:
        raise ValidationError(f"place_cells: peak_rate*dt = {peak_rate * dt:.2f} must be < 1 "
                              "(at most one spike per step); lower dt.")
    for name, value in (("rest_duration", rest_duration), ("baseline_rate", baseline_rate)):
        if not (np.isfinite(value) and value >= 0):
            raise ValidationError(f"place_cells: {name} must be >= 0, got {value!r}.")
    if not 0 <= fraction_place <= 1:
        raise ValidationError(f"place_cells: fraction_place must be in [0, 1], got {fraction_place!r}.")
    if not isinstance(n_replay_events, int | np.integer) or n_replay_events < 0:
        raise ValidationError(f"place_cells: n_replay_events must be a non-negative integer, got {n_replay_events!r}.")
    # Replay events start at least 50 steps from either end of rest and last 0.15 s.
    room = int(round(rest_duration / dt)) - 100
    if n_replay_events and room < n_replay_events:
        raise ValidationError(
            f"place_cells: {n_replay_events} replay events need rest_duration >= "
            f"{(n_replay_events + 100) * dt:g} s at dt={dt:g} s, got rest_duration={rest_duration!r}."
        )


def place_cells(n_cells: int = 60, *, run_duration: float = 300.0, rest_duration: float = 0.0,
                track_length: float = 200.0, speed: float = 25.0, field_width: float = 8.0,
                peak_rate: float = 15.0, baseline_rate: float = 0.3, fraction_place: float = 0.9,
                coupling_strength: float = 0.0, n_replay_events: int = 0, dt: float = 0.01,
                seed: int | None = None) -> PlaceCellSimulation:
    """Simulate CA1-like place cells on a linear track, optionally with rest and replay.

    Spikes come from a kinetic Ising (logistic) model at resolution ``dt``: the probability of
    a spike of cell i in a step is ``σ(logit(r_i(x_t)·dt) + Σ_j w_ij n_j,t-1)`` with Gaussian
    place fields ``r_i(x)`` and couplings ``w = 4 J``. With ``coupling_strength > 0``, J couples
    each cell to the cells whose fields lie just ahead of it along the track (a forward
    sequence, as in an asymmetric Hopfield network) and weakly inhibits distant ones. Spike
    times are placed uniformly within their step.

    The couplings feed activity of the cells behind each cell into it, so with
    ``coupling_strength > 0`` observed rate-map peaks shift from ``field_centers`` (by about
    -7.5 cm at the demo's 0.6); use ``coupling_strength=0`` when the place-field centres must be
    the exact ground truth.

    During rest (the animal sits at the track's start), cells fire at baseline, plus
    ``n_replay_events`` sweeps in which a virtual position crosses the track in ~150 ms in a
    random direction.

    Returns
    -------
    PlaceCellSimulation
    """
    n = _check_positive_int(n_cells, "n_cells")
    _check_place_cell_args(run_duration=run_duration, rest_duration=rest_duration, track_length=track_length,
                           speed=speed, field_width=field_width, peak_rate=peak_rate, baseline_rate=baseline_rate,
                           fraction_place=fraction_place, n_replay_events=n_replay_events, dt=dt)
    rng = np.random.default_rng(seed)
    has_field = rng.random(n) < fraction_place
    centers = np.where(has_field, np.sort(rng.uniform(0.05, 0.95, n)) * track_length, np.nan)
    x_run = _track_trajectory(run_duration, dt, track_length, speed, pause=1.5, rng=rng)
    n_rest = int(round(rest_duration / dt))
    virtual = np.concatenate([x_run, np.full(n_rest, np.nan)])
    replay = []
    if n_rest and n_replay_events:
        starts = np.sort(rng.choice(np.arange(50, n_rest - 50), size=n_replay_events, replace=False))
        for s in starts:
            length = int(0.15 / dt)
            direction = 1 if rng.random() < 0.5 else -1
            sweep = np.linspace(0, track_length, length)[::direction]
            virtual[x_run.size + s: x_run.size + s + length] = sweep
            t0 = (x_run.size + s) * dt
            replay.append((t0, t0 + length * dt, direction))
    rates = np.full((virtual.size, n), baseline_rate)
    in_field = np.isfinite(virtual)
    tuning = np.exp(-0.5 * ((virtual[in_field, None] - centers[None, :]) / field_width) ** 2)
    rates[in_field] += peak_rate * np.nan_to_num(tuning)
    # Ground-truth couplings: excite the cells just ahead along the track, inhibit distant ones.
    J = np.zeros((n, n))
    if coupling_strength:
        ahead = np.nan_to_num(centers[None, :] - centers[:, None], nan=1e9)  # c_j - c_i
        J = coupling_strength * (np.exp(-0.5 * ((ahead + 1.5 * field_width) / field_width) ** 2) - 0.15)
        J[~has_field] = 0.0
        J[:, ~has_field] = 0.0
        np.fill_diagonal(J, 0.0)
    w = 4.0 * J
    bias = np.log(rates * dt) - np.log1p(-rates * dt)
    spikes = np.zeros((virtual.size, n), dtype=bool)
    prev = np.zeros(n)
    uniforms = rng.random((virtual.size, n))
    for t in range(virtual.size):
        p = 1.0 / (1.0 + np.exp(-(bias[t] + w @ prev)))
        spikes[t] = uniforms[t] < p
        prev = spikes[t].astype(np.float64)
    step, cell = np.nonzero(spikes)
    times = (step + rng.random(step.size)) * dt
    trains = [np.sort(times[cell == i]) for i in range(n)]
    t_run = np.arange(x_run.size) * dt
    position = TimeSeries(t_run, x_run, unit="cm", columns=("x",), name="position")
    epochs = {"run": [[0.0, x_run.size * dt]]}
    if n_rest:
        epochs["rest"] = [[x_run.size * dt, virtual.size * dt]]
    import pandas as pd

    units = pd.DataFrame({"field_center_cm": centers})
    rec = Recording(trains, [f"cell{i:03d}" for i in range(n)], units=units,
                    series={"position": position}, epochs=epochs,
                    support=[[0.0, virtual.size * dt]], source="simulate.place_cells")
    return PlaceCellSimulation(rec, centers, float(field_width), J, float(dt),
                               np.asarray(replay, dtype=np.float64).reshape(-1, 3))
