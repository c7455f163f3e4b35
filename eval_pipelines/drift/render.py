"""Drift reports for people: a Markdown summary with Unicode plots (Dagster metadata, the CLI) and standalone HTML.

Markdown plots are tables of Unicode bars and sparklines because they render everywhere Markdown does (the
Dagster UI, GitHub, a terminal); the HTML report draws the same data as inline SVG and needs no network, no
JavaScript and no files next to it, so it can be mailed or archived as it is.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Sequence

import pandas as pd

from eval_pipelines.drift.report import DriftReport, DriftResult

_EIGHTHS = " ▏▎▍▌▋▊▉"
_SPARKS = "▁▂▃▄▅▆▇█"
_SEVERITY_MARK = {"major": "🔴 major", "minor": "🟠 minor", "none": "·"}
_KIND_ORDER = {"numeric": 0, "categorical": 1, "calibration": 2, "missing": 3}
SCORE_CAP = 4.0  # timelines clip drift scores (effect / threshold) here so one outlier does not flatten the rest


def bar(value: float, scale: float, width: int = 16) -> str:
    """A horizontal bar of ``value / scale`` of ``width`` characters, to an eighth of a character."""
    if not (scale > 0) or not math.isfinite(value) or value <= 0:
        return ""
    eighths = round(min(value / scale, 1.0) * width * 8)
    return "█" * (eighths // 8) + (_EIGHTHS[eighths % 8] if eighths % 8 else "")


def sparkline(scores: Sequence[float | None], cap: float = SCORE_CAP) -> str:
    """One character per day; blank when the day has no value; the top block means >= ``cap``."""
    out = []
    for score in scores:
        if score is None or not math.isfinite(score):
            out.append(" " if score is None else _SPARKS[-1])
            continue
        out.append(_SPARKS[min(len(_SPARKS) - 1, int(max(score, 0.0) / cap * (len(_SPARKS) - 1) + 0.5))])
    return "".join(out)


def _cell(text: str, limit: int = 160) -> str:
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    return text.replace("|", "\\|").replace("\n", " ")


def _fmt(value: float | None, digits: int = 3) -> str:
    if value is None or not math.isfinite(value):
        return "–"
    if value != 0 and abs(value) < 10 ** -digits:
        return f"{value:.1e}"
    return f"{value:.{digits}f}"


def _p(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "–"
    if value < 1e-300:
        return "<1e-300"
    return f"{value:.1e}" if value < 1e-3 else f"{value:.4f}"


def _ordered(results: Sequence[DriftResult]) -> list[DriftResult]:
    rank = {"major": 0, "minor": 1, "none": 2}
    return sorted(results, key=lambda r: (rank[r.severity], -(r.score or 0.0), _KIND_ORDER.get(r.kind, 9), r.column))


def _headline(report: DriftReport) -> str:
    drifted, major = report.drifted, report.major
    if not report.results:
        return "**No comparison**: no reference data for this day."
    tested = len(report.tested)
    untested = len(report.results) - tested
    if not tested:
        return (f"**Not enough data**: {report.current_rows:,} current rows; none of the {len(report.results)} "
                "checks could be judged (each needs drift.min_rows values on both sides).")
    skipped = f" ({untested} not tested: not enough data or no reference)" if untested else ""
    if not drifted:
        return f"**No drift** in {tested} tested checks{skipped}."
    names = ", ".join(f"`{r.column}`" + ("" if r.kind in ("numeric", "categorical") else f" ({r.kind})")
                      for r in _ordered(drifted))
    return f"**{len(drifted)} of {tested} tested checks drifted ({len(major)} major)**{skipped}: {names}"


def results_table(report: DriftReport) -> str:
    """Markdown table of every result, drifted first."""
    lines = ["| column | kind | severity | effect | threshold | p_adj | reason |", "|---|---|---|---|---|---|---|"]
    for result in _ordered(report.results):
        lines.append(f"| `{result.column}` | {result.kind} | {_SEVERITY_MARK[result.severity]} | "
                     f"{_fmt(result.effect_size)} | {_fmt(result.threshold)} | {_p(result.p_adjusted)} | "
                     f"{_cell(result.reason)} |")
    return "\n".join(lines)


def plot_markdown(result: DriftResult) -> str:
    """Reference vs current for one result, as a table of Unicode bars."""
    plot = result.plot
    if not plot:
        return ""
    percent = plot.get("unit") in ("share", "accuracy")
    scale = max([*plot["reference"], *plot["current"], 1e-12])
    lines = [f"**`{result.column}`** ({result.kind}, {result.severity}): {_cell(result.reason, 240)}", "",
             "| | reference | current |", "|---|---|---|"]
    for label, ref, cur in zip(plot["labels"], plot["reference"], plot["current"], strict=True):
        ref_text = f"{ref:.1%}" if percent else _fmt(ref)
        cur_text = f"{cur:.1%}" if percent else _fmt(cur)
        lines.append(f"| {_cell(str(label), 40)} | {bar(ref, scale)} {ref_text} | {bar(cur, scale)} {cur_text} |")
    return "\n".join(lines)


def plots_markdown(report: DriftReport, max_columns: int = 8) -> str:
    shown = [r for r in _ordered(report.drifted) if r.plot][:max_columns]
    if not shown:
        return "_No drifted column to plot._"
    return "\n\n".join(plot_markdown(r) for r in shown)


def timeline_frame(history: pd.DataFrame) -> pd.DataFrame:
    """Scores (effect / threshold) per (column, kind) and date from ``drift_results`` rows."""
    if history is None or history.empty:
        return pd.DataFrame(columns=["date", "column", "kind", "score", "drifted"])
    frame = history.copy()
    frame["date"] = pd.to_datetime(frame["date"]).dt.date.astype(str)
    effect = frame["effect_size"].astype("float64")
    frame["score"] = effect / frame["threshold"].astype("float64")
    frame.loc[effect.isna() & frame["severity"].eq("major"), "score"] = math.inf  # constant reference, now not
    return frame[["date", "column", "kind", "score", "drifted"]]


def _all_dates(frame: pd.DataFrame) -> list[str]:
    """Every day from the first to the last in the history, so days without a report show as gaps."""
    days = pd.to_datetime(pd.Series(frame["date"].unique()))
    return [d.date().isoformat() for d in pd.date_range(days.min(), days.max(), freq="D")]


def _drifted_scores(frame: pd.DataFrame, dates: list[str]) -> pd.DataFrame:
    """Each day's score of every check that drifted at least once in the window (rows), highest peak first."""
    drifted = frame.groupby(["column", "kind"])["drifted"].any()
    table = frame.pivot_table(index=["column", "kind"], columns="date", values="score", aggfunc="max")
    table = table.reindex(columns=dates).loc[[key for key, flag in drifted.items() if flag]]
    return table.loc[table.max(axis=1).sort_values(ascending=False, kind="stable").index]


def timeline_markdown(history: pd.DataFrame, max_rows: int = 15) -> str:
    """Sparklines of drift scores over the window, for checks that drifted at least once (>= 1 is material)."""
    frame = timeline_frame(history)
    if frame.empty:
        return "_No drift history yet._"
    dates = _all_dates(frame)
    table = _drifted_scores(frame, dates)
    if table.empty:
        return f"_No check drifted from {dates[0]} to {dates[-1]}._"
    lines = [f"Drift score = effect / threshold per day, {dates[0]} → {dates[-1]} (▁ 0 … █ ≥ {SCORE_CAP:g}; "
             "≥ 1 is material)", "", "| column | kind | trend | last | days drifted |", "|---|---|---|---|---|"]
    counts = frame[frame["drifted"].astype(bool)].groupby(["column", "kind"]).size()
    for (column, kind), row in table.head(max_rows).iterrows():
        scores = [None if pd.isna(v) else float(v) for v in row.tolist()]
        last = scores[-1]
        lines.append(f"| `{column}` | {kind} | `{sparkline(scores)}` | {_fmt(last, 2)} | "
                     f"{int(counts.get((column, kind), 0))} |")
    return "\n".join(lines)


def markdown_summary(report: DriftReport, day: str | None, reference_label: str,
                     history: pd.DataFrame | None = None, max_plots: int = 8) -> str:
    """The whole report in Markdown: headline, results, plots of drifted columns, the drift-score timeline."""
    title = f"### Drift report {day}" if day else "### Drift report"
    parts = [title, "",
             f"Reference: {reference_label} ({report.reference_rows:,} rows) · current: {report.current_rows:,} rows"
             f" · evidence: BH-adjusted p ≤ {report.alpha:g} and a material effect", "", _headline(report), ""]
    if report.results:
        parts += [results_table(report)]
    if report.tested:  # nothing to plot when no check could be judged
        parts += ["", "#### Reference vs current", "", plots_markdown(report, max_plots)]
    if history is not None:
        parts += ["", "#### Timeline", "", timeline_markdown(history)]
    if report.notes:
        parts += ["", "Notes: " + "; ".join(report.notes)]
    return "\n".join(parts)


# ----------------------------------------------------------------------------------------------------------------
# HTML with inline SVG
# ----------------------------------------------------------------------------------------------------------------

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem;color:#1f2328;max-width:1100px}
h1{font-size:1.5rem}h2{font-size:1.2rem;margin-top:2rem}h3{font-size:1rem;margin-bottom:.3rem}
table{border-collapse:collapse;font-size:.85rem;width:100%}th,td{border-bottom:1px solid #d0d7de;padding:.3rem .5rem;
text-align:left;vertical-align:top}th{background:#f6f8fa}.major{color:#b42318;font-weight:600}
.minor{color:#b54708;font-weight:600}.none{color:#57606a}.muted{color:#57606a;font-size:.85rem}
.plot{margin:.5rem 0 1.5rem}code{font-size:.85rem}
"""
_REF_COLOUR, _CUR_COLOUR = "#8c959f", "#0969da"
_LINE_COLOURS = ("#0969da", "#b42318", "#1a7f37", "#8250df", "#b54708", "#bf3989", "#0550ae", "#57606a")


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _inline(text: object) -> str:
    """Escaped HTML of a text written for Markdown (headline, reasons): ``**x**`` and `` `x` `` become tags, so
    the page never shows literal Markdown."""
    escaped = _esc(text)
    escaped = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", escaped)
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped)


def _text_px(text: str, font_px: float) -> float:
    """A generous width estimate of ``text`` in a sans-serif font (0.62 em per character), so labels fit."""
    return len(text) * font_px * 0.62 + 4


def svg_bars(result: DriftResult, width: int = 640) -> str:
    """Paired horizontal bars, reference (grey) over current (blue), one pair per label."""
    plot = result.plot
    if not plot:
        return ""
    labels, reference, current = plot["labels"], plot["reference"], plot["current"]
    percent = plot.get("unit") in ("share", "accuracy")
    scale = max([*reference, *current, 1e-12])
    values = [f"{ref:.1%} → {cur:.1%}" if percent else f"{_fmt(ref)} → {_fmt(cur)}"
              for ref, cur in zip(reference, current, strict=True)]
    # Room for the longest label and value text, so nothing is clipped; the picture widens rather than cut.
    label_width = max(80, math.ceil(max(_text_px(str(label), 11) for label in labels)) + 8)
    value_width = max(60, math.ceil(max(_text_px(v, 10) for v in values)) + 8)
    row = 22
    bar_width = max(240, width - label_width - value_width)
    width = label_width + bar_width + value_width
    height = row * len(labels) + 28
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
             f'aria-label="{_esc(result.column)}: reference vs current">',
             f'<rect x="{label_width}" y="2" width="10" height="10" fill="{_REF_COLOUR}"/>'
             f'<text x="{label_width + 14}" y="11" font-size="11">reference</text>'
             f'<rect x="{label_width + 90}" y="2" width="10" height="10" fill="{_CUR_COLOUR}"/>'
             f'<text x="{label_width + 104}" y="11" font-size="11">current</text>']
    for i, (label, ref, cur) in enumerate(zip(labels, reference, current, strict=True)):
        y = 22 + i * row
        parts.append(f'<text x="{label_width - 6}" y="{y + 13}" font-size="11" text-anchor="end">{_esc(label)}'
                     f'<title>{_esc(label)}</title></text>')
        for offset, value, colour in ((0, ref, _REF_COLOUR), (9, cur, _CUR_COLOUR)):
            length = max(0.0, value / scale * bar_width) if math.isfinite(value) else 0.0
            text = f"{value:.1%}" if percent else _fmt(value)
            parts.append(f'<rect x="{label_width}" y="{y + offset}" width="{length:.1f}" height="8" '
                         f'fill="{colour}"><title>{_esc(text)}</title></rect>')
        parts.append(f'<text x="{label_width + bar_width + 4}" y="{y + 13}" font-size="10" fill="#57606a">'
                     f'{_esc(values[i])}</text>')
    parts.append("</svg>")
    return "".join(parts)


def svg_timeline(history: pd.DataFrame, width: int = 760, height: int = 240, max_lines: int = 8) -> str:
    """Drift scores (effect / threshold, clipped at SCORE_CAP) per day for checks that drifted in the window."""
    frame = timeline_frame(history)
    if frame.empty:
        return "<p class='muted'>No drift history yet.</p>"
    dates = _all_dates(frame)
    table = _drifted_scores(frame, dates).head(max_lines)
    if table.empty:
        return f"<p class='muted'>No check drifted from {_esc(dates[0])} to {_esc(dates[-1])}.</p>"
    legend = [f"{column} ({kind})" for column, kind in table.index]
    # The legend's width from its longest entry and room for half a date label at each end: nothing clipped.
    left, top, bottom = max(40, math.ceil(_text_px(dates[0], 10) / 2) + 4), 12, 36
    right = max(math.ceil(max(_text_px(text, 11) for text in legend)) + 16, math.ceil(_text_px(dates[-1], 10) / 2))
    width = max(width, left + right + 300)
    plot_w, plot_h = width - left - right, height - top - bottom

    def x_of(i: int) -> float:
        return left + (plot_w * i / max(len(dates) - 1, 1))

    def y_of(score: float) -> float:
        return top + plot_h * (1 - min(max(score, 0.0), SCORE_CAP) / SCORE_CAP)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
             f'aria-label="drift score timeline">',
             f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="#d0d7de"/>',
             f'<line x1="{left}" y1="{y_of(1):.1f}" x2="{left + plot_w}" y2="{y_of(1):.1f}" stroke="#b42318" '
             f'stroke-dasharray="4 3"/><text x="4" y="{y_of(1) + 4:.1f}" font-size="10" fill="#b42318">1 =</text>',
             f'<text x="4" y="{top + 8}" font-size="10" fill="#57606a">≥{SCORE_CAP:g}</text>']
    for i in sorted({0, len(dates) - 1, len(dates) // 2}):
        parts.append(f'<text x="{x_of(i):.1f}" y="{height - 14}" font-size="10" text-anchor="middle">'
                     f'{_esc(dates[i])}</text>')
    for line, ((column, kind), row) in enumerate(table.iterrows()):
        colour = _LINE_COLOURS[line % len(_LINE_COLOURS)]
        points = [(x_of(i), y_of(float(v) if math.isfinite(v) else SCORE_CAP))
                  for i, v in enumerate(row.tolist()) if not pd.isna(v)]
        if len(points) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
            parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.8" points="{path}"/>')
        for x, y in points:
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{colour}"/>')
        parts.append(f'<text x="{left + plot_w + 8}" y="{top + 12 + line * 14}" font-size="11" fill="{colour}">'
                     f'{_esc(column)} ({_esc(kind)})</text>')
    parts.append("</svg>")
    return "".join(parts)


def html_report(report: DriftReport, day: str | None, reference_label: str,
                history: pd.DataFrame | None = None) -> str:
    """A standalone HTML page: headline, results table, a plot per drifted column, the drift-score timeline."""
    title = f"Drift report {day}" if day else "Drift report"
    headline = _inline(_headline(report))
    rows = "".join(
        f"<tr><td><code>{_esc(r.column)}</code></td><td>{_esc(r.kind)}</td><td class='{r.severity}'>"
        f"{_esc(r.severity)}</td><td>{_esc(r.test)}</td><td>{_fmt(r.statistic)}</td><td>{_p(r.p_adjusted)}</td>"
        f"<td>{_fmt(r.effect_size)}</td><td>{_fmt(r.threshold)}</td><td>{_inline(r.reason)}</td></tr>"
        for r in _ordered(report.results))
    plots = "".join(f"<div class='plot'><h3><code>{_esc(r.column)}</code> ({_esc(r.kind)}, "
                    f"<span class='{r.severity}'>{_esc(r.severity)}</span>)</h3>"
                    f"<div class='muted'>{_inline(r.reason)}</div>{svg_bars(r)}</div>"
                    for r in _ordered(report.drifted) if r.plot)
    notes = "".join(f"<li>{_inline(note)}</li>" for note in report.notes)
    timeline = svg_timeline(history) if history is not None else ""
    return (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{_esc(title)}</title>"
        f"<style>{_CSS}</style></head><body><h1>{_esc(title)}</h1>"
        f"<p class='muted'>Reference: {_esc(reference_label)} ({report.reference_rows:,} rows) · current: "
        f"{report.current_rows:,} rows · a check drifts when its Benjamini–Hochberg adjusted p-value is at most "
        f"{report.alpha:g} and its effect size reaches the threshold.</p><p>{headline}</p>"
        f"<h2>Results</h2><table><thead><tr><th>column</th><th>kind</th><th>severity</th><th>test</th>"
        f"<th>statistic</th><th>p_adj</th><th>effect</th><th>threshold</th><th>reason</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
        + (f"<h2>Reference vs current</h2>{plots or '<p class=muted>No drifted column.</p>'}" if report.tested
           else "")
        + (f"<h2>Timeline of drift scores</h2>{timeline}" if timeline else "")
        + (f"<h2>Notes</h2><ul>{notes}</ul>" if notes else "")
        + "</body></html>"
    )
