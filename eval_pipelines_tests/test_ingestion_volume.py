"""Issue 15 item 9: a tiny or empty day fails a blocking volume check against the trailing days."""

from __future__ import annotations

from datetime import date, timedelta

import dagster as dg
import pytest

from eval_pipelines.config import ConfigError, parse_settings
from eval_pipelines.ingestion.assets import VOLUME_CHECK, production_logs
from eval_pipelines.ingestion.settings import VolumeCheckConfig
from eval_pipelines.ingestion.volume import volume_verdict
from eval_pipelines_tests.conftest import Project
from eval_pipelines_tests.test_ingest import event, write_jsonl

CONFIG = VolumeCheckConfig(trailing_days=7, min_days=3, min_fraction=0.2)
D = date(2026, 11, 20)


def history(*counts: int) -> dict[date, int]:
    return {D - timedelta(days=i + 1): n for i, n in enumerate(counts)}


def test_the_floor_is_a_fraction_of_the_trailing_median():
    trailing = history(1000, 1100, 900, 5)  # median 950: one bad earlier day does not drag the floor down
    assert volume_verdict(190, trailing, CONFIG).passed  # 190 = 0.2 x 950
    low = volume_verdict(189, trailing, CONFIG)
    assert not low.passed and low.floor == pytest.approx(190.0) and low.trailing_median == 950.0
    assert "below the floor of 190" in low.description


def test_without_enough_history_it_passes_and_says_so_but_zero_rows_always_fail():
    assert volume_verdict(3, history(1000, 1000), CONFIG).passed
    assert "no baseline yet" in volume_verdict(3, history(1000, 1000), CONFIG).description
    empty = volume_verdict(0, {}, CONFIG)
    assert not empty.passed and "not enough data" in empty.description
    assert volume_verdict(0, history(1000, 1000, 1000), CONFIG, retracted=True).passed


def test_the_settings_are_validated_with_their_path():
    with pytest.raises(ConfigError, match=r"ingestion\.volume\.min_fraction"):
        parse_settings({"ingestion": {"volume": {"min_fraction": 1.5}}})
    with pytest.raises(ConfigError, match=r"ingestion\.volume.*min_days \(9\) must be at most trailing_days \(7\)"):
        parse_settings({"ingestion": {"volume": {"min_days": 9, "trailing_days": 7}}})


def test_a_tiny_day_fails_the_blocking_check_in_the_asset(project: Project):
    """Before: a day with 0 or a handful of rows passed every check."""
    instance = dg.DagsterInstance.ephemeral()
    checks = {}
    for offset, count in ((4, 50), (3, 50), (2, 50), (1, 50), (0, 4)):
        day = D - timedelta(days=offset)
        stamp = f"{day.isoformat()}T10:00:00Z"
        write_jsonl(project.landing_dir / day.isoformat() / "a.jsonl",
                    [event(f"{day}-{i}", timestamp=stamp) for i in range(count)])
        result = dg.materialize([production_logs], partition_key=day.isoformat(), resources=project.resources(),
                                instance=instance, raise_on_error=False)
        (check,) = [c for c in result.get_asset_check_evaluations() if c.check_name == VOLUME_CHECK]
        checks[offset] = check
    assert checks[4].passed and "no baseline yet" in checks[4].description
    assert checks[1].passed and "at or above the floor of 10" in checks[1].description
    assert not checks[0].passed and "4 valid rows, below the floor of 10" in checks[0].description
    assert checks[0].metadata["trailing_days_found"].value == 4
