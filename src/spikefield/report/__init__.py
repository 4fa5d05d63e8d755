"""HTML run reports: a registry of sections, figures (matplotlib, headless) and page assembly.

Each analysis contributes a :class:`Section` (``compute`` on a fitted run, ``render`` from the
stored result); :func:`spikefield.runs.rebuild_report` redraws a run folder's report from what the
run stored, so the recording is not needed again.

Examples
--------
>>> from spikefield.report import sections
>>> [s.name for s in sections()][:3]
['summary', 'raster', 'firing_rates']
"""

from __future__ import annotations

from . import analysis_sections as _analysis_sections  # noqa: F401 -- registers spatial/thermo/memory
from . import core_sections as _core_sections  # noqa: F401 -- registers the core sections
from .builder import SectionRecord, compute_sections, load_results, save_results, write_report
from .registry import (
    FigureSpec,
    RunContext,
    Section,
    SectionOutput,
    SectionResult,
    SectionSkipped,
    get_section,
    register_section,
    sections,
    unregister_section,
)

__all__ = [
    "Section", "SectionResult", "SectionOutput", "FigureSpec", "SectionSkipped", "RunContext",
    "register_section", "unregister_section", "sections", "get_section",
    "SectionRecord", "compute_sections", "save_results", "load_results", "write_report",
]
