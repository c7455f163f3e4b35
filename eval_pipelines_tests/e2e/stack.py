"""The production profile as separate processes: the code server, the daemon and the webserver on real PostgreSQL.

Why separate processes and not ``dagster dev``: production runs them apart (deploy/docker, deploy/helm), and only
then do we exercise what can break there: the gRPC workspace (``deploy/workspace.yaml``), storage shared through
PostgreSQL (``deploy/dagster.yaml`` verbatim), the queued run coordinator and the daemon's sensor and automation
loops. Every process starts in its own session (process group), so tearing down also ends the run workers it
spawned; :func:`production_stack` tears down in a ``finally``, also when start-up or a test fails.

The Dagster storage and the warehouse belong to a login role whose password is a fresh marker string and is checked
by the server (scram-sha-256 for that role), so a leak of the credential can be searched for literally.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from eval_pipelines_tests.postgres_server import PostgresServer

REPO_ROOT = Path(__file__).resolve().parents[2]
DEPLOY = REPO_ROOT / "deploy"
ARTIFACTS = REPO_ROOT / "test-artifacts"
LOCATION_NAME = "eval_pipelines"
# Variables of the developer's shell that would point the stack at their own files.
_FOREIGN_ENV = ("EVAL_PIPELINES_CONFIG", "EVAL_PIPELINES_WAREHOUSE_URL", "EVAL_PIPELINES_LAKE_DIR",
                "EVAL_PIPELINES_LANDING_DIR", "EVAL_PIPELINES_SOURCE_URL", "DAGSTER_HOME")

T = TypeVar("T")


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (a race with other programs is possible but rare)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def script(name: str) -> str:
    """A console script of this interpreter's environment (the venv's ``dagster``, not one found elsewhere)."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"{name} is not installed beside {sys.executable} nor on PATH")
    return found


# ---------------------------------------------------------------------------------------------------------------
# Processes
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class Service:
    """A long-running process in its own process group, its output in ``log_path``."""

    name: str
    process: subprocess.Popen
    log_path: Path

    def running(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, chars: int = 4000) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return text[-chars:]

    def stop(self, grace_seconds: float = 20.0) -> None:
        """SIGTERM to the whole group (the process and what it spawned, e.g. run workers), SIGKILL what is left."""
        group = self.process.pid  # start_new_session: the leader's pid is the group id
        _signal_group(group, signal.SIGTERM)
        deadline = time.monotonic() + grace_seconds
        while (self.running() or _group_alive(group)) and time.monotonic() < deadline:
            time.sleep(0.2)
        _signal_group(group, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)


def _signal_group(group: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(group, sig)


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def start_service(name: str, argv: list[str], env: Mapping[str, str], cwd: Path, log_dir: Path) -> Service:
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    with log_path.open("wb") as log:  # the child keeps its own descriptor
        process = subprocess.Popen(argv, env=dict(env), cwd=cwd, stdin=subprocess.DEVNULL, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    return Service(name, process, log_path)


def wait_for(check: Callable[[], T | None], timeout: float, what: str, interval: float = 1.0,
             services: tuple[Service, ...] = (), progress: Callable[[], str] | None = None) -> T:
    """Poll ``check`` until it returns something other than None/False; fail (with the services' logs) when a
    service died or ``timeout`` seconds passed. Bounded always: a hung pipeline fails the test, never CI's clock."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        for service in services:
            if not service.running():
                raise AssertionError(f"{service.name} exited ({service.process.returncode}) while waiting for "
                                     f"{what}:\n{service.log_tail()}")
        try:
            value = check()
            last_error = None
        except (OSError, ValueError) as error:  # a server still starting: refused connections, empty answers
            value, last_error = None, error
        if value is not None and value is not False:
            return value
        if time.monotonic() >= deadline:
            detail = f"\nlast error: {last_error!r}" if last_error else ""
            state = f"\nstate: {progress()}" if progress else ""
            logs = "".join(f"\n--- {s.name} ({s.log_path}) ---\n{s.log_tail(2500)}" for s in services)
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}{detail}{state}{logs}")
        time.sleep(interval)


# ---------------------------------------------------------------------------------------------------------------
# HTTP / GraphQL
# ---------------------------------------------------------------------------------------------------------------


def graphql(base_url: str, query: str, variables: Mapping[str, Any] | None = None, timeout: float = 60) -> dict:
    """POST a GraphQL query to the webserver; returns ``data`` and fails on GraphQL errors."""
    body = json.dumps({"query": query, "variables": dict(variables or {})}).encode()
    request = urllib.request.Request(f"{base_url}/graphql", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            payload = json.loads(response.read())
    except urllib.error.HTTPError as error:  # GraphQL errors come back as 4xx/5xx with the JSON body
        payload = json.loads(error.read() or b"{}")
        payload.setdefault("errors", [f"HTTP {error.code}"])
    if payload.get("errors"):
        raise AssertionError(f"GraphQL errors: {payload['errors']}")
    return payload["data"]


def http_get(url: str, timeout: float = 10) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")


LOCATION_QUERY = """
query Location {
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries {
        name
        loadStatus
        locationOrLoadError { __typename ... on PythonError { message } }
      }
    }
  }
}
"""

DAEMON_QUERY = """
query Daemons {
  instance { daemonHealth { allDaemonStatuses { daemonType required healthy } } }
}
"""


# ---------------------------------------------------------------------------------------------------------------
# PostgreSQL: a login role whose password the server really checks
# ---------------------------------------------------------------------------------------------------------------


def create_password_role(server: PostgresServer, role: str, password: str, databases: tuple[str, ...]) -> None:
    """Create ``role`` with ``password`` owning fresh ``databases``, and make the server demand that password.

    The fixture's cluster trusts every local connection; a ``scram-sha-256`` line for this role alone, put first in
    pg_hba.conf (first match wins), makes the password matter for it without touching other tests' connections.
    """
    import psycopg
    from psycopg import sql

    with psycopg.connect(host="127.0.0.1", port=server.port, user="postgres", dbname="postgres",
                         autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
            sql.Identifier(role), sql.Literal(password)))
        for database in databases:
            connection.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(database), sql.Identifier(role)))
        hba = server.data / "pg_hba.conf"
        rule = f"host all {role} 127.0.0.1/32 scram-sha-256\n"
        hba.write_text(rule + hba.read_text())
        connection.execute("SELECT pg_reload_conf()")


def postgres_url(server: PostgresServer, role: str, password: str, database: str) -> str:
    return f"postgresql+psycopg://{role}:{password}@127.0.0.1:{server.port}/{database}"


# ---------------------------------------------------------------------------------------------------------------
# The stack
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class ProductionStack:
    """Everything a test needs to drive and inspect the running production profile."""

    root: Path
    dagster_home: Path
    config_path: Path
    workspace_path: Path
    landing_dir: Path
    lake_dir: Path
    warehouse_url: str
    secret: str
    webserver_url: str
    env: dict[str, str]
    services: list[Service] = field(default_factory=list)

    @property
    def instance_env(self) -> dict[str, str]:
        """What the test process needs in ``os.environ`` to open the same instance (deploy/dagster.yaml)."""
        return {k: v for k, v in self.env.items() if k.startswith("DAGSTER_")}

    def graphql(self, query: str, variables: Mapping[str, Any] | None = None) -> dict:
        return graphql(self.webserver_url, query, variables)

    def service(self, name: str) -> Service:
        return next(s for s in self.services if s.name == name)


def write_project_config(root: Path) -> tuple[Path, Path, Path]:
    """A temp copy of the shipped config with its own landing and lake folders; (config, landing, lake)."""
    config = yaml.safe_load((REPO_ROOT / "eval_pipelines.yaml").read_text())
    landing, lake = root / "landing", root / "lake"
    landing.mkdir(parents=True)
    config["source"]["landing_dir"] = str(landing)
    # The warehouse URL carries the password: it comes from the environment only, never from this file.
    config["storage"] = {"lake_dir": str(lake), "warehouse_url": "sqlite:///unused-warehouse-url-comes-from-env.db"}
    # The review loop's outbox and inbox stay in the temp project (not the repository's data/).
    config["review"] = {**config.get("review", {}), "outbox_dir": str(root / "review" / "outbox"),
                        "inbox_dir": str(root / "review" / "inbox")}
    path = root / "eval_pipelines.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path, landing, lake


def write_workspace(root: Path, port: int) -> Path:
    """deploy/workspace.yaml with its fixed port 4000 swapped for a free one (host stays an env var)."""
    workspace = yaml.safe_load((DEPLOY / "workspace.yaml").read_text())
    (entry,) = workspace["load_from"]
    assert entry["grpc_server"]["port"] == 4000, "deploy/workspace.yaml changed shape; update this helper"
    entry["grpc_server"]["port"] = port
    path = root / "workspace.yaml"
    path.write_text(yaml.safe_dump(workspace, sort_keys=False))
    return path


def stack_env(extra: Mapping[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _FOREIGN_ENV and not k.startswith("DAGSTER_PG_")}
    # Run workers are started as `dagster api execute_run` by the code server: the venv's scripts come first.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def init_instance_storage(dagster_home: Path, env: Mapping[str, str]) -> None:
    """Create Dagster's schema once, before three processes race to create it at the same moment."""
    code = "import dagster as dg; dg.DagsterInstance.get().dispose()"
    done = subprocess.run([sys.executable, "-c", code], env=dict(env), capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL, check=False)
    assert done.returncode == 0, f"cannot initialise the Dagster instance in {dagster_home}:\n{done.stderr[-3000:]}"


@contextlib.contextmanager
def production_stack(server: PostgresServer, root: Path, log_dir: Path, startup_timeout: float = 180.0,
                     instance_yaml: Path = DEPLOY / "dagster.yaml", extra_env: Mapping[str, str] | None = None
                     ) -> Iterator[ProductionStack]:
    """Start code server, daemon and webserver on ``server``; always stopped (and their groups killed) on exit.

    ``extra_env`` reaches every process (e.g. the alert channel's webhook URL and signing secret)."""
    token = uuid.uuid4().hex[:10]
    role, secret = f"e2e_{token}", f"pw-marker-{uuid.uuid4().hex}"
    storage_db, warehouse_db = f"dagster_{token}", f"warehouse_{token}"
    create_password_role(server, role, secret, (storage_db, warehouse_db))

    dagster_home = root / "dagster_home"
    dagster_home.mkdir(parents=True)
    shutil.copyfile(instance_yaml, dagster_home / "dagster.yaml")  # the production profile, verbatim
    config_path, landing, lake = write_project_config(root)
    grpc_port, web_port = free_port(), free_port()
    workspace = write_workspace(root, grpc_port)
    warehouse_url = postgres_url(server, role, secret, warehouse_db)
    env = stack_env({
        "DAGSTER_HOME": str(dagster_home),
        "DAGSTER_PG_HOST": "127.0.0.1", "DAGSTER_PG_PORT": str(server.port), "DAGSTER_PG_DB": storage_db,
        "DAGSTER_PG_USERNAME": role, "DAGSTER_PG_PASSWORD": secret,
        "EVAL_PIPELINES_CONFIG": str(config_path),
        "EVAL_PIPELINES_WAREHOUSE_URL": warehouse_url,
        "EVAL_PIPELINES_CODE_SERVER_HOST": "127.0.0.1",
        **(extra_env or {}),
    })
    previous_sigterm = _teardown_on_sigterm()
    stack = ProductionStack(root=root, dagster_home=dagster_home, config_path=config_path, workspace_path=workspace,
                            landing_dir=landing, lake_dir=lake, warehouse_url=warehouse_url, secret=secret,
                            webserver_url=f"http://127.0.0.1:{web_port}", env=env)
    try:
        init_instance_storage(dagster_home, env)
        dagster = script("dagster")
        # As deploy/Dockerfile's CMD, on loopback.
        stack.services.append(start_service(
            "code-server", [dagster, "api", "grpc", "--module-name", "eval_pipelines.definitions",
                            "--host", "127.0.0.1", "--port", str(grpc_port), "--location-name", LOCATION_NAME],
            env, root, log_dir))
        wait_for(lambda: _port_open(grpc_port), startup_timeout, "the code server to listen",
                 services=tuple(stack.services))
        stack.services.append(start_service(
            "daemon", [script("dagster-daemon"), "run", "-w", str(workspace)], env, root, log_dir))
        stack.services.append(start_service(
            "webserver", [script("dagster-webserver"), "-h", "127.0.0.1", "-p", str(web_port), "-w", str(workspace)],
            env, root, log_dir))
        services = tuple(stack.services)
        wait_for(lambda: _location_loaded(stack), startup_timeout, "the webserver to load the code location",
                 services=services)
        wait_for(lambda: _daemons_healthy(stack), startup_timeout, "the daemon's sensor and automation loops",
                 services=services, interval=2.0)
        yield stack
    finally:
        for service in reversed(stack.services):
            service.stop()
        if previous_sigterm is not None:
            signal.signal(signal.SIGTERM, previous_sigterm)


def _teardown_on_sigterm() -> Any:
    """Make SIGTERM (a CI time-out, ``kill``) unwind like Ctrl-C, so the finally above still stops the services
    (they live in their own sessions: nothing else would). Returns the previous handler; None off the main thread."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}: tearing down the production stack")

    return signal.signal(signal.SIGTERM, interrupt)


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _location_loaded(stack: ProductionStack) -> bool:
    workspace = stack.graphql(LOCATION_QUERY)["workspaceOrError"]
    entries = {e["name"]: e for e in workspace.get("locationEntries", [])}
    entry = entries.get(LOCATION_NAME)
    if entry is None or entry["loadStatus"] != "LOADED":
        return False
    location = entry["locationOrLoadError"]
    if location["__typename"] == "PythonError":
        raise AssertionError(f"code location failed to load: {location['message']}")
    return location["__typename"] == "RepositoryLocation"


def _daemons_healthy(stack: ProductionStack) -> bool:
    statuses = stack.graphql(DAEMON_QUERY)["instance"]["daemonHealth"]["allDaemonStatuses"]
    wanted = {"SENSOR", "ASSET", "QUEUED_RUN_COORDINATOR"}
    healthy = {s["daemonType"] for s in statuses if s["healthy"]}
    return wanted <= healthy
