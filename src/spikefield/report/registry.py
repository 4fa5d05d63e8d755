"""The section registry: how an analysis adds its part to a run's report.

A :class:`Section` is two functions. ``compute(context)`` runs during ``spikefield fit`` and
returns a :class:`SectionResult` (JSON-able ``values`` that go to ``metrics.json`` and numpy
``arrays`` stored in the run folder); ``render(result)`` turns a stored result into figures and a
table, so ``spikefield report RUN_DIR`` can redraw the report from the folder alone, without the
recording or the model.

Adding a section from another package::

    from spikefield.report import Section, SectionOutput, SectionResult, register_section

    def compute(ctx):
        ep = my_analysis(ctx.model, ctx.test)
        return SectionResult(values={"ep_per_second": ep}, arrays={})

    def render(result):
        return SectionOutput(table=[("EP (nats/s)", f"{result.values['ep_per_second']:.3g}")])

    register_section(Section("my_ep", "Entropy production", order=70, compute=compute, render=render))
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import ValidationError

__all__ = ["Section", "SectionResult", "SectionOutput", "FigureSpec", "SectionSkipped", "RunContext",
           "register_section", "unregister_section", "sections", "get_section"]


class SectionSkipped(Exception):  # noqa: N818 -- a control-flow signal, not an error
    """Raised by ``compute`` when a section does not apply (e.g. no position); the reason is shown."""


@dataclass
class SectionResult:
    """What a section computed: ``values`` (JSON scalars/strings/lists) and ``arrays`` (numpy)."""

    values: dict[str, Any] = field(default_factory=dict)
    arrays: dict[str, NDArray] = field(default_factory=dict)


@dataclass
class FigureSpec:
    """One figure of a section: file stem, matplotlib figure and a one-sentence caption."""

    name: str
    figure: Any
    caption: str


@dataclass
class SectionOutput:
    """What a section shows: figures, a two-column table of (label, value) rows, a paragraph."""

    figures: list[FigureSpec] = field(default_factory=list)
    table: list[tuple[str, str]] = field(default_factory=list)
    text: str = ""


@dataclass(frozen=True)
class Section:
    """A report section: ``compute(RunContext) -> SectionResult`` and ``render(SectionResult) -> SectionOutput``.

    ``order`` places it in the report (core sections use 10-60, analyses 70+). ``optional``
    sections that fail are shown as "section failed: <reason>" instead of stopping the run;
    a failing core section stops the run.
    """

    name: str
    title: str
    order: int
    compute: Callable[[RunContext], SectionResult]
    render: Callable[[SectionResult], SectionOutput]
    optional: bool = False


@dataclass
class RunContext:
    """Everything a section's ``compute`` may use.

    Attributes
    ----------
    recording : Recording
        The recording after unit and epoch selection (what was binned).
    full_recording : Recording
        The recording as read, all epochs (e.g. for run-vs-rest comparisons).
    raster, train, test : Raster
        Binned activity and its contiguous train/test blocks.
    model : estimator
        The fitted model (``h_``, ``J_``, ``log_likelihood``, ``sample``).
    config : RunConfig
    ground_truth : mapping
        Known generative parameters for simulated data (``couplings``, ``field_centers``); empty
        for real recordings.
    cache : dict
        Shared between sections (e.g. model samples), so work is done once.
    progress : callable
        ``progress(iterable, desc=..., total=...)`` wraps slow loops in a progress bar.
    """

    recording: Any
    full_recording: Any
    raster: Any
    train: Any
    test: Any
    model: Any
    config: Any
    ground_truth: Mapping[str, Any] = field(default_factory=dict)
    cache: dict[str, Any] = field(default_factory=dict)
    progress: Callable[..., Any] = lambda iterable, **_: iterable

    def truth(self, name: str) -> NDArray | None:
        """Ground truth ``name`` restricted to the fitted units (vectors per unit, matrices unit x unit).

        Ground truth is given for the simulated recording's units (``ground_truth["unit_ids"]``);
        unit selection may have dropped some, so it is re-indexed here by unit id.
        """
        value = self.ground_truth.get(name)
        if value is None:
            return None
        value = np.asarray(value, dtype=np.float64)
        ids = self.ground_truth.get("unit_ids")
        if ids is None:
            return value
        position = {str(u): k for k, u in enumerate(ids)}
        index = np.array([position[str(u)] for u in self.recording.unit_ids])
        return value[np.ix_(index, index)] if value.ndim == 2 else value[index]

    def rng(self, stream: str) -> np.random.Generator:
        """A generator seeded by the run's seed and a stream name, so sections never share draws."""
        return np.random.default_rng([self.config.seed, *stream.encode()])


_REGISTRY: dict[str, Section] = {}


def register_section(section: Section, *, replace: bool = False) -> Section:
    """Add a section to every report built from now on.

    Parameters
    ----------
    section : Section
    replace : bool
        Allow replacing a registered section of the same name.

    Examples
    --------
    >>> from spikefield.report import Section, SectionOutput, SectionResult, register_section
    >>> s = Section("hello", "Hello", 99, lambda ctx: SectionResult({"x": 1}),
    ...             lambda r: SectionOutput(text="hi"), optional=True)
    >>> register_section(s).name
    'hello'
    >>> unregister_section("hello")
    """
    if not isinstance(section, Section):
        raise ValidationError(f"register_section: expected a Section, got {type(section).__name__}.")
    if section.name in _REGISTRY and not replace:
        raise ValidationError(f"register_section: a section named {section.name!r} is already registered; "
                              "pass replace=True to replace it.")
    _REGISTRY[section.name] = section
    return section


def unregister_section(name: str) -> None:
    """Remove a registered section (no error if absent)."""
    _REGISTRY.pop(name, None)


def sections() -> list[Section]:
    """Registered sections in report order."""
    return sorted(_REGISTRY.values(), key=lambda s: (s.order, s.name))


def get_section(name: str) -> Section | None:
    """The registered section called ``name``, or None."""
    return _REGISTRY.get(name)
