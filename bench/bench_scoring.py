"""Scoring throughput and the paired bootstrap, each against a baseline timed in the same run.

Targets (issue "scored runs"): 100k cases x 5 scorers through the python adapter in under 10 s; a paired bootstrap
with 2,000 resamples on 100k pairs in under 5 s.

1. Replay + score: the demo candidate ``keyword_triage`` through ``PythonSystem`` (batches of 10k), then
   exact_match, normalised_match, label_set_f1, brier and latency_slo with ``score_frame``. Baseline: the same five
   scores computed the obvious way, one Python loop over the rows.
2. Paired bootstrap of a mean difference (2,000 resamples, 100k pairs): ``paired_bootstrap`` against
   ``scipy.stats.bootstrap(paired=True, method="percentile")`` on the same data.

Run: ``.venv/bin/python bench/bench_scoring.py``.
"""

from __future__ import annotations

import time
import unicodedata
from datetime import date

import numpy as np
import pandas as pd
from scipy import stats

from eval_pipelines.demo.generator import DayConditions, generate_day_frame
from eval_pipelines.labeling.assets import label_cases
from eval_pipelines.scoring.adapters import PythonSystem, replay_inputs
from eval_pipelines.scoring.scorers import load_callable, score_frame
from eval_pipelines.scoring.settings import ScorerConfig
from eval_pipelines.scoring.stats import paired_bootstrap

N_CASES = 100_000
RESAMPLES = 2_000
SCORERS = [
    ScorerConfig(name="exact_match", kind="exact_match"),
    ScorerConfig(name="normalised_match", kind="normalised_match"),
    ScorerConfig(name="label_f1", kind="label_set_f1"),
    ScorerConfig(name="brier", kind="brier"),
    ScorerConfig(name="latency_slo", kind="latency_slo", slo_ms=2000),
]


def _cases() -> pd.DataFrame:
    frame = generate_day_frame(date(2026, 10, 1), N_CASES, seed=7, conditions=DayConditions(0.5, True))
    labeled = label_cases(frame, 0.5, 120.0)
    return labeled


def _norm(text: str) -> str:
    return " ".join("".join(ch if ch.isalnum() else " " for ch in unicodedata.normalize("NFKC", text).lower()).split())


def _naive_scores(labels: list, outputs: list, confidence: list, latency: list) -> list[tuple]:
    """The five scores one row at a time: what the vectorised scorers replace."""
    rows = []
    for label, output, conf, lat in zip(labels, outputs, confidence, latency, strict=True):
        if label is None:
            rows.append((np.nan, np.nan, np.nan, np.nan, float(lat <= 2000)))
            continue
        exact = float(output is not None and output.strip() == label.strip())
        normalised = float(output is not None and _norm(output) == _norm(label))
        expected = {p.strip() for p in label.split("/") if p.strip()}
        got = {p.strip() for p in (output or "").split("/") if p.strip()}
        f1 = 2 * len(expected & got) / (len(expected) + len(got)) if expected or got else 1.0
        brier = (conf - exact) ** 2 if conf == conf else np.nan
        rows.append((exact, normalised, f1, brier, float(lat <= 2000)))
    return rows


def bench_scoring(cases: pd.DataFrame) -> None:
    system = PythonSystem("keyword_rules", load_callable("eval_pipelines.demo.candidates:keyword_triage"),
                          batch_size=10_000)
    began = time.perf_counter()
    inputs = replay_inputs(cases)
    outputs = system.predict(inputs)
    replayed = time.perf_counter() - began
    frame = pd.concat([cases[["label"]].reset_index(drop=True), outputs], axis=1)
    began = time.perf_counter()
    scores = score_frame(frame, SCORERS)
    scored = time.perf_counter() - began
    total = replayed + scored

    labels = frame["label"].astype("str").to_numpy(dtype=object, na_value=None).tolist()
    produced = frame["output"].astype("str").to_numpy(dtype=object, na_value=None).tolist()
    began = time.perf_counter()
    naive = _naive_scores(labels, produced, frame["confidence"].tolist(), frame["latency_ms"].tolist())
    baseline = time.perf_counter() - began
    agree = np.allclose(np.array(naive, dtype=float), np.column_stack(list(scores.values())), equal_nan=True)

    print(f"replay + score, {len(cases):,} cases x {len(SCORERS)} scorers (python adapter):")
    print(f"  replay (keyword_triage, 10 batches)   {replayed:7.3f} s")
    print(f"  score_frame (5 scorers)                {scored:7.3f} s")
    print(f"  total                                  {total:7.3f} s   target < 10 s: "
          f"{'OK' if total < 10 else 'MISSED'}")
    print(f"  baseline: per-row Python scoring       {baseline:7.3f} s   ({baseline / scored:.1f}x slower than "
          f"score_frame; same scores: {agree})")
    print(f"  accuracy of the candidate on labeled cases: {np.nanmean(scores['exact_match']):.4f}")


def bench_bootstrap() -> None:
    rng = np.random.default_rng(1)
    baseline_scores = rng.random(N_CASES)
    candidate_scores = np.clip(baseline_scores + rng.normal(0.01, 0.2, N_CASES), 0, 1)
    began = time.perf_counter()
    ours = paired_bootstrap(candidate_scores, baseline_scores, resamples=RESAMPLES, seed=0)
    elapsed = time.perf_counter() - began
    began = time.perf_counter()
    theirs = stats.bootstrap((candidate_scores, baseline_scores), lambda c, b, axis=-1: np.mean(c - b, axis=axis),
                             paired=True, n_resamples=RESAMPLES, method="percentile", batch=50,
                             random_state=np.random.default_rng(2))
    scipy_elapsed = time.perf_counter() - began
    print(f"paired bootstrap, {RESAMPLES:,} resamples on {N_CASES:,} pairs:")
    print(f"  paired_bootstrap                       {elapsed:7.3f} s   target < 5 s: "
          f"{'OK' if elapsed < 5 else 'MISSED'}")
    print(f"  baseline: scipy.stats.bootstrap        {scipy_elapsed:7.3f} s   ({scipy_elapsed / elapsed:.1f}x)")
    print(f"  CI ours  [{ours.ci_low:.5f}, {ours.ci_high:.5f}]  (p two-sided {ours.p_value:.4g})")
    print(f"  CI scipy [{theirs.confidence_interval.low:.5f}, {theirs.confidence_interval.high:.5f}]")


def main() -> None:
    began = time.perf_counter()
    cases = _cases()
    print(f"generated and labeled {len(cases):,} demo cases in {time.perf_counter() - began:.2f} s\n")
    bench_scoring(cases)
    print()
    bench_bootstrap()


if __name__ == "__main__":
    main()
