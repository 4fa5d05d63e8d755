"""Figure helpers for the report: headless matplotlib (no pyplot state), PNG bytes out.

Figures are built on :class:`matplotlib.figure.Figure` directly rather than ``pyplot`` so that
report building never touches a GUI backend or global figure state (safe in threads, servers and
batch jobs).
"""

from __future__ import annotations

import io

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from numpy.typing import NDArray

__all__ = ["new_figure", "to_png", "heatmap", "histogram", "identity_scatter"]

_DPI = 110


def new_figure(width: float = 6.4, height: float = 3.6, ncols: int = 1, nrows: int = 1, **kwargs):
    """A ``Figure`` and its axes (``subplots`` semantics), with constrained layout."""
    fig = Figure(figsize=(width, height), dpi=_DPI, layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=True, **kwargs)
    return fig, axes


def to_png(fig: Figure) -> bytes:
    """Render a figure to PNG bytes."""
    buffer = io.BytesIO()
    # bbox_inches="tight" as a safety net: no label is ever cut off, whatever the layout engine did.
    fig.savefig(buffer, format="png", dpi=_DPI, bbox_inches="tight", pad_inches=0.05)
    return buffer.getvalue()


def heatmap(ax, matrix: NDArray, *, label: str, clip_percentile: float = 99.0) -> None:
    """Diverging colour map centred on zero; colour limits at a percentile of |values| so a few
    large entries do not wash out the structure."""
    finite = np.abs(matrix[np.isfinite(matrix)])
    vmax = float(np.percentile(finite, clip_percentile)) if finite.size else 1.0
    vmax = vmax if vmax > 0 else 1.0
    image = ax.imshow(matrix, cmap="RdBu_r", vmin=-vmax, vmax=vmax, interpolation="nearest", aspect="equal")
    bar = ax.figure.colorbar(image, ax=ax, shrink=0.85)
    bar.set_label(label)


def histogram(ax, values: NDArray, *, bins: int | NDArray = 50, xlabel: str, ylabel: str = "count",
              log_y: bool = False, color: str = "#4477aa") -> None:
    """A plain step-filled histogram with labelled axes."""
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    ax.hist(values, bins=bins, color=color, alpha=0.85, edgecolor="white", linewidth=0.3)
    if log_y:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)


def identity_scatter(ax, observed: NDArray, predicted: NDArray, *, xlabel: str, ylabel: str,
                     title: str = "", max_points: int = 20_000, seed: int = 0) -> float:
    """Scatter predicted vs observed with the identity line; returns Pearson's r."""
    observed = np.asarray(observed, dtype=np.float64).ravel()
    predicted = np.asarray(predicted, dtype=np.float64).ravel()
    keep = np.isfinite(observed) & np.isfinite(predicted)
    observed, predicted = observed[keep], predicted[keep]
    if observed.size > max_points:  # thinning only affects drawing, not the reported r
        idx = np.random.default_rng(seed).choice(observed.size, max_points, replace=False)
        shown_o, shown_p = observed[idx], predicted[idx]
    else:
        shown_o, shown_p = observed, predicted
    ax.scatter(shown_o, shown_p, s=4, alpha=0.35, color="#4477aa", linewidths=0)
    lo = float(min(observed.min(initial=0), predicted.min(initial=0)))
    hi = float(max(observed.max(initial=0), predicted.max(initial=0)))
    pad = 0.05 * (hi - lo or 1.0)
    ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="#aa3377", linewidth=1, label="identity")
    r = float(np.corrcoef(observed, predicted)[0, 1]) if observed.size > 2 and observed.std() > 0 \
        and predicted.std() > 0 else float("nan")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.xaxis.set_major_locator(MaxNLocator(5))
    ax.yaxis.set_major_locator(MaxNLocator(6))
    ax.set_title(f"{title}{'  ' if title else ''}r = {r:.3f}", fontsize=10)
    ax.legend(loc="upper left", fontsize=8, frameon=False)
    return r
