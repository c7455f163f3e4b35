"""kpi_daily's blocking consistency check runs BEFORE the warehouse write: an inconsistent day is never written.

BI reads ``kpi_daily`` directly, so a check that runs after the commit only reports what BI already shows. The
inconsistency is injected as a realistic regression: the KPI maths drops one group's row, so the day's volume no
longer reconciles with ``labeled_cases``.
"""

from __future__ import annotations

from datetime import date

import dagster as dg
import pandas as pd
import pytest

import eval_pipelines.kpis.assets as kpi_assets
from eval_pipelines.kpis.assets import CONSISTENCY_CHECK, kpi_daily
from eval_pipelines.kpis.store import read_rows
from eval_pipelines.kpis.tables import kpi_daily as kpi_daily_table
from eval_pipelines.lake import Lake
from eval_pipelines.resources import lake_root
from eval_pipelines.warehouse.core import create_warehouse_engine
from eval_pipelines_tests.conftest import Project
from eval_pipelines_tests.test_kpi_metrics import fixture_cases

DAY = date(2026, 3, 4)


def _materialise(project: Project, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    return dg.materialize([kpi_daily], partition_key=DAY.isoformat(), resources=project.resources(),
                          instance=instance, raise_on_error=False)


def test_an_inconsistent_day_is_not_written_and_the_check_reports_why(project: Project,
                                                                      monkeypatch: pytest.MonkeyPatch):
    Lake(lake_root(project.settings)).write("labeled_cases", DAY.isoformat(), fixture_cases())
    instance = dg.DagsterInstance.ephemeral()
    first = _materialise(project, instance)
    assert first.success
    assert [e.passed for e in first.get_asset_check_evaluations()] == [True]
    engine = create_warehouse_engine(project.warehouse_url)
    try:
        before = read_rows(engine, kpi_daily_table)
        assert len(before) == 3 and int(before["cases"].sum()) == len(fixture_cases())

        real = kpi_assets.daily_kpis
        monkeypatch.setattr(kpi_assets, "daily_kpis", lambda *args: real(*args).iloc[1:])  # one group lost
        second = _materialise(project, instance)

        # BI still sees the last consistent day, whole
        pd.testing.assert_frame_equal(read_rows(engine, kpi_daily_table), before, check_exact=True)
        assert not second.success
        (evaluation,) = second.get_asset_check_evaluations()
        assert evaluation.check_name == CONSISTENCY_CHECK and not evaluation.passed
        assert "sum of cases" in evaluation.description and "!= labeled_cases rows 13" in evaluation.description
        failure = next(e for e in second.all_events if e.event_type_value == "STEP_FAILURE")
        assert "sum of cases" in failure.event_specific_data.error.message
        assert second.asset_materializations_for_node("kpi_daily") == []
    finally:
        engine.dispose()
    records = instance.fetch_materializations(dg.AssetKey("kpi_daily"), limit=10).records
    assert len(records) == 1  # only the consistent run materialised the asset
