"""Reading and writing the scoring tables (SQLAlchemy Core, values always bound, one transaction per write).

A scored run's three tables (``scored_runs``, ``scored_cases``, ``release_gates``) are replaced together keyed by
``run_id``: a reader sees a run whole or not at all, and re-executing a run id never duplicates rows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

from eval_pipelines.evalsets.window import lake_days
from eval_pipelines.labeling.labels import LABELED_CASES_ASSET
from eval_pipelines.lake import Lake
from eval_pipelines.scoring.runs import ScoredRun
from eval_pipelines.scoring.summarise import SUMMARY_COLUMNS, baseline_column, score_column
from eval_pipelines.scoring.tables import RUN_TABLES, production_scores, release_gates, scored_cases, scored_runs
from eval_pipelines.warehouse.core import PartitionWrite, ensure_tables, insert_records, replace_partitions


@dataclass(frozen=True)
class RunInfo:
    """Who and what a scored run was: the columns every run row repeats."""

    run_id: str
    candidate: str
    created_at: datetime
    eval_set_version: str
    baseline: str
    context: str


def case_rows(run: ScoredRun, info: RunInfo, scorers: Sequence[str]) -> pd.DataFrame:
    """``scored_cases`` rows: the wide per-case frame melted to one row per case and scorer."""
    frame = run.cases
    has_baseline = "baseline_output" in frame.columns
    base = pd.DataFrame({
        "run_id": info.run_id, "case_set": frame["case_set"], "event_id": frame["event_id"],
        "candidate": info.candidate, "entry_id": entry_keys(frame["entry_id"]), "stratum": frame["stratum"],
        "split": frame["split"], "segment": frame["segment"], "failure_mode": frame["failure_mode"],
        "weight": frame["weight"], "label": frame["label"], "output": frame["output"], "status": frame["status"],
        "error": frame["error"], "latency_ms": frame["latency_ms"], "cost_usd": frame["cost_usd"],
        "confidence": frame["confidence"],
        "baseline_output": frame["baseline_output"] if has_baseline else None,
    })
    parts = []
    for name, higher in scorers_direction(run, scorers).items():
        score = frame[score_column(name)].to_numpy(dtype=np.float64)
        part = base.assign(scorer=name, score=score)
        if has_baseline:
            baseline = frame[baseline_column(name)].to_numpy(dtype=np.float64)
            d = (score - baseline) * (1.0 if higher else -1.0)
            outcome = np.where(np.isnan(d), None, np.where(d > 0, "win", np.where(d < 0, "loss", "tie")))
            part = part.assign(baseline_score=baseline, outcome=outcome)
        else:
            part = part.assign(baseline_score=np.nan, outcome=None)
        parts.append(part)
    return pd.concat(parts, ignore_index=True) if parts else base.iloc[0:0]


def entry_keys(entry_ids: pd.Series) -> pd.Series:
    """``scored_cases.entry_id``, part of the primary key: the library entry, '' for eval-set cases (no entry).

    The key needs it because one event can found two library entries (e.g. after a failure-mode rule changed and
    the library was re-merged), and both are replayed in the same run.
    """
    return entry_ids.astype("str").fillna("")


def scorers_direction(run: ScoredRun, scorers: Sequence[str]) -> dict[str, bool]:
    """scorer -> higher_is_better, read from the run's summary rows (the one place the traits are recorded)."""
    directions = run.summary.drop_duplicates("scorer").set_index("scorer")["higher_is_better"]
    return {name: bool(directions.get(name, True)) for name in scorers}


def run_writes(run: ScoredRun, info: RunInfo, scorers: Sequence[str]) -> list[PartitionWrite]:
    key = {"run_id": info.run_id}
    meta = {"run_id": info.run_id, "candidate": info.candidate, "created_at": info.created_at,
            "eval_set_version": info.eval_set_version}
    summary = run.summary.assign(**meta, baseline=info.baseline, context=info.context)
    summary_columns = ["run_id", "candidate", "created_at", "eval_set_version", "baseline", "context",
                       *SUMMARY_COLUMNS]
    gate = run.gate.assign(**meta, context=info.context, position=np.arange(len(run.gate)),
                           gate_passed=run.passed)
    gate_columns = ["run_id", "position", "candidate", "context", "created_at", "eval_set_version", "criterion",
                    "value", "op", "threshold", "passed", "verdict", "detail", "gate_passed"]
    cases = case_rows(run, info, scorers)
    return [
        PartitionWrite(scored_runs, key, insert_records(summary, summary_columns)),
        PartitionWrite(scored_cases, key, insert_records(cases, [c.name for c in scored_cases.c])),
        PartitionWrite(release_gates, key, insert_records(gate, gate_columns)),
    ]


def write_run(engine: sa.Engine, run: ScoredRun, info: RunInfo, scorers: Sequence[str],
              before_commit: Callable[[], None] | None = None) -> None:
    """Persist a run's summary, per-case results and gate in one transaction (``before_commit``: see
    ``replace_partitions``; ``Lake.publishing`` swaps the run's Parquet there)."""
    replace_partitions(engine, run_writes(run, info, scorers), before_commit=before_commit)


def write_production_scores(engine: sa.Engine, day: date, rows: pd.DataFrame,
                            before_commit: Callable[[], None] | None = None) -> None:
    """Replace one day of ``production_scores`` (``before_commit``: see ``replace_partitions``)."""
    frame = rows.assign(partition_date=day)
    replace_partitions(engine, [PartitionWrite(production_scores, {"partition_date": day},
                                               insert_records(frame, [c.name for c in production_scores.c]))],
                       before_commit=before_commit)


# ----------------------------------------------------------------------------------------------------------------
# Reading
# ----------------------------------------------------------------------------------------------------------------


def has_tables(engine: sa.Engine) -> bool:
    inspector = sa.inspect(engine)
    return all(inspector.has_table(table.name) for table in RUN_TABLES)


def latest_run(engine: sa.Engine, candidate: str) -> dict[str, Any] | None:
    """The newest run of ``candidate`` (run_id, created_at, eval_set_version, context, gate_passed), or None."""
    ensure_tables(engine, RUN_TABLES)
    with engine.connect() as connection:
        row = connection.execute(
            sa.select(release_gates.c.run_id, release_gates.c.created_at, release_gates.c.eval_set_version,
                      release_gates.c.context, release_gates.c.gate_passed)
            .where(release_gates.c.candidate == candidate)
            .order_by(release_gates.c.created_at.desc(), release_gates.c.run_id.desc()).limit(1)
        ).mappings().first()
    return dict(row) if row is not None else None


def read_gate(engine: sa.Engine, run_id: str) -> pd.DataFrame:
    """The gate rows of a run, in criterion order (``GATE_COLUMNS`` plus run columns)."""
    with engine.connect() as connection:
        rows = connection.execute(sa.select(release_gates).where(release_gates.c.run_id == run_id)
                                  .order_by(release_gates.c.position)).mappings().all()
    return pd.DataFrame([dict(row) for row in rows], columns=[c.name for c in release_gates.c])


def read_summary(engine: sa.Engine, run_id: str) -> pd.DataFrame:
    with engine.connect() as connection:
        rows = connection.execute(sa.select(scored_runs).where(scored_runs.c.run_id == run_id)).mappings().all()
    return pd.DataFrame([dict(row) for row in rows], columns=[c.name for c in scored_runs.c])


def read_cases(engine: sa.Engine, run_id: str, scorer: str | None = None,
               outcome: str | None = None) -> pd.DataFrame:
    """Per-case rows of a run, e.g. ``outcome='loss'`` for the cases the candidate lost to the baseline."""
    query = sa.select(scored_cases).where(scored_cases.c.run_id == run_id)
    if scorer is not None:
        query = query.where(scored_cases.c.scorer == scorer)
    if outcome is not None:
        query = query.where(scored_cases.c.outcome == outcome)
    with engine.connect() as connection:
        rows = connection.execute(query.order_by(scored_cases.c.case_set, scored_cases.c.event_id,
                                                 scored_cases.c.entry_id, scored_cases.c.scorer)).mappings().all()
    return pd.DataFrame([dict(row) for row in rows], columns=[c.name for c in scored_cases.c])


# ----------------------------------------------------------------------------------------------------------------
# Production's logged details, from the lake
# ----------------------------------------------------------------------------------------------------------------

LOGGED_DETAIL_COLUMNS: tuple[str, ...] = ("event_id", "confidence", "latency_ms", "cost_usd", "status")


def logged_details(lake: Lake, timestamps: pd.Series, event_ids: pd.Series) -> pd.DataFrame:
    """Production's confidence, latency, cost and status for the given events, read from labeled_cases.

    eval_set_cases keeps what replay needs but not these operational columns, which the ``logged`` adapter (the
    production baseline) is scored on. Each event is looked up in the day of its timestamp and the days either
    side (a partition holds its landing day, and timestamps may stray across midnight by the ingestion
    tolerance). Events not found get NaN; days missing from the lake are skipped.
    """
    wanted = set(event_ids.dropna().astype(str))
    stamps = pd.to_datetime(timestamps, utc=True, errors="coerce").dropna()
    days = sorted({(stamp + pd.Timedelta(days=shift)).date().isoformat()
                   for stamp in stamps.dt.normalize().unique() for shift in (-1, 0, 1)})
    available = lake_days(lake)
    parts = []
    for day in days:
        if day not in available:
            continue
        table = lake.read_columns(LABELED_CASES_ASSET, day, LOGGED_DETAIL_COLUMNS)
        mask = pc.is_in(table.column("event_id"), value_set=pa.array(sorted(wanted), pa.string()))
        parts.append(table.filter(mask).to_pandas())
    if not parts:
        return pd.DataFrame(columns=list(LOGGED_DETAIL_COLUMNS))
    return pd.concat(parts, ignore_index=True).drop_duplicates("event_id", keep="last")


def candidate_comparison(engine: sa.Engine, candidates: list[str], primary_scorer: str) -> pd.DataFrame:
    """The latest run of every candidate side by side: gate verdict, failing criteria, the primary score on the
    eval set projected to production with its CI, and its difference from the baseline with its CI (fractions).

    One row per candidate in config order; a candidate never run has a row with ``run_id`` missing.
    """
    rows = []
    for name in candidates:
        latest = latest_run(engine, name)
        row: dict[str, Any] = {"candidate": name, "run_id": None}
        if latest is not None:
            summary = read_summary(engine, latest["run_id"])
            primary = summary[(summary["case_set"] == "eval_set") & (summary["scorer"] == primary_scorer)
                              & (summary["slice_dim"] == "all")]
            gate = read_gate(engine, latest["run_id"])
            row.update(run_id=latest["run_id"], created_at=latest["created_at"], context=latest["context"],
                       eval_set_version=latest["eval_set_version"], gate_passed=bool(latest["gate_passed"]),
                       failed_criteria=", ".join(gate.loc[~gate["passed"].astype(bool), "criterion"]))
            if len(primary):
                first = primary.iloc[0]
                row.update({k: first[k] for k in ("baseline", "estimate", "ci_low", "ci_high", "diff",
                                                   "diff_ci_low", "diff_ci_high")})
        rows.append(row)
    columns = ["candidate", "run_id", "created_at", "context", "eval_set_version", "gate_passed", "failed_criteria",
               "baseline", "estimate", "ci_low", "ci_high", "diff", "diff_ci_low", "diff_ci_high"]
    return pd.DataFrame(rows).reindex(columns=columns)
