"""Eval-set versions in a real warehouse: values as long as ingestion lets through must be stored whole; and the
documented column types (docs/eval_sets.md section 5) are the tables' own.

Ingestion quarantines identifiers (event_id, system, model_version, segment, user_action, categorical features) longer
than 256 characters, so 256 is the longest such value a version can hold. A stratum label joins several of them, so
it must not be capped: PostgreSQL enforces VARCHAR lengths (SQLite ignores them), hence both backends here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from eval_pipelines.edge_cases.tables import EDGE_CASE_TABLES
from eval_pipelines.evalsets.build import sample_cases
from eval_pipelines.evalsets.store import load_eval_set, write_version
from eval_pipelines.evalsets.tables import EVAL_SET_TABLES
from eval_pipelines.warehouse.core import create_warehouse_engine
from eval_pipelines_tests.test_evalset_design import cases_frame, config

LONGEST = 256  # the longest identifier ingestion accepts


def _longest(value: str) -> str:
    return (value + "-").ljust(LONGEST, "x")


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_versions_with_the_longest_identifiers_round_trip(backend: str, tmp_path: Path, request):
    cases = cases_frame(900, seed=2)
    for column in ("segment", "model_version", "system"):
        cases[column] = cases[column].map(_longest)
    cases["event_id"] = cases["event_id"].map(_longest)
    eval_set = sample_cases(cases, config(size=120, strata=["segment", "user_action", "model_version", "system"]))
    longest_stratum = eval_set.cases["stratum"].str.len().max()
    assert longest_stratum > 3 * LONGEST  # three such identifiers joined, plus column names and the failure group

    url = f"sqlite:///{tmp_path / 'w.db'}" if backend == "sqlite" else request.getfixturevalue("postgres_database")
    engine = create_warehouse_engine(url)
    try:
        assert write_version(engine, eval_set, pd.Timestamp("2026-10-11T06:00Z").to_pydatetime(), "run-a")
        version, stored, strata = load_eval_set(engine)
    finally:
        engine.dispose()
    assert version == eval_set.version
    expected = eval_set.cases.sort_values(["stratum", "event_id"]).reset_index(drop=True)
    stored = stored.sort_values(["stratum", "event_id"]).reset_index(drop=True)
    for column in ("event_id", "stratum", "system", "model_version", "segment"):
        assert stored[column].tolist() == expected[column].tolist(), column
    assert sorted(strata["stratum"]) == sorted(eval_set.strata["stratum"])
    assert stored["stratum"].str.len().max() == longest_stratum


DOCS = Path(__file__).resolve().parent.parent / "docs" / "eval_sets.md"


def _documented_type(column: sa.Column) -> str:
    """How docs/eval_sets.md section 5 writes a column's type."""
    kind = column.type
    if isinstance(kind, sa.String) and not isinstance(kind, sa.Text):
        return f"VARCHAR({kind.length})" if kind.length else "VARCHAR"
    names = [(sa.Text, "TEXT"), (sa.BigInteger, "BIGINT"), (sa.Integer, "INTEGER"), (sa.Float, "DOUBLE"),
             (sa.Boolean, "BOOLEAN"), (sa.Date, "DATE"), (sa.LargeBinary, "BYTEA (BLOB on SQLite)")]
    if isinstance(kind, sa.DateTime):
        return "TIMESTAMPTZ" if kind.timezone else "TIMESTAMP"
    return next(name for cls, name in names if isinstance(kind, cls))


def test_docs_section_5_lists_every_column_with_its_type():
    text = DOCS.read_text(encoding="utf-8")
    for table in (*EVAL_SET_TABLES, *EDGE_CASE_TABLES):
        section = re.search(rf"^### `{table.name}`\n(.*?)(?=^##)", text, flags=re.S | re.M)
        assert section, f"{table.name} has no section in docs/eval_sets.md"
        documented = re.findall(r"^\| `(\w+)` \| ([^|]+?) \|", section.group(1), flags=re.M)
        assert documented == [(c.name, _documented_type(c)) for c in table.columns], table.name
