"""A scored run with an llm_judge scorer reports the judge's agreement with the reviewers, and the gate can require it.

The judge is the test's real chat-completions server on 127.0.0.1 (test_llm_judge.ChatServer): it passes an output
exactly when it equals the reference it is sent, the eval set's (implicit) label. The reviewers' label is the
simulator's hidden truth on a subset of the eval-set cases, so judge and reviewers disagree wherever the implicit
label is wrong (automation bias) — a judge that is good but not perfect.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from sklearn.metrics import cohen_kappa_score

from eval_pipelines.config import ConfigError, parse_settings
from eval_pipelines.demo.generator import TRUTH_COLUMN, DayConditions, generate_day_frame
from eval_pipelines.evalsets.build import sample_cases
from eval_pipelines.evalsets.settings import EvalSetConfig
from eval_pipelines.labeling.assets import label_cases
from eval_pipelines.scoring.adapters import LoggedSystem
from eval_pipelines.scoring.gate import NOT_JUDGED, evaluate_gate
from eval_pipelines.scoring.runs import attach_logged, eval_set_cases_frame, score_run
from eval_pipelines.scoring.settings import JudgeAgreementCriterion, ScoringConfig
from eval_pipelines.scoring.store import RunInfo, read_summary, write_run
from eval_pipelines.scoring.summarise import score_column
from eval_pipelines_tests.test_llm_judge import ChatServer

URL_ENV = "EVAL_PIPELINES_TEST_JUDGE_URL"


def _config(tmp_path, criteria: list[dict]) -> ScoringConfig:
    return ScoringConfig.model_validate({
        "scorers": [{"name": "exact_match", "kind": "exact_match"},
                    {"name": "judge", "kind": "llm_judge", "model": "judge-small", "url_env": URL_ENV,
                     "rubric": "Is the triage label right?", "cache_dir": str(tmp_path / "cache"),
                     "concurrency": 16, "timeout_seconds": 5}],
        "comparison": {"resamples": 200},
        "gates": {"judged": criteria},
    })


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A judged run of production's logged outputs on a 300-case eval set, and the reviewers' labels of 200."""
    day = generate_day_frame(date(2026, 10, 2), 1200, 21, day_index=2, conditions=DayConditions(0.5, True),
                             with_truth=True)
    truth = day[["event_id", TRUTH_COLUMN]]
    labeled = label_cases(day.drop(columns=[TRUTH_COLUMN]), 0.5, 120.0)
    built = sample_cases(labeled, EvalSetConfig(size=300, min_per_stratum=3),
                         feature_columns=["channel", "language", "product"])
    cases = attach_logged(eval_set_cases_frame(built.cases),
                          labeled[["event_id", "confidence", "latency_ms", "cost_usd", "status"]])
    strata = built.strata[["stratum", "population", "sample"]]
    reviewed = truth[truth["event_id"].isin(cases["event_id"].iloc[:200])].rename(
        columns={TRUTH_COLUMN: "reviewed_label"})
    server = ChatServer()
    tmp_path = tmp_path_factory.mktemp("judge")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(URL_ENV, server.url)
        config = _config(tmp_path, [{"kind": "min_judge_agreement", "scorer": "judge", "min_kappa": 0.3,
                                     "min_pairs": 30}])
        run = score_run(cases, strata, LoggedSystem(), None, config, config.gates["judged"], None, reviewed)
    server.close()
    return run, reviewed, config, tmp_path


def _pairs(run, reviewed) -> tuple[np.ndarray, np.ndarray]:
    """The (judge, reviewers) verdicts computed here from the run's per-case rows: the reviewers say the output is
    right when it equals their label; cases whose call failed or that nobody reviewed are left out."""
    eval_rows = run.cases[run.cases["case_set"] == "eval_set"].merge(reviewed, on="event_id", how="inner")
    ok = eval_rows["status"].eq("ok") & eval_rows[score_column("judge")].notna()
    eval_rows = eval_rows[ok]
    human = (eval_rows["output"].astype(str) == eval_rows["reviewed_label"].astype(str)).astype(float).to_numpy()
    return eval_rows[score_column("judge")].to_numpy(dtype=float), human


def _judge_row(summary: pd.DataFrame) -> pd.Series:
    return summary[(summary["case_set"] == "eval_set") & (summary["scorer"] == "judge")
                   & (summary["slice_dim"] == "all")].iloc[0]


def test_judge_kappa_is_sklearns_on_the_cases_both_have_with_a_bootstrap_checked_ci(world) -> None:
    run, reviewed, _, _ = world
    judge, human = _pairs(run, reviewed)
    row = _judge_row(run.summary)
    assert 150 <= len(judge) <= 200  # failed calls and unreviewed cases are not pairs
    assert row["judge_agreement_pairs"] == len(judge)
    assert row["judge_observed_agreement"] == pytest.approx(float(np.mean(judge == human)))
    expected = cohen_kappa_score(judge, human)
    assert row["judge_kappa"] == pytest.approx(expected, abs=1e-12)
    assert 0.2 < expected < 0.95  # a good judge, not a perfect one: the check has something to measure
    # The Wald interval against a percentile bootstrap of sklearn's κ over the pairs.
    rng = np.random.default_rng(0)
    draws = rng.integers(0, len(judge), size=(2000, len(judge)))
    boot = np.array([cohen_kappa_score(judge[i], human[i]) for i in draws])
    low, high = np.nanquantile(boot, [0.025, 0.975])
    assert row["judge_kappa_ci_low"] == pytest.approx(low, abs=0.04)
    assert row["judge_kappa_ci_high"] == pytest.approx(high, abs=0.04)
    assert run.judge_agreements["judge"].n_units == len(judge)
    # Other rows carry no judge columns.
    others = run.summary[run.summary["scorer"] != "judge"]
    assert others["judge_kappa"].isna().all()


def test_the_gate_passes_on_the_lower_bound_and_never_on_too_few_pairs(world) -> None:
    run, _, _, _ = world
    row = _judge_row(run.summary)
    lower, pairs = float(row["judge_kappa_ci_low"]), int(row["judge_agreement_pairs"])
    point = float(row["judge_kappa"])

    def gate(**fields) -> pd.Series:
        criterion = JudgeAgreementCriterion(scorer="judge", **fields)
        return evaluate_gate([criterion], run.summary).iloc[0]

    passing = gate(min_kappa=lower - 0.01, min_pairs=pairs)
    assert passing["verdict"] == "pass" and passing["value"] == pytest.approx(lower)
    # Between the lower bound and the point estimate: the evidence does not show the agreement, so it fails.
    between = gate(min_kappa=(lower + point) / 2, min_pairs=30)
    assert between["verdict"] == "fail" and not between["passed"]
    assert f"on {pairs} pairs" in between["detail"]
    too_few = gate(min_kappa=-1.0, min_pairs=pairs + 1)
    assert too_few["verdict"] == NOT_JUDGED and not too_few["passed"]
    assert "too few pairs" in too_few["detail"] and f"{pairs} case(s)" in too_few["detail"]
    # The run's own gate (min_kappa 0.3, min_pairs 30) read the same row.
    assert run.gate.iloc[0]["verdict"] == ("pass" if lower >= 0.3 else "fail")
    # A summary without a judge row (e.g. a run stored before the columns existed) is not judged.
    no_row = evaluate_gate([JudgeAgreementCriterion(scorer="judge")], run.summary[run.summary["scorer"] != "judge"])
    assert no_row.iloc[0]["verdict"] == NOT_JUDGED and not no_row.iloc[0]["passed"]


def test_the_agreement_is_stored_in_scored_runs(world) -> None:
    run, _, config, tmp_path = world
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'warehouse.db'}")
    write_run(engine, run, RunInfo("run-judge", "production_replay", datetime(2026, 10, 3, tzinfo=UTC), "v1",
                                   "production", "judged"), [s.name for s in config.scorers])
    stored = _judge_row(read_summary(engine, "run-judge"))
    expected = _judge_row(run.summary)
    for column in ("judge_agreement_pairs", "judge_observed_agreement", "judge_kappa", "judge_kappa_ci_low",
                   "judge_kappa_ci_high"):
        assert stored[column] == pytest.approx(float(expected[column]))
    engine.dispose()


def _raw(criterion: dict) -> dict:
    return {"scoring": {
        "scorers": [{"name": "exact_match", "kind": "exact_match"},
                    {"name": "judge", "kind": "llm_judge", "model": "m", "url_env": URL_ENV, "rubric": "Right?"}],
        "gates": {"judged": [criterion]}}}


def test_the_criterion_is_validated_with_its_path() -> None:
    settings = parse_settings(_raw({"kind": "min_judge_agreement", "scorer": "judge", "min_kappa": 0.6,
                                    "min_pairs": 30}))
    assert isinstance(settings.scoring.gates["judged"][0], JudgeAgreementCriterion)
    with pytest.raises(ConfigError, match=r"scoring\.gates\.judged\.0\.min_judge_agreement\.min_kapa"):
        parse_settings(_raw({"kind": "min_judge_agreement", "scorer": "judge", "min_kapa": 0.6}))
    with pytest.raises(ConfigError, match="needs an llm_judge scorer, 'exact_match' is kind exact_match"):
        parse_settings(_raw({"kind": "min_judge_agreement", "scorer": "exact_match"}))
    with pytest.raises(ConfigError, match="allow_missing: true is not allowed on a min_judge_agreement"):
        parse_settings(_raw({"kind": "min_judge_agreement", "scorer": "judge", "allow_missing": True}))
