"""Run the registered sections and turn their stored results into figures and the HTML page."""

from __future__ import annotations

import json
import math
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .figures import to_png
from .html import RenderedFigure, RenderedSection, render_page
from .registry import RunContext, SectionResult, SectionSkipped, get_section, sections

__all__ = ["SectionRecord", "compute_sections", "save_results", "load_results", "write_report"]


@dataclass
class SectionRecord:
    """Outcome of one section: ``status`` ``ok``/``skipped``/``failed``, the reason, the result."""

    name: str
    title: str
    status: str
    reason: str = ""
    result: SectionResult = field(default_factory=SectionResult)
    seconds: float = 0.0


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def compute_sections(ctx: RunContext, *, include: list[str] | None = None, strict: bool = False
                     ) -> list[SectionRecord]:
    """Compute every registered section (in report order) on a fitted run.

    Parameters
    ----------
    ctx : RunContext
    include : list of str, optional
        Names of optional sections to run (core sections always run); None runs them all.
    strict : bool
        Re-raise failures of optional sections too (tests use this so failures are never hidden).

    Returns
    -------
    list of SectionRecord
        Optional sections that raise are recorded as ``failed`` with a one-line reason; a core
        section that raises stops the run.
    """
    records = []
    for section in ctx.progress(sections(), desc="analyses", unit="section"):
        if section.optional and include is not None and section.name not in include:
            continue
        start = time.perf_counter()
        try:
            result = section.compute(ctx)
            status, reason = "ok", ""
        except SectionSkipped as skip:
            result, status, reason = SectionResult(), "skipped", str(skip)
        except Exception as exc:  # noqa: BLE001 -- optional analyses must not kill the run
            if strict or not section.optional:
                raise
            result, status, reason = SectionResult(), "failed", _one_line(exc)
            result.values["traceback"] = traceback.format_exc(limit=6)
        records.append(SectionRecord(section.name, section.title, status, reason, result,
                                     time.perf_counter() - start))
    return records


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN/inf; null reads back as "not available"
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    return value


def save_results(records: list[SectionRecord], folder: Path) -> dict[str, Any]:
    """Write each section's arrays to ``folder/results/<name>.npz``; return the JSON part."""
    results_dir = folder / "results"
    results_dir.mkdir(parents=True, exist_ok=True)
    summary = {}
    for rec in records:
        if rec.result.arrays:
            np.savez_compressed(results_dir / f"{rec.name}.npz", **rec.result.arrays)
        summary[rec.name] = {"title": rec.title, "status": rec.status, "reason": rec.reason,
                             "seconds": round(rec.seconds, 3), "values": _jsonable(rec.result.values)}
    return summary


def load_results(folder: Path, summary: dict[str, Any]) -> list[SectionRecord]:
    """Read back what :func:`save_results` wrote (``summary`` is ``metrics.json['sections']``)."""
    records = []
    for name, entry in summary.items():
        arrays: dict[str, np.ndarray] = {}
        path = folder / "results" / f"{name}.npz"
        if path.is_file():
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
        values = {k: (float("nan") if v is None else v) for k, v in entry.get("values", {}).items()}
        records.append(SectionRecord(name, entry.get("title", name), entry["status"], entry.get("reason", ""),
                                     SectionResult(values, arrays), entry.get("seconds", 0.0)))
    return records


def _render(record: SectionRecord, figures_dir: Path) -> RenderedSection:
    section = get_section(record.name)
    rendered = RenderedSection(record.name, record.title, record.status, record.reason)
    if record.status != "ok":
        return rendered
    if section is None:
        rendered.status, rendered.reason = "failed", (f"no renderer registered for section {record.name!r} "
                                                      "(the package that adds it is not installed)")
        return rendered
    try:
        output = section.render(record.result)
        for spec in output.figures:
            png = to_png(spec.figure)
            rel = f"figures/{record.name}__{spec.name}.png"
            (figures_dir / f"{record.name}__{spec.name}.png").write_bytes(png)
            rendered.figures.append(RenderedFigure(rel, png, spec.caption))
        rendered.table, rendered.text = list(output.table), output.text
    except Exception as exc:  # noqa: BLE001 -- a broken figure must not lose the whole report
        if not section.optional:
            raise
        rendered.status, rendered.reason = "failed", f"rendering: {_one_line(exc)}"
    return rendered


def write_report(folder: Path, records: list[SectionRecord], *, title: str, subtitle: list[str],
                 headline: list[tuple[str, str]], config: dict[str, Any], footer: str) -> Path:
    """Render figures into ``folder/figures`` and write ``folder/report.html``; returns its path."""
    figures_dir = folder / "figures"
    figures_dir.mkdir(parents=True, exist_ok=True)
    rendered = [_render(r, figures_dir) for r in records]
    page = render_page(title=title, subtitle=subtitle, headline=headline, sections=rendered,
                       config=config, footer=footer)
    path = folder / "report.html"
    path.write_text(page, encoding="utf-8")
    return path


def metrics_json(summary: dict[str, Any]) -> str:
    """Serialise metrics for ``metrics.json`` (NaN becomes null)."""
    return json.dumps(_jsonable(summary), indent=2)
