"""A late change to day D's profile re-runs the drift reports whose reference window holds D (issue 15, item 6)."""

from __future__ import annotations

from datetime import date, timedelta

import dagster as dg

from eval_pipelines.drift.assets import PROFILE_WINDOW, REFERENCE_SPAN_DAYS, drift_profile, drift_report
from eval_pipelines.labeling.assets import labeled_cases
from eval_pipelines.partitions import daily_partitions
from eval_pipelines_tests.conftest import make_project

START = date(2026, 3, 1)
DAYS = 14


def _day(offset: int) -> str:
    return (START + timedelta(days=offset)).isoformat()


def test_the_report_depends_on_the_profiles_of_its_reference_window() -> None:
    assert REFERENCE_SPAN_DAYS == 7  # the shipped trailing window
    downstream = PROFILE_WINDOW.get_downstream_partitions_for_partitions(
        daily_partitions.subset_with_partition_keys([_day(3)]), daily_partitions, daily_partitions)
    assert sorted(downstream.get_partition_keys()) == [_day(3 + i) for i in range(REFERENCE_SPAN_DAYS + 1)]
    first = daily_partitions.get_first_partition_key()
    upstream = PROFILE_WINDOW.get_upstream_mapped_partitions_result_for_partitions(
        daily_partitions.subset_with_partition_keys([first]), daily_partitions, daily_partitions)
    assert list(upstream.partitions_subset.get_partition_keys()) == [first]  # nothing before start_date


def test_a_late_profile_change_requests_the_reports_of_the_following_days(tmp_path) -> None:
    project = make_project(tmp_path)
    upstream = dg.AssetSpec("production_logs", partitions_def=daily_partitions)  # labeled_cases' own input
    defs = dg.Definitions(assets=[upstream, labeled_cases, drift_profile, drift_report],
                          resources=project.resources())
    instance = dg.DagsterInstance.ephemeral()

    def materialised(asset: dg.AssetsDefinition, day: str) -> None:
        instance.report_runless_asset_event(dg.AssetMaterialization(asset.key, partition=day))

    for offset in range(DAYS):
        for asset in (labeled_cases, drift_profile, drift_report):
            materialised(asset, _day(offset))
    result = dg.evaluate_automation_conditions(defs=defs, instance=instance)
    result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=result.cursor)
    assert result.get_requested_partitions(drift_report.key) == set()  # everything is up to date

    materialised(drift_profile, _day(3))  # day 3 re-profiled (late files); its cases are unchanged
    result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=result.cursor)
    requested = result.get_requested_partitions(drift_report.key)
    assert requested == {_day(3 + i) for i in range(REFERENCE_SPAN_DAYS + 1)}
