"""Runs the CLI launches in-process: survive a killed predecessor, stop cleanly on a signal, never wait blind.

Three failures this module exists for (issue 15, item 1):

* A run whose process is killed (SIGKILL, OOM, segfault) stays STARTED in the instance and keeps the pool slots its
  steps claimed; nothing in Dagster frees them for a run the CLI executed in-process (run monitoring only watches
  runs a run launcher started, and only in the daemon). Every run the CLI starts is therefore tagged with its
  process id, host and process start time (:func:`worker_tags`); before launching, :func:`release_dead_runs`
  marks tagged runs whose process is gone as failed and frees their slots, and frees the slots of runs that
  already finished but still hold some.
* Dagster 1.13's in-process executor busy-waits (100 % CPU; ``interval_to_next_pending_claim_check`` never returns
  a positive interval) while a step waits for a pool slot, and inside ``capture_interrupts`` a SIGTERM/SIGINT that
  arrives outside a step is recorded and then dropped. So :class:`RunSupervisor` waits for a free slot itself
  before it launches (sleeping, printing the pool and its holders every few seconds, giving up after a timeout),
  and runs ``dagster.materialize`` in a worker thread while the main thread keeps the signal handlers.
* On SIGTERM/SIGINT (or the wait timeout) the main thread marks the run CANCELING and raises Dagster's own
  interruption error inside the worker thread, which is what Dagster's signal handler does in a run worker: the
  step in progress fails, the run ends CANCELED and Dagster releases its claims. If the worker does not finish
  within a grace period (stuck in a C call), the run is marked canceled from outside and its slots are freed,
  and the process exits anyway; the database rolls back the transaction it interrupted, exactly as after a kill.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from types import FrameType
from typing import Any, TextIO

import dagster as dg
from dagster._core.errors import DagsterExecutionInterruptedError
from dagster._core.storage.dagster_run import FINISHED_STATUSES, NOT_FINISHED_STATUSES

PID_TAG = "eval_pipelines/pid"
HOST_TAG = "eval_pipelines/host"
PROCESS_START_TAG = "eval_pipelines/process_start"
INVOCATION_TAG = "eval_pipelines/invocation"

DEFAULT_WAIT_TIMEOUT_S = 600.0  # the CLI's --wait-timeout default too
DEFAULT_REPORT_EVERY_S = 5.0
DEFAULT_STOP_GRACE_S = 20.0
_POLL_S = 0.5  # how often the main thread looks at signals and its worker
_WATCH_S = 2.0  # how often it asks the instance whether its run waits for a slot


def _process_start_ticks(pid: int) -> str:
    """The process's start time in clock ticks since boot (Linux ``/proc``), or "" where unknown.

    A pid alone can be reused by an unrelated process after the original died; pid plus start time cannot.
    """
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            text = stat.read()
    except OSError:
        return ""
    # The command name (field 2) may contain spaces and parentheses: count fields after its closing one.
    fields = text[text.rfind(")") + 2:].split()
    return fields[19] if len(fields) > 19 else ""


def worker_tags() -> dict[str, str]:
    """Tags that let a later process tell whether the process executing a run is still alive."""
    pid = os.getpid()
    return {PID_TAG: str(pid), HOST_TAG: socket.gethostname(), PROCESS_START_TAG: _process_start_ticks(pid)}


def worker_is_gone(tags: dict[str, str]) -> bool:
    """True when ``tags`` (from :func:`worker_tags`) name a process on this host that no longer exists.

    False when unsure: another host (its processes cannot be seen from here), no pid tag, or a live process with
    the same pid and start time.
    """
    if tags.get(HOST_TAG) != socket.gethostname() or not tags.get(PID_TAG, "").isdigit():
        return False
    pid = int(tags[PID_TAG])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # exists, owned by someone else
    recorded_start = tags.get(PROCESS_START_TAG, "")
    return bool(recorded_start) and _process_start_ticks(pid) not in ("", recorded_start)


def release_dead_runs(instance: dg.DagsterInstance) -> list[str]:
    """Fail the unfinished runs whose worker process is gone, and free every slot held by a finished run.

    Returns one human-readable line per action. Only runs tagged by :func:`worker_tags` are judged dead: a run
    without the tags (started by a run launcher) is left to Dagster's run monitoring.
    """
    actions: list[str] = []
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=list(NOT_FINISHED_STATUSES))):
        if PID_TAG not in run.tags or not worker_is_gone(run.tags):
            continue
        instance.report_run_failed(
            run, message=f"The process that executed this run (pid {run.tags[PID_TAG]} on {run.tags[HOST_TAG]}) "
                         "is gone (killed or crashed); marked failed by eval-pipelines so its pool slots are freed.")
        actions.append(f"run {run.run_id[:8]} ({run.status.value}, pid {run.tags[PID_TAG]}) had no process any "
                       "more: marked failed")
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return actions
    for run_id in sorted(storage.get_concurrency_run_ids()):
        run = instance.get_run_by_id(run_id)
        if run is None or run.status in FINISHED_STATUSES:
            storage.free_concurrency_slots_for_run(run_id)
            state = "deleted" if run is None else run.status.value
            actions.append(f"freed the pool slots of run {run_id[:8]} ({state})")
    return actions


@dataclass(frozen=True)
class PoolState:
    """One pool as the wait loop sees it: its limit, who holds its slots, and whether one is free."""

    pool: str
    limit: int | None  # None: no limit configured, never blocks
    holders: tuple[str, ...]  # run ids, one per claimed slot

    @property
    def has_free_slot(self) -> bool:
        return self.limit is None or len(self.holders) < self.limit


def pool_states(instance: dg.DagsterInstance, pools: Iterable[str]) -> list[PoolState]:
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return []
    states = []
    for pool in sorted(set(pools)):
        info = storage.get_concurrency_info(pool)
        # slot_count is 0 until a first claim initialises the pool to the instance default (info.limit).
        limit = info.slot_count if info.slot_count else info.limit
        states.append(PoolState(pool, limit, tuple(slot.run_id for slot in info.claimed_slots)))
    return states


def describe_holders(instance: dg.DagsterInstance, state: PoolState) -> str:
    parts = []
    for run_id in state.holders:
        run = instance.get_run_by_id(run_id)
        if run is None:
            parts.append(f"run {run_id[:8]} (deleted)")
            continue
        where = f", pid {run.tags[PID_TAG]} on {run.tags.get(HOST_TAG, '?')}" if PID_TAG in run.tags else ""
        parts.append(f"run {run_id[:8]} ({run.status.value}{where})")
    return ", ".join(parts) or "nobody (the slots are being reassigned)"


class RunWaitTimeout(RuntimeError):
    """No pool slot became free in time; the message names the pool, its holders and what to do."""


class RunStopped(Exception):
    """SIGTERM or SIGINT stopped the command; ``exit_code`` is the conventional 128 + signal number."""

    def __init__(self, signum: int):
        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.exit_code = 128 + signum


def _timeout_message(instance: dg.DagsterInstance, blocked: Sequence[PoolState], waited_s: float) -> str:
    lines = [f"gave up after waiting {waited_s:.0f} s for a pool slot:"]
    for state in blocked:
        lines.append(f"  pool {state.pool!r} (limit {state.limit}) is held by {describe_holders(instance, state)}")
    lines.append("If that run is still working, wait for it or raise --wait-timeout. If it is not (its process "
                 "died on another host, or it was started by the daemon), terminate it in the Dagster UI, which "
                 "frees its slots, then run this command again.")
    return "\n".join(lines)


@dataclass
class RunSupervisor:
    """Launches in-process runs one at a time, with the safety net described in the module docstring."""

    instance: dg.DagsterInstance
    wait_timeout_s: float = DEFAULT_WAIT_TIMEOUT_S
    report_every_s: float = DEFAULT_REPORT_EVERY_S
    stop_grace_s: float = DEFAULT_STOP_GRACE_S
    out: TextIO = field(default_factory=lambda: sys.stderr)
    _stop_signal: int | None = None
    abandoned_worker: bool = False  # a stopped run's thread still running: the caller must exit with os._exit

    def _say(self, message: str) -> None:
        print(message, file=self.out, flush=True)

    # --- signals -------------------------------------------------------------------------------------------
    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if self._stop_signal is not None:
            # A second signal while stopping: the user means it. Skip the grace period.
            self.stop_grace_s = 0.0
        self._stop_signal = signum

    def __enter__(self) -> RunSupervisor:
        self._previous_handlers = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        return self

    def __exit__(self, *_exc: object) -> None:
        for sig, handler in self._previous_handlers.items():
            signal.signal(sig, handler)

    def _check_stop(self) -> None:
        if self._stop_signal is not None:
            raise RunStopped(self._stop_signal)

    # --- waiting for slots before a launch ------------------------------------------------------------------
    def wait_for_pools(self, pools: Iterable[str]) -> None:
        """Return once every pool has a free slot; dead holders are released on every poll."""
        pools = list(pools)
        for action in release_dead_runs(self.instance):
            self._say(f"recovered: {action}")
        started = time.monotonic()
        last_report = started - self.report_every_s  # say it at once the first time
        while True:
            self._check_stop()
            blocked = [state for state in pool_states(self.instance, pools) if not state.has_free_slot]
            if not blocked:
                return
            now = time.monotonic()
            if now - started >= self.wait_timeout_s:
                raise RunWaitTimeout(_timeout_message(self.instance, blocked, now - started))
            if now - last_report >= self.report_every_s:
                last_report = now
                for state in blocked:
                    self._say(f"waiting {now - started:.0f} s for pool {state.pool!r} (limit {state.limit}), held "
                              f"by {describe_holders(self.instance, state)}; giving up after "
                              f"{self.wait_timeout_s:.0f} s")
            time.sleep(_POLL_S)
            for action in release_dead_runs(self.instance):
                self._say(f"recovered: {action}")

    # --- the run itself -------------------------------------------------------------------------------------
    def run(self, launch: Callable[[dict[str, str]], Any], pools: Iterable[str]) -> Any:
        """``launch(tags)`` must start exactly one in-process run with ``tags`` and return its result.

        Raises :class:`RunStopped` on SIGTERM/SIGINT and :class:`RunWaitTimeout` when no slot frees in time;
        in both cases the run (if it started) has ended canceled and holds no slot.
        """
        pools = list(pools)
        self.wait_for_pools(pools)
        invocation = uuid.uuid4().hex
        outcome: dict[str, Any] = {}

        def work() -> None:
            try:
                outcome["result"] = launch({**worker_tags(), INVOCATION_TAG: invocation})
            except BaseException as error:  # reported in the main thread
                outcome["error"] = error

        worker = threading.Thread(target=work, name=f"run-{invocation[:8]}", daemon=True)
        worker.start()
        waiting_since: float | None = None
        last_report = last_watch = 0.0
        run: dg.DagsterRun | None = None
        while worker.is_alive():
            worker.join(_POLL_S)
            if not worker.is_alive():
                break
            if self._stop_signal is not None:
                self._stop(worker, invocation, f"stopped by {signal.Signals(self._stop_signal).name}")
                raise RunStopped(self._stop_signal)
            if time.monotonic() - last_watch < _WATCH_S:
                continue
            last_watch = time.monotonic()
            # Lost a race for a slot to another process after the pre-launch wait: Dagster now waits (busily),
            # so watch it here and apply the same report and timeout.
            run = run or self._find_run(invocation)
            blocked = [] if run is None else [state for state in pool_states(self.instance, pools)
                                              if run.run_id in self._pending_run_ids(state.pool)]
            if not blocked:
                waiting_since = None
                continue
            now = time.monotonic()
            waiting_since = waiting_since if waiting_since is not None else now
            if now - waiting_since >= self.wait_timeout_s:
                message = _timeout_message(self.instance, blocked, now - waiting_since)
                self._stop(worker, invocation, "no pool slot became free in time")
                raise RunWaitTimeout(message)
            if now - last_report >= self.report_every_s:
                last_report = now
                for state in blocked:
                    self._say(f"run {run.run_id[:8]} waiting {now - waiting_since:.0f} s for pool {state.pool!r}, "
                              f"held by {describe_holders(self.instance, state)}")
            for action in release_dead_runs(self.instance):
                self._say(f"recovered: {action}")
        if "error" in outcome:
            raise outcome["error"]
        return outcome["result"]

    def _pending_run_ids(self, pool: str) -> set[str]:
        return self.instance.event_log_storage.get_concurrency_info(pool).pending_run_ids

    def _find_run(self, invocation: str) -> dg.DagsterRun | None:
        runs = self.instance.get_runs(filters=dg.RunsFilter(tags={INVOCATION_TAG: invocation}), limit=1)
        return runs[0] if runs else None

    def _stop(self, worker: threading.Thread, invocation: str, reason: str) -> None:
        """End the worker's run canceled and free its slots, cooperatively first, from outside if it must."""
        run = self._find_run(invocation)
        if run is not None and run.status in NOT_FINISHED_STATUSES:
            self._say(f"run {run.run_id[:8]}: {reason}; stopping it (a second signal skips the "
                      f"{self.stop_grace_s:.0f} s grace period)")
            # CANCELING first: when the interruption below reaches Dagster, it then ends the run CANCELED rather
            # than FAILURE "interrupted unexpectedly".
            self.instance.report_run_canceling(run, message=f"eval-pipelines: {reason}")
        _raise_in_thread(worker, DagsterExecutionInterruptedError)
        deadline = time.monotonic() + self.stop_grace_s
        while worker.is_alive() and time.monotonic() < deadline and self.stop_grace_s > 0:
            worker.join(_POLL_S)
        run = self._find_run(invocation)
        if run is None:
            return
        if run.status in NOT_FINISHED_STATUSES:
            self.instance.report_run_canceled(run, message=f"eval-pipelines: {reason}; the run did not stop within "
                                                           "the grace period and was marked canceled from outside")
        self.instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        self.abandoned_worker = worker.is_alive()
        self._say(f"run {run.run_id[:8]}: {self.instance.get_run_by_id(run.run_id).status.value}, pool slots freed")


def _raise_in_thread(thread: threading.Thread, error_type: type[BaseException]) -> None:
    """Raise ``error_type`` inside ``thread`` at its next Python bytecode (CPython's documented C API).

    The main thread owns the signal handlers (Python delivers signals there only), so this is how a signal reaches
    the run executing in the worker thread, as Dagster's own handler would raise it in a run worker's main thread.
    """
    if thread.ident is None or not thread.is_alive():
        return
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread.ident), ctypes.py_object(error_type))
