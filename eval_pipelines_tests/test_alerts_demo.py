"""The shipped config's alert rules on a small demo world: they fire on the demo's launch and incident days, once,
and stay silent on quiet days (issue 16 item 5).

Ten demo days (1,000 events a day, the generator's story: v2 rollout, product launch, one incident day) are
ingested and labelled into the lake, then each day's drift_profile, drift_report and kpi_daily are materialised in
Dagster in order, and after each day the alert tick runs (``run_alerts``, what the sensor runs) with the shipped
``alerts:`` section, delivering to a recording webhook on 127.0.0.1 and reading the blocking checks the runs
recorded in the instance.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import date, timedelta

import dagster as dg
import pytest

from eval_pipelines.alerts.sensors import blocking_check_keys, check_evaluations
from eval_pipelines.alerts.service import run_alerts
from eval_pipelines.demo.generator import MANIFEST_NAME, generate_logs
from eval_pipelines.drift.assets import ASSETS as DRIFT_ASSETS
from eval_pipelines.ingestion.assets import production_logs, read_partition
from eval_pipelines.kpis.assets import kpi_daily
from eval_pipelines.labeling.assets import label_cases, labeled_cases
from eval_pipelines.lake import Lake
from eval_pipelines.resources import lake_root
from eval_pipelines.warehouse.core import create_warehouse_engine
from eval_pipelines_tests.alert_servers import recording_server
from eval_pipelines_tests.conftest import make_project

START = date(2026, 3, 1)
DAYS = 10
EVENTS_PER_DAY = 1000  # enough for the rate rules' min_cases (500) per system and day
DAILY = [*DRIFT_ASSETS, kpi_daily]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory):
    """Per day: the scenario events of the day and the messages its tick delivered (webhook bodies)."""
    with pytest.MonkeyPatch.context() as env:
        for name in ("EVAL_PIPELINES_WAREHOUSE_URL", "EVAL_PIPELINES_LAKE_DIR", "EVAL_PIPELINES_LANDING_DIR"):
            env.delenv(name, raising=False)
        project = make_project(tmp_path_factory.mktemp("alerts_demo"))
        settings = project.settings
        generate_logs(project.landing_dir, days=DAYS, events_per_day=EVENTS_PER_DAY, seed=7, start_date=START)
        scenario = json.loads((project.landing_dir / MANIFEST_NAME).read_text())["scenario"]
        lake = Lake(lake_root(settings))
        for offset in range(DAYS):
            day = START + timedelta(days=offset)
            cases = label_cases(read_partition(settings, day).valid, settings.labeling.low_confidence_below,
                                settings.labeling.slow_decision_seconds, settings.labeling.text_systems())
            lake.write("labeled_cases", day.isoformat(), cases)
        instance = dg.DagsterInstance.ephemeral()
        keys = blocking_check_keys(dg.Definitions(assets=[production_logs, labeled_cases, *DAILY],
                                                  resources=project.resources()).resolve_asset_graph())
        engine = create_warehouse_engine(settings.storage.warehouse_url)
        days: dict[str, dict] = {}
        with recording_server() as http:
            env.setenv("EVAL_PIPELINES_ALERT_WEBHOOK", http.url("/ops"))
            env.setenv("EVAL_PIPELINES_ALERT_WEBHOOK_SECRET", "demo-secret-0123")
            for offset in range(DAYS):
                day = (START + timedelta(days=offset)).isoformat()
                result = dg.materialize([production_logs, labeled_cases, *DAILY], selection=DAILY, partition_key=day,
                                        resources=project.resources(), instance=instance)
                assert result.success, day
                before = len(http.requests)
                report = run_alerts(settings, engine, check_evaluations(instance, keys))
                assert report.failed == 0 and report.left_for_next_tick == 0, report.summary()
                days[day] = {"events": [name for name, when in scenario.items() if when == day],
                             "messages": [r.json() for r in http.requests[before:]], "notes": report.notes}
            retick = run_alerts(settings, engine, check_evaluations(instance, keys))
        engine.dispose()
    return scenario, days, retick, keys


def _firing(messages: list[dict]) -> dict[str, set[str]]:
    return {m["rule"]: {f["subject"] for f in m["findings"]} for m in messages if m["state"] == "firing"}


def test_the_launch_day_sends_the_input_mix_drift(world):
    scenario, days, _, _ = world
    launch = days[scenario["launch_day"]]
    assert _firing(launch["messages"]) == {"major_drift": {"product (categorical)", "language (categorical)"}}
    (message,) = [m for m in launch["messages"] if m["state"] == "firing"]
    assert message["partition_key"] == scenario["launch_day"]
    assert message["link"].endswith(f"/assets/drift_report?partition={scenario['launch_day']}")


def test_the_incident_day_sends_timeouts_latency_and_their_drift_once_per_rule(world):
    scenario, days, _, _ = world
    firing = _firing(days[scenario["incident_day"]]["messages"])
    assert {"timeouts", "latency_slo", "major_drift"} <= set(firing)
    assert firing["timeouts"] == firing["latency_slo"] == {"support_triage"}
    assert {"latency_ms (numeric)", "status (categorical)"} <= firing["major_drift"]
    incident = [m for m in days[scenario["incident_day"]]["messages"] if m["state"] == "firing"]
    assert len(incident) == len({m["rule"] for m in incident})  # one message per rule (one channel)
    (timeouts,) = [m for m in incident if m["rule"] == "timeouts"]
    figure = timeouts["findings"][0]
    assert figure["ci_low"] > 0.02 and figure["cases"] >= 500  # the evidence, not the point, crosses


def test_quiet_days_send_nothing_and_the_day_after_an_episode_only_resolves_it(world):
    scenario, days, _, _ = world
    story = {scenario["launch_day"], scenario["incident_day"]}
    for day, seen in days.items():
        if day not in story:
            # the rollout days shift model_version and cost_usd: planned, excluded from major_drift by the config
            assert _firing(seen["messages"]) == {}, (day, seen["events"], _firing(seen["messages"]))
    before_launch = [day for day in days if day < scenario["launch_day"]]
    assert len(before_launch) >= 5 and all(days[day]["messages"] == [] for day in before_launch)
    fired = {(m["rule"], f["finding_id"]) for seen in days.values() for m in seen["messages"]
             if m["state"] == "firing" for f in m["findings"]}
    resolved = [(m["rule"], f["finding_id"]) for seen in days.values() for m in seen["messages"]
                if m["state"] == "resolved" for f in m["findings"]]
    assert resolved and set(resolved) <= fired  # every resolved message closes a finding that was announced
    assert {rule for rule, _ in resolved} >= {"timeouts", "latency_slo", "major_drift"}


def test_every_finding_is_sent_once_and_a_retick_sends_nothing(world):
    _, days, retick, keys = world
    sent = Counter((m["state"], f["finding_id"]) for seen in days.values() for m in seen["messages"]
                   for f in m["findings"])
    assert sent and max(sent.values()) == 1
    assert (retick.sent, len(retick.planned)) == (0, 0)
    # the checks rule read the instance's blocking checks (kpi_daily_consistent passed every day); the release
    # gate rule has no scored runs in this world
    assert any(key.name == "kpi_daily_consistent" for key in keys)
    notes = [note for seen in days.values() for note in seen["notes"]]
    assert notes and all(note.startswith("gate_failed: table release_gates does not exist") for note in notes)
