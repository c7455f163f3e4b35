"""The vectorised alert rules give exactly the findings of the plain per-subject loop they replaced.

``alerts_rules_reference`` is the rules module as it was before it was vectorised (frozen, test-only). Seeded random
rule sets (every source; fixed and relative thresholds, min_cases, for_days, by keys, column / candidate / check
filters) are evaluated over seeded random kpi_daily, drift_results, performance_estimates, release_gates and check
frames (gaps between days, missing figures and intervals, untested drift rows, regime switches so episodes start,
continue and resolve) by both, and every field of every finding, in order, must be equal.
"""

from __future__ import annotations

import dataclasses
import math
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from eval_pipelines.alerts import rules as fast
from eval_pipelines.alerts.settings import AlertsConfig
from eval_pipelines_tests import alerts_rules_reference as reference

DAY0 = date(2026, 1, 1)
KEYS = [(system, version, segment) for system in ("triage", "refunds") for version in ("v1", "v2")
        for segment in ("enterprise", "consumer")]
DRIFT_COLUMNS = ("language", "product", "latency_ms", "channel", "tier")
# (metric, op, thresholds to draw from, poolable)
KPI_METRICS = [("timeout_rate", "gt", (0.02, 0.05), True), ("acceptance_rate", "lt", (0.5, 0.6), True),
               ("override_rate", "gt", (0.2, 0.3), True), ("accuracy", "lt", (0.7, 0.8), True),
               ("cases", "lt", (150, 300), True), ("ai_cost_amount", "gt", (40.0, 60.0), True),
               ("reviewed_accuracy", "lt", (0.7, 0.8), False), ("override_error_rate", "gt", (0.2, 0.4), False),
               ("latency_ms_p95", "gt", (1500.0, 2500.0), False), ("roi", "lt", (1.0, 2.0), True)]
ESTIMATE_METRICS = [("estimated_accuracy", "lt", (0.7, 0.8)), ("realized_accuracy", "lt", (0.7, 0.8)),
                    ("estimation_error", "gt", (0.0, 0.05))]


def _regimes(rng: np.random.Generator, count: int, stay: float = 0.8) -> np.ndarray:
    """A two-state Markov chain (False quiet, True incident), so conditions hold for runs of days."""
    state = bool(rng.random() < 0.3)
    out = np.empty(count, dtype=bool)
    for i in range(count):
        if rng.random() > stay:
            state = not state
        out[i] = state
    return out


def _days(rng: np.random.Generator, count: int) -> list[date]:
    """``count`` days from DAY0 with a few gaps (a missing day breaks a run of consecutive days)."""
    return [DAY0 + timedelta(days=i) for i in range(count) if rng.random() > 0.08]


def _nan_some(rng: np.random.Generator, values: np.ndarray, share: float) -> np.ndarray:
    values = values.astype(float)
    values[rng.random(len(values)) < share] = np.nan
    return values


def kpi_frame(rng: np.random.Generator, days: list[date]) -> pd.DataFrame:
    rows = []
    for key in KEYS:
        if rng.random() < 0.15:
            continue  # a key with no rows at all
        bad = _regimes(rng, len(days))
        for day, incident in zip(days, bad, strict=True):
            if rng.random() < 0.05:
                continue  # a key missing one day
            cases = int(rng.choice([30, 120, 400, 900]) * rng.uniform(0.7, 1.3))
            reviewed = int(cases * rng.uniform(0.6, 1.0))
            labeled = int(cases * rng.uniform(0.2, 0.6))
            audited = int(rng.integers(0, 80))
            accepted_audited = int(audited * rng.uniform(0.4, 0.8))
            row = {"kpi_date": day, "system": key[0], "model_version": key[1], "segment": key[2], "cases": cases,
                   "reviewed_cases": reviewed,
                   "accepted_cases": int(reviewed * (0.4 if incident else 0.65) * rng.uniform(0.9, 1.1)),
                   "overridden_cases": int(reviewed * (0.35 if incident else 0.15) * rng.uniform(0.8, 1.2)),
                   "timeout_cases": int(cases * (0.07 if incident else 0.01) * rng.uniform(0.5, 1.5)),
                   "labeled_cases": labeled,
                   "correct_cases": int(labeled * (0.62 if incident else 0.85) * rng.uniform(0.95, 1.05)),
                   "ai_cost_amount": cases * rng.uniform(0.04, 0.08),
                   "total_cost_amount": cases * rng.uniform(0.05, 0.1),
                   "net_value_amount": cases * (0.05 if incident else 0.2) * rng.uniform(0.5, 1.5),
                   "reviewed_cases_audited": audited, "accepted_cases_audited": accepted_audited,
                   "overridden_cases_audited": audited - accepted_audited,
                   "latency_ms_p95": (2800.0 if incident else 1200.0) * rng.uniform(0.8, 1.2)}
            for metric, (numerator, denominator) in fast.RATIOS.items():
                if numerator in row and denominator in row:
                    row[metric] = row[numerator] / row[denominator] if row[denominator] else np.nan
            low, high = row["accuracy"] - 0.05, row["accuracy"] + 0.05
            row.update({"accuracy_ci_low": low, "accuracy_ci_high": high})
            for metric, centre in (("reviewed_accuracy", 0.65 if incident else 0.85),
                                   ("override_error_rate", 0.45 if incident else 0.15),
                                   ("automation_bias_rate", 0.3 if incident else 0.05)):
                value = centre * rng.uniform(0.85, 1.15)
                width = rng.uniform(0.02, 0.2)
                row.update({metric: value, f"{metric}_ci_low": value - width, f"{metric}_ci_high": value + width})
            rows.append(row)
    frame = pd.DataFrame(rows)
    for column in ("accuracy_ci_low", "reviewed_accuracy", "override_error_rate", "automation_bias_rate",
                   "automation_bias_rate_ci_high", "latency_ms_p95", "timeout_rate"):
        frame[column] = _nan_some(rng, frame[column].to_numpy(), 0.07)  # missing figures: no verdict
    frame["accuracy_ci_high"] = np.where(frame["accuracy_ci_low"].isna(), np.nan, frame["accuracy_ci_high"])
    return frame.sample(frac=1.0, random_state=int(rng.integers(1 << 30))).reset_index(drop=True)


def drift_frame(rng: np.random.Generator, days: list[date]) -> pd.DataFrame:
    rows = []
    for column in DRIFT_COLUMNS:
        kind = "numeric" if column == "latency_ms" else "categorical"
        bad = _regimes(rng, len(days), stay=0.75)
        for day, incident in zip(days, bad, strict=True):
            severity = str(rng.choice(["minor", "major"])) if incident else "none"
            untested = rng.random() < 0.08
            rows.append({"date": day, "column": column, "kind": kind, "severity": severity,
                         "drifted": incident, "effect_size": rng.uniform(0.1, 0.4) if incident else 0.01,
                         "effect_ci_low": 0.05, "effect_ci_high": 0.45, "threshold": 0.1,
                         "p_adjusted": np.nan if untested else (1e-6 if incident else 0.6),
                         "reason": f"{column} {severity}"})
    return pd.DataFrame(rows).sample(frac=1.0, random_state=int(rng.integers(1 << 30))).reset_index(drop=True)


def estimate_frame(rng: np.random.Generator, days: list[date]) -> pd.DataFrame:
    rows = []
    for key in KEYS[:4]:
        bad = _regimes(rng, len(days))
        for day, incident in zip(days, bad, strict=True):
            estimated = (0.68 if incident else 0.86) * rng.uniform(0.95, 1.05)
            realized_cases = int(rng.choice([0, 10, 60, 250]))
            realized = np.nan if realized_cases == 0 else estimated - (0.1 if incident else 0.0) + rng.normal(0, .02)
            width = 0.3 / math.sqrt(max(realized_cases, 1))
            rows.append({"partition_date": day, "system": key[0], "model_version": key[1], "segment": key[2],
                         "cases": int(rng.integers(50, 900)), "estimated_accuracy": estimated,
                         "estimated_accuracy_ci_low": estimated - 0.03, "estimated_accuracy_ci_high": estimated + .03,
                         "realized_accuracy": realized, "realized_accuracy_ci_low": realized - width,
                         "realized_accuracy_ci_high": realized + width, "realized_cases": realized_cases,
                         # calibration labels behind the estimate, NULL on some rows (no extra draw: same worlds)
                         "calibration_cases": np.nan if realized_cases == 10 else 20.0 + 3 * realized_cases,
                         "estimation_error": estimated - realized, "estimation_error_ci_low": estimated - realized
                         - width, "estimation_error_ci_high": estimated - realized + width})
    return pd.DataFrame(rows)


def gate_frame(rng: np.random.Generator) -> pd.DataFrame:
    rows = []
    for index in range(int(rng.integers(0, 12))):
        candidate = str(rng.choice(["naive_rules", "keyword_rules"]))
        passes = [bool(rng.random() < 0.6) for _ in range(int(rng.integers(1, 4)))]
        for position, passed in enumerate(passes):
            rows.append({"run_id": f"run{index:02d}-{candidate}", "position": position, "candidate": candidate,
                         "context": "default", "created_at": datetime(2026, 1, 1, tzinfo=UTC) + timedelta(hours=index),
                         "eval_set_version": "v1", "criterion": f"criterion {position}", "value": rng.uniform(0, 1),
                         "op": "≥", "threshold": 0.6, "passed": passed, "verdict": "pass" if passed else "fail",
                         "gate_passed": all(passes)})
    columns = ["run_id", "position", "candidate", "context", "created_at", "eval_set_version", "criterion", "value",
               "op", "threshold", "passed", "verdict", "gate_passed"]
    return pd.DataFrame(rows, columns=columns)


def check_frame(rng: np.random.Generator, days: list[date]) -> pd.DataFrame:
    rows = []
    for storage_id in range(int(rng.integers(0, 30))):
        day = days[int(rng.integers(0, len(days)))]
        rows.append({"asset_key": str(rng.choice(["production_logs", "kpi_daily"])),
                     "check_name": str(rng.choice(["volume_vs_trailing_days", "quarantine_rate"])),
                     "partition_key": None if rng.random() < 0.2 else day.isoformat(),
                     "passed": bool(rng.random() < 0.6), "blocking": bool(rng.random() < 0.8),
                     "run_id": f"r{storage_id}", "storage_id": int(rng.permutation(1000)[0]) * 100 + storage_id,
                     "timestamp": 1.767e9 + 3600 * storage_id, "description": f"evaluation {storage_id}"})
    return pd.DataFrame(rows, columns=list(fast.CHECK_COLUMNS))


def random_rules(rng: np.random.Generator, count: int) -> list[dict]:
    out = []
    for i in range(count):
        source = str(rng.choice(["kpi", "kpi", "kpi", "drift", "drift", "estimate", "automation_bias",
                                 "release_gate", "checks"]))
        rule: dict = {"name": f"r{i}_{source}", "on": source, "channels": ["ops"]}
        if source in ("kpi", "estimate", "automation_bias"):
            if source == "kpi":
                metric, op, thresholds, poolable = KPI_METRICS[int(rng.integers(len(KPI_METRICS)))]
                rule["metric"] = metric
            elif source == "estimate":
                metric, op, thresholds = ESTIMATE_METRICS[int(rng.integers(len(ESTIMATE_METRICS)))]
                poolable = False
                if rng.random() < 0.8:
                    rule["metric"] = metric
                else:
                    metric, op, thresholds = ESTIMATE_METRICS[0]
            else:
                op, thresholds, poolable = "gt", (0.1, 0.2), False
            rule["op"] = op if rng.random() < 0.8 else {"lt": "le", "gt": "ge"}[op]
            if rng.random() < 0.3:
                rule["relative_change"] = {"by": float(rng.choice([0.1, 0.3])),
                                           "trailing_days": int(rng.choice([3, 7])), "min_days": 2}
            else:
                rule["threshold"] = float(rng.choice(thresholds))
            rule["min_cases"] = int(rng.choice([0, 0, 20, 100, 500]))
            rule["for_days"] = int(rng.choice([1, 1, 2, 3]))
            if poolable:
                choices = [None, ["system"], ["system", "segment"], ["segment"], ["system", "model_version", "segment"]]
                by = choices[int(rng.integers(len(choices)))]
                if by is not None:
                    rule["by"] = by
            elif source == "kpi" or rng.random() < 0.3:
                rule["by"] = ["system", "model_version", "segment"]
        elif source == "drift":
            rule["severity"] = str(rng.choice(["minor", "major"]))
            rule["for_days"] = int(rng.choice([1, 1, 2]))
            if rng.random() < 0.4:
                rule["columns"] = [str(c) for c in rng.choice(DRIFT_COLUMNS, size=2, replace=False)]
            elif rng.random() < 0.3:
                rule["exclude_columns"] = [str(rng.choice(DRIFT_COLUMNS))]
        elif source == "release_gate" and rng.random() < 0.3:
            rule["candidates"] = ["naive_rules"]
        elif source == "checks" and rng.random() < 0.3:
            rule["checks"] = ["quarantine_rate"]
        out.append(rule)
    return out


def _comparable(findings) -> list[dict]:
    """Every field of every finding, NaN made comparable (there should be none: missing figures are None)."""
    out = []
    for finding in findings:
        row = dataclasses.asdict(finding)
        out.append({k: ("NaN" if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()})
    return out


SEEDS = range(24)


@pytest.fixture(scope="module")
def outcomes() -> list[tuple]:
    results = []
    for seed in SEEDS:
        rng = np.random.default_rng(seed)
        days = _days(rng, int(rng.integers(12, 40)))
        frames = {"kpi_daily": kpi_frame(rng, days), "drift_results": drift_frame(rng, days),
                  "performance_estimates": estimate_frame(rng, days), "release_gates": gate_frame(rng),
                  "checks": check_frame(rng, days)}
        config = AlertsConfig.model_validate({"channels": [{"name": "ops", "kind": "webhook", "url_env": "X"}],
                                              "rules": random_rules(rng, 40)})
        first_day = None if rng.random() < 0.3 else days[int(rng.integers(0, 4))]
        ci_level = float(rng.choice([0.9, 0.95]))
        expected = reference.evaluate(config, frames, ci_level, first_day)
        actual = fast.evaluate(config, frames, ci_level, first_day)
        results.append((seed, config, expected, actual))
    return results


def test_vectorised_rules_give_the_reference_findings_field_for_field_and_in_order(outcomes):
    for seed, _, expected, actual in outcomes:
        assert _comparable(actual.findings) == _comparable(expected.findings), f"seed {seed}"
        assert actual.notes == expected.notes and actual.newest_day == expected.newest_day, f"seed {seed}"


def test_the_random_worlds_exercise_every_branch_of_the_state_machine(outcomes):
    """The comparison above means something only if the worlds produce each kind of episode, for each source."""
    findings = [f for _, _, expected, _ in outcomes for f in expected.findings]
    assert {f.source for f in findings} == {"kpi", "drift", "estimate", "automation_bias", "release_gate", "checks"}
    assert sum(f.resolved_on is not None for f in findings) > 50
    assert sum(f.resolved_on is None for f in findings) > 50
    assert any(f.truncated for f in findings) and any(not f.truncated for f in findings)
    rules = {r.name: r for _, config, _, _ in outcomes for r in config.rules}
    assert any(rules[f.rule].for_days > 1 and f.days >= rules[f.rule].for_days for f in findings)
    assert any(rules[f.rule].relative_change is not None for f in findings)
    assert any(f.days > 1 and f.resolved_on is not None for f in findings)
    # an episode that held again after a no-verdict day (too few cases, a missing figure) or a missing day: its
    # days count only the days that held
    assert any(f.source in fast.DAILY_SOURCES and f.days < (date.fromisoformat(f.last)
                                                           - date.fromisoformat(f.started)).days + 1
               for f in findings)
