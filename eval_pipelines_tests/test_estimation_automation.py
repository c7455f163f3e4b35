"""A late label for day D re-runs the estimates of D .. D+window (they calibrate on D, or are checked on it)."""

from __future__ import annotations

from datetime import date, timedelta

import dagster as dg

from eval_pipelines.estimation.assets import WINDOW_DAYS, performance_estimates
from eval_pipelines.labeling.assets import labeled_cases
from eval_pipelines.partitions import daily_partitions
from eval_pipelines_tests.conftest import make_project

START = date(2026, 3, 1)
DAYS = 20


def _day(offset: int) -> str:
    return (START + timedelta(days=offset)).isoformat()


def test_a_late_labeled_day_requests_the_estimates_whose_window_holds_it(tmp_path) -> None:
    assert WINDOW_DAYS == 14  # the shipped window
    project = make_project(tmp_path)
    upstream = dg.AssetSpec("production_logs", partitions_def=daily_partitions)
    defs = dg.Definitions(assets=[upstream, labeled_cases, performance_estimates], resources=project.resources())
    instance = dg.DagsterInstance.ephemeral()

    def materialised(asset: dg.AssetsDefinition, day: str) -> None:
        instance.report_runless_asset_event(dg.AssetMaterialization(asset.key, partition=day))

    for offset in range(DAYS):
        for asset in (labeled_cases, performance_estimates):
            materialised(asset, _day(offset))
    result = dg.evaluate_automation_conditions(defs=defs, instance=instance)
    result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=result.cursor)
    assert result.get_requested_partitions(performance_estimates.key) == set()

    materialised(labeled_cases, _day(3))  # late ground truth for day 3
    result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=result.cursor)
    # Day 3 itself (its realized labels) and the 14 days calibrated on it (3 + 14 < DAYS: all exist).
    assert result.get_requested_partitions(performance_estimates.key) == {_day(3 + i) for i in range(WINDOW_DAYS + 1)}
