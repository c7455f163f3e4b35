"""Reading and writing eval-set versions in the warehouse (SQLAlchemy Core, values always bound).

A version is written once: all three tables in one transaction through ``replace_partitions`` keyed by version,
and only when the version is not there yet, so re-materialising unchanged inputs writes nothing.
"""

from __future__ import annotations

import json
from datetime import datetime

import pandas as pd
import sqlalchemy as sa

from eval_pipelines.evalsets.build import EvalSet
from eval_pipelines.evalsets.tables import EVAL_SET_TABLES, eval_set_cases, eval_set_strata, eval_set_versions
from eval_pipelines.warehouse.core import PartitionWrite, db_value, ensure_tables, insert_records, replace_partitions


def _timestamps(values: pd.Series) -> pd.Series:
    return pd.to_datetime(values, utc=True, errors="coerce", format="mixed")


def version_exists(engine: sa.Engine, version: str) -> bool:
    ensure_tables(engine, EVAL_SET_TABLES)
    with engine.connect() as connection:
        found = connection.execute(
            sa.select(eval_set_versions.c.version).where(eval_set_versions.c.version == version)
        ).first()
    return found is not None


def version_writes(eval_set: EvalSet, created_at: datetime, run_id: str | None) -> list[PartitionWrite]:
    """The rows of a version for the three tables."""
    key = {"version": eval_set.version}
    projected = eval_set.projected
    version_row = {
        "version": eval_set.version,
        "created_at": created_at,
        "window_start": pd.Timestamp(eval_set.plan["window_start"]).date() if eval_set.plan["window_start"]
        else created_at.date(),
        "window_end": pd.Timestamp(eval_set.plan["window_end"]).date() if eval_set.plan["window_end"]
        else created_at.date(),
        "plan": json.dumps(eval_set.plan, sort_keys=True, default=str),
        "size": eval_set.size,
        "holdout_size": int((eval_set.cases["split"] == "holdout").sum()),
        "population": eval_set.population,
        "label_basis": eval_set.label_basis,
        "target_population": eval_set.target_population,
        "implicit_population": eval_set.implicit_population,
        "uncovered_population": eval_set.uncovered_population if eval_set.label_basis == "trusted" else None,
        "ground_truth_outside_audit": eval_set.ground_truth_outside_audit if eval_set.label_basis == "trusted"
        else None,
        "audit_accuracy": db_value(eval_set.audit.estimate) if eval_set.audit else None,
        "audit_ci_low": db_value(eval_set.audit.ci_low) if eval_set.audit else None,
        "audit_ci_high": db_value(eval_set.audit.ci_high) if eval_set.audit else None,
        "strata": len(eval_set.strata),
        "strata_counts": json.dumps(eval_set.strata_counts(), sort_keys=True),
        "window_accuracy": db_value(eval_set.window_accuracy),
        "projected_accuracy": db_value(projected.estimate),
        "projected_ci_low": db_value(projected.ci_low),
        "projected_ci_high": db_value(projected.ci_high),
        "run_id": run_id,
    }
    strata = eval_set.strata.rename(columns={"factor": "oversample_factor", "trusted": "trusted_labels"})
    for column in ("audited", "trusted_labels"):
        if column not in strata.columns:
            strata[column] = None
    strata = strata[["stratum", "population", "audited", "trusted_labels", "sample", "holdout", "inclusion_prob",
                     "weight", "accuracy", "oversample_factor"]].assign(version=eval_set.version)
    cases = eval_set.cases.assign(version=eval_set.version, timestamp=_timestamps(eval_set.cases["timestamp"]))
    return [
        PartitionWrite(eval_set_versions, key, [version_row]),
        PartitionWrite(eval_set_strata, key, insert_records(strata)),
        PartitionWrite(eval_set_cases, key, insert_records(cases)),
    ]


def write_version(engine: sa.Engine, eval_set: EvalSet, created_at: datetime, run_id: str | None = None) -> bool:
    """Write the version unless it exists; True when it was written. Versions are immutable: never rewritten."""
    if version_exists(engine, eval_set.version):
        return False
    replace_partitions(engine, version_writes(eval_set, created_at, run_id))
    return True


def latest_version(engine: sa.Engine) -> str | None:
    """The most recently created version, or None when there is none."""
    ensure_tables(engine, EVAL_SET_TABLES)
    with engine.connect() as connection:
        return connection.execute(
            sa.select(eval_set_versions.c.version)
            .order_by(eval_set_versions.c.created_at.desc(), eval_set_versions.c.version)
            .limit(1)
        ).scalar()


def load_eval_set(engine: sa.Engine, version: str | None = None) -> tuple[str, pd.DataFrame, pd.DataFrame]:
    """``(version, cases, strata)`` of ``version`` (default: the latest), as written by the ``eval_set`` asset.

    ``cases`` has the ``eval_set_cases`` columns; ``strata`` has ``stratum`` and ``population`` (``N_h``) for
    :func:`eval_pipelines.evalsets.estimation.stratified_estimate`.
    """
    chosen = version or latest_version(engine)
    if chosen is None:
        raise LookupError("no eval set version in the warehouse: materialise eval_set first")
    with engine.connect() as connection:
        cases = pd.DataFrame(connection.execute(
            sa.select(eval_set_cases).where(eval_set_cases.c.version == chosen)
            .order_by(eval_set_cases.c.stratum, eval_set_cases.c.event_id)).mappings().all())
        strata = pd.DataFrame(connection.execute(
            sa.select(eval_set_strata).where(eval_set_strata.c.version == chosen)
            .order_by(eval_set_strata.c.stratum)).mappings().all())
    if cases.empty and strata.empty:
        raise LookupError(f"eval set version {chosen!r} not found")
    return chosen, cases, strata
