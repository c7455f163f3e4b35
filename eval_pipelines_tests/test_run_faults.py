"""Fault injection with real processes: `eval-pipelines materialize` SIGKILLed or SIGTERMed mid-run (issue 15.1).

Before the fix, a SIGKILLed run stayed STARTED holding its `warehouse` slot and the next materialize on the same
DAGSTER_HOME busy-waited forever, ignoring SIGTERM. Each test uses its own DAGSTER_HOME (the repository's
dagster.yaml) and a one-day landing dir of 100 events; about 10-30 s each on two idle cores.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.instance.ref import InstanceRef
from dagster._core.storage.dagster_run import DagsterRunStatus

from eval_pipelines.demo.generator import generate_logs
from eval_pipelines_tests.conftest import make_project

pytestmark = pytest.mark.faults

ROOT = Path(__file__).resolve().parent.parent
DAY = "2026-02-01"
POOL = "warehouse"
# Bounds, not expectations: a loaded CI machine is several times slower. The old code never finished at all.
RUN_STARTS_WITHIN_S = 90.0
COMPLETES_WITHIN_S = 240.0
STOPS_WITHIN_S = 60.0


@dataclass
class Cli:
    config_path: Path
    env: dict[str, str]
    instance: dg.DagsterInstance

    def start(self, *extra: str) -> subprocess.Popen[str]:
        command = [sys.executable, "-m", "eval_pipelines.cli", "--config", str(self.config_path), "materialize",
                   "--checks-advisory", *extra, DAY]
        return subprocess.Popen(command, env=self.env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True)

    def holders(self) -> set[str]:
        return {slot.run_id for slot in self.instance.event_log_storage.get_concurrency_info(POOL).claimed_slots}

    def pending(self) -> set[str]:
        return self.instance.event_log_storage.get_concurrency_info(POOL).pending_run_ids

    def wait_for_a_claimed_slot(self, process: subprocess.Popen[str]) -> str:
        deadline = time.monotonic() + RUN_STARTS_WITHIN_S
        while time.monotonic() < deadline:
            assert process.poll() is None, process.communicate()[0]
            holders = self.holders()
            if holders:
                return holders.pop()
            time.sleep(0.2)
        process.kill()
        pytest.fail(f"no run claimed a {POOL} slot within {RUN_STARTS_WITHIN_S} s")


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[Cli]:
    (tmp_path / "project").mkdir()
    project = make_project(tmp_path / "project")
    generate_logs(project.landing_dir, days=1, events_per_day=100, seed=3, start_date=date.fromisoformat(DAY),
                  files_per_day=1)
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EVAL_PIPELINES_", "DAGSTER_"))}
    env.update(DAGSTER_HOME=str(home), PYTHONPATH=str(ROOT))
    # The test's own view of the instance; opened first so the storage schema exists before any CLI starts.
    instance = dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home)))
    try:
        yield Cli(project.config_path, env, instance)
    finally:
        instance.dispose()


def test_a_sigkilled_run_does_not_wedge_the_next_materialize(cli: Cli):
    first = cli.start()
    killed_run = cli.wait_for_a_claimed_slot(first)
    first.send_signal(signal.SIGKILL)
    first.wait()
    # The state that used to wedge the instance: the dead run is STARTED and still holds the only slot.
    assert cli.instance.get_run_by_id(killed_run).status == DagsterRunStatus.STARTED
    assert cli.holders() == {killed_run}

    started = time.monotonic()
    second = cli.start()
    try:
        output, _ = second.communicate(timeout=COMPLETES_WITHIN_S)
    except subprocess.TimeoutExpired:
        second.kill()
        pytest.fail(f"materialize after a killed run did not finish within {COMPLETES_WITHIN_S} s:\n"
                    + second.communicate()[0][-3000:])
    elapsed = time.monotonic() - started
    assert second.returncode == 0, output[-3000:]
    assert f"recovered: run {killed_run[:8]} (STARTED" in output and "marked failed" in output
    assert f"daily_chain[{DAY}]: run " in output and " ok: " in output  # issue 14: runs are named jobs
    failed = cli.instance.get_run_by_id(killed_run)
    assert failed.status == DagsterRunStatus.FAILURE
    assert cli.holders() == set() and cli.pending() == set()
    print(f"materialize after the kill: {elapsed:.1f} s")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_stops_the_run_cleanly(cli: Cli, signum: signal.Signals):
    process = cli.start()
    run_id = cli.wait_for_a_claimed_slot(process)
    time.sleep(0.5)  # inside the first step
    started = time.monotonic()
    process.send_signal(signum)
    try:
        output, _ = process.communicate(timeout=STOPS_WITHIN_S)
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail(f"{signum.name} did not stop materialize within {STOPS_WITHIN_S} s")
    assert process.returncode == 128 + signum, output[-3000:]
    assert f"stopped by {signum.name}" in output
    assert cli.instance.get_run_by_id(run_id).status == DagsterRunStatus.CANCELED
    assert cli.holders() == set() and cli.pending() == set()
    print(f"{signum.name} to exit: {time.monotonic() - started:.1f} s")
