"""``eval-pipelines report``: build the quality report of one ISO week from the warehouse, on demand.

The same report the ``quality_report`` asset writes (``reporting.model`` + ``reporting.render``), for any week,
including the current, partial one (``--period latest``: the week of the newest kpi_daily day). Writes the HTML
(atomically: a temporary file renamed into place) and prints the Markdown summary. Exit codes: 0 written, 2 bad
arguments or no warehouse data yet.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from datetime import date
from pathlib import Path

import sqlalchemy as sa

from eval_pipelines.config import PROJECT_ROOT, load_settings
from eval_pipelines.lake import Lake
from eval_pipelines.warehouse.core import create_warehouse_engine, safe_url


def _latest_day(engine: sa.Engine) -> date | None:
    with engine.connect() as connection:
        value = connection.execute(sa.text("SELECT MAX(kpi_date) FROM kpi_daily")).scalar()
    return None if value is None else value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def _write_file(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
        os.replace(temporary, path)  # readers see the old report or the new one, never half a file
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _cmd_report(args: argparse.Namespace) -> int:
    from eval_pipelines.reporting.assets import write_report
    from eval_pipelines.reporting.model import build_report
    from eval_pipelines.reporting.periods import parse_period, week_of
    from eval_pipelines.reporting.render import html_report, markdown_summary
    from eval_pipelines.resources import lake_root

    settings = load_settings(getattr(args, "config", None))
    engine = create_warehouse_engine(settings.storage.warehouse_url, PROJECT_ROOT)
    try:
        if not sa.inspect(engine).has_table("kpi_daily"):
            print(f"{safe_url(engine)} has no table kpi_daily yet: materialise the daily chain first "
                  "(eval-pipelines materialize)", file=sys.stderr)
            return 2
        if args.period == "latest":
            latest = _latest_day(engine)
            if latest is None:
                print("kpi_daily is empty: nothing to report yet", file=sys.stderr)
                return 2
            week = week_of(latest)
        else:
            try:
                week = parse_period(args.period)
            except ValueError as error:
                print(f"--period: {error}", file=sys.stderr)
                return 2
        report = build_report(engine, week, settings.impact.ci_level, settings.impact.low_volume_below,
                              review_enabled=settings.review.enabled)
    except sa.exc.OperationalError as error:
        print(f"cannot read the warehouse {safe_url(engine)}: {error.orig}", file=sys.stderr)
        return 2
    finally:
        engine.dispose()
    page = html_report(report)
    if args.out:
        target = Path(args.out)
        _write_file(target, page)
        where = str(target)
    else:
        where = write_report(Lake(lake_root(settings)), week, page)
    print(markdown_summary(report))
    print(f"\nreport {week.label}{' (partial)' if report.partial else ''} written to {where}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``report`` command to the main CLI's subparsers."""
    parser = subparsers.add_parser(
        "report", help="build the leadership quality report of an ISO week (HTML) from the warehouse",
        description="The quality report (value delivered, accuracy, reliability, gates, drift, failure modes) of "
                    "one ISO week, every number read from the warehouse; prints the Markdown summary.")
    parser.add_argument("--period", default="latest",
                        help="ISO week YYYY-Www (e.g. 2026-W48), a day YYYY-MM-DD (its week), or latest (the week "
                             "of the newest kpi_daily day, marked partial until it is over); default latest")
    parser.add_argument("--out", default=None,
                        help="HTML file to write (default: <lake>/quality_report/<YYYY-Www>.html, where the asset "
                             "writes it)")
    parser.set_defaults(handler=_cmd_report)
