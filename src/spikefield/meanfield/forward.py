"""Forward problem: predict m_t, C_t, D_t of a kinetic Ising network with a Plefka approximation."""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray

from .._device import resolve_device
from ..errors import ConvergenceWarning, ValidationError, did_you_mean
from ._validation import as_dtype, as_params, canonical_method, positive_float, positive_int
from .kernels import KERNELS, WRITES_INTO_OUT, StepOutput, StepSettings
from .quadrature import QUADRATURES, gauss_hermite_rule, reference_rule
from .solvers import RootReport, default_tol

__all__ = ["forward", "ForwardResult"]


@dataclass
class ForwardResult(Mapping):
    """Predicted statistics; a read-only mapping with keys ``"m"``, ``"C"``, ``"D"``.

    Transient runs hold one row per step ``t = 1..steps`` (``m``: steps × N, ``C``/``D``:
    steps × N × N; with ``keep_history=False`` only the last step, shapes N and N × N). Stationary
    runs hold the fixed point (N, N × N, N × N).

    Attributes
    ----------
    method, order : str, int
        The approximation used.
    converged : bool
        Every self-consistency root solve met its tolerance, every predicted C and D entry stayed
        finite and in the physical range [−1, 1] (``extras["max_abs_moment"]`` holds the largest
        |entry|; Plefka[t] can diverge near the critical point of small networks), and, when
        ``stationary=True``, the fixed-point iteration converged.
    n_iter : int
        Largest number of Newton iterations any step needed.
    max_residual : float
        Largest final root residual over all steps.
    n_steps : int
        Steps run (for ``stationary=True``: iterations of the map until convergence).
    quadrature_error : float
        Plefka[t−1] with Gauss–Hermite: largest Mehler truncation bound on any C entry.
    """

    m: NDArray[np.floating]
    C: NDArray[np.floating]
    D: NDArray[np.floating]
    method: str
    order: int
    converged: bool
    n_iter: int
    max_residual: float
    n_steps: int
    quadrature_error: float = 0.0
    stationary: bool = False
    extras: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, key: str) -> NDArray[np.floating]:
        if key not in ("m", "C", "D"):
            raise KeyError(f"{key!r}: a ForwardResult holds 'm', 'C' and 'D'.")
        return getattr(self, key)

    def __iter__(self) -> Iterator[str]:
        return iter(("m", "C", "D"))

    def __len__(self) -> int:
        return 3

    def __repr__(self) -> str:
        return (f"ForwardResult(method={self.method!r}, order={self.order}, m.shape={self.m.shape}, "
                f"converged={self.converged}, n_steps={self.n_steps})")


def _settings(order: int, quadrature: str, quadrature_points: int | None, hermite_terms: int, tol: float | None,
              max_iter: int, device: torch.device, dtype: torch.dtype) -> StepSettings:
    if quadrature not in QUADRATURES:
        raise ValidationError(f"quadrature={quadrature!r} is not known; expected one of {list(QUADRATURES)}."
                              f"{did_you_mean(quadrature, QUADRATURES)}")
    if quadrature == "gauss-hermite":
        nodes, weights = gauss_hermite_rule(positive_int(quadrature_points or 64, "quadrature_points"))
    else:
        nodes, weights = reference_rule(positive_int(quadrature_points or 20, "quadrature_points"))
    as_tensor = lambda x: torch.as_tensor(x, dtype=dtype, device=device)  # noqa: E731
    tol = default_tol(dtype) if tol is None else positive_float(tol, "tol")
    return StepSettings(order=order, tol=tol, max_iter=positive_int(max_iter, "max_iter"),
                        quadrature=quadrature, nodes=as_tensor(nodes), weights=as_tensor(weights),
                        hermite_terms=positive_int(hermite_terms, "hermite_terms"))


def _initial_state(s0: ArrayLike | str | None, size: int, device: torch.device,
                   dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    if s0 is None or (isinstance(s0, str) and s0 == "ones"):
        m0 = np.ones(size)
    else:
        try:
            m0 = np.asarray(s0, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ValidationError(f"s0 must be 'ones' or an array of shape ({size},) with entries in [-1, 1]; "
                                  f"got {s0!r}.") from exc
        if m0.shape != (size,) or not np.all(np.abs(m0) <= 1):
            raise ValidationError(f"s0 must be 'ones' or an array of shape ({size},) with entries in [-1, 1] "
                                  f"(spins or magnetisations); got shape {m0.shape}.")
    m = torch.as_tensor(m0, dtype=dtype, device=device)
    return m, torch.diag(1.0 - m * m), torch.zeros((size, size), dtype=dtype, device=device)


def forward(h: ArrayLike, J: ArrayLike, method: str = "plefka2_t", order: int | None = None, steps: int = 128,
            s0: ArrayLike | str | None = None, *, stationary: bool = False, device: str = "cpu",
            dtype: Any = torch.float64, quadrature: str = "gauss-hermite", quadrature_points: int | None = None,
            hermite_terms: int = 24, tol: float | None = None, max_iter: int = 100, stationary_tol: float = 1e-12,
            max_steps: int = 100_000, keep_history: bool = True) -> ForwardResult:
    """Run a Plefka-family approximation of a kinetic Ising network forward in time.

    Starting from ``m_0 = s0``, ``C_0 = diag(1 − m_0²)``, ``D_0 = 0``, each step uses only the
    method's own previous predictions (PHYSICS.md §2). Units: dimensionless spins; β folded in.

    Parameters
    ----------
    h : (N,) array_like
        Fields.
    J : (N, N) array_like
        Couplings, ``J[i, l]`` from l at t−1 to i at t.
    method : {"nmf", "tap", "plefka_t", "plefka_t1", "plefka2_t"}
        Plefka[t−1,t] order 1 / order 2, Plefka[t], Plefka[t−1], Plefka2[t].
    order : int, optional
        Expansion order (1 or 2 for ``plefka_t`` and ``plefka2_t``; default 2).
    steps : int
        Number of steps (ignored when ``stationary=True``).
    s0 : 'ones' or (N,) array, optional
        Initial state or magnetisations (default all +1, as in the paper).
    stationary : bool
        Iterate the map to its fixed point (``max |Δ| <= stationary_tol``, at most ``max_steps``).
    device, dtype
        Torch device (``"cpu"``, ``"cuda"``, ``"auto"``) and precision (float64 by default;
        float32 is about 2x faster on CPU and agrees with float64 to ~1e-5 on m, C, D at the
        benchmark's scale, see ``docs/meanfield.md``).
    quadrature : {"gauss-hermite", "reference", "reference-2021"}
        Gaussian averages of Plefka[t−1] (see :mod:`spikefield.meanfield.quadrature`).
    quadrature_points, hermite_terms : int
        Nodes of the 1-D rule (default 64 Gauss–Hermite / 20 reference) and Mehler terms.
    tol, max_iter : float, int
        Newton tolerance and iteration cap of the self-consistency equations. ``tol=None`` picks
        one the precision can reach: 1e-14 for float64, 1e-6 for float32 (a few float32 ulps).
        The Plefka2[t] field equations use ``tol · max(1, max |field|)``.
    keep_history : bool
        Keep every step (default) or only the last one (saves steps × N² memory).

    Returns
    -------
    ForwardResult
        Mapping with ``m``, ``C``, ``D`` (numpy arrays in ``dtype``) and a convergence report.

    Examples
    --------
    >>> from spikefield.simulate import sk_couplings
    >>> h, J = sk_couplings(64, seed=0)
    >>> out = forward(h, J, method="tap", steps=32)
    >>> out["m"].shape, out["C"].shape, out.converged
    ((32, 64), (32, 64, 64), True)
    """
    name, order = canonical_method(method, order)
    h_np, J_np = as_params(h, J)
    dev, dt = resolve_device(device), as_dtype(dtype)
    settings = _settings(order, quadrature, quadrature_points, hermite_terms, tol, max_iter, dev, dt)
    h_t = torch.as_tensor(h_np, dtype=dt, device=dev)
    J_t = torch.as_tensor(J_np, dtype=dt, device=dev)
    state = _initial_state(s0, h_np.size, dev, dt)
    kernel = KERNELS[name]
    if name == "tap":
        settings.J_squared = J_t * J_t
    if stationary:
        return _run_stationary(kernel, h_t, J_t, state, settings, name, order,
                               positive_float(stationary_tol, "stationary_tol"), positive_int(max_steps, "max_steps"))
    return _run_transient(kernel, h_t, J_t, state, settings, name, order, positive_int(steps, "steps"), keep_history)


def _run_transient(kernel: Any, h: torch.Tensor, J: torch.Tensor, state: tuple, settings: StepSettings, name: str,
                   order: int, steps: int, keep_history: bool) -> ForwardResult:
    size = h.numel()
    rows = steps if keep_history else 1
    # History in the compute precision, allocated once by NumPy (which asks the kernel for huge
    # pages on large arrays) and filled in place: no per-step allocation or dtype conversion.
    np_dtype = torch.empty((), dtype=h.dtype).numpy().dtype
    m_out, C_out, D_out = (np.empty(shape, dtype=np_dtype) for shape in ((rows, size), (rows, size, size),
                                                                           (rows, size, size)))
    history = [torch.from_numpy(x) for x in (m_out, C_out, D_out)]
    report, quad_error = RootReport(True, 0, 0.0), 0.0
    m_p, C_p, D_p = state
    largest = torch.zeros((), dtype=h.dtype, device=h.device)
    # On the CPU the kernels write C and D straight into the history rows; otherwise (and without
    # history) into two alternating device buffers, so a step never overwrites its own inputs.
    writes = kernel in WRITES_INTO_OUT
    direct = keep_history and h.device.type == "cpu"
    alternating = [_pair_like(J), _pair_like(J)] if writes and not direct else [None, None]
    with torch.no_grad():
        for t in range(steps):
            targets = (history[1][t], history[2][t]) if direct else alternating[t % 2]
            out: StepOutput = kernel(h, J, m_p, C_p, D_p, settings, out=targets)
            report, quad_error = report.merge(out.report), max(quad_error, out.quadrature_error)
            if keep_history:
                for target, value in zip(history, (out.m, out.C, out.D), strict=True):
                    _store(target[t], value)
            # Kept on the device (no per-step sync); NaN propagates through torch.maximum.
            largest = torch.maximum(largest, torch.maximum(_max_abs_on_device(out.C), _max_abs_on_device(out.D)))
            m_p, C_p, D_p = out.m, out.C, out.D
    if not keep_history:
        for target, value in zip(history, (m_p, C_p, D_p), strict=True):
            target[0].copy_(value)
    _warn_unconverged(name, report, settings)
    physical = _check_physical(name, float(largest))
    if not keep_history:
        m_out, C_out, D_out = m_out[0], C_out[0], D_out[0]
    return ForwardResult(m_out, C_out, D_out, name, order, report.converged and physical, report.n_iter,
                         report.max_residual, steps, quad_error, extras={"max_abs_moment": float(largest)})


# Covariances of ±1 spins lie in [−1, 1]; the margin only absorbs rounding.
_PHYSICAL_BOUND = 1.0 + 1e-6


def _check_physical(name: str, largest: float) -> bool:
    """False (with a warning) when a predicted C or D left [−1, 1] or is not finite."""
    if np.isfinite(largest) and largest <= _PHYSICAL_BOUND:
        return True
    warnings.warn(f"forward({name!r}): the predicted covariances left the physical range |C|, |D| <= 1 "
                  f"(largest |entry| {largest:.3g}); the approximation is unstable for these parameters "
                  "(Plefka[t] can diverge near the critical point of small networks): use another method or "
                  "check the couplings. The result is marked converged=False.", ConvergenceWarning, stacklevel=4)
    return False


def _pair_like(J: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.empty_like(J), torch.empty_like(J)


def _store(target: torch.Tensor, value: torch.Tensor) -> None:
    """Copy ``value`` into ``target`` unless the kernel already wrote it there."""
    if value.device != target.device or value.data_ptr() != target.data_ptr():
        target.copy_(value)


def _max_abs_on_device(x: torch.Tensor) -> torch.Tensor:
    """``max |x|`` as a 0-d tensor (no device sync), without the N×N temporary of ``x.abs()``."""
    low, high = torch.aminmax(x)
    return torch.maximum(high, -low)


def _warn_unconverged(name: str, report: RootReport, settings: StepSettings) -> None:
    if not report.converged:
        warnings.warn(f"forward({name!r}): a self-consistency solve did not reach tol={settings.tol:g} within "
                      f"max_iter={settings.max_iter} (largest residual {report.max_residual:.2e}); raise max_iter "
                      "or check that the couplings are not extreme.", ConvergenceWarning, stacklevel=4)


def _run_stationary(kernel: Any, h: torch.Tensor, J: torch.Tensor, state: tuple, settings: StepSettings, name: str,
                    order: int, stationary_tol: float, max_steps: int) -> ForwardResult:
    report, quad_error, change = RootReport(True, 0, 0.0), 0.0, np.inf
    m_p, C_p, D_p = state
    n_steps = 0
    # A step never writes over its own inputs.
    alternating = [_pair_like(J), _pair_like(J)] if kernel in WRITES_INTO_OUT else [None, None]
    with torch.no_grad():
        for n_steps in range(1, max_steps + 1):  # noqa: B007 - n_steps is reported after the loop
            out: StepOutput = kernel(h, J, m_p, C_p, D_p, settings, out=alternating[n_steps % 2])
            report, quad_error = report.merge(out.report), max(quad_error, out.quadrature_error)
            change = max(float((out.m - m_p).abs().max()), float((out.C - C_p).abs().max()),
                         float((out.D - D_p).abs().max()))
            m_p, C_p, D_p = out.m, out.C, out.D
            if change <= stationary_tol:
                break
    fixed = change <= stationary_tol
    if not fixed:
        warnings.warn(f"forward({name!r}, stationary=True): the fixed-point iteration changed by {change:.2e} > "
                      f"stationary_tol={stationary_tol:g} after max_steps={max_steps}; the network may oscillate or "
                      "relax slowly (near a critical point): raise max_steps or use a transient run.",
                      ConvergenceWarning, stacklevel=3)
    _warn_unconverged(name, report, settings)
    largest = max(float(C_p.abs().max()), float(D_p.abs().max()))
    physical = _check_physical(name, largest)
    return ForwardResult(m_p.cpu().numpy(), C_p.cpu().numpy(), D_p.cpu().numpy(), name, order,
                         fixed and report.converged and physical, report.n_iter, report.max_residual, n_steps,
                         quad_error, stationary=True, extras={"change": change, "max_abs_moment": largest})
