"""A real, throw-away Label Studio server for the tests (pytest plugin: ``pytest_plugins = [...label_studio_server]``).

Why a real server: the review loop's contract with Label Studio is its REST API (project and labelling-config
validation, task import, per-task overlap, annotation JSON, token auth), and only the real server shows what it
accepts and answers.

- **Install**: PyPI ``label-studio`` (``LABEL_STUDIO_SPEC``) goes into its *own* virtualenv, because its pins
  (Django, pytz<2023, pyarrow, boto3…) clash with ours. The venv lives at ``$EVAL_PIPELINES_LABEL_STUDIO_VENV`` or
  ``~/.cache/eval_pipelines/label-studio-venv`` and is reused when its marker file names the same spec; an
  unfinished install (no marker) is wiped and redone. A file lock keeps two pytest sessions from installing at
  once. Measured first install: 2 min 41 s wall on the shared 2-core machine (about 1 GB on disk).
- **Migrations**: a fresh Label Studio database needs ~4 min of Django migrations on this machine, so they run once
  per venv into ``<venv>/eval_pipelines-migrated/`` (a migrated, user-less data dir); each session copies it.
- **Start**: a temporary data dir (``LABEL_STUDIO_BASE_DATA_DIR``), the users created as ``label-studio init
  --username/--password/--user-token`` creates them (its own ``_create_user``, all users in one process; the
  first also creates the organisation with ``--enable-legacy-api-token`` so the fixed legacy tokens
  authenticate), then ``label-studio start`` on
  127.0.0.1 and a free port with signup-without-link, analytics and the version check off; ready when ``/health``
  answers and the admin token is accepted. Stopped (process group) and its data dir removed at the end.
- **Tokens**: the users get legacy tokens (``Authorization: Token``); ``personal_access_token`` asks the server for
  a personal access token (a JWT refresh token, Label Studio 1.18+) so both kinds are exercised.

When Label Studio cannot be installed or started the tests skip with the reason, except when ``$CI`` is set: CI
fails instead, so a green CI run always means the Label Studio round trip really ran.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

LABEL_STUDIO_SPEC = "label-studio>=1.23,<1.24"  # the version the client was checked against (1.23.2)
_INSTALL_TIMEOUT_S = 1800
_MIGRATE_TIMEOUT_S = 1200
_INIT_TIMEOUT_S = 600
_START_TIMEOUT_S = 300
_MARKER = ".eval_pipelines-installed"
_TEMPLATE = "eval_pipelines-migrated"

ADMIN = "admin@eval-pipelines.test"
REVIEWERS = ("reviewer.one@eval-pipelines.test", "reviewer.two@eval-pipelines.test")


def _unavailable(reason: str) -> None:
    """Skip, or fail under CI: CI must never go green with the Label Studio round trip silently skipped."""
    if os.environ.get("CI"):
        pytest.fail(f"Label Studio test server unavailable under CI: {reason}", pytrace=False)
    pytest.skip(f"Label Studio test server unavailable: {reason}")


def venv_path() -> Path:
    configured = os.environ.get("EVAL_PIPELINES_LABEL_STUDIO_VENV")
    return Path(configured) if configured else Path.home() / ".cache" / "eval_pipelines" / "label-studio-venv"


def _tail(text: str, lines: int = 25) -> str:
    kept = [line for line in text.splitlines() if not line.startswith("WARNING: Location")]  # pip index noise
    return "\n".join(kept[-lines:])


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _base_python() -> str:
    """The interpreter to build the venv from: ours, outside any venv (``python -m venv`` from a venv works too)."""
    return getattr(sys, "_base_executable", None) or sys.executable


def ensure_label_studio(venv: Path | None = None) -> Path:
    """The venv's python with ``LABEL_STUDIO_SPEC`` installed (installing it the first time); raises RuntimeError."""
    venv = venv or venv_path()
    python = venv / "bin" / "python"
    marker = venv / _MARKER
    if marker.exists() and marker.read_text().strip() == LABEL_STUDIO_SPEC and python.exists():
        return python
    with _locked(venv.parent / (venv.name + ".lock")):
        if marker.exists() and marker.read_text().strip() == LABEL_STUDIO_SPEC and python.exists():
            return python  # another session finished it while we waited
        shutil.rmtree(venv, ignore_errors=True)
        started = time.monotonic()
        for command in ([_base_python(), "-m", "venv", str(venv)],
                        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                         LABEL_STUDIO_SPEC]):
            try:
                done = subprocess.run(command, capture_output=True, text=True, timeout=_INSTALL_TIMEOUT_S,
                                      check=False, stdin=subprocess.DEVNULL)
            except (OSError, subprocess.TimeoutExpired) as error:
                raise RuntimeError(f"{' '.join(command)} failed: {error}") from error
            if done.returncode != 0:
                raise RuntimeError(f"{' '.join(command)} exited {done.returncode}:\n{_tail(done.stderr)}")
        marker.write_text(LABEL_STUDIO_SPEC + "\n")
        print(f"label_studio_server: installed {LABEL_STUDIO_SPEC} into {venv} in "
              f"{time.monotonic() - started:.0f} s", file=sys.stderr)
    return python


def _env(data_dir: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("DJANGO_", "LABEL_STUDIO_", "POSTGRE", "DATABASE_", "VIRTUAL_ENV", "PYTHON"))}
    env.update({
        "LABEL_STUDIO_BASE_DATA_DIR": str(data_dir),
        "DJANGO_DB": "sqlite",  # a throw-away SQLite file inside the data dir
        "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true",
        "COLLECT_ANALYTICS": "false",
        "LATEST_VERSION_CHECK": "false",
        "SENTRY_DSN": "",
        "FRONTEND_SENTRY_DSN": "",
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
    })
    return env


def _label_studio(python: Path, data_dir: Path, *args: str, timeout: float) -> subprocess.CompletedProcess:
    command = [str(python), "-m", "label_studio.server", *args, "--data-dir", str(data_dir)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False,
                              stdin=subprocess.DEVNULL, env=_env(data_dir), cwd=data_dir)
    except subprocess.TimeoutExpired as error:
        raise RuntimeError(f"label-studio {' '.join(args[:1])} timed out after {timeout:.0f} s") from error
    if done.returncode != 0:
        raise RuntimeError(f"label-studio {' '.join(args[:1])} exited {done.returncode}:\n"
                           f"{_tail(done.stdout)}\n{_tail(done.stderr)}")
    return done


def migrated_template(python: Path) -> Path:
    """A migrated, user-less data dir made once per venv (migrations dominate a fresh start)."""
    template = python.parent.parent / _TEMPLATE
    ready = template / ".ready"
    if ready.exists():
        return template
    with _locked(template.parent / (template.name + ".lock")):
        if ready.exists():
            return template
        shutil.rmtree(template, ignore_errors=True)
        template.mkdir(parents=True)
        started = time.monotonic()
        _label_studio(python, template, "init", "-q", timeout=_MIGRATE_TIMEOUT_S)
        ready.write_text(f"{time.monotonic() - started:.0f} s\n")
    return template


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class LabelStudioServer:
    """One server on a throw-away data dir; ``tokens`` maps each user's email to its legacy API token."""

    python: Path
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="eval_pipelines_ls_")))
    port: int = 0
    tokens: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen | None = None

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "server.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def admin_token(self) -> str:
        return self.tokens[ADMIN]

    def start(self, users: tuple[str, ...] = (ADMIN, *REVIEWERS)) -> None:
        shutil.copytree(migrated_template(self.python), self.data_dir, ignore=shutil.ignore_patterns(".ready"))
        tokens = {email: secrets.token_hex(20) for email in users}  # a legacy token's shape: 40 hex characters
        self._create_users(tokens)
        self.tokens.update(tokens)
        self.port = _free_port()
        log = open(self.log, "w")  # noqa: SIM115 - the server writes to it until stop()
        self.process = subprocess.Popen(
            [str(self.python), "-m", "label_studio.server", "start", "--no-browser", "--internal-host", "127.0.0.1",
             "--port", str(self.port), "--data-dir", str(self.data_dir)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=_env(self.data_dir),
            cwd=self.data_dir, start_new_session=True)
        self._wait_ready()

    def _create_users(self, tokens: dict[str, str]) -> None:
        """What ``label-studio init -q --username --password --user-token`` does, for every user in one process.

        One Django start (~30 s here) instead of one per user; the first user creates the organisation, with
        legacy tokens enabled (``--enable-legacy-api-token``) so the fixed tokens authenticate.
        """
        script = (
            "import json, sys\n"
            "from label_studio import server\n"
            "users = json.loads(sys.argv[1])\n"
            "server._setup_env()\n"
            "server._apply_database_migrations()\n"
            "for index, (email, token) in enumerate(users.items()):\n"
            "    args = server.parse_input_args(['init', '-q', '--username', email, '--password', token[:16],\n"
            "                                    '--user-token', token]\n"
            "                                   + (['--enable-legacy-api-token'] if index == 0 else []))\n"
            "    user = server._create_user(args, {})\n"
            "    assert user.auth_token.key == token, email\n")
        command = [str(self.python), "-c", script, json.dumps(tokens)]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=_INIT_TIMEOUT_S, check=False,
                                  stdin=subprocess.DEVNULL, env=_env(self.data_dir), cwd=self.data_dir)
        except subprocess.TimeoutExpired as error:
            raise RuntimeError(f"creating Label Studio users timed out after {_INIT_TIMEOUT_S} s") from error
        if done.returncode != 0:
            raise RuntimeError(f"creating Label Studio users exited {done.returncode}:\n{_tail(done.stdout)}\n"
                               f"{_tail(done.stderr)}")

    def _log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"label-studio start exited {self.process.returncode}:\n{_tail(self._log_text())}")
            moved = re.findall(r"Trying to start at (\d+)", self._log_text())  # it moves on when the port is taken
            if moved:
                self.port = int(moved[-1])
            try:
                health = requests.get(f"{self.url}/health", timeout=5)
                if health.status_code == 200:
                    whoami = requests.get(f"{self.url}/api/current-user/whoami",
                                          headers={"Authorization": f"Token {self.admin_token}"}, timeout=10)
                    if whoami.status_code == 200:
                        return
                    raise RuntimeError(f"the admin's legacy token was refused: HTTP {whoami.status_code} "
                                       f"{whoami.text[:300]}")
            except requests.RequestException:
                pass
            time.sleep(1.0)
        raise RuntimeError(f"Label Studio did not answer /health on {self.url} within {_START_TIMEOUT_S} s:\n"
                           f"{_tail(self._log_text())}")

    def personal_access_token(self, email: str) -> str:
        """A new personal access token (JWT refresh token) of ``email``, asked of the server with its legacy token."""
        response = requests.post(f"{self.url}/api/token/", headers={"Authorization": f"Token {self.tokens[email]}"},
                                 timeout=30)
        if response.status_code not in (200, 201):
            raise RuntimeError(f"POST /api/token/ answered HTTP {response.status_code}: {response.text[:300]}")
        return str(response.json()["token"])

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=20)
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def label_studio() -> Iterator[LabelStudioServer]:
    """A running Label Studio (session scope) with an admin and two reviewers, each with a legacy API token."""
    started = time.monotonic()
    try:
        python = ensure_label_studio()
    except RuntimeError as error:
        _unavailable(f"cannot install {LABEL_STUDIO_SPEC} into {venv_path()}: {error}")
    server = LabelStudioServer(python)
    try:
        try:
            server.start()
        except (RuntimeError, OSError) as error:
            _unavailable(str(error))
        print(f"label_studio_server: ready on {server.url} after {time.monotonic() - started:.0f} s",
              file=sys.stderr)
        yield server
    finally:
        server.stop()
