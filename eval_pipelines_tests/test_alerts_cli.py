"""``eval-pipelines alerts [--dry-run]`` end to end: the dry run prints what would be sent and neither delivers nor
records anything; the real run then delivers it to a recording server on 127.0.0.1, once."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
import yaml

from eval_pipelines import cli
from eval_pipelines.alerts.tables import alert_events
from eval_pipelines.config import CONFIG_ENV_VAR
from eval_pipelines.warehouse.core import create_warehouse_engine
from eval_pipelines_tests.alert_servers import recording_server
from eval_pipelines_tests.test_alerts_delivery import _write_day

RULES = [{"name": "major_drift", "on": "drift", "severity": "major", "channels": ["hook"]},
         {"name": "timeouts", "on": "kpi", "metric": "timeout_rate", "op": "gt", "threshold": 0.02,
          "min_cases": 500, "channels": ["hook"]}]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("EVAL_PIPELINES_WAREHOUSE_URL", "EVAL_PIPELINES_LAKE_DIR", "EVAL_PIPELINES_LANDING_DIR",
                 "DAGSTER_HOME"):
        monkeypatch.delenv(name, raising=False)
    config = {"storage": {"warehouse_url": f"sqlite:///{tmp_path / 'warehouse.db'}", "lake_dir": str(tmp_path)},
              "alerts": {"ui_base_url": "http://dagster.test:3000",
                         "channels": [{"name": "hook", "kind": "webhook", "url_env": "T_CLI_HOOK",
                                       "secret_env": "T_CLI_SECRET", "backoff_seconds": 0.01}],
                         "rules": RULES}}
    path = tmp_path / "eval_pipelines.yaml"
    path.write_text(yaml.safe_dump(config))
    monkeypatch.setenv(CONFIG_ENV_VAR, str(path))  # cli.main sets it; monkeypatch restores it afterwards
    monkeypatch.setenv("T_CLI_SECRET", "cli-secret-0123")
    engine = create_warehouse_engine(config["storage"]["warehouse_url"])
    _write_day(engine, 0, {})
    _write_day(engine, 1, {"language": "major"}, timeouts=240)  # a drift and 8 % timeouts on 3,000 cases
    engine.dispose()
    return path


def _events(path: Path) -> pd.DataFrame:
    engine = create_warehouse_engine(yaml.safe_load(path.read_text())["storage"]["warehouse_url"])
    try:
        if not sa.inspect(engine).has_table("alert_events"):
            return pd.DataFrame()
        with engine.connect() as connection:
            return pd.DataFrame(connection.execute(sa.select(alert_events)).mappings().all())
    finally:
        engine.dispose()


def test_dry_run_prints_what_would_be_sent_then_the_real_run_delivers_it_once(project: Path, monkeypatch, capsys):
    with recording_server() as http:
        monkeypatch.setenv("T_CLI_HOOK", http.url("/hook"))

        assert cli.main(["--config", str(project), "alerts", "--dry-run", "--payload"]) == 0
        out = capsys.readouterr().out
        assert "[hook] would send: FIRING [major] major_drift on 2026-03-02: language (categorical)" in out
        assert "[hook] would send: FIRING [major] timeouts on 2026-03-02: support_triage" in out
        assert "timeout_rate 8.0 % (CI" in out and "vs threshold > 2.0 % over 3,000 cases" in out
        assert "http://dagster.test:3000/assets/kpi_daily?partition=2026-03-02" in out
        assert '"rule": "major_drift"' in out  # --payload: the webhook's JSON body
        assert "dry run, nothing sent or recorded: 2 finding(s) (2 firing), 2 message(s) due: 0 sent" in out
        assert http.requests == [] and len(_events(project)) == 0  # nothing delivered, nothing recorded

        # A second dry run plans the same: the first one left no state behind.
        assert cli.main(["--config", str(project), "alerts", "--dry-run"]) == 0
        assert "2 message(s) due" in capsys.readouterr().out

        assert cli.main(["--config", str(project), "alerts"]) == 0
        out = capsys.readouterr().out
        assert "[hook] due: FIRING [major] major_drift" in out and "2 sent, 0 failed" in out
        assert sorted(r.json()["rule"] for r in http.requests) == ["major_drift", "timeouts"]
        assert {r.path for r in http.requests} == {"/hook"}
        assert all("x-eval-pipelines-signature" in r.headers for r in http.requests)
        events = _events(project)
        assert sorted(events["rule"]) == ["major_drift", "timeouts"] and set(events["status"]) == {"sent"}
        assert json.loads(events.loc[events["rule"] == "timeouts", "payload"].iloc[0])["state"] == "firing"

        # Once per finding: neither a dry run nor a real run has anything left to send.
        assert cli.main(["--config", str(project), "alerts", "--dry-run"]) == 0
        assert "0 message(s) due" in capsys.readouterr().out
        assert cli.main(["--config", str(project), "alerts"]) == 0
        assert "0 message(s) due" in capsys.readouterr().out
        assert len(http.requests) == 2 and len(_events(project)) == 2


def test_a_failed_delivery_exits_1_and_is_recorded_for_the_next_run(project: Path, monkeypatch, capsys):
    with recording_server() as http:
        http.status = 500
        monkeypatch.setenv("T_CLI_HOOK", http.url("/hook"))
        assert cli.main(["--config", str(project), "alerts"]) == 1
        assert "0 sent, 2 failed" in capsys.readouterr().out
        assert set(_events(project)["status"]) == {"failed"}
        http.status = 200
        assert cli.main(["--config", str(project), "alerts"]) == 0
        assert "2 sent, 0 failed" in capsys.readouterr().out
        assert set(_events(project)["status"]) == {"sent"}
