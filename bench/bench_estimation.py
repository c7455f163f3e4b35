"""Label-free estimation: speed on a 1M-case day, coverage by simulation, and NannyML's CBPE side by side.

1. Speed: ``estimate_day`` on one day of 1,000,000 cases (5 segments) calibrated on 5,000 trusted labels with
   200 isotonic bootstrap refits, against a baseline measured in the same run: the textbook bootstrap (refit
   sklearn's IsotonicRegression on each resample and predict every case of the day), timed on 10 refits and
   scaled to 200.
2. Coverage: ``--reps`` seeded days per scenario (binary and 4-class top-label): stationary, covariate shift
   both ways, concept drift; realized check on a 10 % sample of each day.
3. Shared dataset: a seeded binary classifier (``eval_pipelines.estimation.synthetic``, P(right | confidence)
   fixed) with a 5,000-case labelled reference period and analysis chunks of 2,000 cases: stationary chunks and
   covariate-shifted ones (harder and easier inputs). Both estimators see the same reference and chunks; printed:
   mean absolute error of the estimated vs realized chunk accuracy, and how often the realized accuracy falls in
   each one's interval (ours: 95 % interval; NannyML: its confidence band as it reports it).
4. NannyML is installed into a throw-away virtualenv (``~/.cache/eval_pipelines_bench/nannyml-venv``, created by
   this script with ``python -m venv`` + ``pip install nannyml``); it is never a project dependency. When it cannot
   be installed, the script says so and prints our figures alone.

Usage: PYTHONPATH=. python bench/bench_estimation.py [--cases 1000000] [--chunks 40] [--skip-nannyml]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from eval_pipelines.estimation.cbpe import ALL_SEGMENTS, EstimationParams, estimate_day
from eval_pipelines.estimation.synthetic import simulate_day

VENV = Path(os.environ.get("EVAL_PIPELINES_BENCH_CACHE", Path.home() / ".cache" / "eval_pipelines_bench")) / \
    "nannyml-venv"
DAY = date(2026, 3, 1)

NANNYML_SCRIPT = textwrap.dedent("""
    import json, sys, time, warnings
    import numpy as np, pandas as pd
    import nannyml as nml
    warnings.filterwarnings("ignore")
    data = np.load(sys.argv[1])
    reference = pd.DataFrame({"y_pred_proba": data["ref_proba"], "y_pred": data["ref_pred"],
                              "y_true": data["ref_true"]})
    analysis = pd.DataFrame({"y_pred_proba": data["ana_proba"], "y_pred": data["ana_pred"],
                             "chunk": data["ana_chunk"]})
    size = int(data["chunk_size"])
    start = time.perf_counter()
    estimator = nml.CBPE(y_pred_proba="y_pred_proba", y_pred="y_pred", y_true="y_true",
                         problem_type="classification_binary", metrics=["accuracy"], chunk_size=size)
    estimator.fit(reference)
    result = estimator.estimate(analysis).filter(period="analysis").to_df()
    elapsed = time.perf_counter() - start
    flat = {"_".join(str(p) for p in col if p): result[col].tolist() for col in result.columns}
    print(json.dumps({"version": nml.__version__, "seconds": elapsed,
                      "columns": sorted(flat), "data": flat}))
""")


def ensure_nannyml() -> tuple[Path | None, str]:
    """The venv's python with nannyml importable, or (None, why not)."""
    python = VENV / "bin" / "python"
    check = [str(python), "-c", "import nannyml; print(nannyml.__version__)"]
    if python.exists() and subprocess.run(check, capture_output=True).returncode == 0:
        return python, "cached"
    try:
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True, capture_output=True, timeout=300)
        # statsmodels: nannyml 0.13 imports it (its plots) without declaring it.
        install = subprocess.run([str(python), "-m", "pip", "install", "-q", "nannyml", "statsmodels"],
                                 capture_output=True, text=True, timeout=1200)
    except (subprocess.SubprocessError, OSError) as error:
        return None, f"could not create the venv or run pip: {error}"
    if install.returncode != 0 or subprocess.run(check, capture_output=True).returncode != 0:
        tail = (install.stderr or install.stdout).strip().splitlines()[-3:]
        return None, "pip install nannyml failed: " + " / ".join(tail)
    return python, "installed"


def speed(n: int) -> None:
    from sklearn.isotonic import IsotonicRegression

    rng = np.random.default_rng(1)
    cal = simulate_day(rng, 5000, classes=4)
    today = simulate_day(rng, n, classes=4, spread=1.3)
    confidence = np.round(today.confidence, 6)  # logged confidences carry a few decimals
    cases = pd.DataFrame({"system": "s", "model_version": "v1",
                          "segment": pd.Categorical(rng.choice(["a", "b", "c", "d", "e"], size=n)),
                          "confidence": confidence})
    calibration = pd.DataFrame({"system": "s", "model_version": "v1", "confidence": cal.confidence,
                                "correct": cal.correct, "weight": 1.0, "source": "ground_truth"})
    params = EstimationParams(bootstrap=200)
    estimate_day(cases.head(1000), calibration, None, params, DAY, "w")  # warm-up (imports)
    start = time.perf_counter()
    rows = estimate_day(cases, calibration, None, params, DAY, "w")
    ours = time.perf_counter() - start
    row = rows[rows["segment"] == ALL_SEGMENTS].iloc[0]
    # Baseline: the textbook bootstrap, refit + predict every case, 10 refits timed.
    start = time.perf_counter()
    for _ in range(10):
        index = rng.integers(0, len(cal.confidence), len(cal.confidence))
        model = IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip")
        model.fit(cal.confidence[index], cal.correct[index]).predict(confidence).mean()
    naive = (time.perf_counter() - start) / 10 * 200
    print(f"[speed] {n:,} cases, 5 segments + all, 5,000 calibration cases, 200 isotonic bootstrap refits: "
          f"{ours:.2f} s (baseline textbook bootstrap, scaled from 10 refits: {naive:.1f} s; "
          f"{naive / ours:.1f}x); cores available: {os.cpu_count()}")
    print(f"{'PASS' if ours < 5.0 else 'MISS'} target: a {n:,}-case day in under 5 s ({ours:.2f} s)")
    print(f"[speed] estimate {row['estimated_accuracy']:.4f} [{row['estimated_accuracy_ci_low']:.4f}, "
          f"{row['estimated_accuracy_ci_high']:.4f}], realized {today.correct.mean():.4f}")


def coverage(reps: int) -> None:
    """Repeated seeded days (each with its own 2,000-case calibration set): coverage, bias, gap flag rate."""
    rng = np.random.default_rng(21)
    params = EstimationParams(bootstrap=100)
    scenarios = [("stationary", 1.5, 0.0), ("covariate shift (harder)", 0.9, 0.0),
                 ("covariate shift (easier)", 2.5, 0.0), ("concept drift (-5 pts)", 1.5, 0.05)]
    start = time.perf_counter()
    for classes in (2, 4):
        for name, spread, drop in scenarios:
            inside = flagged = 0
            errors = []
            for _ in range(reps):
                cal = simulate_day(rng, 2000, classes)
                today = simulate_day(rng, 1500, classes, spread=spread, concept_drop=drop)
                frame = lambda d: pd.DataFrame({"system": "s", "model_version": "v1", "segment": "x",  # noqa: E731
                                                "confidence": d.confidence, "correct": d.correct, "weight": 1.0,
                                                "source": "ground_truth"})
                # The realized check uses a 10 % sample of the day (as the demo's ground truth), not all of it.
                sample = frame(today).sample(frac=0.1, random_state=int(rng.integers(1 << 31)))
                row = estimate_day(frame(today)[["system", "model_version", "segment", "confidence"]],
                                   frame(cal), sample, params, DAY, "w").iloc[-1]
                realized = today.correct.mean()
                inside += row["estimated_accuracy_ci_low"] <= realized <= row["estimated_accuracy_ci_high"]
                flagged += bool(row["gap_flagged"])
                errors.append(row["estimated_accuracy"] - realized)
            share = inside / reps
            se = np.sqrt(share * (1 - share) / reps)
            if drop == 0.0:  # the interval's nominal 95 % within 2.5 binomial standard errors
                verdict = "PASS" if abs(share - 0.95) <= 2.5 * np.sqrt(0.95 * 0.05 / reps) else "MISS"
                print(f"{verdict} target: {classes}-class {name} coverage ~0.95")
            print(f"[coverage] {classes}-class {name:>26}: coverage {share:.3f} ± {se:.3f}"
                  f", mean error {np.mean(errors) * 100:+.2f} pts, gap flagged {flagged / reps:.3f} "
                  f"(realized: 150-case sample), {reps} reps")
    print(f"[coverage] {time.perf_counter() - start:.0f} s")


def shared_dataset(chunks: int, size: int, seed: int = 5) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    ref = simulate_day(rng, 5000, classes=2, spread=1.5)
    spreads = np.where(np.arange(chunks) < chunks // 2, 1.5,
                       np.where(np.arange(chunks) % 2 == 0, 0.9, 2.5))  # stationary, then harder / easier
    parts = [simulate_day(rng, size, classes=2, spread=float(s)) for s in spreads]
    return {
        "ref_proba": ref.probabilities[:, 1], "ref_pred": ref.prediction, "ref_true": ref.truth,
        "ref_conf": ref.confidence, "ref_correct": ref.correct,
        "ana_proba": np.concatenate([p.probabilities[:, 1] for p in parts]),
        "ana_pred": np.concatenate([p.prediction for p in parts]),
        "ana_conf": np.concatenate([p.confidence for p in parts]),
        "ana_correct": np.concatenate([p.correct for p in parts]),
        "ana_chunk": np.repeat(np.arange(chunks), size), "spreads": spreads, "chunk_size": np.array(size),
    }


def ours_on_chunks(data: dict[str, np.ndarray]) -> pd.DataFrame:
    calibration = pd.DataFrame({"system": "s", "model_version": "v1", "confidence": data["ref_conf"],
                                "correct": data["ref_correct"], "weight": 1.0, "source": "ground_truth"})
    params = EstimationParams(bootstrap=200)
    out = []
    for chunk in np.unique(data["ana_chunk"]):
        mask = data["ana_chunk"] == chunk
        cases = pd.DataFrame({"system": "s", "model_version": "v1", "segment": "x",
                              "confidence": data["ana_conf"][mask]})
        row = estimate_day(cases, calibration, None, params, DAY, "w")
        row = row[row["segment"] == ALL_SEGMENTS].iloc[0]
        out.append({"chunk": chunk, "realized": data["ana_correct"][mask].mean(),
                    "estimate": row["estimated_accuracy"], "low": row["estimated_accuracy_ci_low"],
                    "high": row["estimated_accuracy_ci_high"], "spread": data["spreads"][chunk]})
    return pd.DataFrame(out)


def summarise(name: str, frame: pd.DataFrame) -> None:
    for label, part in (("all chunks", frame), ("stationary", frame[frame["spread"] == 1.5]),
                        ("covariate shift", frame[frame["spread"] != 1.5])):
        error = (part["estimate"] - part["realized"]).abs()
        covered = ((part["low"] <= part["realized"]) & (part["realized"] <= part["high"])).mean()
        print(f"[compare] {name:>28} {label:>16}: MAE {error.mean() * 100:.2f} pts, coverage {covered:.3f} "
              f"({len(part)} chunks), mean interval width {(part['high'] - part['low']).mean() * 100:.2f} pts")


def nannyml_on_chunks(python: Path, data: dict[str, np.ndarray], frame: pd.DataFrame) -> pd.DataFrame | None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "data.npz"
        np.savez(path, **data)
        script = Path(tmp) / "run_nannyml.py"
        script.write_text(NANNYML_SCRIPT)
        run = subprocess.run([str(python), str(script), str(path)], capture_output=True, text=True, timeout=1200)
    if run.returncode != 0:
        print(f"[compare] NannyML run failed: {run.stderr.strip().splitlines()[-1:]}")
        return None
    result = json.loads(run.stdout.strip().splitlines()[-1])
    d = result["data"]
    def pick(*names: str) -> list[float]:
        for key in d:
            if key.endswith(names):
                return d[key]
        raise KeyError(f"none of {names} in NannyML's columns {result['columns']}")
    out = pd.DataFrame({"chunk": frame["chunk"], "realized": frame["realized"], "spread": frame["spread"],
                        "estimate": pick("accuracy_value"),
                        "low": pick("accuracy_lower_confidence_boundary"),
                        "high": pick("accuracy_upper_confidence_boundary"),
                        "sampling_error": pick("accuracy_sampling_error")})
    print(f"[compare] NannyML {result['version']} CBPE fit + estimate: {result['seconds']:.2f} s; its band is the "
          "estimate ± 3 sampling errors (nannyml.sampling_error.SAMPLING_ERROR_RANGE = 3); also shown at ± 1.96")
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--chunks", type=int, default=40)
    parser.add_argument("--chunk-size", type=int, default=2000)
    parser.add_argument("--reps", type=int, default=200)
    parser.add_argument("--skip-nannyml", action="store_true")
    args = parser.parse_args()
    speed(args.cases)
    if args.reps > 0:
        coverage(args.reps)
    data = shared_dataset(args.chunks, args.chunk_size)
    ours = ours_on_chunks(data)
    summarise("eval_pipelines (isotonic)", ours)
    if args.skip_nannyml:
        print("[compare] NannyML skipped (--skip-nannyml)")
        return
    python, how = ensure_nannyml()
    if python is None:
        print(f"[compare] NannyML NOT compared: {how}")
        return
    theirs = nannyml_on_chunks(python, data, ours)
    if theirs is not None:
        summarise("NannyML CBPE (its ±3σ band)", theirs)
        summarise("NannyML CBPE (±1.96σ)", theirs.assign(low=theirs["estimate"] - 1.96 * theirs["sampling_error"],
                                                       high=theirs["estimate"] + 1.96 * theirs["sampling_error"]))


if __name__ == "__main__":
    main()
