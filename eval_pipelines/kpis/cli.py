"""``eval-pipelines kpis``: the headline KPI table in the terminal, read from the warehouse BI reads.

Prints the same table the Dagster UI shows on ``kpi_daily`` (``metrics.headline_table``), for days, ISO weeks or
months. Exit codes follow the main CLI: 0 printed, 2 bad arguments or no warehouse tables yet.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, date, datetime, timedelta

import pandas as pd
import sqlalchemy as sa

from eval_pipelines.config import PROJECT_ROOT, load_settings
from eval_pipelines.estimation.tables import performance_estimates
from eval_pipelines.kpis.metrics import ESTIMATE_COLUMNS, estimate_cells, headline_table, render_markdown
from eval_pipelines.kpis.rollups import period_end, period_start
from eval_pipelines.kpis.store import read_rows
from eval_pipelines.kpis.tables import kpi_daily, kpi_monthly, kpi_weekly
from eval_pipelines.warehouse.core import create_warehouse_engine, safe_url

TABLES: dict[str, sa.Table] = {"day": kpi_daily, "week": kpi_weekly, "month": kpi_monthly}
ESTIMATED_HEADER = "label-free estimate [CI]"


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


def _partial(rows: pd.DataFrame, period: str, until: date, today: date) -> list[str]:
    """Why each row's period is partial ("" when complete): a day still filling, a week or month with days missing
    or not over yet. Its sums (cases, hours, money) are then not comparable with a full period's."""
    marks = []
    for _, row in rows.iterrows():
        if period == "day":
            day = _as_date(row["kpi_date"])
            marks.append("in progress (today)" if day >= today else "")
            continue
        start = _as_date(row["week_start" if period == "week" else "month_start"])
        length = (period_end(start, period) - start).days + 1
        notes = []
        if int(row["days_with_data"]) < length:
            notes.append(f"{int(row['days_with_data'])}/{length} days with data")
        if period_end(start, period) >= today:
            notes.append("not over")
        marks.append(", ".join(notes))
    return marks


def _as_date(value: object) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def with_estimates(engine: sa.Engine, rows: pd.DataFrame, since: date, until: date) -> pd.DataFrame:
    """``rows`` (kpi_daily) with the label-free estimate of the same day and group beside them (issue 13 item 5):
    ``estimated_accuracy`` and its interval from performance_estimates, NaN where the day has none (estimation
    off, not run yet, or a model version without enough trusted labels). The estimate's population is the
    group's ok cases with a confidence, as docs/estimation.md says; it is not additive over days."""
    if rows.empty or not sa.inspect(engine).has_table(performance_estimates.name):
        return rows.assign(**{c: float("nan") for c in ESTIMATE_COLUMNS})
    t = performance_estimates.c
    query = sa.select(t.partition_date, t.system, t.model_version, t.segment, *(t[c] for c in ESTIMATE_COLUMNS)
                      ).where(t.partition_date >= since, t.partition_date <= until)
    with engine.connect() as connection:
        estimates = pd.DataFrame(connection.execute(query).mappings().all(),
                                 columns=["partition_date", "system", "model_version", "segment", *ESTIMATE_COLUMNS])
    estimates["kpi_date"] = [_as_date(v) for v in estimates["partition_date"]]
    keyed = rows.assign(_day=[_as_date(v) for v in rows["kpi_date"]])
    merged = keyed.merge(estimates.drop(columns="partition_date").rename(columns={"kpi_date": "_day"}),
                         on=["_day", "system", "model_version", "segment"], how="left", validate="many_to_one")
    return merged.drop(columns="_day")


def _totals(rows: pd.DataFrame) -> dict[str, object]:
    """The additive columns summed over the listed rows, money per currency. Rates, percentiles and ROI are not
    additive (a mean of rates weights days wrongly), so the totals row leaves them out: use a longer --period."""
    money = rows.groupby("currency")["net_value_amount"].sum()
    return {"cases": int(rows["cases"].sum()), "hours_saved": float(rows["hours_saved"].sum()),
            "net_value": {str(c): float(v) for c, v in money.items()}}


def _print_kpis(args: argparse.Namespace, engine: sa.Engine) -> int:
    table = TABLES[args.period]
    if not sa.inspect(engine).has_table(table.name):
        print(f"{safe_url(engine)} has no table {table.name} yet: materialise kpi_daily (and kpi_rollups) first, "
              "e.g. `eval-pipelines materialize`", file=sys.stderr)
        return 2
    if args.system:
        with engine.connect() as connection:
            known = sorted(connection.execute(sa.select(table.c.system).distinct()).scalars())
        if args.system not in known:
            print(f"unknown --system {args.system!r}; known in {table.name}: {', '.join(known) or 'none yet'}",
                  file=sys.stderr)
            return 2
    until = args.until
    if until is None:
        latest = _latest(engine, table)
        if latest is None:
            print(f"{table.name} is empty", file=sys.stderr)
            return 0
        until = _as_date(latest)
    since = args.since or until - timedelta(days=6)
    if since > until:
        print(f"--since {since} is after --until {until}", file=sys.stderr)
        return 2
    if args.period != "day":
        since = period_start(since, args.period)  # a period is listed when it starts within, or contains, since
    rows = read_rows(engine, table, since, until)
    if args.system:
        rows = rows[rows["system"] == args.system]
    rows = rows.reset_index(drop=True).copy()  # one block: read_rows adds columns one at a time
    if args.period == "day":
        rows = with_estimates(engine, rows, since, until)
    partial = _partial(rows, args.period, until, datetime.now(UTC).date())
    if args.format == "csv":
        rows.assign(partial=partial).to_csv(sys.stdout, index=False)  # no totals row: a BI sum would count it twice
        return 0
    if args.format == "json":
        records = json.loads(rows.assign(partial=partial).to_json(orient="records", date_format="iso"))
        print(json.dumps({"table": table.name, "since": since.isoformat(), "until": until.isoformat(),
                          "rows": records, "totals": _totals(rows) if len(rows) else None}, indent=2))
        return 0
    print(f"{table.name} from {since} to {until} ({len(rows)} row(s); money in each row's currency)")
    shown = headline_table(rows)
    if args.period == "day" and len(shown):
        # After the UI's columns (kpi_daily runs before the day's estimate exists, so its table cannot hold it).
        shown[ESTIMATED_HEADER] = estimate_cells(rows)
    if len(shown):
        shown.insert(0, "partial", ["yes: " + p if p else "" for p in partial])
        totals = _totals(rows)
        total_row = {column: "" for column in shown.columns}
        total_row[shown.columns[1]] = "TOTAL"
        total_row.update({"cases": f"{totals['cases']:,}", "hours saved (h)": f"{totals['hours_saved']:,.1f}",
                          "net value": "; ".join(f"{v:,.2f} {c}" for c, v in totals["net_value"].items())})
        shown = pd.concat([shown, pd.DataFrame([total_row])], ignore_index=True)
    print(render_markdown(shown))
    if any(partial):
        print("partial: the period is not complete (a day still filling, days without data, or not over yet); "
              "its sums are not comparable with a full period's")
    if len(shown):
        print("TOTAL sums cases, hours saved and net value (per currency); rates, percentiles and ROI are not "
              "additive: see --period week or month")
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
    parser.add_argument("--system", default=None,
                        help="only this system (an unknown name is an error listing the known ones)")
    parser.add_argument("--format", choices=["table", "csv", "json"], default="table",
                        help="table: the headline table with a 'partial' column and a TOTAL row; csv: the raw "
                             "warehouse rows plus 'partial' (no totals row); json: rows, partial marks and totals "
                             "(default: table)")
    parser.set_defaults(handler=_cmd_kpis)
