"""``eval-pipelines kpis``: the headline KPI table in the terminal, read from the warehouse BI reads.

Prints the same table the Dagster UI shows on ``kpi_daily`` (``metrics.headline_table``), for days, ISO weeks or
months. Exit codes follow the main CLI: 0 printed, 2 bad arguments or no warehouse tables yet.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date, timedelta

import sqlalchemy as sa

from eval_pipelines.config import PROJECT_ROOT, load_settings
from eval_pipelines.kpis.metrics import headline_table, render_markdown
from eval_pipelines.kpis.rollups import period_start
from eval_pipelines.kpis.store import read_rows
from eval_pipelines.kpis.tables import kpi_daily, kpi_monthly, kpi_weekly
from eval_pipelines.warehouse.core import create_warehouse_engine, safe_url

TABLES: dict[str, sa.Table] = {"day": kpi_daily, "week": kpi_weekly, "month": kpi_monthly}


def _latest(engine: sa.Engine, table: sa.Table) -> date | None:
    key = table.c[next(iter(table.primary_key.columns)).name]
    with engine.connect() as connection:
        return connection.execute(sa.select(sa.func.max(key))).scalar()


def _cmd_kpis(args: argparse.Namespace) -> int:
    settings = load_settings(getattr(args, "config", None))
    engine = create_warehouse_engine(settings.storage.warehouse_url, PROJECT_ROOT)
    try:
        return _print_kpis(args, engine)
    except sa.exc.OperationalError as error:
        print(f"cannot read the warehouse {safe_url(engine)}: {error.orig}", file=sys.stderr)
        return 2
    finally:
        engine.dispose()


def _print_kpis(args: argparse.Namespace, engine: sa.Engine) -> int:
    table = TABLES[args.period]
    if not sa.inspect(engine).has_table(table.name):
        print(f"{safe_url(engine)} has no table {table.name} yet: materialise kpi_daily (and kpi_rollups) first, "
              "e.g. `eval-pipelines materialize`", file=sys.stderr)
        return 2
    until = args.until
    if until is None:
        latest = _latest(engine, table)
        if latest is None:
            print(f"{table.name} is empty", file=sys.stderr)
            return 0
        until = latest if isinstance(latest, date) else date.fromisoformat(str(latest)[:10])
    since = args.since or until - timedelta(days=6)
    if since > until:
        print(f"--since {since} is after --until {until}", file=sys.stderr)
        return 2
    if args.period != "day":
        since = period_start(since, args.period)  # a period is listed when it starts within, or contains, since
    rows = read_rows(engine, table, since, until)
    if args.system:
        rows = rows[rows["system"] == args.system]
    print(f"{table.name} from {since} to {until} ({len(rows)} row(s); money in each row's currency)")
    print(render_markdown(headline_table(rows)))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``kpis`` command to the main CLI's subparsers."""
    parser = subparsers.add_parser(
        "kpis", help="print headline business KPIs from the warehouse",
        description="Headline KPIs per day (or week/month), system, model version and segment, from the "
                    "warehouse tables kpi_daily / kpi_weekly / kpi_monthly.")
    parser.add_argument("--since", type=date.fromisoformat, default=None,
                        help="first day, YYYY-MM-DD (default: 6 days before --until)")
    parser.add_argument("--until", type=date.fromisoformat, default=None,
                        help="last day, inclusive, YYYY-MM-DD (default: the latest day in the table)")
    parser.add_argument("--period", choices=list(TABLES), default="day",
                        help="day (kpi_daily), week (kpi_weekly) or month (kpi_monthly)")
    parser.add_argument("--system", default=None, help="only this system")
    parser.set_defaults(handler=_cmd_kpis)
