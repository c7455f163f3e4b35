"""Alerts delivered to real receivers on 127.0.0.1: a recording HTTP server (webhook, Slack, Teams) and aiosmtpd.

The scenario runs the same tick the sensor and the CLI run (``run_alerts``) over a SQLite warehouse: a quiet
stretch sends nothing, a drift day one alert per rule and channel, a re-tick or a re-materialised day nothing new,
the recovery one resolved message; a receiver that is down is recorded as failed and retried on the next tick.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from eval_pipelines.alerts.delivery import SIGNATURE_HEADER, TIMESTAMP_HEADER, Message, deliver, verify_signature
from eval_pipelines.alerts.service import run_alerts
from eval_pipelines.alerts.settings import ChannelConfig
from eval_pipelines.alerts.tables import alert_events
from eval_pipelines.config import ConfigError, parse_settings
from eval_pipelines.drift.tables import drift_results
from eval_pipelines.kpis.tables import kpi_daily
from eval_pipelines.warehouse.core import PartitionWrite, create_warehouse_engine, replace_partitions
from eval_pipelines_tests.alert_servers import free_port, recording_server, self_signed_certificate, smtp_server

DAY0 = date(2026, 3, 1)
SECRET = "whsec-test-0123456789"


def _settings(tmp_path: Path, channels: list[dict], rules: list[dict]):
    return parse_settings({"storage": {"warehouse_url": f"sqlite:///{tmp_path / 'warehouse.db'}",
                                       "lake_dir": str(tmp_path / "lake")},
                           "alerts": {"ui_base_url": "http://dagster.test:3000", "channels": channels,
                                      "rules": rules}})


def _write_day(engine: sa.Engine, offset: int, drifted: dict[str, str], timeouts: int = 10) -> None:
    """One day of drift_results (3 columns) and kpi_daily (one row), replaced like the assets do."""
    day = DAY0 + timedelta(days=offset)
    drift = [{"date": day, "column": column, "kind": "categorical", "test": "chi2", "statistic": 10.0,
              "p_value": 1e-6, "p_adjusted": 1e-5, "effect_size": 0.2 if column in drifted else 0.001,
              "effect_ci_low": 0.15, "effect_ci_high": 0.25, "threshold": 0.02,
              "severity": drifted.get(column, "none"), "drifted": column in drifted,
              "reason": "share of 'nova' 0% -> 20%" if column in drifted else "no drift"}
             for column in ("language", "product", "channel")]
    kpi = {c.name: None for c in kpi_daily.columns}
    kpi.update({"kpi_date": day, "system": "support_triage", "model_version": "v1", "segment": "all",
                "currency": "USD", "computed_at": pd.Timestamp.now(tz="UTC").to_pydatetime()})
    kpi.update({c.name: 0 for c in kpi_daily.columns if isinstance(c.type, sa.BigInteger)})
    kpi.update({"cases": 3000, "timeout_cases": timeouts, "low_volume": False})
    replace_partitions(engine, [PartitionWrite(drift_results, {"date": day}, drift),
                                PartitionWrite(kpi_daily, {"kpi_date": day}, [kpi])])


def _events(engine: sa.Engine) -> pd.DataFrame:
    with engine.connect() as connection:
        return pd.DataFrame(connection.execute(sa.select(alert_events)).mappings().all())


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch):
    for name in ("EVAL_PIPELINES_WAREHOUSE_URL", "EVAL_PIPELINES_LAKE_DIR", "EVAL_PIPELINES_LANDING_DIR"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_quiet_then_drift_then_recovery_once_per_rule_channel_and_state(tmp_path: Path, env):
    channels = [{"name": "hook", "kind": "webhook", "url_env": "T_HOOK_URL", "secret_env": "T_HOOK_SECRET"},
                {"name": "slack", "kind": "slack", "url_env": "T_SLACK_URL"},
                {"name": "teams", "kind": "teams", "url_env": "T_TEAMS_URL"},
                {"name": "mail", "kind": "email", "host_env": "T_SMTP_HOST", "security": "none",
                 "sender": "alerts@example.test", "recipients": ["oncall@example.test"]}]
    rules = [{"name": "major_drift", "on": "drift", "severity": "major",
              "channels": ["hook", "slack", "teams", "mail"]},
             {"name": "timeouts", "on": "kpi", "metric": "timeout_rate", "op": "gt", "threshold": 0.02,
              "min_cases": 500, "channels": ["hook"]}]
    settings = _settings(tmp_path, channels, rules)
    engine = create_warehouse_engine(settings.storage.warehouse_url)
    with recording_server() as http, smtp_server() as smtp:
        env.setenv("T_HOOK_URL", http.url("/hook"))
        env.setenv("T_HOOK_SECRET", SECRET)
        env.setenv("T_SLACK_URL", http.url("/slack"))
        env.setenv("T_TEAMS_URL", http.url("/teams"))
        env.setenv("T_SMTP_HOST", "127.0.0.1")
        settings = _settings(tmp_path, [*channels[:3], {**channels[3], "port": smtp.port}], rules)

        for offset in range(4):  # a quiet stretch
            _write_day(engine, offset, {})
            report = run_alerts(settings, engine)
            assert (report.findings, report.sent, report.failed) == (0, 0, 0)
        assert http.requests == [] and smtp.messages == []

        _write_day(engine, 4, {"language": "major", "product": "major"})  # the launch: two columns drift
        report = run_alerts(settings, engine)
        assert (report.sent, report.failed) == (4, 0)
        assert sorted(r.path for r in http.requests) == ["/hook", "/slack", "/teams"]
        assert len(smtp.messages) == 1

        (hook,) = http.posted("/hook")
        assert verify_signature(SECRET, hook.headers[TIMESTAMP_HEADER.lower()], hook.body,
                                hook.headers[SIGNATURE_HEADER.lower()])
        assert not verify_signature("wrong-secret", hook.headers[TIMESTAMP_HEADER.lower()], hook.body,
                                    hook.headers[SIGNATURE_HEADER.lower()])
        body = hook.json()
        assert body["state"] == "firing" and body["rule"] == "major_drift" and body["partition_key"] == "2026-03-05"
        assert {f["subject"] for f in body["findings"]} == {"language (categorical)", "product (categorical)"}
        assert body["link"] == "http://dagster.test:3000/assets/drift_report?partition=2026-03-05"
        finding = body["findings"][0]
        assert (finding["value"], finding["ci_low"], finding["ci_high"], finding["threshold"]) == (0.2, 0.15, 0.25,
                                                                                                     0.02)
        slack = http.posted("/slack")[0].json()
        assert "major_drift" in slack["text"] and [b["type"] for b in slack["blocks"]][:2] == ["header", "section"]
        assert "language (categorical)" in slack["blocks"][1]["text"]["text"]
        teams = http.posted("/teams")[0].json()
        assert teams["type"] == "message"
        (attachment,) = teams["attachments"]
        assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
        card = attachment["content"]
        assert card["type"] == "AdaptiveCard" and card["actions"][0]["type"] == "Action.OpenUrl"
        assert card["actions"][0]["url"] == body["link"]
        mail = smtp.messages[0]
        assert mail["to"] == ["oncall@example.test"]
        assert mail["subject"].startswith("FIRING [major] major_drift on 2026-03-05")
        assert "effect 0.2 (CI 0.15 – 0.25), material from 0.02" in mail["body"]

        assert run_alerts(settings, engine).sent == 0  # a re-tick
        _write_day(engine, 4, {"language": "major", "product": "major"})  # the day re-materialised
        assert run_alerts(settings, engine).sent == 0
        assert len(http.requests) == 3 and len(smtp.messages) == 1

        _write_day(engine, 5, {}, timeouts=240)  # recovery of the drift; an incident of timeouts (8 %)
        report = run_alerts(settings, engine)
        assert (report.sent, report.failed) == (5, 0)
        resolved = [r.json() for r in http.posted("/hook")[1:] if r.json()["rule"] == "major_drift"]
        assert [r["state"] for r in resolved] == ["resolved"] and len(resolved[0]["findings"]) == 2
        (timeouts,) = [r.json() for r in http.posted("/hook") if r.json()["rule"] == "timeouts"]
        assert timeouts["state"] == "firing" and timeouts["findings"][0]["ci_low"] > 0.02
        assert timeouts["link"].endswith("/assets/kpi_daily?partition=2026-03-06")
        assert len(smtp.messages) == 2 and smtp.messages[1]["subject"].startswith("RESOLVED")
        assert run_alerts(settings, engine).sent == 0

    events = _events(engine)
    assert len(events) == 2 * 4 * 2 + 1  # 2 drift findings x 4 channels x (firing, resolved) + timeouts
    assert set(events["status"]) == {"sent"} and set(events["attempts"]) == {1}
    assert not events["payload"].str.contains(SECRET).any()
    assert not events["payload"].str.contains(f"127.0.0.1:{http.port}").any()  # URLs stay in the environment
    assert json.loads(events.loc[events["channel"] == "teams", "payload"].iloc[0])["type"] == "message"


def test_a_receiver_that_is_down_is_recorded_and_retried_on_the_next_tick(tmp_path: Path, env):
    channels = [{"name": "hook", "kind": "webhook", "url_env": "T_HOOK_URL", "retries": 1, "backoff_seconds": 0.01,
                 "timeout_seconds": 2}]
    rules = [{"name": "major_drift", "on": "drift", "channels": ["hook"]}]
    settings = _settings(tmp_path, channels, rules)
    engine = create_warehouse_engine(settings.storage.warehouse_url)
    _write_day(engine, 0, {})
    _write_day(engine, 1, {"language": "major"})
    env.setenv("T_HOOK_URL", f"http://127.0.0.1:{free_port()}/hook")  # nobody listens there
    report = run_alerts(settings, engine)
    assert (report.sent, report.failed) == (0, 1)
    (row,) = _events(engine).to_dict("records")
    assert (row["status"], row["attempts"], row["sent_at"]) == ("failed", 2, None)
    assert "refused" in row["error"].lower() and "127.0.0.1" not in row["error"]

    with recording_server() as http:
        http.status = 503  # up but failing: retried within the tick, still failed
        env.setenv("T_HOOK_URL", http.url("/hook"))
        assert run_alerts(settings, engine).failed == 1
        assert len(http.requests) == 2
        (row,) = _events(engine).to_dict("records")
        assert (row["status"], row["attempts"]) == ("failed", 4) and "HTTP 503" in row["error"]
        http.status = 200
        assert run_alerts(settings, engine).sent == 1  # the next tick delivers it
        assert run_alerts(settings, engine).sent == 0  # and only once
        assert len(http.requests) == 3
    (row,) = _events(engine).to_dict("records")
    assert (row["status"], row["attempts"], row["error"]) == ("sent", 5, None) and row["sent_at"] is not None


def test_a_missing_environment_variable_fails_the_delivery_not_the_tick(tmp_path: Path, env):
    env.delenv("T_UNSET_URL", raising=False)
    channel = ChannelConfig.model_validate({"name": "hook", "kind": "slack", "url_env": "T_UNSET_URL"})
    message = Message("t", ("line",), "http://ui/assets/a", (("Rule", "r"),), {})
    result = deliver(channel, message, sleep=lambda s: None)
    assert not result.ok and result.attempts == 1 and "T_UNSET_URL" in result.error


def test_email_over_starttls_with_login(tmp_path: Path, env):
    cert, key = self_signed_certificate(tmp_path)
    env.setenv("SSL_CERT_FILE", str(cert))  # the client trusts the throw-away certificate, nothing else changes
    env.setenv("T_SMTP_HOST", "127.0.0.1")
    env.setenv("T_SMTP_USER", "alerts")
    env.setenv("T_SMTP_PASSWORD", "s3cret-pw")
    with smtp_server(tls_files=(cert, key), credentials=("alerts", "s3cret-pw")) as smtp:
        channel = ChannelConfig.model_validate({
            "name": "mail", "kind": "email", "host_env": "T_SMTP_HOST", "port": smtp.port, "security": "starttls",
            "username_env": "T_SMTP_USER", "password_env": "T_SMTP_PASSWORD", "sender": "alerts@example.test",
            "recipients": ["a@example.test", "b@example.test"], "retries": 0})
        result = deliver(channel, Message("FIRING x", ("line one",), "http://ui/assets/a", (), {}))
        assert result.ok, result.error
        (mail,) = smtp.messages
        assert mail["tls"] and smtp.logins == ["alerts"] and mail["to"] == ["a@example.test", "b@example.test"]
        assert mail["subject"] == "FIRING x" and "line one" in mail["body"]


@pytest.mark.parametrize("channel, problem", [
    ({"name": "x", "kind": "slack", "url_env": "https://hooks.slack.com/services/T0/B0/abc"}, "not the value"),
    ({"name": "x", "kind": "webhook", "url": "https://example.test/hook"}, "'url' would put"),
    ({"name": "x", "kind": "webhook", "url_env": "OK", "secret": "abc"}, "'secret' would put"),
    ({"name": "x", "kind": "email", "host_env": "H", "sender": "a@b", "recipients": ["c@d"],
      "password_env": "P"}, "both username_env and password_env"),
    ({"name": "x", "kind": "teams"}, "needs url_env"),
])
def test_literal_urls_and_secrets_are_refused_at_load_with_the_fix(channel: dict, problem: str):
    with pytest.raises(ConfigError) as error:
        parse_settings({"alerts": {"channels": [channel]}})
    assert "alerts.channels.0" in str(error.value) and problem in str(error.value)
    assert "hooks.slack.com/services/T0/B0/abc" not in str(error.value) and "abc'" not in str(error.value)


def test_unknown_channels_metrics_and_keys_fail_at_load_with_their_path():
    base = {"channels": [{"name": "ops", "kind": "webhook", "url_env": "U"}]}
    cases = [
        ({"name": "r", "on": "drift", "channels": ["opz"]}, "rules.0.channels.0: unknown channel 'opz'"),
        ({"name": "r", "on": "kpi", "metric": "acceptance_ratio", "op": "lt", "threshold": 0.5, "channels": ["ops"]},
         "did you mean ['acceptance_rate'"),
        ({"name": "r", "on": "kpi", "metric": "accuracy", "op": "lt", "threshold": 0.5, "channels": ["ops"],
          "min_case": 3}, "alerts.rules.0.min_case: unknown key"),
        ({"name": "r", "on": "weather", "channels": ["ops"]}, "alerts.rules.0.on: must be one of"),
    ]
    for rule, expected in cases:
        with pytest.raises(ConfigError, match=None) as error:
            parse_settings({"alerts": {**base, "rules": [rule]}})
        assert expected in str(error.value), str(error.value)


def test_the_shipped_config_parses_its_rules_with_yaml_on_keys():
    from eval_pipelines.config import load_settings

    settings = load_settings(Path(__file__).resolve().parent.parent / "eval_pipelines.yaml")
    rules = {r.name: r for r in settings.alerts.rules}
    assert rules["major_drift"].on == "drift" and rules["gate_failed"].on == "release_gate"
    assert rules["timeouts"].threshold == 0.02 and rules["override_spike"].relative_change is not None
