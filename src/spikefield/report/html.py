"""Assemble one self-contained HTML page (inline CSS, figures as base64 PNG data URIs)."""

from __future__ import annotations

import base64
import html
import json
from dataclasses import dataclass, field
from typing import Any

__all__ = ["RenderedSection", "RenderedFigure", "render_page"]


@dataclass
class RenderedFigure:
    """A figure ready for the page: file name (relative to the run folder), PNG bytes, caption."""

    path: str
    png: bytes
    caption: str


@dataclass
class RenderedSection:
    """One section of the page; ``status`` is ``ok``, ``skipped`` or ``failed`` (with ``reason``)."""

    name: str
    title: str
    status: str
    reason: str = ""
    figures: list[RenderedFigure] = field(default_factory=list)
    table: list[tuple[str, str]] = field(default_factory=list)
    text: str = ""


_CSS = """
body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:0;color:#222;background:#fafafa}
header{background:#23395b;color:#fff;padding:18px 32px}
header h1{margin:0 0 4px 0;font-size:24px}
header p{margin:2px 0;font-size:13px;opacity:.9}
main{max-width:1100px;margin:0 auto;padding:12px 32px 40px 32px}
nav{font-size:13px;margin:12px 0}
nav a{margin-right:12px;color:#23395b}
section{background:#fff;border:1px solid #ddd;border-radius:6px;padding:14px 20px;margin:16px 0}
h2{font-size:19px;margin:4px 0 10px 0;color:#23395b}
.headline{display:flex;flex-wrap:wrap;gap:12px;margin:12px 0}
.card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:10px 14px;min-width:150px}
.card b{display:block;font-size:20px;color:#23395b}
.card span{font-size:12px;color:#555}
table{border-collapse:collapse;font-size:14px;margin:6px 0}
td{padding:3px 12px 3px 0;vertical-align:top}
td:first-child{color:#555}
figure{margin:10px 0}
figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:13px;color:#444;margin-top:4px}
.failed{background:#fdecea;border:1px solid #f5c2bd;color:#8a1c12;padding:8px 12px;border-radius:4px}
.skipped{background:#f4f4f4;color:#555;padding:8px 12px;border-radius:4px}
details{font-size:12px}
pre{background:#f4f4f4;padding:8px;overflow-x:auto}
footer{font-size:12px;color:#777;text-align:center;padding:20px}
"""


def _figure_html(fig: RenderedFigure) -> str:
    data = base64.b64encode(fig.png).decode("ascii")
    caption = html.escape(fig.caption)
    return (f'<figure><img src="data:image/png;base64,{data}" alt="{caption}" '
            f'data-file="{html.escape(fig.path)}"><figcaption>{caption}</figcaption></figure>')


def _section_html(sec: RenderedSection) -> str:
    parts = [f'<section id="{html.escape(sec.name)}" data-status="{sec.status}">',
             f"<h2>{html.escape(sec.title)}</h2>"]
    if sec.status == "failed":
        parts.append(f'<p class="failed">section failed: {html.escape(sec.reason)}</p>')
    elif sec.status == "skipped":
        parts.append(f'<p class="skipped">not shown: {html.escape(sec.reason)}</p>')
    else:
        if sec.table:
            rows = "".join(f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(str(v))}</td></tr>"
                           for k, v in sec.table)
            parts.append(f"<table>{rows}</table>")
        if sec.text:
            parts.append(f"<p>{html.escape(sec.text)}</p>")
        parts.extend(_figure_html(f) for f in sec.figures)
    parts.append("</section>")
    return "\n".join(parts)


def render_page(*, title: str, subtitle: list[str], headline: list[tuple[str, str]],
                sections: list[RenderedSection], config: dict[str, Any], footer: str) -> str:
    """The report page as an HTML string (no external resources).

    Parameters
    ----------
    title : str
    subtitle : list of str
        Lines under the title (source, date, version).
    headline : list of (value, label)
        Key numbers shown as cards at the top.
    sections : list of RenderedSection
    config : dict
        The run's configuration, shown in a collapsible block so the page documents the run.
    footer : str
    """
    nav = " ".join(f'<a href="#{html.escape(s.name)}">{html.escape(s.title)}</a>' for s in sections)
    cards = "".join(f'<div class="card"><b>{html.escape(v)}</b><span>{html.escape(k)}</span></div>'
                    for v, k in headline)
    body = "\n".join(_section_html(s) for s in sections)
    lines = "".join(f"<p>{html.escape(line)}</p>" for line in subtitle)
    config_text = html.escape(json.dumps(config, indent=2, default=str))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<style>{_CSS}</style></head>
<body>
<header><h1>{html.escape(title)}</h1>{lines}</header>
<main>
<div class="headline">{cards}</div>
<nav>{nav}</nav>
{body}
<section id="configuration"><h2>Configuration</h2>
<details><summary>config.json (rerun with <code>spikefield fit --config config.json</code>)</summary>
<pre>{config_text}</pre></details></section>
</main>
<footer>{html.escape(footer)}</footer>
</body></html>
"""
