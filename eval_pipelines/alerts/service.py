"""One alerting tick: read the warehouse, evaluate every rule, diff with ``alert_events``, deliver, record. No Dagster.

The sensor (:mod:`eval_pipelines.alerts.sensors`) and ``eval-pipelines alerts`` both call :func:`run_alerts`, so
they share the code and the once-per-finding state. Check evaluations live in the Dagster instance, not in the
warehouse: the caller passes them in as a frame (:data:`eval_pipelines.alerts.rules.CHECK_COLUMNS`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import pandas as pd
import sqlalchemy as sa

from eval_pipelines.alerts.delivery import DeliveryResult, deliver
from eval_pipelines.alerts.rules import SOURCE_TABLE, evaluate, required_days
from eval_pipelines.alerts.state import Planned, plan, prepare, read_state, send_all
from eval_pipelines.config import Settings

DAY_COLUMNS = {"kpi_daily": "kpi_date", "drift_results": "date", "performance_estimates": "partition_date"}


@dataclass
class TickReport:
    findings: int = 0
    firing: int = 0
    planned: list[Planned] = field(default_factory=list)
    sent: int = 0
    failed: int = 0
    left_for_next_tick: int = 0
    too_old: int = 0
    notes: list[str] = field(default_factory=list)
    newest_day: date | None = None

    def summary(self) -> str:
        return (f"{self.findings} finding(s) ({self.firing} firing), {len(self.planned)} message(s) due: "
                f"{self.sent} sent, {self.failed} failed, {self.left_for_next_tick} left for the next tick"
                + (f", {self.too_old} too old to announce" if self.too_old else ""))


def _newest(connection: sa.Connection, table: sa.Table, column: str) -> date | None:
    value = connection.execute(sa.select(sa.func.max(table.c[column]))).scalar()
    if value is None:
        return None
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def load_frames(engine: sa.Engine, settings: Settings) -> tuple[dict[str, pd.DataFrame | None], date | None]:
    """The tables the rules read (None for a table that does not exist), daily ones over the days they need.

    Daily tables are read from ``newest - required_days`` on (the newest day of each table), so a tick stays
    bounded however long the history; release gates are read whole (a few rows per scored run).
    """
    config = settings.alerts
    wanted = {SOURCE_TABLE[r.on] for r in config.rules} - {"checks"}
    frames: dict[str, pd.DataFrame | None] = {}
    first_days = []
    inspector = sa.inspect(engine)
    meta = sa.MetaData()
    with engine.connect() as connection:
        for name in sorted(wanted):
            if not inspector.has_table(name):
                frames[name] = None
                continue
            table = sa.Table(name, meta, autoload_with=connection)
            query = sa.select(table)
            column = DAY_COLUMNS.get(name)
            if column is not None:
                newest = _newest(connection, table, column)
                if newest is not None:
                    first = newest - timedelta(days=required_days(config))
                    first_days.append(first)
                    query = query.where(table.c[column] >= first)
            frame = pd.DataFrame(connection.execute(query).mappings().all(), columns=[c.name for c in table.columns])
            if column is not None and len(frame):
                frame[column] = pd.to_datetime(frame[column]).dt.date
            frames[name] = frame
    return frames, (min(first_days) if first_days else None)


def run_alerts(settings: Settings, engine: sa.Engine, checks: pd.DataFrame | None = None, dry_run: bool = False,
               send: Callable[..., DeliveryResult] = deliver, now: Callable[[], datetime] | None = None,
               budget_seconds: float | None = None) -> TickReport:
    """Evaluate every rule once and deliver what is due (nothing in ``dry_run``: the plan is in the report)."""
    config = settings.alerts
    report = TickReport()
    if not config.rules:
        report.notes.append("alerts.rules is empty: nothing to evaluate")
        return report
    frames, first_day = load_frames(engine, settings)
    if any(r.on == "checks" for r in config.rules):
        frames["checks"] = checks
    evaluation = evaluate(config, frames, settings.impact.ci_level, first_day)
    report.findings = len(evaluation.findings)
    report.firing = sum(f.state == "firing" for f in evaluation.findings)
    report.notes.extend(evaluation.notes)
    report.newest_day = evaluation.newest_day
    state = read_state(engine, [f.id for f in evaluation.findings], [r.name for r in config.rules])
    planned, report.too_old = plan(evaluation.findings, state, config, evaluation.newest_day)
    prepare(planned, config)
    report.planned = planned
    if dry_run or not planned:
        return report
    clock = now or (lambda: datetime.now(UTC))
    report.sent, report.failed, report.left_for_next_tick = send_all(engine, planned, config, send, clock,
                                                                     budget_seconds)
    return report
