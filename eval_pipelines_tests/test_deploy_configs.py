"""The production profile's configs, validated against Dagster's own schemas (no cluster or Docker engine needed)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from dagster._config import process_config
from dagster._core.instance.config import dagster_instance_config
from dagster._core.run_coordinator import QueuedRunCoordinator
from dagster._core.workspace.config_schema import process_workspace_config
from dagster_docker import DockerRunLauncher
from dagster_k8s import K8sRunLauncher
from dagster_postgres import DagsterPostgresStorage

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
PG_ENV = {"DAGSTER_PG_HOST": "127.0.0.1", "DAGSTER_PG_PORT": "5432", "DAGSTER_PG_DB": "dagster",
          "DAGSTER_PG_USERNAME": "dagster", "DAGSTER_PG_PASSWORD": "not-a-secret"}


def _valid(schema: Any, value: Any) -> None:
    result = process_config(schema, value)
    assert result.success, [error.message for error in result.errors]


def _instance_config(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    for name, value in PG_ENV.items():
        monkeypatch.setenv(name, value)
    (tmp_path / "dagster.yaml").write_text(path.read_text())
    config, _ = dagster_instance_config(str(tmp_path))
    return config


@pytest.mark.parametrize("path, launcher", [(DEPLOY / "dagster.yaml", None),
                                            (DEPLOY / "docker" / "dagster.yaml", DockerRunLauncher)])
def test_instance_configs_validate(path: Path, launcher, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    config = _instance_config(path, tmp_path, monkeypatch)
    storage = process_config(DagsterPostgresStorage.config_type(), config["storage"]["postgres"])
    assert storage.success, [error.message for error in storage.errors]
    assert storage.value["postgres_db"]["hostname"] == "127.0.0.1"  # resolved from the environment
    assert storage.value["postgres_db"]["port"] == 5432
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    runs = config["concurrency"]["runs"]
    _valid(QueuedRunCoordinator.config_type(), runs)  # the same limits the coordinator enforces
    assert runs["max_concurrent_runs"] > 0 and runs["tag_concurrency_limits"]
    assert config["run_retries"]["enabled"] is True
    if launcher is not None:
        assert config["run_launcher"]["class"] == launcher.__name__
        _valid(launcher.config_type(), config["run_launcher"]["config"])


def test_instance_config_holds_no_secret_literals():
    for path in (DEPLOY / "dagster.yaml", DEPLOY / "docker" / "dagster.yaml"):
        postgres = yaml.safe_load(path.read_text())["storage"]["postgres"]["postgres_db"]
        connection = {k: v for k, v in postgres.items() if k != "scheme"}  # the driver name is no secret
        assert set(connection) == {"hostname", "port", "db_name", "username", "password"}, path
        assert all(isinstance(value, dict) and set(value) == {"env"} for value in connection.values()), path
        assert postgres["scheme"] == "postgresql+psycopg2", path


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _snake_keys(value: Any, keep: frozenset[str] = frozenset()) -> Any:
    """The Helm chart renders its camelCase values into the snake_case dagster.yaml the classes validate."""
    if isinstance(value, dict):
        return {(k if k in keep else _snake(k)): (v if k in keep else _snake_keys(v, keep)) for k, v in value.items()}
    if isinstance(value, list):
        return [_snake_keys(v, keep) for v in value]
    return value


def test_helm_values_match_the_run_launcher_and_coordinator_schemas():
    values = yaml.safe_load((DEPLOY / "helm" / "values.yaml").read_text())
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    k8s = values["runLauncher"]["config"]["k8sRunLauncher"]
    launcher_config = {
        "env_secrets": [s["name"] for s in k8s["envSecrets"]],
        "env_vars": k8s["envVars"],
        "volumes": k8s["volumes"],
        "volume_mounts": _snake_keys(k8s["volumeMounts"]),
        "run_k8s_config": {"container_config": k8s["runK8sConfig"]["containerConfig"]},
        "instance_config_map": "dagster-instance",
        "service_account_name": "dagster",
        "postgres_password_secret": values["global"]["postgresqlSecretName"],
    }
    _valid(K8sRunLauncher.config_type(), launcher_config)
    coordinator = values["dagsterDaemon"]["runCoordinator"]
    assert coordinator["type"] == "QueuedRunCoordinator"
    _valid(QueuedRunCoordinator.config_type(), _snake_keys(coordinator["config"]["queuedRunCoordinator"],
                                                           keep=frozenset({"applyLimitPerUniqueValue"})))
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    assert deployment["dagsterApiGrpcArgs"] == ["--module-name", "eval_pipelines.definitions"]
    assert values["dagsterWebserver"]["service"]["type"] == "ClusterIP"
    assert values["postgresql"]["enabled"] is False and "postgresqlPassword" not in values["postgresql"]


@pytest.mark.parametrize("path", [ROOT / "workspace.yaml", DEPLOY / "workspace.yaml"])
def test_workspaces_validate(path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("EVAL_PIPELINES_CODE_SERVER_HOST", "code")
    result = process_workspace_config(yaml.safe_load(path.read_text()))
    assert result.success, [error.message for error in result.errors]


def test_dockerfile_and_compose_refer_to_real_things():
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    for line in dockerfile.splitlines():
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                assert (ROOT / source).exists(), source
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert "python:3.11" in dockerfile and requires == ">=3.11"
    assert '"eval_pipelines.definitions"' in dockerfile and "USER dagster" in dockerfile
    compose = yaml.safe_load((DEPLOY / "docker" / "docker-compose.yaml").read_text())
    assert set(compose["services"]) == {"postgres", "code", "webserver", "daemon"}
    assert compose["services"]["webserver"]["ports"] == ["127.0.0.1:3000:3000"]


def test_every_profile_monitors_runs_and_frees_the_slots_of_ended_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A crashed run worker never releases its pool slots; only the daemon's run monitoring frees them (issue 15)."""
    for path in (ROOT / "dagster.yaml", DEPLOY / "dagster.yaml", DEPLOY / "docker" / "dagster.yaml"):
        monitoring = _instance_config(path, tmp_path, monkeypatch)["run_monitoring"]
        assert monitoring["enabled"] is True, path
        assert 0 < monitoring["free_slots_after_run_end_seconds"] <= 300, path
    helm = yaml.safe_load((DEPLOY / "helm" / "values.yaml").read_text())["dagsterDaemon"]["runMonitoring"]
    assert helm["enabled"] is True and 0 < helm["freeSlotsAfterRunEndSeconds"] <= 300
