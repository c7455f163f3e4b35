"""Security basics: warehouse credentials never reach Dagster's records, logs, the UI or error messages, secrets
come from the environment only, and the webserver is on loopback unless a deployment says otherwise.

The warehouse is a real PostgreSQL whose login role has a fresh marker string as its password, and the server
checks it (scram-sha-256 for that role; see ``e2e/stack.create_password_role``), so the assets really connect with
it. Then every place a password could leak to is searched for the marker, literally: every event of every run
(messages, metadata values, error messages and their causes) serialised whole, the captured stdout/stderr of the
steps, every file of the Dagster instance and of the lake, the console log of the test, and the resource
configuration the UI shows (through Dagster's GraphQL schema, in process).
"""

from __future__ import annotations

import contextlib
import json
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa
import yaml
from dagster._core.remote_origin import InProcessCodeLocationOrigin
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import InProcessWorkspaceLoadTarget
from dagster._serdes import serialize_value
from dagster_graphql.test.utils import execute_dagster_graphql

from eval_pipelines.demo.generator import generate_logs
from eval_pipelines.partitions import daily_partitions, partitions_holding
from eval_pipelines.resources import WAREHOUSE_URL_ENV, WarehouseResource
from eval_pipelines_tests.conftest import Project, make_project
from eval_pipelines_tests.e2e.stack import create_password_role, free_port, postgres_url
from eval_pipelines_tests.postgres_server import PostgresServer

ROOT = Path(__file__).resolve().parent.parent

RESOURCES_QUERY = """
query Resources($selector: RepositorySelector!) {
  allTopLevelResourceDetailsOrError(repositorySelector: $selector) {
    __typename
    ... on ResourceDetailsList { results { name configuredValues { key value type } } }
    ... on PythonError { message }
  }
}
"""
RUNS_QUERY = "{ runsOrError { ... on Runs { results { runId runConfigYaml tags { key value } } } } }"


class Marked:
    """A warehouse on the test server whose password is ``secret`` (and a wrong-password twin of the URL)."""

    def __init__(self, server: PostgresServer) -> None:
        token = uuid.uuid4().hex[:10]
        self.role, self.database = f"leak_{token}", f"leak_{token}"
        self.secret = f"pw-marker-{uuid.uuid4().hex}"
        create_password_role(server, self.role, self.secret, (self.database,))
        self.url = postgres_url(server, self.role, self.secret, self.database)
        self.server = server


@pytest.fixture
def marked(postgres_server: PostgresServer) -> Marked:
    return Marked(postgres_server)


def _leaks(haystack: str | bytes, secret: str) -> bool:
    needle = secret.encode() if isinstance(haystack, bytes) else secret
    return needle in haystack


def _scan_files(root: Path, secret: str) -> list[str]:
    return [str(p) for p in sorted(root.rglob("*")) if p.is_file() and _leaks(p.read_bytes(), secret)]


def _scan_event_log(instance: dg.DagsterInstance, secret: str) -> list[str]:
    """Every event of every run, serialised whole: messages, metadata values, errors with causes and stacks."""
    found = []
    for run in instance.get_runs():
        if _leaks(serialize_value(run), secret):
            found.append(f"run {run.run_id} record (config/tags)")
        for record in instance.all_logs(run.run_id):
            if _leaks(serialize_value(record), secret):
                kind = record.dagster_event.event_type_value if record.dagster_event else "log message"
                found.append(f"run {run.run_id[:8]} {kind}: {(record.user_message or '')[:200]}")
    return found


@contextlib.contextmanager
def ui_request_context(instance: dg.DagsterInstance, root: Path) -> Iterator[Any]:
    """What the webserver serves, in process: the code location loaded fresh (so it sees this test's environment)
    and Dagster's own GraphQL schema over it."""
    location = root / "ui_location.py"
    location.write_text("from eval_pipelines.definitions import build_definitions\n\ndefs = build_definitions()\n")
    origin = InProcessCodeLocationOrigin(
        LoadableTargetOrigin(python_file=str(location), attribute="defs", working_directory=str(root)),
        location_name="eval_pipelines")
    with WorkspaceProcessContext(instance, InProcessWorkspaceLoadTarget(origin)) as process_context:
        yield process_context.create_request_context()


def _resource_config(context: Any) -> dict[str, dict[str, dict[str, str]]]:
    result = execute_dagster_graphql(context, RESOURCES_QUERY, {"selector": {
        "repositoryLocationName": "eval_pipelines", "repositoryName": "__repository__"}})
    payload = result.data["allTopLevelResourceDetailsOrError"]
    assert payload["__typename"] == "ResourceDetailsList", payload
    return {r["name"]: {v["key"]: v for v in r["configuredValues"]} for r in payload["results"]}


def _materialise_the_graph(defs: dg.Definitions, instance: dg.DagsterInstance, days: list[str]
                           ) -> dict[dg.AssetKey, int]:
    """Every asset of the code location, as production runs them: daily assets day by day, then unpartitioned
    ones, then one partition of any other partitioning. Returns how many materialisations each got."""
    graph = defs.resolve_asset_graph()
    job = defs.resolve_implicit_global_asset_job_def()
    by_kind: dict[str, list[dg.AssetKey]] = {"daily": [], "none": [], "other": []}
    for key in graph.toposorted_asset_keys:
        partitions = graph.get(key).partitions_def
        kind = "none" if partitions is None else "daily" if partitions == daily_partitions else "other"
        by_kind[kind].append(key)
    batches: list[tuple[list[dg.AssetKey], str | None]] = [(by_kind["daily"], day) for day in days]
    batches.append((by_kind["none"], None))
    for key in by_kind["other"]:  # weekly: the week holding the days; candidates: the first one
        held = partitions_holding(graph.get(key).partitions_def, days)
        batches.append(([key], held[-1]))
    for keys, partition in batches:
        if keys:  # the checks of the selected assets run with them
            job.execute_in_process(instance=instance, partition_key=partition, asset_selection=keys,
                                   raise_on_error=False)
    return {key: len(instance.fetch_materializations(key, limit=100).records) for key in graph.get_all_asset_keys()}


@pytest.fixture
def marked_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, marked: Marked) -> Iterator[Project]:
    """A throw-away project whose warehouse URL, with the marker password, comes from the environment only."""
    for name in ("EVAL_PIPELINES_LAKE_DIR", "EVAL_PIPELINES_LANDING_DIR", "EVAL_PIPELINES_SOURCE_URL"):
        monkeypatch.delenv(name, raising=False)
    project = make_project(tmp_path)
    monkeypatch.setenv("EVAL_PIPELINES_CONFIG", str(project.config_path))
    monkeypatch.setenv(WAREHOUSE_URL_ENV, marked.url)
    yield project


def test_warehouse_password_never_reaches_events_logs_files_or_the_ui(
        marked_project: Project, marked: Marked, tmp_path: Path, capfd: pytest.CaptureFixture[str]):
    from eval_pipelines.definitions import build_definitions

    today = datetime.now(UTC).date()
    summary = generate_logs(marked_project.landing_dir, days=2, events_per_day=300, seed=3,
                            start_date=today - timedelta(days=2))
    days = sorted(summary.per_day)
    defs = build_definitions()
    instance_dir = tmp_path / "dagster_home"
    instance_dir.mkdir()
    with dg.DagsterInstance.local_temp(str(instance_dir)) as instance:
        counts = _materialise_the_graph(defs, instance, days)
        # The assets really ran against the password-protected warehouse (not skipped, not SQLite).
        assert all(counts.values()), {k.to_user_string(): n for k, n in counts.items() if not n}
        engine = sa.create_engine(marked.url, poolclass=sa.pool.NullPool)
        with engine.connect() as connection:
            assert "ingestion_batches" in sa.inspect(connection).get_table_names()
        engine.dispose()

        assert _scan_event_log(instance, marked.secret) == []
        with ui_request_context(instance, tmp_path) as context:
            resources = _resource_config(context)
            runs = execute_dagster_graphql(context, RUNS_QUERY).data
        assert resources["warehouse"]["url"]["type"] == "ENV_VAR", resources["warehouse"]
        assert resources["warehouse"]["url"]["value"] == WAREHOUSE_URL_ENV
        assert not _leaks(json.dumps(resources), marked.secret)
        assert not _leaks(json.dumps(runs), marked.secret)

    compute_logs = list(instance_dir.rglob("compute_logs/*"))
    assert compute_logs, "no captured step logs to search: the instance did not capture stdout/stderr"
    assert _scan_files(instance_dir, marked.secret) == []  # event DBs, captured logs, run storage
    assert _scan_files(tmp_path / "lake", marked.secret) == []  # Parquet, HTML reports
    console = capfd.readouterr()
    assert not _leaks(console.out + console.err, marked.secret)


def _failure_text(instance: dg.DagsterInstance) -> str:
    """All failure events of the instance's runs, serialised (message, error, cause chain, stack)."""
    return "\n".join(serialize_value(record) for run in instance.get_runs() for record in instance.all_logs(
        run.run_id, of_type={dg.DagsterEventType.STEP_FAILURE, dg.DagsterEventType.RUN_FAILURE}))


def _bad_urls(marked: Marked) -> dict[str, str]:
    return {
        "nothing listens on the port": postgres_url(marked.server, marked.role, marked.secret, marked.database)
        .replace(f":{marked.server.port}/", f":{free_port()}/"),
        "the server rejects the password": postgres_url(marked.server, marked.role, f"wrong-{marked.secret}",
                                                        marked.database),
        "the database does not exist": postgres_url(marked.server, marked.role, marked.secret, "no_such_db"),
    }


@pytest.mark.parametrize("case", ["nothing listens on the port", "the server rejects the password",
                                  "the database does not exist"])
def test_connection_errors_do_not_carry_the_password(case: str, marked_project: Project, marked: Marked,
                                                     monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                     capfd: pytest.CaptureFixture[str]):
    from eval_pipelines.definitions import build_definitions

    url = _bad_urls(marked)[case]
    monkeypatch.setenv(WAREHOUSE_URL_ENV, url)
    secret = marked.secret
    # The resource on its own: what a CLI or a notebook would print.
    with pytest.raises(sa.exc.OperationalError) as raised, WarehouseResource(url=url).engine().connect():
        pass
    assert not _leaks(str(raised.value), secret) and not _leaks(repr(raised.value), secret)

    # Through Dagster: every asset that writes the warehouse and needs no upstream data fails with a recorded error.
    defs = build_definitions()
    graph = defs.resolve_asset_graph()
    writers = [k for k in graph.toposorted_asset_keys if not graph.get(k).parent_keys
               and "warehouse" in defs.resolve_assets_def(k).required_resource_keys]
    assert writers, "no root asset writes the warehouse; pick another asset to exercise the connection"
    (tmp_path / "dagster_home").mkdir()
    with dg.DagsterInstance.local_temp(str(tmp_path / "dagster_home")) as instance:
        result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
            instance=instance, asset_selection=writers, raise_on_error=False)
        assert not result.success
        failures = _failure_text(instance)
        assert "OperationalError" in failures  # the real connection error is what the user sees...
        assert not _leaks(failures, secret)  # ...without the password
        assert _scan_event_log(instance, secret) == []
    assert _scan_files(tmp_path / "dagster_home", secret) == []
    console = capfd.readouterr()
    assert not _leaks(console.out + console.err, secret)


@pytest.mark.parametrize(("path", "env_name"), [(("storage", "warehouse_url"), WAREHOUSE_URL_ENV),
                                                (("source", "sql", "url"), "EVAL_PIPELINES_SOURCE_URL")])
def test_a_password_in_the_config_file_is_refused_at_load(path: tuple[str, ...], env_name: str, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch, marked: Marked):
    """Secrets only from the environment: a URL with a password in the file would be committed with it and shown
    as plain resource configuration in the UI, so loading refuses it and names the variable to use instead."""
    from eval_pipelines.config import ConfigError
    from eval_pipelines.definitions import build_definitions

    for name in (WAREHOUSE_URL_ENV, "EVAL_PIPELINES_SOURCE_URL", "EVAL_PIPELINES_LAKE_DIR",
                 "EVAL_PIPELINES_LANDING_DIR"):
        monkeypatch.delenv(name, raising=False)
    project = make_project(tmp_path)
    config = yaml.safe_load(project.config_path.read_text())
    if path[0] == "source":
        config["source"].update(kind="sql", sql={"url": marked.url, "table": "events", "timestamp_column": "ts"})
    else:
        config["storage"]["warehouse_url"] = marked.url
    project.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    monkeypatch.setenv("EVAL_PIPELINES_CONFIG", str(project.config_path))
    with pytest.raises(ConfigError) as refused:
        build_definitions()
    message = str(refused.value)
    assert env_name in message and ".".join(path) in message
    assert not _leaks(message, marked.secret)


def test_deployments_bind_the_webserver_to_loopback_and_keep_secrets_out_of_files():
    makefile = (ROOT / "Makefile").read_text()
    for line in makefile.splitlines():
        if "dagster dev" in line or "dagster-webserver" in line:
            assert "-h 127.0.0.1" in line, line
    compose = yaml.safe_load((ROOT / "deploy" / "docker" / "docker-compose.yaml").read_text())
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), (name, port)  # published on loopback only
        for key, value in _env_items(service.get("environment")):
            if "PASSWORD" in str(key).upper() and value is not None:  # only ${VARIABLE} from the env file
                assert re.fullmatch(r"\$\{[A-Z0-9_]+\}", str(value)), (name, key)
    helm = yaml.safe_load((ROOT / "deploy" / "helm" / "values.yaml").read_text())
    assert helm["dagsterWebserver"]["service"]["type"] == "ClusterIP"
    assert "password" not in json.dumps(helm.get("postgresql", {})).lower()
    shipped = yaml.safe_load((ROOT / "eval_pipelines.yaml").read_text())
    assert sa.make_url(shipped["storage"]["warehouse_url"]).password is None


def _env_items(environment: Any) -> list[tuple[str, Any]]:
    if isinstance(environment, dict):
        return list(environment.items())
    return [tuple(item.split("=", 1)) if "=" in item else (item, None) for item in environment or []]


_MARK = "mark-" + uuid.uuid4().hex


def _config_with(tmp_path: Path, edit) -> Path:
    project = make_project(tmp_path)
    config = yaml.safe_load(project.config_path.read_text())
    edit(config)
    project.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    return project.config_path


# (where, how the file is edited, the fix the message must name). Each one passed the old check: only the user-info
# password of the two database URLs was looked at.
_HIDDEN_CREDENTIALS = {
    "query password in the warehouse URL": (
        "storage.warehouse_url",
        lambda c: c["storage"].update(warehouse_url=f"postgresql://bi@db.example/warehouse?password={_MARK}"),
        "EVAL_PIPELINES_WAREHOUSE_URL"),
    "key:secret in an S3 lake_dir": (
        "storage.lake_dir", lambda c: c["storage"].update(lake_dir=f"s3://AKIAEXAMPLE:{_MARK}@bucket/lake"),
        "AWS_SECRET_ACCESS_KEY"),
    "a presigned landing URL": (
        "source.landing_dir",
        lambda c: c["source"].update(landing_dir=f"https://bucket.example/landing?X-Amz-Signature={_MARK}"),
        "AWS_SECRET_ACCESS_KEY"),
    "a token in any other string of the file": (
        "scoring.candidates.0.description",
        lambda c: c["scoring"]["candidates"][0].update(description=f"https://api.example/v1?token={_MARK}"),
        "${NAME}"),
}


@pytest.mark.parametrize("case", list(_HIDDEN_CREDENTIALS))
def test_credentials_anywhere_in_the_file_are_refused_masked(case: str, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch):
    from eval_pipelines.config import ConfigError, load_settings

    for name in (WAREHOUSE_URL_ENV, "EVAL_PIPELINES_SOURCE_URL", "EVAL_PIPELINES_LAKE_DIR",
                 "EVAL_PIPELINES_LANDING_DIR"):
        monkeypatch.delenv(name, raising=False)
    key_path, edit, fix = _HIDDEN_CREDENTIALS[case]
    with pytest.raises(ConfigError) as refused:
        load_settings(_config_with(tmp_path, edit))
    message = str(refused.value)
    assert f"  - {key_path}: " in message and fix in message and "***" in message
    assert _MARK not in message


def test_a_lake_dir_with_credentials_is_refused_from_the_environment_too(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch):
    """The lake location is recorded as metadata (dagster/uri) and resource config: no credentials, wherever from."""
    from eval_pipelines.config import ConfigError, load_settings

    config_path = _config_with(tmp_path, lambda c: None)
    monkeypatch.setenv("EVAL_PIPELINES_LAKE_DIR", f"s3://AKIAEXAMPLE:{_MARK}@bucket/lake")
    with pytest.raises(ConfigError, match="EVAL_PIPELINES_LAKE_DIR") as refused:
        load_settings(config_path)
    assert _MARK not in str(refused.value) and "storage.lake_dir" in str(refused.value)


def test_placeholders_and_certificate_paths_are_not_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from eval_pipelines.config import load_settings

    monkeypatch.delenv(WAREHOUSE_URL_ENV, raising=False)
    settings = load_settings(_config_with(tmp_path, lambda c: (
        c["storage"].update(warehouse_url="postgresql://bi@db.example/w?sslmode=require&sslkey=/etc/bi/key.pem"),
        c["scoring"]["candidates"][0].update(description="https://api.example/v1?token=${API_TOKEN}"))))
    assert "sslkey" in settings.storage.warehouse_url


@pytest.mark.parametrize("url", [f"postgresql://bi:{_MARK}@db.example/w",
                                 f"postgresql://bi@db.example/w?password={_MARK}&sslmode=require",
                                 f"postgresql+psycopg2://bi@db.example/w?sslpassword={_MARK}",
                                 f"s3://AKIAEXAMPLE:{_MARK}@bucket/lake?token={_MARK}"])
def test_safe_url_masks_user_info_and_query_secrets(url: str):
    from eval_pipelines.warehouse.core import safe_url

    shown = safe_url(url)
    assert _MARK not in shown
    assert "db.example" in shown or "bucket" in shown  # still says where
    if "sslmode" in url:
        assert "sslmode=require" in shown
