"""Pieces of tabcli's self-contained HTML reports (explain, tune): style sheet, inlined images, tables."""

from __future__ import annotations

import base64
import html
from pathlib import Path

import pandas as pd

__all__ = ["STYLE", "img", "fmt", "table"]

STYLE = """
body { font-family: -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; margin: 2rem auto;
       max-width: 1200px; color: #1f2328; line-height: 1.45; padding: 0 1rem; }
h1 { margin-bottom: 0.2rem; } h2 { border-bottom: 1px solid #d0d7de; padding-bottom: 0.3rem; margin-top: 2.2rem; }
.meta { color: #57606a; } .note { background: #fff8c5; border-left: 4px solid #d4a72c; padding: 0.5rem 0.8rem; margin: 0.5rem 0; }
.callout { background: #ddf4ff; border-left: 4px solid #0969da; padding: 0.6rem 0.9rem; margin: 0.8rem 0; }
table { border-collapse: collapse; margin: 0.6rem 0; font-size: 0.9rem; }
th, td { border: 1px solid #d0d7de; padding: 0.25rem 0.6rem; text-align: right; }
th { background: #f6f8fa; } td.left, th.left { text-align: left; }
img { max-width: 100%; border: 1px solid #d0d7de; margin: 0.5rem 0; }
pre { background: #f6f8fa; padding: 0.8rem; overflow-x: auto; font-size: 0.8rem; }
details { margin: 0.6rem 0; } .row { display: flex; flex-wrap: wrap; gap: 1.5rem; align-items: flex-start; }
"""


def img(path: Path | None, alt: str) -> str:
    """An ``<img>`` with the PNG at ``path`` inlined (base64), so the page is one self-contained file; "" if absent."""
    if path is None or not Path(path).is_file():
        return ""
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def fmt(value) -> str:
    """A table cell: 4 significant digits for floats, "-" for missing, HTML-escaped text otherwise."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))


def table(rows: list[dict], columns: list[str]) -> str:
    """An HTML table of ``rows`` (mappings) with ``columns``; the first column left-aligned."""
    head = "".join(f'<th class="left">{html.escape(c)}</th>' if i == 0 else f"<th>{html.escape(c)}</th>" for i, c in enumerate(columns))
    body = "".join(
        "<tr>" + "".join(f'<td class="left">{fmt(r.get(c))}</td>' if i == 0 else f"<td>{fmt(r.get(c))}</td>"
                         for i, c in enumerate(columns)) + "</tr>"
        for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"
