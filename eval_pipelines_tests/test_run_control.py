"""Dead runs are released, waits for a pool slot are reported and bounded, a stopped run ends canceled (issue 15.1).

Fast, in one process, on a real SQLite instance (the ephemeral one has no pools). The same behaviour through the
CLI with real processes, SIGKILL and SIGTERM is in test_run_faults.py.
"""

from __future__ import annotations

import io
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import dagster as dg
import pytest
from dagster._core.storage.dagster_run import DagsterRun, DagsterRunStatus

from eval_pipelines.run_control import (
    HOST_TAG,
    PID_TAG,
    PROCESS_START_TAG,
    RunSupervisor,
    RunWaitTimeout,
    release_dead_runs,
    worker_is_gone,
    worker_tags,
)

POOL = "warehouse"


@pytest.fixture
def instance(tmp_path) -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test(temp_dir=str(tmp_path), overrides={"concurrency": {"pools": {"default_limit": 1}}}
                              ) as test_instance:
        yield test_instance


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # reaped: the pid names no process any more
    return child.pid


def _dead_tags() -> dict[str, str]:
    return {**worker_tags(), PID_TAG: str(_dead_pid())}


def _add_run(instance: dg.DagsterInstance, status: DagsterRunStatus, tags: dict[str, str],
             hold: str | None = POOL) -> str:
    run_id = str(uuid.uuid4())
    instance.add_run(DagsterRun(job_name="some_job", run_id=run_id, status=status, tags=tags))
    if hold:
        if not instance.event_log_storage.get_concurrency_info(hold).slot_count:
            instance.event_log_storage.initialize_concurrency_limit_to_default(hold)
        claim = instance.event_log_storage.claim_concurrency_slot(hold, run_id, "some_step", 0)
        assert claim.is_claimed
    return run_id


def _holders(instance: dg.DagsterInstance, pool: str = POOL) -> set[str]:
    return {slot.run_id for slot in instance.event_log_storage.get_concurrency_info(pool).claimed_slots}


def test_worker_is_gone_only_for_a_vanished_process_on_this_host():
    assert not worker_is_gone(worker_tags())  # this very process
    assert worker_is_gone(_dead_tags())
    assert not worker_is_gone({**_dead_tags(), HOST_TAG: socket.gethostname() + "-elsewhere"})  # cannot see it
    assert not worker_is_gone({HOST_TAG: socket.gethostname()})  # no pid: not ours to judge
    if worker_tags()[PROCESS_START_TAG]:  # Linux: a reused pid (same pid, other start time) is a dead worker
        assert worker_is_gone({**worker_tags(), PROCESS_START_TAG: "1"})


def test_release_fails_runs_whose_process_is_gone_and_frees_their_slots(instance):
    instance.event_log_storage.set_concurrency_slots(POOL, 4)
    dead = _add_run(instance, DagsterRunStatus.STARTED, _dead_tags())
    alive = _add_run(instance, DagsterRunStatus.STARTED, worker_tags())
    launched = _add_run(instance, DagsterRunStatus.STARTED, {})  # by a run launcher: run monitoring's business
    finished = _add_run(instance, DagsterRunStatus.SUCCESS, worker_tags())  # ended, never released its slot
    assert _holders(instance) == {dead, alive, launched, finished}

    actions = release_dead_runs(instance)

    assert instance.get_run_by_id(dead).status == DagsterRunStatus.FAILURE
    assert instance.get_run_by_id(alive).status == DagsterRunStatus.STARTED
    assert instance.get_run_by_id(launched).status == DagsterRunStatus.STARTED
    assert _holders(instance) == {alive, launched}
    assert any(dead[:8] in line and "marked failed" in line for line in actions)
    assert any(finished[:8] in line and "freed" in line for line in actions)
    assert release_dead_runs(instance) == []  # idempotent


def test_wait_releases_a_dead_holder_and_goes_on(instance):
    dead = _add_run(instance, DagsterRunStatus.STARTED, _dead_tags())
    out = io.StringIO()
    started = time.monotonic()
    RunSupervisor(instance, wait_timeout_s=30, out=out).wait_for_pools([POOL])
    assert time.monotonic() - started < 5
    assert _holders(instance) == set()
    assert f"run {dead[:8]}" in out.getvalue() and "marked failed" in out.getvalue()


def test_wait_for_a_live_holder_is_reported_and_gives_up_naming_pool_and_holder(instance):
    holder = _add_run(instance, DagsterRunStatus.STARTED, worker_tags())
    out = io.StringIO()
    supervisor = RunSupervisor(instance, wait_timeout_s=1.5, report_every_s=0.5, out=out)
    started = time.monotonic()
    with pytest.raises(RunWaitTimeout) as raised:
        supervisor.wait_for_pools([POOL])
    assert 1.5 <= time.monotonic() - started < 5
    reports = [line for line in out.getvalue().splitlines() if line.startswith("waiting")]
    assert len(reports) >= 2 and all(f"pool '{POOL}'" in line and holder[:8] in line for line in reports)
    assert f"pool '{POOL}' (limit 1) is held by run {holder[:8]} (STARTED" in str(raised.value)
    assert "--wait-timeout" in str(raised.value)
    assert _holders(instance) == {holder}  # a live holder is never touched


@dg.asset(pool=POOL)
def pooled_asset() -> int:
    return 1


def test_a_run_that_loses_the_race_for_a_slot_times_out_and_ends_canceled(instance):
    """The slot is free when the supervisor looks, then taken before the run claims it: Dagster itself waits
    (busily, ignoring interrupts); the supervisor must still report, time out, cancel the run and leave no claim."""
    holder: list[str] = []

    def launch(tags: dict[str, str]) -> dg.ExecuteInProcessResult:
        holder.append(_add_run(instance, DagsterRunStatus.STARTED, worker_tags()))  # another live process wins
        return dg.materialize([pooled_asset], instance=instance, tags=tags, raise_on_error=False)

    out = io.StringIO()
    supervisor = RunSupervisor(instance, wait_timeout_s=2, report_every_s=1, stop_grace_s=20, out=out)
    started = time.monotonic()
    with pytest.raises(RunWaitTimeout, match=f"pool '{POOL}'"):
        supervisor.run(launch, [POOL])
    assert time.monotonic() - started < 15
    (run,) = [r for r in instance.get_runs() if r.run_id not in holder]
    assert run.status == DagsterRunStatus.CANCELED  # Dagster's own interruption path, not a forced mark
    info = instance.event_log_storage.get_concurrency_info(POOL)
    assert run.run_id not in {slot.run_id for slot in info.claimed_slots} | info.pending_run_ids
    assert not supervisor.abandoned_worker
    assert "waiting" in out.getvalue() and holder[0][:8] in out.getvalue()


def test_a_run_with_a_free_slot_runs_tagged_with_its_process(instance):
    result = RunSupervisor(instance).run(
        lambda tags: dg.materialize([pooled_asset], instance=instance, tags=tags), [POOL])
    assert result.success
    run = instance.get_run_by_id(result.run_id)
    assert run.tags[PID_TAG] == worker_tags()[PID_TAG] and run.tags[HOST_TAG] == socket.gethostname()
    assert _holders(instance) == set()
