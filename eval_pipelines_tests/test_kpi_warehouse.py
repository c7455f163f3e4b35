"""The KPI tables in real warehouses: SQLite and a real PostgreSQL server, through real Dagster runs.

One demo materialisation (8 days, a full ISO week plus a Monday) is run on both backends; the tests then show the
tables are identical across backends, the rollups in the warehouse equal a direct recompute over the week's cases,
re-materialising never duplicates rows, a writer killed or failing mid-transaction leaves the day old (never
partial), late data flows to the rollups, and the example queries of docs/warehouse.md run in ``sqlite3`` and
``psql`` and return the documented columns.
"""

from __future__ import annotations

import csv
import io
import os
import pickle
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
import yaml

from eval_pipelines.config import load_settings
from eval_pipelines.demo.generator import generate_logs
from eval_pipelines.estimation.tables import performance_estimates
from eval_pipelines.ingestion.assets import production_logs
from eval_pipelines.kpis.assets import ASSETS, kpi_daily, kpi_definitions, kpi_rollups
from eval_pipelines.kpis.cli import ESTIMATED_HEADER, register
from eval_pipelines.kpis.definitions import DEFINITIONS
from eval_pipelines.kpis.metrics import (
    COUNT_COLUMNS,
    FLAG_COLUMNS,
    KEY_COLUMNS,
    METRIC_COLUMNS,
    PERCENTILE_COLUMNS,
    compute_kpis,
)
from eval_pipelines.kpis.store import read_rows, write_daily
from eval_pipelines.kpis.tables import KPI_TABLES, kpi_monthly, kpi_weekly
from eval_pipelines.kpis.tables import kpi_daily as kpi_daily_table
from eval_pipelines.labeling.assets import labeled_cases
from eval_pipelines.lake import Lake
from eval_pipelines.resources import lake_root
from eval_pipelines.warehouse.core import create_warehouse_engine, metadata
from eval_pipelines_tests.conftest import Project, make_project
from eval_pipelines_tests.postgres_server import (  # noqa: F401
    PostgresServer,
    ensure_debian_tool,
    postgres_database,
    postgres_server,
    postgres_url,
    psql_path,
)
from eval_pipelines_tests.test_kpi_metrics import IMPACT, fixture_cases

DOCS = Path(__file__).resolve().parent.parent / "docs" / "warehouse.md"
MONDAY = date(2026, 3, 2)
DAYS = [MONDAY + timedelta(days=i) for i in range(8)]
CHAIN = [production_logs, labeled_cases, kpi_daily, kpi_rollups]
BACKENDS = ("sqlite", "postgresql")


@dataclass
class Demo:
    project: Project
    instance: dg.DagsterInstance
    engine: sa.Engine


def project_on(root: Path, warehouse_url: str | None) -> Project:
    """A throw-away project (conftest.make_project) whose warehouse is ``warehouse_url`` when given."""
    project = make_project(root)
    if warehouse_url is None:
        return project
    config = yaml.safe_load(project.config_path.read_text())
    config["storage"]["warehouse_url"] = warehouse_url
    project.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    return Project(root, project.config_path, load_settings(project.config_path))


def materialise(project: Project, instance: dg.DagsterInstance, days: list[date], assets=CHAIN) -> None:
    for day in days:
        result = dg.materialize(assets, partition_key=day.isoformat(), resources=project.resources(),
                                instance=instance)
        assert result.success


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, postgres_server: PostgresServer) -> dict[str, Demo]:  # noqa: F811
    with pytest.MonkeyPatch.context() as patch:
        for name in ("EVAL_PIPELINES_WAREHOUSE_URL", "EVAL_PIPELINES_LAKE_DIR", "EVAL_PIPELINES_LANDING_DIR"):
            patch.delenv(name, raising=False)
        demos = {}
        for backend in BACKENDS:
            root = tmp_path_factory.mktemp(f"kpi_demo_{backend}")
            url = None if backend == "sqlite" else postgres_server.create_database("kpi_demo")
            project = project_on(root, url)
            generate_logs(project.landing_dir, days=len(DAYS), events_per_day=300, seed=7, start_date=DAYS[0])
            instance = dg.DagsterInstance.ephemeral()
            materialise(project, instance, DAYS)
            assert dg.materialize([kpi_definitions], resources=project.resources(), instance=instance).success
            demos[backend] = Demo(project, instance, create_warehouse_engine(project.warehouse_url))
        yield demos
        for item in demos.values():
            item.engine.dispose()


def kpi_tables(engine: sa.Engine) -> dict[str, pd.DataFrame]:
    return {table.name: read_rows(engine, table).drop(columns="computed_at", errors="ignore")
            for table in KPI_TABLES if table.name != "kpi_definitions"}


# ------------------------------------------------------------------------------------------- demo, both backends


def test_demo_fills_every_kpi_table(demo):
    for backend in BACKENDS:
        tables = kpi_tables(demo[backend].engine)
        daily = tables["kpi_daily"]
        assert sorted(set(daily["kpi_date"])) == DAYS, backend
        assert int(daily["cases"].sum()) == 300 * len(DAYS)
        assert sorted(set(tables["kpi_weekly"]["week_start"])) == [MONDAY, MONDAY + timedelta(days=7)]
        assert sorted(set(tables["kpi_monthly"]["month_start"])) == [date(2026, 3, 1)]
        definitions = read_rows(demo[backend].engine, kpi_definitions_table())
        assert len(definitions) == len(DEFINITIONS)


def kpi_definitions_table() -> sa.Table:
    return metadata.tables["kpi_definitions"]


def test_same_materialisation_gives_identical_kpi_tables_on_sqlite_and_postgresql(demo):
    lite, pg = kpi_tables(demo["sqlite"].engine), kpi_tables(demo["postgresql"].engine)
    assert demo["postgresql"].engine.dialect.name == "postgresql"
    for name in lite:
        assert len(lite[name]) > 0
        pd.testing.assert_frame_equal(lite[name], pg[name], check_exact=True, obj=name)
    definitions = [read_rows(demo[b].engine, kpi_definitions_table()) for b in BACKENDS]
    pd.testing.assert_frame_equal(definitions[0], definitions[1], check_exact=True)


@pytest.mark.parametrize("backend", BACKENDS)
def test_warehouse_weekly_rollup_equals_kpis_recomputed_over_the_weeks_cases(demo, backend):
    engine = demo[backend].engine
    settings = demo[backend].project.settings
    lake = Lake(lake_root(settings))
    cases = pd.concat([lake.read("labeled_cases", d.isoformat()) for d in DAYS[:7]], ignore_index=True)
    direct = compute_kpis(cases, settings.impact)
    weekly = read_rows(engine, kpi_weekly, MONDAY, MONDAY)
    assert list(weekly[list(KEY_COLUMNS)].itertuples(index=False)) == \
        list(direct[list(KEY_COLUMNS)].itertuples(index=False))
    assert (weekly["days_with_data"] <= 7).all() and weekly["days_with_data"].max() == 7
    for column in METRIC_COLUMNS:
        a, e = weekly[column].to_numpy(dtype=float), direct[column].to_numpy(dtype=float)
        if column in COUNT_COLUMNS or column in PERCENTILE_COLUMNS:
            np.testing.assert_array_equal(a, e, err_msg=column)
        else:
            np.testing.assert_allclose(a, e, rtol=1e-10, atol=1e-12, err_msg=column)

    monthly = read_rows(engine, kpi_monthly)
    all_cases = pd.concat([cases, lake.read("labeled_cases", DAYS[7].isoformat())], ignore_index=True)
    direct_month = compute_kpis(all_cases, settings.impact)
    np.testing.assert_array_equal(monthly["latency_ms_p99"].to_numpy(), direct_month["latency_ms_p99"].to_numpy())
    np.testing.assert_allclose(monthly["acceptance_rate"], direct_month["acceptance_rate"], rtol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_rematerialising_a_day_replaces_it_without_duplicates(demo, backend):
    engine = demo[backend].engine
    before = kpi_tables(engine)
    materialise(demo[backend].project, demo[backend].instance, [DAYS[3], DAYS[3]], assets=[kpi_daily, kpi_rollups])
    after = kpi_tables(engine)
    for name in before:
        pd.testing.assert_frame_equal(before[name], after[name], check_exact=True, obj=name)
    with engine.connect() as connection:
        keys = connection.execute(sa.select(sa.func.count()).select_from(
            sa.select(kpi_daily_table.c.kpi_date, *[kpi_daily_table.c[k] for k in KEY_COLUMNS]).distinct()
            .subquery())).scalar()
        total = connection.execute(sa.select(sa.func.count()).select_from(kpi_daily_table)).scalar()
    assert keys == total == len(before["kpi_daily"])


def test_kpi_daily_reports_headline_metadata_and_the_cli_prints_the_same_table(demo, capsys):
    day = DAYS[2]
    events = demo["sqlite"].instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("kpi_daily"), asset_partitions=[day.isoformat()]), limit=1)
    meta = events.records[0].asset_materialization.metadata
    for name in ("cases", "acceptance_rate", "accuracy", "hours_saved", "net_value", "roi", "latency_ms_p95",
                 "slo_attainment_rate"):
        assert isinstance(meta[name], dg.IntMetadataValue | dg.FloatMetadataValue), name
    assert meta["cases"].value == 300
    headline = meta["headline"].value  # issue 14 item 7: the same numbers, with their units
    assert headline.startswith("**300 cases**") and " %" in headline and " h · net value" in headline
    assert f" {meta['currency'].value}" in headline
    assert ("n/a (low volume)" if meta["low_volume"].value else "× (net value / full cost)") in headline
    markdown = meta["kpis"].value

    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--config")
    register(parser.add_subparsers(dest="command"))
    # One group of the day has a label-free estimate (issue 13 item 5): the terminal shows it after the UI's columns.
    engine = create_warehouse_engine(demo["sqlite"].project.warehouse_url)
    try:
        first = pd.read_sql_query(sa.text("SELECT system, model_version, segment FROM kpi_daily WHERE kpi_date = :d "
                                          "ORDER BY system, model_version, segment LIMIT 1"), engine,
                                  params={"d": day.isoformat()}).iloc[0]
        performance_estimates.create(engine, checkfirst=True)
        with engine.begin() as connection:
            connection.execute(performance_estimates.delete())
            connection.execute(performance_estimates.insert(), [{
                "partition_date": day, "system": first.system, "model_version": first.model_version,
                "segment": first.segment, "status": "estimated", "reason": "", "cases": 100,
                "cases_without_confidence": 0, "estimated_accuracy": 0.78, "estimated_accuracy_ci_low": 0.75,
                "estimated_accuracy_ci_high": 0.81, "calibration_method": "isotonic", "calibration_cases": 500,
                "calibration_reviewed_cases": 0, "calibration_ground_truth_cases": 500,
                "calibration_implicit_cases": 0, "calibration_window": "w", "realized_cases": 0,
                "gap_flagged": False, "computed_at": datetime.now(UTC)}])
    finally:
        engine.dispose()
    args = parser.parse_args(["--config", str(demo["sqlite"].project.config_path), "kpis", "--since",
                              day.isoformat(), "--until", day.isoformat()])
    assert args.handler(args) == 0
    printed = capsys.readouterr().out

    # The terminal shows the UI's table (same cells), with a 'partial' column first and a TOTAL row (issue 14).
    def cells(text: str) -> list[list[str]]:
        return [[c.strip() for c in line.strip().strip("|").split("|")] for line in text.splitlines()
                if line.startswith("|") and not set(line) <= set("|-: ")]

    ui, terminal = cells(markdown), cells(printed)
    width = len(ui[0])
    assert terminal[0][0] == "partial" and [row[1:width + 1] for row in terminal[:len(ui)]] == ui
    assert terminal[0][width + 1:] == [ESTIMATED_HEADER]
    estimates = [row[width + 1] for row in terminal[1:len(ui)]]
    assert estimates[0] == "78.0% [75.0%, 81.0%]" and set(estimates[1:]) <= {"–"}
    assert terminal[len(ui)][1] == "TOTAL" and terminal[len(ui)][ui[0].index("cases") + 1] == "300"

    args = parser.parse_args(["--config", str(demo["sqlite"].project.config_path), "kpis", "--period", "week"])
    assert args.handler(args) == 0
    assert "kpi_weekly from 2026-03-02 to 2026-03-09" in capsys.readouterr().out


# ---------------------------------------------------------------------------------- atomic replacement of a day


@pytest.fixture(params=BACKENDS)
def empty_warehouse(request, tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'warehouse.db'}" if request.param == "sqlite" else \
        request.getfixturevalue("postgres_database")
    engine = create_warehouse_engine(url)
    yield engine
    engine.dispose()


DAY = date(2026, 3, 4)
OLD = (3, 13)  # (rows, total cases) of the fixture day
NEW = (2, 24)


def old_and_new_frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    from eval_pipelines.kpis.metrics import daily_kpis

    cases = fixture_cases()
    new_cases = pd.concat([cases[cases["system"] == "s"]] * 2, ignore_index=True)
    return daily_kpis(cases, IMPACT, DAY), daily_kpis(new_cases, IMPACT, DAY)


def day_state(engine: sa.Engine) -> tuple[int, int]:
    """(rows, total cases) of DAY in one statement, i.e. one consistent snapshot."""
    query = sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(kpi_daily_table.c.cases), 0)).where(
        kpi_daily_table.c.kpi_date == DAY)
    with engine.connect() as connection:
        rows, cases = connection.execute(query).one()
    return int(rows), int(cases)


def test_a_failure_between_delete_and_insert_leaves_the_old_day(empty_warehouse):
    engine = empty_warehouse
    old, new = old_and_new_frames()
    write_daily(engine, old, DAY)
    assert day_state(engine) == OLD
    reader = create_warehouse_engine(str(engine.url.render_as_string(hide_password=False)))
    seen_mid_transaction: list[tuple[int, int]] = []

    def fail_on_insert(conn, clauseelement, multiparams, params, execution_options):
        if isinstance(clauseelement, sa.Insert) and clauseelement.table.name == "kpi_daily":
            seen_mid_transaction.append(day_state(reader))  # the delete has run, uncommitted
            raise RuntimeError("injected failure between delete and insert")

    sa.event.listen(engine, "before_execute", fail_on_insert)
    try:
        with pytest.raises(RuntimeError, match="injected failure"):
            write_daily(engine, new, DAY)
    finally:
        sa.event.remove(engine, "before_execute", fail_on_insert)
        reader.dispose()
    assert seen_mid_transaction == [OLD]
    assert day_state(engine) == OLD
    write_daily(engine, new, DAY)
    assert day_state(engine) == NEW
    write_daily(engine, new, DAY)
    assert day_state(engine) == NEW


CHILD = r"""
import pickle, sys, time
import sqlalchemy as sa
from eval_pipelines.kpis.store import write_daily
from eval_pipelines.warehouse.core import create_warehouse_engine

url, frame_path, marker = sys.argv[1:4]
with open(frame_path, "rb") as handle:
    frame, day = pickle.load(handle)
engine = create_warehouse_engine(url)

@sa.event.listens_for(engine, "after_execute")
def pause(conn, clauseelement, multiparams, params, execution_options, result):
    if isinstance(clauseelement, sa.Insert) and clauseelement.table.name == "kpi_daily":
        with open(marker, "w") as handle:
            handle.write("deleted and inserted, not committed")
        time.sleep(300)

write_daily(engine, frame, day)
"""


def test_a_writer_killed_mid_transaction_leaves_the_old_day(empty_warehouse, tmp_path: Path):
    engine = empty_warehouse
    old, new = old_and_new_frames()
    write_daily(engine, old, DAY)
    frame_path, marker = tmp_path / "frame.pkl", tmp_path / "marker"
    frame_path.write_bytes(pickle.dumps((new, DAY)))
    url = engine.url.render_as_string(hide_password=False)
    log = tmp_path / "child.log"
    with log.open("wb") as sink:
        child = subprocess.Popen([sys.executable, "-c", CHILD, url, str(frame_path), str(marker)],
                                 stdout=sink, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert child.poll() is None, log.read_text()[-2000:]
            assert time.monotonic() < deadline, "child never reached the insert"
            time.sleep(0.02)
        assert day_state(engine) == OLD  # a reader during the open transaction sees the old day whole
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == -signal.SIGKILL
    engine.dispose()
    assert day_state(engine) == OLD  # the killed transaction was rolled back
    write_daily(engine, new, DAY)  # and its locks are gone: the next writer gets through
    assert day_state(engine) == NEW


def test_concurrent_readers_only_ever_see_the_old_or_the_new_day(empty_warehouse):
    engine = empty_warehouse
    old, new = old_and_new_frames()
    write_daily(engine, old, DAY)
    reader = create_warehouse_engine(engine.url.render_as_string(hide_password=False))
    seen: set[tuple[int, int]] = set()
    stop = threading.Event()
    errors: list[BaseException] = []

    def read_loop() -> None:
        try:
            while not stop.is_set():
                seen.add(day_state(reader))
        except BaseException as error:  # surfaced in the main thread
            errors.append(error)

    thread = threading.Thread(target=read_loop)
    thread.start()
    try:
        for i in range(30):
            write_daily(engine, new if i % 2 == 0 else old, DAY)
    finally:
        stop.set()
        thread.join(timeout=60)
        reader.dispose()
    assert not errors, errors
    assert seen <= {OLD, NEW} and seen, seen


# ----------------------------------------------------------------------------------- late data and automation


@pytest.mark.parametrize("backend", BACKENDS)
def test_late_data_replaces_the_day_and_the_rollups_follow(backend, tmp_path: Path, request):
    url = None if backend == "sqlite" else request.getfixturevalue("postgres_database")
    project = project_on(tmp_path, url)
    days = [MONDAY, MONDAY + timedelta(days=1)]
    generate_logs(project.landing_dir, days=2, events_per_day=200, seed=3, start_date=days[0])
    instance = dg.DagsterInstance.ephemeral()
    materialise(project, instance, days)
    engine = create_warehouse_engine(project.warehouse_url)
    request.addfinalizer(engine.dispose)
    assert int(read_rows(engine, kpi_weekly)["cases"].sum()) == 400

    # Late events for Monday arrive: the landing folder gets another file and the day is re-run.
    generate_logs(tmp_path / "late", days=1, events_per_day=150, seed=99, start_date=days[0], files_per_day=1)
    late = next((tmp_path / "late" / days[0].isoformat()).glob("*.jsonl"))
    (project.landing_dir / days[0].isoformat() / "late-part.jsonl").write_bytes(late.read_bytes())
    materialise(project, instance, [days[0]])

    daily = read_rows(engine, kpi_daily_table)
    assert int(daily.loc[daily["kpi_date"] == days[0], "cases"].sum()) == 200 + 150
    assert int(daily.loc[daily["kpi_date"] == days[1], "cases"].sum()) == 200
    weekly = read_rows(engine, kpi_weekly)
    assert int(weekly["cases"].sum()) == 550 and len(weekly) == weekly[list(KEY_COLUMNS)].drop_duplicates().shape[0]
    lake = Lake(lake_root(project.settings))
    cases = pd.concat([lake.read("labeled_cases", d.isoformat()) for d in days], ignore_index=True)
    direct = compute_kpis(cases, project.settings.impact)
    np.testing.assert_array_equal(weekly["latency_ms_p95"].to_numpy(), direct["latency_ms_p95"].to_numpy())
    np.testing.assert_allclose(weekly["override_rate"], direct["override_rate"], rtol=1e-12)


def test_automation_follows_late_data_for_an_old_day_through_to_the_rollups(project: Project):
    """Plain eager() only looks at the latest day; kpi_daily and kpi_rollups follow ANY day that changes."""
    day = MONDAY.isoformat()
    generate_logs(project.landing_dir, days=1, events_per_day=100, seed=5, start_date=MONDAY)
    instance = dg.DagsterInstance.ephemeral()
    assets = [production_logs, labeled_cases, kpi_daily, kpi_rollups]
    selection = dg.AssetSelection.assets(kpi_daily, kpi_rollups)
    assets = dg.Definitions(assets=assets, resources=project.resources())
    evaluation_time = pd.Timestamp("2026-06-01T12:00:00Z").to_pydatetime()  # the day is months old by then
    first = dg.evaluate_automation_conditions(defs=assets, instance=instance, asset_selection=selection,
                                              evaluation_time=evaluation_time)
    assert first.total_requested == 0

    assert dg.materialize([production_logs, labeled_cases], partition_key=day, resources=project.resources(),
                          instance=instance).success
    second = dg.evaluate_automation_conditions(defs=assets, instance=instance, asset_selection=selection,
                                               cursor=first.cursor, evaluation_time=evaluation_time)
    assert second.get_requested_partitions(dg.AssetKey("kpi_daily")) == {day}
    # kpi_daily's blocking consistency check is partitioned (issue 14), so the day's check is requested in this
    # tick too and kpi_rollups joins the same run (all_deps_blocking_checks_passed allows in-tick requests): the
    # check still blocks it inside that run. With the old unpartitioned check it waited a tick.
    assert second.get_requested_partitions(dg.AssetKey("kpi_rollups")) == {day}

    assert dg.materialize([kpi_daily, kpi_rollups], partition_key=day, resources=project.resources(),
                          instance=instance).success
    third = dg.evaluate_automation_conditions(defs=assets, instance=instance, asset_selection=selection,
                                              cursor=second.cursor, evaluation_time=evaluation_time)
    assert third.total_requested == 0  # handled: nothing runs twice


def test_assets_are_exported_with_descriptions_groups_and_automation():
    assert [a.key.to_user_string() for a in ASSETS] == ["kpi_daily", "kpi_rollups", "kpi_definitions"]
    for asset in ASSETS:
        spec = next(iter(asset.specs))
        assert spec.description and spec.group_name == "kpis" and spec.automation_condition is not None
    checks = {key.name for key in kpi_daily.check_keys}
    assert checks == {"kpi_daily_consistent"}


# ---------------------------------------------------------------------------------------- docs/warehouse.md


def documented_queries() -> list[tuple[str, list[str], bool, str]]:
    """(name, documented columns, may be empty, SQL) for every ```sql block of the docs."""
    text = DOCS.read_text(encoding="utf-8")
    queries = []
    for block in re.findall(r"```sql\n(.*?)```", text, flags=re.S):
        header = re.match(r"--\s*example:\s*(\S+)\s*\n--\s*columns:\s*(.+)\n(--\s*rows:\s*may be empty\n)?", block)
        assert header, f"an example query lacks its '-- example:' / '-- columns:' header:\n{block[:200]}"
        columns = [c.strip() for c in header.group(2).split(",")]
        queries.append((header.group(1), columns, header.group(3) is not None, block))
    return queries


def documented_table_columns() -> tuple[dict[str, list[str]], set[str]]:
    """Columns listed per table section (``### `table` ``, then a Markdown table whose first cell is the column),
    and the tables that only have a placeholder section (``### table (placeholder)``) so far."""
    text = DOCS.read_text(encoding="utf-8")
    tables: dict[str, list[str]] = {}
    for match in re.finditer(r"^### `(\w+)`\n(.*?)(?=^##)", text + "\n##", flags=re.S | re.M):
        tables[match.group(1)] = re.findall(r"^\| `(\w+)` \|", match.group(2), flags=re.M)
    placeholders = set(re.findall(r"^### (\w+) \(placeholder\)$", text, flags=re.M))
    return tables, placeholders


def all_warehouse_tables() -> list[sa.Table]:
    """Every table any domain defines: import each ``eval_pipelines/<domain>/tables.py`` that exists."""
    import importlib
    import pkgutil

    import eval_pipelines

    for module in pkgutil.iter_modules(eval_pipelines.__path__):
        if module.ispkg and importlib.util.find_spec(f"eval_pipelines.{module.name}.tables") is not None:
            importlib.import_module(f"eval_pipelines.{module.name}.tables")
    return list(metadata.sorted_tables)


OWN_TABLES = ("ingestion_batches", "ingestion_files", "quarantined_events", "kpi_daily", "kpi_weekly", "kpi_monthly",
              "kpi_definitions")


def test_docs_list_every_table_and_column_of_the_warehouse():
    """Every table is in the docs: ingestion and KPI tables column for column; another domain's table at least as
    an announced placeholder until its section is written, and then column for column too."""
    documented, placeholders = documented_table_columns()
    tables = {table.name: table for table in all_warehouse_tables()}
    for name in OWN_TABLES:
        assert name in documented and name not in placeholders, name
    for name, table in tables.items():
        assert name in documented or name in placeholders, f"{name} is not in docs/warehouse.md"
        if name in OWN_TABLES or name in documented:
            assert documented.get(name) == [c.name for c in table.columns], name
    assert set(documented) <= set(tables), "docs describe tables the code does not define"


def test_docs_kpi_daily_directions_and_types_match_the_definitions():
    text = DOCS.read_text(encoding="utf-8")
    section = re.search(r"^### `kpi_daily`\n(.*?)(?=^##)", text, flags=re.S | re.M).group(1)
    rows = {m[0]: m[1:] for m in re.findall(r"^\| `(\w+)` \| (\w+) \| [^|]* \| ([↑↓ ]*) \|", section, flags=re.M)}
    by_metric = {d.metric: d for d in DEFINITIONS}
    for column in METRIC_COLUMNS:
        sql_type, direction = rows[column]
        assert sql_type == ("BIGINT" if column in COUNT_COLUMNS else "BOOLEAN" if column in FLAG_COLUMNS
                            else "DOUBLE"), column
        expected = {True: "↑", False: "↓", None: ""}[by_metric[column].higher_is_better]
        assert direction.strip() == expected, column


def test_docs_example_queries_run_in_sqlite3_and_psql(demo, postgres_server):  # noqa: F811
    queries = documented_queries()
    assert len(queries) >= 5
    sqlite3 = ensure_debian_tool("sqlite3", "sqlite3")
    psql = psql_path(postgres_server)
    sqlite_db = sa.make_url(demo["sqlite"].project.warehouse_url).database
    pg_url = sa.make_url(demo["postgresql"].project.warehouse_url).set(drivername="postgresql")
    for name, columns, may_be_empty, sql in queries:
        lite = subprocess.run([sqlite3, "-bail", "-header", "-csv", sqlite_db], input=sql, capture_output=True,
                              text=True, timeout=60)
        assert lite.returncode == 0 and not lite.stderr, (name, lite.stderr)
        pg = subprocess.run([psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "--csv",
                             pg_url.render_as_string(hide_password=False)],
                            input=sql, capture_output=True, text=True, timeout=60)
        assert pg.returncode == 0, (name, pg.stderr)
        if may_be_empty and not lite.stdout:  # the sqlite3 shell prints no header for an empty result
            import sqlite3 as sqlite

            with sqlite.connect(sqlite_db) as connection:
                header = [d[0] for d in connection.execute(sql).description]
            lite = subprocess.CompletedProcess(lite.args, 0, ",".join(header) + "\n", "")
        for output, tool in ((lite.stdout, "sqlite3"), (pg.stdout, "psql")):
            rows = list(csv.reader(io.StringIO(output)))
            assert rows, (name, tool, "no header")
            assert rows[0] == columns, (name, tool, rows[0])
            assert may_be_empty or len(rows) > 1, (name, tool, "no rows on the demo warehouse")


def test_cli_explains_a_warehouse_without_kpi_tables_and_bad_ranges(project: Project, capsys):
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--config")
    register(parser.add_subparsers(dest="command"))
    config = str(project.config_path)
    args = parser.parse_args(["--config", config, "kpis"])
    assert args.handler(args) == 2
    assert "has no table kpi_daily yet" in capsys.readouterr().err

    old, _ = old_and_new_frames()
    engine = create_warehouse_engine(project.warehouse_url)
    write_daily(engine, old, DAY)
    engine.dispose()
    args = parser.parse_args(["--config", config, "kpis", "--since", "2026-03-05", "--until", "2026-03-04"])
    assert args.handler(args) == 2
    args = parser.parse_args(["--config", config, "kpis"])  # defaults: the last 7 days up to the latest day
    assert args.handler(args) == 0
    out = capsys.readouterr().out
    assert "kpi_daily from 2026-02-26 to 2026-03-04 (3 row(s)" in out and "| 2026-03-04 |" in out


def test_cli_formats_totals_partial_marks_and_unknown_systems(project: Project, capsys):
    """Issue 14 item 8: --format table|csv|json, a totals row, partial periods marked, unknown --system listed."""
    import argparse
    import io
    import json

    parser = argparse.ArgumentParser()
    parser.add_argument("--config")
    register(parser.add_subparsers(dest="command"))
    config = str(project.config_path)
    old, _ = old_and_new_frames()
    engine = create_warehouse_engine(project.warehouse_url)
    write_daily(engine, old, DAY)
    engine.dispose()
    systems = sorted(old["system"].unique())

    args = parser.parse_args(["--config", config, "kpis", "--system", "nope"])
    assert args.handler(args) == 2
    err = capsys.readouterr().err
    assert "unknown --system 'nope'" in err and all(s in err for s in systems)

    args = parser.parse_args(["--config", config, "kpis", "--format", "json"])
    assert args.handler(args) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["totals"]["cases"] == int(old["cases"].sum()) == sum(r["cases"] for r in payload["rows"])
    assert all(r["partial"] == "" for r in payload["rows"])  # past days are complete

    args = parser.parse_args(["--config", config, "kpis", "--format", "csv"])
    assert args.handler(args) == 0
    frame = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert len(frame) == len(old) and "partial" in frame.columns and "TOTAL" not in frame.astype(str).values

    # partial marks: a week with 2 of 7 days, a week not over yet, today's day
    from eval_pipelines.kpis.cli import _partial

    weeks = pd.DataFrame({"week_start": [date(2026, 3, 2), date(2026, 3, 9)], "days_with_data": [2, 7]})
    assert _partial(weeks, "week", date(2026, 3, 15), date(2026, 3, 12)) == ["2/7 days with data", "not over"]
    days = pd.DataFrame({"kpi_date": [date(2026, 3, 11), date(2026, 3, 12)]})
    assert _partial(days, "day", date(2026, 3, 12), date(2026, 3, 12)) == ["", "in progress (today)"]
