"""The drift-score timeline in Markdown (asset metadata) and SVG (HTML report): which checks, in which order."""

from __future__ import annotations

import pandas as pd

from eval_pipelines.drift.render import svg_timeline, timeline_markdown


def history(rows: list[tuple[str, str, float, bool]]) -> pd.DataFrame:
    """drift_results-like rows: (date, column, effect size, drifted), threshold 0.1, kind numeric."""
    return pd.DataFrame([{"date": day, "column": column, "kind": "numeric", "effect_size": effect, "threshold": 0.1,
                          "severity": "major" if drifted else "none", "drifted": drifted}
                         for day, column, effect, drifted in rows])


WINDOW = history([
    ("2026-11-01", "latency_ms", 0.05, False), ("2026-11-03", "latency_ms", 0.25, True),
    ("2026-11-01", "confidence", 0.30, True), ("2026-11-03", "confidence", 0.02, False),
    ("2026-11-01", "cost_usd", 0.09, False), ("2026-11-03", "cost_usd", 0.08, False),
])


def test_markdown_lists_only_checks_that_drifted_highest_peak_first_with_gaps_for_missing_days():
    text = timeline_markdown(WINDOW)
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    assert [row.split("`")[1] for row in rows] == ["confidence", "latency_ms"]  # peaks 3.0, then 2.5
    assert "cost_usd" not in text
    assert "2026-11-01 → 2026-11-03" in text
    trend = rows[1].split("`")[3]
    assert len(trend) == 3 and trend[1] == " "  # 2026-11-02 has no report: a gap, not a zero
    assert rows[0].endswith("| 1 |") and rows[1].endswith("| 1 |")  # days drifted


def test_svg_draws_the_same_checks_and_caps_their_number():
    svg = svg_timeline(WINDOW)
    assert "confidence" in svg and "latency_ms" in svg and "cost_usd" not in svg
    assert svg.index("confidence") < svg.index("latency_ms")
    one = svg_timeline(WINDOW, max_lines=1)
    assert "confidence" in one and "latency_ms" not in one


def test_quiet_and_empty_histories_say_so():
    quiet = WINDOW[WINDOW["column"] == "cost_usd"]
    assert timeline_markdown(quiet) == "_No check drifted from 2026-11-01 to 2026-11-03._"
    assert "No check drifted from 2026-11-01 to 2026-11-03" in svg_timeline(quiet)
    assert timeline_markdown(pd.DataFrame()) == "_No drift history yet._"


def test_html_has_no_literal_markdown_and_never_clips_labels():
    """Issue 14 item 8: the headline and reasons are written for Markdown; the HTML page shows tags, not ** or `."""
    import numpy as np

    from eval_pipelines.drift.monitors import Monitor
    from eval_pipelines.drift.render import html_report, svg_bars
    from eval_pipelines.drift.report import compare_frames
    from eval_pipelines.drift.settings import DriftConfig

    rng = np.random.default_rng(4)
    long_label = "a very long category label that used to be cut off after twenty-six characters"
    reference = pd.DataFrame({"latency_ms": rng.lognormal(6.5, 0.9, 4000),
                              "channel": rng.choice(["email", long_label], 4000, p=[0.7, 0.3])})
    current = pd.DataFrame({"latency_ms": rng.lognormal(7.2, 0.9, 4000),
                            "channel": rng.choice(["email", long_label], 4000, p=[0.4, 0.6])})
    monitors = [Monitor("latency_ms", "numeric", "latency_ms"), Monitor("channel", "categorical", "channel")]
    report = compare_frames(reference, current, monitors, DriftConfig())
    page = html_report(report, "2026-11-26", "trailing 7 days")
    assert report.drifted and "**" not in page and "`" not in page and "<code>" in page
    channel = next(r for r in report.results if r.column == "channel" and r.plot)
    svg = svg_bars(channel)
    assert f">{long_label}<title>" in svg  # the whole label, not a truncation
    width = int(svg.split('width="', 1)[1].split('"', 1)[0])
    assert width >= len(long_label) * 11 * 0.62  # and room to draw it
    # a skewed numeric column gets bins at the reference quantiles: no bin holds most of the reference
    latency = next(r for r in report.results if r.column == "latency_ms" and r.kind == "numeric" and r.plot)
    assert max(latency.plot["reference"]) < 0.3


def test_descriptions_shown_in_the_ui_have_no_bare_angle_brackets():
    """The UI renders descriptions as Markdown: a bare <lake> there is swallowed as an HTML tag."""
    import re

    from eval_pipelines.definitions import build_definitions

    graph = build_definitions().resolve_asset_graph()
    texts = [graph.get(key).description or "" for key in graph.get_all_asset_keys()]
    for text in texts:
        outside_code = re.sub(r"`[^`]*`", "", text)
        assert not re.search(r"<[A-Za-z_][\w-]*>", outside_code), text
