"""alerts_sensor through build_sensor_context on a real instance: it evaluates after the assets it reads change,
skips when nothing changed, delivers once per finding to a real receiver, and reads failed blocking checks."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import pytest
import yaml

from eval_pipelines.alerts.sensors import alerts_sensor
from eval_pipelines.config import load_settings
from eval_pipelines.resources import build_resources
from eval_pipelines.warehouse.core import create_warehouse_engine
from eval_pipelines_tests.alert_servers import recording_server
from eval_pipelines_tests.test_alerts_delivery import _write_day

DAY0 = date(2026, 3, 1)


def _project(tmp_path: Path, rules: list[dict]):
    config = {"storage": {"warehouse_url": f"sqlite:///{tmp_path / 'warehouse.db'}", "lake_dir": str(tmp_path)},
              "alerts": {"channels": [{"name": "hook", "kind": "webhook", "url_env": "T_SENSOR_HOOK",
                                       "backoff_seconds": 0.01}],
                         "rules": rules}}
    path = tmp_path / "eval_pipelines.yaml"
    path.write_text(yaml.safe_dump(config))
    settings = load_settings(path)
    return settings, build_resources(settings, str(path))


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch):
    for name in ("EVAL_PIPELINES_WAREHOUSE_URL", "EVAL_PIPELINES_LAKE_DIR", "EVAL_PIPELINES_LANDING_DIR"):
        monkeypatch.delenv(name, raising=False)


def _tick(instance, resources, cursor, definitions=None) -> dg.SensorResult:
    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources, definitions=definitions)
    return alerts_sensor(context)


def test_the_sensor_evaluates_after_a_materialisation_and_sends_once(tmp_path: Path, monkeypatch):
    settings, resources = _project(tmp_path, [{"name": "major_drift", "on": "drift", "channels": ["hook"]}])
    engine = create_warehouse_engine(settings.storage.warehouse_url)
    instance = dg.DagsterInstance.ephemeral()
    with recording_server() as http:
        monkeypatch.setenv("T_SENSOR_HOOK", http.url("/hook"))
        first = _tick(instance, resources, None)  # no materialisation yet: evaluates once, nothing to say
        seen = json.loads(first.cursor)
        assert seen["seen"] == {} and http.requests == []
        assert "no asset the rules read changed" in _tick(instance, resources, first.cursor).skip_reason.skip_message

        for offset, drifted in ((0, {}), (1, {"language": "major"})):
            _write_day(engine, offset, drifted)
            instance.report_runless_asset_event(dg.AssetMaterialization(
                "drift_report", partition=(DAY0 + timedelta(days=offset)).isoformat()))
        second = _tick(instance, resources, first.cursor)
        assert json.loads(second.cursor)["seen"]["drift_report"] > 0
        assert len(http.requests) == 1 and http.requests[0].json()["state"] == "firing"
        assert "1 sent" in second.skip_reason.skip_message

        # A re-tick skips; the same day re-materialised is evaluated again and sends nothing new.
        assert "no asset the rules read changed" in _tick(instance, resources, second.cursor).skip_reason.skip_message
        _write_day(engine, 1, {"language": "major"})
        instance.report_runless_asset_event(dg.AssetMaterialization("drift_report", partition="2026-03-02"))
        third = _tick(instance, resources, second.cursor)
        assert third.cursor != second.cursor and "0 sent" in third.skip_reason.skip_message and len(http.requests) == 1

        # A failed delivery makes the next tick run although no asset changed.
        _write_day(engine, 2, {"product": "major"})
        instance.report_runless_asset_event(dg.AssetMaterialization("drift_report", partition="2026-03-03"))
        http.status = 500
        fourth = _tick(instance, resources, third.cursor)
        assert "failed" in fourth.skip_reason.skip_message and "0 sent" in fourth.skip_reason.skip_message
        http.status = 200
        fifth = _tick(instance, resources, fourth.cursor)
        # product fired, language resolved: both delivered by the retry tick
        assert fifth.cursor == fourth.cursor and "2 sent" in fifth.skip_reason.skip_message
        states = sorted((r.json()["state"], r.json()["findings"][0]["subject"]) for r in http.requests[-2:])
        assert states == [("firing", "product (categorical)"), ("resolved", "language (categorical)")]


def test_the_sensor_reads_failed_blocking_checks_from_the_instance(tmp_path: Path, monkeypatch):
    _, resources = _project(tmp_path, [{"name": "data_quality", "on": "checks", "channels": ["hook"]}])
    daily = dg.DailyPartitionsDefinition(start_date="2026-03-01")
    fixed = False

    @dg.asset(partitions_def=daily, check_specs=[
        dg.AssetCheckSpec("volume_ok", asset="landing_day", blocking=True),
        dg.AssetCheckSpec("advisory", asset="landing_day", blocking=False)])
    def landing_day(context):
        bad = context.partition_key == "2026-03-02" and not fixed
        yield dg.MaterializeResult()
        yield dg.AssetCheckResult(check_name="volume_ok", passed=not bad, description="12 rows (5 % of usual)")
        yield dg.AssetCheckResult(check_name="advisory", passed=False)

    definitions = dg.Definitions(assets=[landing_day])
    instance = dg.DagsterInstance.ephemeral()
    for day in ("2026-03-01", "2026-03-02"):
        dg.materialize([landing_day], partition_key=day, instance=instance, raise_on_error=False)
    with recording_server() as http:
        monkeypatch.setenv("T_SENSOR_HOOK", http.url("/hook"))
        result = _tick(instance, resources, None, definitions)
        (request,) = http.requests
        body = request.json()
        assert body["state"] == "firing" and body["partition_key"] == "2026-03-02"
        assert body["findings"][0]["subject"] == "landing_day:volume_ok[2026-03-02]"
        assert body["link"].endswith("/assets/landing_day?partition=2026-03-02")
        assert "12 rows" in body["findings"][0]["detail"]
        assert "0 sent" in _tick(instance, resources, None, definitions).skip_reason.skip_message  # once
        # the day re-run with a passing check: one resolved message on the next tick
        fixed = True
        assert dg.materialize([landing_day], partition_key="2026-03-02", instance=instance).success
        assert "1 sent" in _tick(instance, resources, result.cursor, definitions).skip_reason.skip_message
        assert [r.json()["state"] for r in http.requests] == ["firing", "resolved"]
