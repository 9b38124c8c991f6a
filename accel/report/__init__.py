"""Views of result documents: terminal tables, and Markdown, CSV, JSON and HTML reports of one run or of
several side by side. Every figure comes from the documents; one that was not measured shows as "n/a" (an
empty cell in CSV, null in JSON).

    render([doc], "md")                                   # the report as text
    write_reports(doc, result_dir, ["html", "md", "csv"])  # report.<ext> beside result.json
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from accel.core.errors import ConfigError
from accel.report.plots import PLOTS_HINT, save_chart_png
from accel.report.preview import save_frames
from accel.report.terminal import compare_table, legend, model_table, power_legend, variants_table
from accel.results.document import per_model

#: Report formats, and the file suffix each is written with.
FORMATS = {"html": ".html", "md": ".md", "csv": ".csv", "json": ".json"}

__all__ = ["FORMATS", "compare_table", "legend", "model_table", "power_legend", "render", "save_chart_png",
           "save_frames", "variants_table", "write_reports"]


def render(docs: list[dict[str, Any]], fmt: str, base: Path | Sequence[Path | None] | None = None,
           target_fps: float | None = None) -> str:
    """The report of ``docs`` (one run, or several side by side with ratios against the first) as text.

    ``fmt`` is one of ``FORMATS``. ``base`` is the folder holding the result.json (one for all documents, or
    one per document): the HTML preview reads the saved frames from there. ``target_fps`` (default: the
    documents' ``[report] target_fps``) is the rate the Markdown and HTML reports recommend for. Raises
    ``ConfigError`` for an unknown format, no documents, or HTML without matplotlib (the message says
    ``pip install 'accel[plots]'``).
    """
    if fmt not in FORMATS:
        raise ConfigError(f"unknown report format {fmt!r}; valid: {', '.join(FORMATS)}")
    if not docs:
        raise ConfigError("a report needs at least one result document")
    if fmt == "md":
        from accel.report.markdown import render_markdown

        return render_markdown(docs, target_fps)
    if fmt in ("csv", "json"):
        from accel.report.flat import render_csv, render_json

        return render_csv(docs) if fmt == "csv" else render_json(docs)
    from accel.report.html import render_html

    bases = [base] * len(docs) if base is None or isinstance(base, Path) else list(base)
    if len(bases) != len(docs):
        raise ConfigError(f"render: {len(docs)} documents but {len(bases)} base folders")
    return render_html(docs, bases, target_fps)


def write_reports(doc: dict[str, Any], directory: Path, formats: Sequence[str],
                  base: Path | None = None, stem: str = "report") -> dict[str, Path | str]:
    """Write ``<stem>.<ext>`` in ``directory`` for each format; never raises for one format's failure.

    Returns ``{format: path written}`` or ``{format: why it was not written}`` (e.g. html without matplotlib:
    "pip install 'accel[plots]'"). ``base`` (default ``directory``) is the result.json's folder.
    """
    directory = Path(directory)
    out: dict[str, Path | str] = {}
    for fmt in formats:
        if fmt not in FORMATS:
            out[fmt] = f"unknown report format {fmt!r}; valid: {', '.join(FORMATS)}"
            continue
        if fmt == "html" and not _have_matplotlib():
            out[fmt] = f"html needs matplotlib: {PLOTS_HINT}"
            continue
        try:
            text = render(per_model(doc), fmt, base if base is not None else directory)
            path = directory / f"{stem}{FORMATS[fmt]}"
            directory.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        except (ConfigError, OSError) as exc:
            out[fmt] = str(exc)
            continue
        except Exception as exc:  # a report bug must not cost the run: the result is already on disk
            out[fmt] = f"{fmt} report failed ({type(exc).__name__}: {exc}); the result JSON is intact: " \
                       "please report this bug"
            continue
        out[fmt] = path
    return out


def _have_matplotlib() -> bool:
    import importlib.util

    return importlib.util.find_spec("matplotlib") is not None
