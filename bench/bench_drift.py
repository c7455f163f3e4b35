"""Drift report speed: the whole report next to a bare scipy loop over the same frames, timed in the same run.

Frames: N reference + N current rows x 14 columns (8 numeric, 6 categorical as pandas' default ``str`` dtype, the
way labeled_cases holds them), built by :func:`eval_pipelines.drift.synthetic.synthetic_frame` with a little drift
in the current frame. The timings alternate the three workloads in one child process on the same frames (so
machine noise hits them alike; medians reported); each peak RSS is measured in a child running that workload alone
(building the frames is not timed but is in the RSS, shown separately).

* ``bare``: ``scipy.stats.ks_2samp`` per numeric column (missing values dropped) and ``chi2_contingency`` per
  categorical column (value counts of both sides aligned into a table): the least a drift check must do.
* ``report``: the whole drift report from the two raw frames (profile the reference, then every test, effect
  size, PSI, Jensen–Shannon, missing share, BH adjustment, verdict and reason; no plots).
* ``daily``: the report against an already stored reference profile, which is what ``drift_report`` does.

Targets: report < 2x bare and peak RSS < 2 GB at 1M + 1M; the same ratio at 5M + 5M.
Usage: python bench/bench_drift.py [--sizes 1000000,5000000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _frames(rows: int) -> tuple:
    from eval_pipelines.drift.synthetic import synthetic_frame

    reference = synthetic_frame(rows, seed=1, categorical_dtype="str")
    current = synthetic_frame(rows, seed=2, categorical_dtype="str", mean_shift={"num_normal": 1.5},
                              share_shift={"cat_channel": (0, 2, 0.03)})
    return reference, current


def _workloads(rows: int) -> dict:
    """The three measured workloads as closures over the same frames (built once, not timed)."""
    import pandas as pd
    from scipy import stats

    from eval_pipelines.drift.monitors import Monitor
    from eval_pipelines.drift.report import compare, compare_frames, profile_frame
    from eval_pipelines.drift.settings import DriftConfig
    from eval_pipelines.drift.synthetic import CATEGORICAL_COLUMNS, NUMERIC_COLUMNS

    reference, current = _frames(rows)
    config = DriftConfig()
    monitors = [Monitor(c, "numeric", c) for c in NUMERIC_COLUMNS] + [
        Monitor(c, "categorical", c) for c in CATEGORICAL_COLUMNS]
    stored = []

    def bare() -> int:
        for column in NUMERIC_COLUMNS:
            stats.ks_2samp(reference[column].dropna().to_numpy(), current[column].dropna().to_numpy())
        for column in CATEGORICAL_COLUMNS:
            table = pd.concat([reference[column].value_counts(), current[column].value_counts()], axis=1).fillna(0)
            stats.chi2_contingency(table.to_numpy().T)
        return len(NUMERIC_COLUMNS) + len(CATEGORICAL_COLUMNS)

    def report() -> int:
        return len(compare_frames(reference, current, monitors, config, with_plots=False).results)

    def daily() -> int:
        if not stored:
            stored.append(profile_frame(reference, monitors, config))  # stored once per window, not per day
        return len(compare(stored[0], current, monitors, config, with_plots=False).results)

    return {"bare": bare, "report": report, "daily": daily}


def timing(rows: int, repeats: int) -> dict:
    """Alternate the workloads in one process (bare, report, daily, bare, ...) so machine noise hits all alike."""
    import numpy as np

    workloads = _workloads(rows)
    workloads["daily"]()  # builds the stored profile outside the timings
    seconds: dict[str, list[float]] = {name: [] for name in workloads}
    checks: dict[str, int] = {}
    for _ in range(repeats):
        for name, work in workloads.items():
            started = time.perf_counter()
            checks[name] = work()
            seconds[name].append(time.perf_counter() - started)
    return {"rows": rows, "median_seconds": {k: float(np.median(v)) for k, v in seconds.items()},
            "all_seconds": seconds, "checks": checks}


def _status_mb(field: str) -> float | None:
    """A memory figure of this process from /proc (Linux), in MB."""
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def peak_rss(name: str, rows: int) -> dict:
    """One workload alone in this process: the RSS of the frames, then the peak RSS while the workload runs.

    The high-water mark is reset after the frames are built (``/proc/self/clear_refs``), so the peak is the
    workload's own (frames included), not the frame generator's; without /proc the lifetime peak is reported.
    """
    import gc

    workloads = _workloads(rows)
    gc.collect()
    frames = _status_mb("VmRSS")
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as handle:
            handle.write("5")  # reset VmHWM to the current RSS
        reset = True
    except OSError:
        reset = False
    workloads[name]()
    peak = _status_mb("VmHWM") if reset else None
    return {"phase": name, "peak_rss_mb": peak if peak is not None else _peak_rss_mb(), "frames_mb": frames or 0.0}


def _child(*arguments: str) -> dict:
    out = subprocess.run([sys.executable, __file__, *arguments], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000000,5000000", help="rows per side, comma-separated")
    parser.add_argument("--repeats", type=int, default=5, help="alternating timed rounds (median reported)")
    parser.add_argument("--timing", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--rss", choices=["bare", "report", "daily"], help=argparse.SUPPRESS)
    parser.add_argument("--rows", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.timing:
        print(json.dumps(timing(args.rows, args.repeats)))
        return
    if args.rss:
        print(json.dumps(peak_rss(args.rss, args.rows)))
        return
    print("drift report vs a bare scipy loop (ks_2samp x 8 numeric, chi2_contingency x 6 categorical) on the same "
          f"frames, alternating, median of {args.repeats}")
    print(f"{'rows/side':>10} {'phase':>7} {'seconds':>8} {'x bare':>7} {'checks':>6} {'peak RSS MB':>12} "
          f"{'frames MB':>11}")
    verdicts = []
    for rows in (int(s) for s in args.sizes.split(",")):
        timed = _child("--timing", "--rows", str(rows), "--repeats", str(args.repeats))
        memory = {name: _child("--rss", name, "--rows", str(rows)) for name in ("bare", "report", "daily")}
        medians = timed["median_seconds"]
        for name in ("bare", "report", "daily"):
            print(f"{rows:>10,} {name:>7} {medians[name]:>8.3f} {medians[name] / medians['bare']:>7.2f} "
                  f"{timed['checks'][name]:>6} {memory[name]['peak_rss_mb']:>12,.0f} "
                  f"{memory[name]['frames_mb']:>11,.0f}")
        ratio = medians["report"] / medians["bare"]
        rss = memory["report"]["peak_rss_mb"]
        ok = ratio < 2 and (rss < 2048 or rows > 1_000_000)
        verdicts.append(f"{rows:,}/side: whole report {ratio:.2f}x the bare loop (target < 2x), daily report "
                        f"{medians['daily'] / medians['bare']:.2f}x; report peak RSS {rss:,.0f} MB"
                        + (" (target < 2,048 MB)" if rows <= 1_000_000 else "") + (": OK" if ok else ": MISSED"))
    print()
    print("\n".join(verdicts))


if __name__ == "__main__":
    main()
