"""Files land; the daemon's landing sensor and automation, alone, take them to every table BI reads.

Runs on the production profile as deployed: PostgreSQL storage and warehouse, QueuedRunCoordinator, a gRPC code
server, ``dagster-daemon`` and ``dagster-webserver`` as separate processes (fixtures in conftest.py). Expectations
come from the code location's own graph (chain.py), so an asset added tomorrow is checked tomorrow.
"""

from __future__ import annotations

import json
import socket
import time
from collections import defaultdict

import dagster as dg
import pytest
import sqlalchemy as sa
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

from eval_pipelines.alerts.delivery import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_signature
from eval_pipelines.alerts.sensors import MINIMUM_INTERVAL_SECONDS as ALERTS_TICK_SECONDS
from eval_pipelines_tests.alert_servers import RecordingServer
from eval_pipelines_tests.e2e.chain import LANDING_SENSOR
from eval_pipelines_tests.e2e.conftest import ALERT_SECRET, LandedChain
from eval_pipelines_tests.e2e.stack import LOCATION_NAME, wait_for

pytestmark = pytest.mark.e2e

# Warehouse tables BI reads, by the asset that writes them: (table, partition column or None when cumulative, whether
# every landed day must have rows). drift_results has none for the first day: it has no reference window yet.
# Checked only for assets the chain expects, so the list may name assets the graph does not have yet.
TABLES_BY_ASSET: dict[str, list[tuple[str, str | None, bool]]] = {
    "production_logs": [("ingestion_batches", "partition_date", True), ("ingestion_files", "partition_date", True)],
    "kpi_daily": [("kpi_daily", "kpi_date", True)],
    "kpi_rollups": [("kpi_weekly", None, True), ("kpi_monthly", None, True)],
    "drift_report": [("drift_results", "date", False)],
    "production_scores": [("production_scores", "partition_date", True)],
    "edge_case_library": [("edge_cases", None, True), ("edge_case_merges", "partition_date", True)],
    "eval_set": [("eval_set_versions", None, True), ("eval_set_cases", None, True)],
    "scored_runs": [("scored_runs", None, True), ("release_gates", None, True)],
}


def _latest_run(instance: dg.DagsterInstance, key: dg.AssetKey, partition: str | None) -> dg.DagsterRun:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, asset_partitions=[partition] if partition else None), limit=1).records
    assert records, f"{key.to_user_string()} {partition or ''} was never materialised"
    run = instance.get_run_by_id(records[0].run_id)
    assert run is not None
    return run


def _sensor_run(instance: dg.DagsterInstance, key: dg.AssetKey, partition: str | None) -> dg.DagsterRun | None:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, asset_partitions=[partition] if partition else None), limit=20).records
    for record in records:
        run = instance.get_run_by_id(record.run_id)
        if run is not None and run.tags.get("dagster/sensor_name") == LANDING_SENSOR:
            return run
    return None


def test_each_asset_was_materialised_by_its_trigger_through_the_queue(landed: LandedChain):
    instance, expected = landed.instance, landed.outcome.expected
    assert {e.trigger for e in expected.values()} >= {"landing_sensor", "automation"}
    runs_checked = set()
    for key, item in expected.items():
        for partition in sorted(item.partitions) if item.partitions else [None]:
            run = _latest_run(instance, key, partition)
            where = f"{key.to_user_string()} {partition or ''}: run {run.run_id[:8]} tags {dict(run.tags)}"
            if item.trigger == "landing_sensor":
                # The day's whole chain runs in the sensor's daily_chain run (issue 14). Automation may re-run a
                # report afterwards (its reference window's profiles landed later, in another day's run), so the
                # sensor's run is looked for among the partition's materialisations, not only the latest.
                run = _sensor_run(instance, key, partition) or run
                where = f"{key.to_user_string()} {partition or ''}: run {run.run_id[:8]} tags {dict(run.tags)}"
                assert run.tags.get("dagster/sensor_name") == LANDING_SENSOR, where
                assert run.tags.get("dagster/partition") == partition and run.tags.get("dagster/run_key"), where
                assert run.job_name == "daily_chain", where
            elif item.trigger == "automation":
                assert run.tags.get("dagster/from_automation_condition") == "true", where
            else:
                assert run.tags.get("eval_pipelines/e2e") == "manual", where
            runs_checked.add(run.run_id)
    # Every run went through the QueuedRunCoordinator of deploy/dagster.yaml.
    for run_id in runs_checked:
        assert instance.all_logs(run_id, of_type=dg.DagsterEventType.RUN_ENQUEUED), f"run {run_id} was not queued"
    # One sensor run per landed day: re-ticks of an unchanged folder launched nothing more (run keys).
    sensor_runs = instance.get_runs(filters=dg.RunsFilter(tags={"dagster/sensor_name": LANDING_SENSOR}))
    assert sorted(r.tags["dagster/partition"] for r in sensor_runs) == landed.days


def test_warehouse_reconciles_with_the_generated_logs(landed: LandedChain):
    engine = sa.create_engine(landed.stack.warehouse_url, poolclass=sa.pool.NullPool)
    days = landed.days
    expected_assets = {k.to_user_string() for k in landed.outcome.expected}
    with engine.connect() as connection:
        meta = sa.MetaData()
        meta.reflect(connection)

        batches = {str(r.partition_date): r for r in connection.execute(sa.select(meta.tables["ingestion_batches"]))}
        assert sorted(batches) == days
        files = defaultdict(dict)
        for row in connection.execute(sa.select(meta.tables["ingestion_files"])):
            files[str(row.partition_date)][row.source_file] = row
        for day in days:
            generated = landed.manifest["days"][day]
            batch = batches[day]
            assert batch.rows_read == generated["events"], day
            assert batch.rows_read == (batch.rows_valid + batch.rows_quarantined + batch.rows_duplicate
                                       + batch.rows_conflicting), day
            assert batch.rows_valid > 0.9 * batch.rows_read, day  # the demo logs are clean
            assert (batch.files_read, batch.files_failed, batch.source_kind) == (len(generated["files"]), 0, "landing")
            assert {name: row.rows_read for name, row in files[day].items()} == generated["files"], day

        if "kpi_daily" in expected_assets:
            kpi = meta.tables["kpi_daily"]
            cases = dict(connection.execute(
                sa.select(kpi.c.kpi_date, sa.func.sum(kpi.c.cases)).group_by(kpi.c.kpi_date)).all())
            assert {str(d): int(n) for d, n in cases.items()} == {d: batches[d].rows_valid for d in days}

        for asset, tables in TABLES_BY_ASSET.items():
            if asset not in expected_assets:
                continue
            for table_name, column, every_day in tables:
                assert table_name in meta.tables, f"{asset} did not create {table_name}"
                table = meta.tables[table_name]
                if column is None:
                    count = connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
                    assert count > 0, f"{table_name} is empty after {asset}"
                else:
                    per_day = dict(connection.execute(
                        sa.select(table.c[column], sa.func.count()).group_by(table.c[column])).all())
                    written = {str(d) for d in per_day}
                    assert written <= set(days) and written, f"{table_name} days: {sorted(written)}"
                    assert written == set(days) or not every_day, f"{table_name} days: {sorted(written)}"
                    if not every_day:
                        assert days[-1] in written, f"{table_name} has no rows for the latest day {days[-1]}"
        if "scored_runs" in expected_assets:
            scored = meta.tables["scored_runs"]
            candidates = set(connection.execute(sa.select(scored.c.candidate).distinct()).scalars())
            assert candidates == set(landed.outcome.expected[dg.AssetKey("scored_runs")].partitions or ())
    engine.dispose()


def test_webserver_listens_on_loopback_only(landed: LandedChain):
    port = int(landed.stack.webserver_url.rsplit(":", 1)[1])
    listening = _listening_addresses(port)
    assert listening == {"127.0.0.1"}, listening
    with socket.create_connection(("127.0.0.1", port), timeout=5):
        pass


def _listening_addresses(port: int) -> set[str]:
    """Local addresses with a LISTEN socket on ``port`` (from /proc/net/tcp and tcp6)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as handle:
            next(handle)
            for line in handle:
                local, state = line.split()[1], line.split()[3]
                address, port_hex = local.rsplit(":", 1)
                if state != "0A" or int(port_hex, 16) != port:
                    continue
                if len(address) == 8:
                    found.add(socket.inet_ntop(socket.AF_INET, bytes.fromhex(address)[::-1]))
                else:
                    raw = b"".join(bytes.fromhex(address[i:i + 8])[::-1] for i in range(0, 32, 8))
                    found.add(socket.inet_ntop(socket.AF_INET6, raw))
    return found


RESOURCES_QUERY = """
query Resources($selector: RepositorySelector!) {
  allTopLevelResourceDetailsOrError(repositorySelector: $selector) {
    ... on ResourceDetailsList { results { name configuredValues { key value type } } }
  }
}
"""
RUNS_QUERY = "{ runsOrError { ... on Runs { results { runId runConfigYaml tags { key value } } } } }"


def test_the_password_is_nowhere_dagster_or_the_ui_keeps_things(landed: LandedChain):
    """The stack's one password (Dagster storage and warehouse) after the whole chain ran: not in any row of
    Dagster's PostgreSQL storage (events, runs, ticks, evaluations), not in any file under DAGSTER_HOME (captured
    step logs), the lake or the process logs, not in what the GraphQL API serves."""
    import psycopg
    from psycopg import sql

    stack, secret = landed.stack, landed.stack.secret
    env = stack.env
    found = []
    with psycopg.connect(host=env["DAGSTER_PG_HOST"], port=int(env["DAGSTER_PG_PORT"]), dbname=env["DAGSTER_PG_DB"],
                         user=env["DAGSTER_PG_USERNAME"], password=secret) as connection:
        tables = [r[0] for r in connection.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")]
        assert {"runs", "event_logs"} <= set(tables)
        for table in tables:
            hits = connection.execute(sql.SQL("SELECT count(*) FROM {} AS t WHERE strpos(t::text, %s) > 0").format(
                sql.Identifier(table)), (secret,)).fetchone()[0]
            if hits:
                found.append(f"{hits} row(s) of {table}")
    for root in (stack.dagster_home, stack.lake_dir, *(s.log_path.parent for s in stack.services)):
        found += [str(p) for p in sorted(root.rglob("*")) if p.is_file() and secret.encode() in p.read_bytes()]
    assert list(stack.dagster_home.rglob("compute_logs/*")), "no captured step logs were written"
    served = json.dumps([
        stack.graphql(RESOURCES_QUERY, {"selector": {"repositoryLocationName": LOCATION_NAME,
                                                     "repositoryName": "__repository__"}}),
        stack.graphql(RUNS_QUERY), stack.graphql("{ instance { info } }")])
    if secret in served:
        found.append("GraphQL answers")
    assert found == []
    assert '"EVAL_PIPELINES_WAREHOUSE_URL"' in served and '"ENV_VAR"' in served


def test_the_daemons_alerts_sensor_announces_the_failed_gate_once_and_signed(landed: LandedChain,
                                                                             alert_receiver: RecordingServer):
    """Issue 16 in the production profile: the demo's naive_rules fails its release gate on purpose; the daemon's
    alerts_sensor posts one signed message for it to the config's webhook channel, records it in alert_events, and
    later ticks (the chain has settled, the sensor keeps ticking) never send it again."""
    def gate_messages() -> list:
        return [r for r in alert_receiver.posted("/ops") if r.json().get("rule") == "gate_failed"]

    # Which candidates failed, from Dagster's own check history (the latest evaluation per candidate).
    history = landed.instance.event_log_storage.get_asset_check_execution_history(
        dg.AssetCheckKey(dg.AssetKey("scored_runs"), "release_gate"), limit=50)
    latest: dict[str, AssetCheckExecutionRecordStatus] = {}
    for record in sorted(history, key=lambda r: r.id):
        latest[record.partition] = record.status
    failed = {c for c, status in latest.items() if status == AssetCheckExecutionRecordStatus.FAILED}
    assert "naive_rules" in failed, latest

    posted = wait_for(lambda: gate_messages() or None, 180, "the gate_failed alert at the webhook", interval=2.0)
    message = posted[0].json()
    assert message["state"] == "firing" and message["source"] == "release_gate"
    assert {f["partition_key"] for m in posted for f in m.json()["findings"]} == failed
    headers = posted[0].headers
    assert verify_signature(ALERT_SECRET, headers[TIMESTAMP_HEADER.lower()], posted[0].body,
                            headers[SIGNATURE_HEADER.lower()])
    engine = sa.create_engine(landed.stack.warehouse_url, poolclass=sa.pool.NullPool)
    try:
        def recorded() -> list | None:
            with engine.connect() as connection:
                rows = connection.execute(sa.text(
                    "SELECT partition_key, channel, state, status FROM alert_events WHERE rule = 'gate_failed'")).all()
            return [tuple(r) for r in rows] or None
        rows = wait_for(recorded, 60, "the gate_failed row in alert_events")
    finally:
        engine.dispose()
    assert sorted(rows) == [(candidate, "ops", "firing", "sent") for candidate in sorted(failed)]
    sent = len(gate_messages())
    time.sleep(2 * ALERTS_TICK_SECONDS)  # at least one more tick of the sensor
    assert len(gate_messages()) == sent
