"""A real, throw-away PostgreSQL server for the tests (pytest plugin: ``pytest_plugins = [...postgres_server]``).

Why a real server and not a mock: the warehouse contract is "same code on SQLite and PostgreSQL", and only a real
server shows type mapping, transaction isolation and NULL/NaN handling as production will see them.

``postgres_url`` (session scope) finds the Debian binaries under ``/usr/lib/postgresql/<version>/bin``, installing
the ``postgresql`` package with apt-get when they are missing (as root), creates a cluster in a temporary folder
with ``initdb`` (as the ``postgres`` user when we are root: initdb refuses to run as root), starts it with
``pg_ctl`` on 127.0.0.1 and a free port with durability switched off (a test server, fast to start and write),
creates a database and yields its ``postgresql+psycopg://`` URL. The server is always stopped at the end.
``postgres_database`` (function scope) gives each test its own fresh database on that server.

When PostgreSQL cannot be installed the tests skip with the reason, except when ``$CI`` is set: CI fails instead,
so a green CI run always means the PostgreSQL half really ran.
"""

from __future__ import annotations

import glob
import os
import shlex
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

_PG_GLOB = "/usr/lib/postgresql/*/bin"
_INSTALL_TIMEOUT_S = 900


def _unavailable(reason: str) -> None:
    """Skip, or fail under CI: CI must never go green with the PostgreSQL half silently skipped."""
    if os.environ.get("CI"):
        pytest.fail(f"PostgreSQL test server unavailable under CI: {reason}", pytrace=False)
    pytest.skip(f"PostgreSQL test server unavailable: {reason}")


def _apt_install(package: str) -> str | None:
    """Install a Debian package; returns None on success or the reason it could not be installed."""
    if shutil.which("apt-get") is None:
        return "apt-get not found (not a Debian-like system)"
    if os.geteuid() != 0:
        return f"not root, cannot apt-get install {package}; install it by hand"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update"], ["apt-get", "install", "-y", "--no-install-recommends", package]):
        try:
            done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=_INSTALL_TIMEOUT_S,
                                  check=False, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired) as error:
            return f"{' '.join(command)} failed: {error}"
        if done.returncode != 0:
            return f"{' '.join(command)} exited {done.returncode}: {done.stderr.strip()[-500:]}"
    return None


def ensure_debian_tool(binary: str, package: str) -> str:
    """Path of ``binary`` on PATH, installing Debian ``package`` when it is missing; skips (fails under CI)."""
    found = shutil.which(binary)
    if found:
        return found
    reason = _apt_install(package)
    found = shutil.which(binary)
    if found is None:
        _unavailable(reason or f"{package} installed but {binary} is still not on PATH")
    assert found is not None
    return found


def postgres_bin_dir(install: bool = True) -> Path | None:
    """The newest ``/usr/lib/postgresql/<version>/bin`` holding initdb and pg_ctl, installing if asked."""

    def newest() -> Path | None:
        candidates = [Path(p) for p in glob.glob(_PG_GLOB) if (Path(p) / "initdb").exists()
                      and (Path(p) / "pg_ctl").exists()]
        return max(candidates, key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0, default=None)

    found = newest()
    if found is None and install:
        reason = _apt_install("postgresql")
        found = newest()
        if found is None:
            _unavailable(reason or "package postgresql installed but no initdb/pg_ctl under /usr/lib/postgresql")
    return found


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _as_server_user(command: list[str]) -> list[str]:
    """``command`` run as the ``postgres`` user when we are root (initdb and postgres refuse to run as root)."""
    if os.geteuid() != 0:
        return command
    if shutil.which("runuser"):
        return ["runuser", "-u", "postgres", "--", *command]
    return ["su", "postgres", "-s", "/bin/sh", "-c", shlex.join(command)]


def _run(command: list[str], timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(_as_server_user(command), capture_output=True, text=True, check=False,
                          stdin=subprocess.DEVNULL, timeout=timeout)


class PostgresServer:
    """One cluster in a temporary folder; ``start`` / ``stop`` and database creation."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.root = Path(tempfile.mkdtemp(prefix="eval_pipelines_pg_"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = 0
        if os.geteuid() == 0:
            shutil.chown(self.root, user="postgres", group=None)
        self.root.chmod(0o700)

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def _tool(self, name: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return _run([str(self.bin_dir / name), *args], timeout=timeout)

    def start(self) -> None:
        done = self._tool("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                          "--locale=C", "--no-sync", "--no-instructions")
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed ({done.returncode}): {done.stderr.strip()[-800:]}")
        last_error = ""
        for _attempt in range(3):  # a port picked free can be taken before the server binds it
            self.port = _free_port()
            options = (f"-h 127.0.0.1 -p {self.port} -k {self.root} -c fsync=off -c synchronous_commit=off "
                       "-c full_page_writes=off -c max_connections=50")
            done = self._tool("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "30",
                              "start", timeout=60)
            if done.returncode == 0:
                return
            last_error = done.stderr.strip() + "\n" + (self.log.read_text()[-800:] if self.log.exists() else "")
        raise RuntimeError(f"pg_ctl start failed: {last_error}")

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=self.port, user="postgres", dbname="postgres",
                             autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        if self.data.exists():
            self._tool("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop", timeout=60)
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """The running test server (session scope); prefer ``postgres_url`` or ``postgres_database``."""
    bin_dir = postgres_bin_dir()
    assert bin_dir is not None
    try:
        server = PostgresServer(bin_dir)
    except (LookupError, OSError) as error:  # e.g. root without a `postgres` user to run the server as
        _unavailable(f"cannot prepare a cluster directory for the postgres user: {error}")
    try:
        try:
            server.start()
        except (RuntimeError, OSError, subprocess.TimeoutExpired) as error:
            _unavailable(str(error))
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres_url(postgres_server: PostgresServer) -> str:
    """``postgresql+psycopg://`` URL of a database on a real local PostgreSQL server, shared by the session."""
    return postgres_server.create_database("eval_pipelines_test")


@pytest.fixture
def postgres_database(postgres_server: PostgresServer) -> str:
    """URL of a brand-new, empty database for one test (the server is shared, the data is not)."""
    return postgres_server.create_database(f"t_{uuid.uuid4().hex[:12]}")


def psql_path(server: PostgresServer) -> str:
    """``psql`` of the same installation (the client tools ship with the server package)."""
    candidate = server.bin_dir / "psql"
    return str(candidate) if candidate.exists() else ensure_debian_tool("psql", "postgresql-client")
