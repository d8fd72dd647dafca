"""Rendering tabcli's self-contained HTML reports (explain, tune) from the Jinja2 templates in
``tabcli/reports/templates``, with autoescaping: every value is escaped unless it is markup this
module made (an inlined image)."""

from __future__ import annotations

import base64
from pathlib import Path

import pandas as pd

__all__ = ["render", "img", "cell"]

_ENVIRONMENT = None


def img(path: Path | None, alt: str):
    """An ``<img>`` with the PNG at ``path`` inlined (base64), so the page is one self-contained
    file; empty markup if there is no such file."""
    from markupsafe import Markup, escape

    if path is None or not Path(path).is_file():
        return Markup("")
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return Markup(f'<img alt="{escape(alt)}" src="data:image/png;base64,{data}">')


def cell(value) -> str:
    """A table cell's text: 4 significant digits for floats, "-" for missing values."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _environment():
    global _ENVIRONMENT
    if _ENVIRONMENT is None:
        from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

        _ENVIRONMENT = Environment(
            loader=PackageLoader("tabcli.reports", "templates"),
            autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=True),
            undefined=StrictUndefined,  # a misspelt name fails the report instead of leaving a gap
            trim_blocks=True,
            lstrip_blocks=True,
        )
        _ENVIRONMENT.filters["cell"] = cell
        _ENVIRONMENT.globals["img"] = img
    return _ENVIRONMENT


def render(template: str, path: Path, **context) -> Path:
    """Render ``template`` with ``context`` and write it to ``path`` atomically (a reader never
    sees half a page). Returns ``path``.

    Raises:
        jinja2.TemplateError: If the template is missing or uses a name ``context`` lacks.
    """
    from tabcli.runs.run_dir import write_atomic

    page = _environment().get_template(template).render(**context)
    write_atomic(Path(path), lambda tmp: tmp.write_text(page, encoding="utf-8"))
    return Path(path)
