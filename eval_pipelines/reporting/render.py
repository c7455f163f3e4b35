"""The quality report for people: standalone HTML (inline CSS, inline SVG plots) and a Markdown summary.

The HTML needs no network, no JavaScript and no file next to it, so it can be mailed or archived as it is: the
plots are matplotlib figures saved as SVG and inlined (their XML prolog, DOCTYPE and metadata, which carry URLs,
are stripped; text stays text). Every number shows its unit (% for rates, the currency code for money, h for
hours), and a closing "Where the numbers come from" section lists each figure's SQL.

The Markdown summary is for the Dagster UI's metadata; the HTML is written as HTML, never as Markdown.
"""

from __future__ import annotations

import html
import io
import math
import re
from collections.abc import Iterable

import pandas as pd

from eval_pipelines.reporting.model import Figure, QualityReport, Section

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem auto;max-width:1100px;
color:#1f2933;line-height:1.45;padding:0 1rem}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #d9e2ec}
.sub{color:#52606d}.partial{background:#fff3c4;border:1px solid #f0b429;padding:.4rem .7rem;border-radius:4px}
.cards{display:flex;flex-wrap:wrap;gap:.8rem}.card{border:1px solid #d9e2ec;border-radius:6px;padding:.6rem .9rem;
min-width:210px}.card .v{font-size:1.35rem;font-weight:600}.card .l{color:#52606d;font-size:.85rem}
.card .ci,.note{color:#52606d;font-size:.8rem}table{border-collapse:collapse;margin:.6rem 0;font-size:.85rem}
th,td{border:1px solid #d9e2ec;padding:.25rem .5rem;text-align:left;vertical-align:top}th{background:#f0f4f8}
td.n{text-align:right;font-variant-numeric:tabular-nums}.na{color:#9aa5b1;font-style:italic}
.pass{color:#0c6b58;font-weight:600}.fail{color:#ab091e;font-weight:600}svg{max-width:100%;height:auto}
code{font-size:.75rem;white-space:pre-wrap;word-break:break-word}details{margin:.5rem 0}
"""


# ------------------------------------------------------------------------------------------------------- numbers


def format_value(value: float | None, unit: str) -> str:
    """A number with its unit: ``12.3 %`` (value a fraction), ``1,234.50 EUR``, ``12.5 h``, ``1,234``, ``850 ms``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if unit == "percent":
        return f"{value * 100:.1f} %"
    if unit == "hours":
        return f"{value:,.1f} h"
    if unit == "count":
        return f"{value:,.0f}"
    if unit == "ms":
        return f"{value:,.0f} ms"
    if unit == "times":
        return f"{value:,.2f}×"
    if unit == "verdict":
        return "PASS" if value >= 1 else "FAIL"
    if unit == "date":
        return ""
    if re.fullmatch(r"[A-Z]{3}", unit):
        return f"{value:,.2f} {unit}"
    return f"{value:,.3g}"


def format_change(value: float | None, unit: str) -> str:
    """A week-over-week change: percentage points for rates, signed amounts otherwise."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if unit == "percent":
        return f"{value * 100:+.1f} pp"
    if unit == "times":
        return f"{value:+,.2f}×"
    text = format_value(abs(value), unit)
    return ("+" if value >= 0 else "−") + text


def format_interval(figure: Figure) -> str:
    if figure.ci_low is None or figure.ci_high is None:
        return ""
    return f"[{format_value(figure.ci_low, figure.unit)} – {format_value(figure.ci_high, figure.unit)}]"


# --------------------------------------------------------------------------------------------------------- plots


def _svg(figure) -> str:
    import matplotlib.pyplot as plt

    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None, "Creator": None})
    plt.close(figure)
    text = buffer.getvalue()
    text = re.sub(r"^.*?(<svg\b)", r"\1", text, count=1, flags=re.S)  # XML prolog and DOCTYPE (with its URL)
    return re.sub(r"<metadata>.*?</metadata>", "", text, flags=re.S)  # RDF metadata (with its URLs)


def _axes(title: str, ylabel: str):
    import matplotlib

    matplotlib.use("Agg")  # no display: render to files only
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.fonttype": "none", "svg.hashsalt": "quality-report", "font.size": 9})
    figure, axes = plt.subplots(figsize=(9, 2.8))
    axes.set_title(title, loc="left", fontsize=10)
    axes.set_ylabel(ylabel)
    axes.grid(alpha=0.3)
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    return figure, axes


def _dates(frame: pd.DataFrame) -> pd.Series:
    return pd.to_datetime(frame["kpi_date"])


def _day_axis(figure, axes, days: pd.Series) -> None:
    """One tick per day (at most about ten), labelled by date: the data are daily, hours would mislead."""
    import matplotlib.dates as mdates

    span = max(1, int((days.max() - days.min()).days) + 1) if len(days) else 1
    if len(days):
        # Explicit limits: one day alone would otherwise autoscale to years (and thousands of day ticks).
        axes.set_xlim(days.min() - pd.Timedelta(hours=18), days.max() + pd.Timedelta(hours=18))
    axes.xaxis.set_major_locator(mdates.DayLocator(interval=max(1, span // 10)))
    axes.xaxis.set_major_formatter(mdates.DateFormatter("%Y-%m-%d"))
    figure.autofmt_xdate()


def plot_hours_saved(daily: pd.DataFrame, ci_level: float) -> str:
    figure, axes = _axes(f"Hours saved per day, {ci_level:.0%} interval where the baseline is measured", "hours")
    x = _dates(daily)
    axes.plot(x, daily["hours_saved"], marker="o", markersize=3, color="#2680c2", label="hours saved")
    band = daily["hours_saved_ci_low"].notna()
    if band.any():
        axes.fill_between(x[band], daily.loc[band, "hours_saved_ci_low"], daily.loc[band, "hours_saved_ci_high"],
                          color="#2680c2", alpha=0.2, label=f"{ci_level:.0%} interval")
        mid = daily.loc[band, "hours_saved"]
        # Whiskers too: a band needs two days, a lone day (or a gap) still shows its interval.
        axes.errorbar(x[band], mid, yerr=[mid - daily.loc[band, "hours_saved_ci_low"],
                                          daily.loc[band, "hours_saved_ci_high"] - mid],
                      fmt="none", ecolor="#2680c2", alpha=0.6, capsize=2)
    axes.axhline(0, color="#9aa5b1", linewidth=0.8)
    axes.legend(loc="upper left", frameon=False)
    _day_axis(figure, axes, x)
    return _svg(figure)


def plot_accuracy(daily: pd.DataFrame, reviewed: pd.DataFrame | None, ci_level: float) -> str:
    figure, axes = _axes(f"Accuracy per day ({ci_level:.0%} intervals)", "accuracy (%)")
    x = _dates(daily)
    axes.plot(x, daily["accuracy"] * 100, marker="o", markersize=3, color="#2680c2",
              label="implicit (human action as label)")
    axes.fill_between(x, daily["accuracy_ci_low"] * 100, daily["accuracy_ci_high"] * 100, color="#2680c2", alpha=0.2)
    if reviewed is not None and len(reviewed):
        groups = reviewed.groupby(["system", "model_version", "segment"], sort=True)
        largest = sorted(groups, key=lambda item: -float(item[1]["reviewed_cases_audited"].sum()))[:4]
        for (system, version, segment), part in largest:
            part = part.sort_values("kpi_date")
            px = _dates(part)
            axes.errorbar(px, part["reviewed_accuracy"] * 100,
                          yerr=[(part["reviewed_accuracy"] - part["reviewed_accuracy_ci_low"]) * 100,
                                (part["reviewed_accuracy_ci_high"] - part["reviewed_accuracy"]) * 100],
                          marker="s", markersize=3, capsize=2, linestyle="--",
                          label=f"reviewed {system}/{version}/{segment}")
    axes.legend(loc="lower left", frameon=False, fontsize=8)
    _day_axis(figure, axes, x)
    return _svg(figure)


def plot_net_value(daily: pd.DataFrame, currency: str, ci_level: float) -> str:
    figure, axes = _axes(f"Net value per day ({currency}), {ci_level:.0%} interval where measured", currency)
    x = _dates(daily)
    colours = ["#0c6b58" if v >= 0 else "#ab091e" for v in daily["net_value_amount"].fillna(0)]
    axes.bar(x, daily["net_value_amount"], color=colours, alpha=0.8, width=0.8)
    band = daily["net_value_ci_low_amount"].notna()
    if band.any():
        mid = daily.loc[band, "net_value_amount"]
        axes.errorbar(x[band], mid, yerr=[mid - daily.loc[band, "net_value_ci_low_amount"],
                                          daily.loc[band, "net_value_ci_high_amount"] - mid],
                      fmt="none", ecolor="#1f2933", capsize=2)
    axes.axhline(0, color="#9aa5b1", linewidth=0.8)
    _day_axis(figure, axes, x)
    return _svg(figure)


# ---------------------------------------------------------------------------------------------------------- HTML


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


_PERCENT_COLUMNS = re.compile(r"(rate|accuracy|share)(_ci_low|_ci_high)?$")


def _cell(column: str, value: object, currency: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return '<td class="na">n/a</td>'
    if isinstance(value, bool):
        return f"<td>{'yes' if value else 'no'}</td>"
    if isinstance(value, int | float) and not isinstance(value, bool):
        if _PERCENT_COLUMNS.search(column):
            return f'<td class="n">{format_value(float(value), "percent")}</td>'
        if column == "roi":
            return f'<td class="n">{format_value(float(value), "times")}</td>'
        if column.endswith("_amount"):
            return f'<td class="n">{format_value(float(value), currency)}</td>'
        if column.startswith("hours_saved"):
            return f'<td class="n">{format_value(float(value), "hours")}</td>'
        if column.startswith("latency"):
            return f'<td class="n">{format_value(float(value), "ms")}</td>'
        if float(value).is_integer():
            return f'<td class="n">{int(value):,}</td>'
        return f'<td class="n">{float(value):,.4g}</td>'
    return f"<td>{_e(value)}</td>"


_HEADERS = {"net_value_amount": "net value", "kpi_date": "day", "days_with_data": "days"}


def html_table(frame: pd.DataFrame, currency: str, columns: Iterable[str] | None = None) -> str:
    if frame.empty:
        return '<p class="na">no rows</p>'
    columns = list(columns or frame.columns)
    head = "".join(f"<th>{_e(_HEADERS.get(c, c.replace('_', ' ')))}</th>" for c in columns)
    body = "".join("<tr>" + "".join(_cell(c, row[c], currency) for c in columns) + "</tr>"
                   for _, row in frame.iterrows())
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _card(figure: Figure) -> str:
    interval = format_interval(figure)
    parts = [f'<div class="card"><div class="l">{_e(figure.label)}</div>',
             f'<div class="v">{_e(format_value(figure.value, figure.unit) or figure.note)}</div>']
    if interval:
        parts.append(f'<div class="ci">interval {_e(interval)}</div>')
    if figure.note and figure.unit != "date":
        parts.append(f'<div class="note">{_e(figure.note)}</div>')
    return "".join(parts) + "</div>"


def _unavailable(section: Section) -> str:
    return f'<h2>{_e(section.title)}</h2><p class="na">{_e(section.reason)}</p>'


def _value_html(report: QualityReport, section: Section) -> str:
    week = [section.figure(k) for k in ("week_hours_saved", "week_net_value", "week_roi", "week_total_cost",
                                         "week_cases")]
    to_date = [section.figure(k) for k in ("to_date_hours_saved", "to_date_net_value", "to_date_roi",
                                            "to_date_total_cost", "to_date_cases")]
    since = next((f.note for f in section.figures if f.key == "first_day"), "")
    out = [f"<h2>{_e(section.title)}</h2>", f"<h3>This period ({_e(report.week.label)})</h3>",
           '<div class="cards">' + "".join(_card(f) for f in week) + "</div>",
           f"<h3>To date (since {_e(since) or 'the first day'})</h3>",
           '<div class="cards">' + "".join(_card(f) for f in to_date) + "</div>"]
    if "daily" in report.series and len(report.series["daily"]):
        out.append(plot_hours_saved(report.series["daily"], report.ci_level))
        out.append(plot_net_value(report.series["daily"], report.currency or "currency", report.ci_level))
    wow = section.tables["week_over_week"]
    rows = "".join(f"<tr><td>{_e(r.metric)}</td><td class='n'>{_e(format_value(r.this_week, r.unit))}</td>"
                   f"<td class='n'>{_e(format_value(r.previous_week, r.unit))}</td>"
                   f"<td class='n'>{_e(format_change(r.change, r.unit))}</td></tr>"
                   for r in wow.itertuples(index=False))
    out.append("<h3>Week over week</h3><table><thead><tr><th>metric</th><th>this week</th><th>previous week</th>"
               f"<th>change</th></tr></thead><tbody>{rows}</tbody></table>")
    out.append("<h3>Assumptions behind the money</h3>")
    out.append("<p>Hours saved = credited decisions × manual baseline per decision − the human time they took; "
               "net value = labour value saved + value of correct decisions − AI cost − platform cost − error "
               "cost; ROI = net value / full cost of running (AI + review labour + platform), shown as a multiple "
               "(×). An interval is given only where the baseline was measured on a control group; an assumed "
               "baseline has none, and every money figure moves linearly with it.</p>")
    out.append(html_table(section.tables["assumptions"], report.currency))
    if "definitions" in section.tables:
        out.append(html_table(section.tables["definitions"], report.currency))
    return "".join(out)


def _section_html(report: QualityReport, section: Section) -> str:
    if not section.available:
        return _unavailable(section)
    currency = report.currency
    if section.key == "value":
        return _value_html(report, section)
    out = [f"<h2>{_e(section.title)}</h2>"]
    if section.key == "versions":
        out.append(html_table(section.tables["versions"], currency))
        if "daily" in report.series and len(report.series["daily"]):
            # Implicit accuracy, with the reviewed estimates beside it once the review loop runs.
            out.append(plot_accuracy(report.series["daily"], report.series.get("reviewed"), report.ci_level))
    elif section.key == "review":
        out.append(html_table(section.tables["reviewed"], currency))
        if "agreement" in section.tables:
            out.append("<p>Reviewer agreement over the week's double-reviewed cases (Krippendorff's α; Cohen's κ "
                       "when the same two reviewers read every such case), with 95 % intervals.</p>")
            out.append(html_table(section.tables["agreement"], currency))
    elif section.key == "reliability":
        out.append('<div class="cards">' + "".join(_card(f) for f in section.figures if ":" not in f.key) + "</div>")
        if "latency" in section.tables:
            out.append("<p>Latency percentiles per group against the SLO (kpi_weekly).</p>")
            out.append(html_table(section.tables["latency"], currency))
    elif section.key == "gates":
        cards = []
        for figure in section.figures:
            verdict = "pass" if figure.value else "fail"
            cards.append(f'<div class="card"><div class="l">{_e(figure.label)}</div><div class="v {verdict}">'
                         f'{_e(format_value(figure.value, "verdict"))}</div><div class="note">{_e(figure.note)}'
                         "</div></div>")
        out.append('<div class="cards">' + "".join(cards) + "</div>")
        out.append(html_table(section.tables["scores"], currency))
        out.append(html_table(section.tables["criteria"], currency, ["candidate", "context", "criterion", "value",
                                                                   "op", "threshold", "verdict", "detail"]))
    elif section.key == "drift":
        out.append('<div class="cards">' + "".join(_card(f) for f in section.figures) + "</div>")
        out.append(html_table(section.tables["highlights"].head(15), currency))
    elif section.key == "failures":
        out.append(html_table(section.tables["top"], currency))
        out.append("<h3>Examples</h3>")
        out.append(html_table(section.tables["examples"], currency,
                              ["failure_mode", "status", "occurrences", "input_text", "ai_output", "expected_output"]))
    elif section.key == "estimates":
        out.append(html_table(section.tables["estimates"], currency))
    else:
        out.append('<div class="cards">' + "".join(_card(f) for f in section.figures) + "</div>")
        for frame in section.tables.values():
            out.append(html_table(frame, currency))
    out += [f'<p class="note">{_e(note)}</p>' for note in section.notes]
    return "".join(out)


def _provenance_html(report: QualityReport) -> str:
    rows = []
    for key, figure in report.figures().items():
        shown = format_value(figure.value, figure.unit) if figure.value is not None else (figure.note or "n/a")
        rows.append(f"<tr><td>{_e(key)}</td><td class='n'>{_e(shown)}</td>"
                    f"<td>{_e(figure.source)}</td><td><code>{_e(figure.query.describe())}</code></td></tr>")
    return ("<h2>Where the numbers come from</h2><p>Each figure, how it is derived from the rows of its query, and "
            "the query (read on the warehouse when the report was built). KPI totals combine kpi_daily rows with "
            "the same code as the kpi_weekly rollup.</p><details><summary>"
            f"{len(rows)} figures</summary><table><thead><tr><th>figure</th><th>value</th><th>derived as</th>"
            f"<th>query</th></tr></thead><tbody>{''.join(rows)}</tbody></table></details>")


def html_report(report: QualityReport) -> str:
    """The standalone HTML page of ``report``."""
    week = report.week
    status = (f'<p class="partial">Partial period: {report.days_with_data} of 7 days have KPI rows'
              f"{' and the week is not over' if report.generated_at.date() <= week.end else ''}.</p>"
              if report.partial else "")
    body = "".join(_section_html(report, s) for s in report.sections.values())
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>Quality report {_e(week.label)}</title><style>{_CSS}</style></head><body>"
            f"<h1>AI quality report, {_e(week.label)}</h1>"
            f'<p class="sub">{_e(week.start.isoformat())} to {_e(week.end.isoformat())} (UTC) · built '
            f"{_e(report.generated_at.strftime('%Y-%m-%d %H:%M UTC'))} · intervals at {report.ci_level:.0%} · "
            f"money in {_e(report.currency or 'n/a')}</p>{status}{body}{_provenance_html(report)}</body></html>")


# ------------------------------------------------------------------------------------------------------ Markdown


def markdown_summary(report: QualityReport) -> str:
    """The headline of the report as Markdown (the Dagster UI's metadata)."""
    value = report.section("value")
    lines = [f"**AI quality report {report.week.label}** ({report.week.start} to {report.week.end})"
             + (f" · _partial: {report.days_with_data} of 7 days_" if report.partial else ""), "",
             "| figure | this period | to date |", "|---|---|---|"]
    for key in ("hours_saved", "net_value", "roi", "cases"):
        week, to_date = value.figure(f"week_{key}"), value.figure(f"to_date_{key}")
        cells = []
        for figure in (week, to_date):
            interval = format_interval(figure)
            cells.append(format_value(figure.value, figure.unit) + (f" {interval}" if interval else ""))
        lines.append(f"| {week.label} | {cells[0]} | {cells[1]} |")
    wow = value.tables["week_over_week"]
    lines += ["", "| week over week | this week | previous | change |", "|---|---|---|---|"]
    lines += [f"| {r.metric} | {format_value(r.this_week, r.unit)} | {format_value(r.previous_week, r.unit)} | "
              f"{format_change(r.change, r.unit)} |" for r in wow.itertuples(index=False)]
    lines.append("")
    versions = report.section("versions")
    if versions.available:
        lines += ["| model version | cases | accuracy (implicit) | net value | ROI |", "|---|---|---|---|---|"]
        for row in versions.tables["versions"].itertuples(index=False):
            accuracy = versions.figure(f"accuracy:{row.system}/{row.model_version}")
            lines.append(f"| {row.system}/{row.model_version} | {format_value(float(row.cases), 'count')} | "
                         f"{format_value(accuracy.value, 'percent')} {format_interval(accuracy)} | "
                         f"{format_value(row.net_value_amount, report.currency or 'XXX')} | "
                         f"{format_value(row.roi, 'times')} |")
        lines.append("")
    reliability = report.section("reliability")
    if reliability.available:
        lines.append("- **Reliability**: " + ", ".join(
            f"{reliability.figure(k).label} {format_value(reliability.figure(k).value, 'percent')}"
            for k in ("error_rate", "timeout_rate", "slo_attainment_rate")))
    for key in ("review", "gates", "drift", "failures", "estimates"):
        section = report.section(key)
        if not section.available:
            lines.append(f"- **{section.title}**: {section.reason}")
        elif key == "gates":
            lines.append(f"- **{section.title}**: " + "; ".join(f"{f.label.removeprefix('Release gate ')}: "
                                                                f"{f.note}" for f in section.figures))
        elif key == "drift":
            lines.append(f"- **{section.title}**: {format_value(section.figure('major_drifts').value, 'count')} "
                         f"major, {format_value(section.figure('minor_drifts').value, 'count')} minor (column × "
                         "day)")
        elif key == "failures":
            top = section.tables["top"]
            lines.append(f"- **{section.title}**: " + ", ".join(f"{r.failure_mode} ({int(r.occurrences):,})"
                                                                for r in top.itertuples(index=False)))
        else:
            lines.append(f"- **{section.title}**: {len(section.figures)} figure(s), see the HTML report")
    lines.append("")
    lines.append("ROI = net value / full cost of running (AI + review labour + platform), as a multiple (×).")
    return "\n".join(lines)
