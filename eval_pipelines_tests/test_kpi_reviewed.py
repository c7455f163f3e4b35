"""The audit-corrected KPI columns (kpis/reviewed.py): the estimator by hand, conservation, and seeded coverage.

The simulation uses review_sim's automation-bias world (35 % of wrong suggestions accepted). Populations are fixed
(a few simulated days) and the audit is redrawn per replication with the design's own allocation (stratified
simple random sampling, the n_h of ``draw_audit_sample``): coverage over the design, which is what a design-based
interval promises. Bigger runs: bench/bench_review_coverage.py --kpis.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from scipy import special, stats

from eval_pipelines.kpis import reviewed
from eval_pipelines.kpis.metrics import KEY_COLUMNS, combine, compute_kpis
from eval_pipelines.kpis.settings import ImpactConfig
from eval_pipelines.review.design import AuditDesignConfig, draw_audit_sample
from eval_pipelines.review.estimation import estimate_reviewed, estimation_cells
from eval_pipelines_tests.review_sim import simulate_day

KEYS = list(KEY_COLUMNS)


def world(seed: int, n: int = 1500, size: int = 150) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One simulated day (two model versions, two segments) and its phase one with the audit drawn."""
    cases = simulate_day(n, seed=seed)
    rng = np.random.default_rng(seed + 7)
    cases["system"] = "s"
    cases["is_labeled"] = cases["ai_correct"].notna()  # labeling's flag: the implicit label exists
    cases["model_version"] = np.where(rng.random(n) < 0.6, "v1", "v2")  # not a stratum variable: rows cut cells
    sample = draw_audit_sample(cases, dt.date(2026, 3, 2) + dt.timedelta(days=seed),
                               AuditDesignConfig(daily_size=size, seed=3))
    ok = cases[cases["status"] == "ok"]
    phase_one = sample.frame.merge(ok[["event_id", *KEYS, "true_correct"]], on="event_id", validate="one_to_one")
    return cases, phase_one


def perfect_verdicts(phase_one: pd.DataFrame, selected: np.ndarray | None = None) -> pd.DataFrame:
    chosen = phase_one[phase_one["selected"] if selected is None else selected]
    return pd.DataFrame({"event_id": chosen["event_id"],
                         "ai_correct": pd.array(chosen["true_correct"].to_numpy(dtype=bool), dtype="boolean")})


class Redraw:
    """The day's design (strata and n_h fixed) redrawn fast: the cell counts of a fresh stratified SRS, coded for
    :func:`reviewed.estimate_coded` (what estimate_rows runs after coding the cells)."""

    def __init__(self, phase_one: pd.DataFrame, row_key: tuple[str, ...]) -> None:
        keys = phase_one[KEYS].astype(str).agg("|".join, axis=1)
        cell = estimation_cells(phase_one)
        self.codes, uniques = pd.factorize(keys + "#" + cell, sort=True)
        self.n_rows = len(uniques)
        first = pd.Series(np.arange(len(phase_one))).groupby(self.codes).first().to_numpy()
        self.cell_codes = pd.factorize(cell.to_numpy()[first], sort=True)[0]  # stratum of each cell row
        self.in_row = (keys.to_numpy()[first] == "|".join(row_key)).astype(np.int64) - 1  # 0 in the row, -1 else
        self.actions = phase_one["review_action"].to_numpy()[first]
        self.population = np.bincount(self.codes, minlength=self.n_rows)
        self.truth = phase_one["true_correct"].to_numpy(dtype=float)
        self.strata = pd.factorize(phase_one["stratum"], sort=True)[0]
        sizes = pd.Series(phase_one["selected"].to_numpy()).groupby(self.strata).sum().to_numpy()
        self.take = sizes[self.strata]
        self.starts = np.concatenate([[0], np.cumsum(np.bincount(self.strata))[:-1]])

    def draw(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        order = np.lexsort((rng.random(len(self.strata)), self.strata))
        rank = np.empty(len(order), dtype=np.int64)
        rank[order] = np.arange(len(order)) - self.starts[self.strata[order]]
        chosen = rank < self.take
        audited = np.bincount(self.codes[chosen], minlength=self.n_rows)
        right = np.bincount(self.codes[chosen], weights=self.truth[chosen], minlength=self.n_rows)
        return audited, right.round().astype(np.int64)


def _estimate(redraws: list[Redraw], draws: list[tuple[np.ndarray, np.ndarray]], row_only: bool,
              names: tuple[str, ...]) -> dict[str, object]:
    """The estimates over the given days (each day's cells separate strata), for the whole or the row."""
    offsets = np.cumsum([0] + [int(r.cell_codes.max()) + 1 for r in redraws])
    strata = np.concatenate([r.cell_codes + offsets[i] for i, r in enumerate(redraws)])
    groups = np.concatenate([r.in_row if row_only else np.zeros(r.n_rows, dtype=np.int64) for r in redraws])
    return reviewed.estimate_coded(strata, groups, 1, np.concatenate([r.actions for r in redraws]),
                                   np.concatenate([r.population for r in redraws]),
                                   np.concatenate([a for a, _ in draws]), np.concatenate([b for _, b in draws]),
                                   0.95, names=names)[0]


def test_a_union_of_cells_gives_exactly_the_two_phase_stratified_estimator():
    """One system and version: the day total is estimate_reviewed's Σ W_g q̂_g, interval included."""
    _, phase_one = world(11)
    phase_one = phase_one.assign(model_version="v1")
    verdicts = perfect_verdicts(phase_one)
    ours, _ = reviewed.estimate_rows(reviewed.review_cells(phase_one, verdicts), [], 0.95, min_audited=1)
    reference = estimate_reviewed(phase_one, verdicts)
    for name in reviewed.ESTIMATES:
        expected = getattr(reference, name)
        np.testing.assert_allclose([ours[name][0], ours[f"{name}_ci_low"][0], ours[f"{name}_ci_high"][0]],
                                   [expected.estimate, expected.ci_low, expected.ci_high], rtol=1e-10, err_msg=name)
    # The segment is a stratum variable: each segment row is a union of cells too.
    rows, _ = reviewed.estimate_rows(reviewed.review_cells(phase_one, verdicts), ["segment"], 0.95, min_audited=1)
    for segment, row in rows.set_index("segment").iterrows():
        part = phase_one[phase_one["segment"] == segment]
        found = estimate_reviewed(part, verdicts[verdicts["event_id"].isin(part["event_id"])])
        assert row["reviewed_accuracy"] == pytest.approx(found.reviewed_accuracy.estimate, rel=1e-12)
        assert row["reviewed_accuracy_ci_low"] == pytest.approx(found.reviewed_accuracy.ci_low, rel=1e-10)


def test_a_domain_cutting_cells_matches_a_hand_computed_survey_estimate():
    """Two strata, a domain (system 'a') inside both: ratio estimator, linearisation variance, Satterthwaite df,
    Korn–Graubard, computed here from the textbook formulas (what R survey's svyciprop(method='beta') does on a
    subset)."""
    # stratum h1: N=10, sampled 4 (a: right, right, wrong; b: right); stratum h2: N=20, sampled 5
    # (a: right, wrong; b: right, right, wrong).
    rows = []
    for stratum, big_n, sampled in (("h1", 10, [("a", 1), ("a", 1), ("a", 0), ("b", 1)]),
                                    ("h2", 20, [("a", 1), ("a", 0), ("b", 1), ("b", 1), ("b", 0)])):
        for i in range(big_n):
            system, right = sampled[i] if i < len(sampled) else ("a" if i % 2 else "b", 1)
            rows.append({"event_id": f"{stratum}-{i}", "system": system, "model_version": "v", "segment": "x",
                         "stratum": stratum, "review_action": "accepted", "selected": i < len(sampled),
                         "right": right})
    phase_one = pd.DataFrame(rows)
    verdicts = pd.DataFrame({"event_id": phase_one.loc[phase_one["selected"], "event_id"],
                             "ai_correct": phase_one.loc[phase_one["selected"], "right"].astype(bool)})
    found, _ = reviewed.estimate_rows(reviewed.review_cells(phase_one, verdicts), ["system"], 0.95, min_audited=1)
    got = found.set_index("system").loc["a"]

    # By hand. w = N_h/n_h: 2.5 in h1, 4 in h2. Domain a: h1 (1,1,0), h2 (1,0).
    w = {"h1": 2.5, "h2": 4.0}
    sample = {"h1": [("a", 1), ("a", 1), ("a", 0), ("b", 1)], "h2": [("a", 1), ("a", 0), ("b", 1), ("b", 1), ("b", 0)]}
    big_n = {"h1": 10, "h2": 20}
    total = sum(w[h] * y for h in sample for s, y in sample[h] if s == "a")
    size = sum(w[h] for h in sample for s, _ in sample[h] if s == "a")
    p = total / size  # (2.5·2 + 4·1) / (2.5·3 + 4·2) = 9 / 15.5
    assert p == pytest.approx(9 / 15.5)
    contributions, degrees = [], []
    for h, cases in sample.items():
        z = np.array([(y - p) / size if s == "a" else 0.0 for s, y in cases])
        n = len(cases)
        contributions.append(big_n[h] ** 2 * (1 - n / big_n[h]) * z.var(ddof=1) / n)
        degrees.append(min(n - 1, sum(s == "a" for s, _ in cases)))
    v = sum(contributions)
    df = min(v ** 2 / sum(c * c / d for c, d in zip(contributions, degrees, strict=True)),
             sum(sum(s == "a" for s, _ in cases) - 1 for cases in sample.values()))
    n_domain = 5
    n_eff = p * (1 - p) / v * (special.stdtrit(n_domain - 1, 0.025) / special.stdtrit(df, 0.025)) ** 2
    x = p * n_eff
    low, high = stats.beta.ppf(0.025, x, n_eff - x + 1), stats.beta.ppf(0.975, x + 1, n_eff - x)
    assert got["reviewed_accuracy"] == pytest.approx(p, rel=1e-12)
    assert got["reviewed_accuracy_ci_low"] == pytest.approx(low, rel=1e-9)
    assert got["reviewed_accuracy_ci_high"] == pytest.approx(high, rel=1e-9)
    assert got["reviewed_cases_audited"] == 5
    assert got["reviewed_population_cases"] == int((phase_one["system"] == "a").sum())


def test_conservation_and_the_not_available_rules():
    cases, phase_one = world(3)
    verdicts = perfect_verdicts(phase_one)
    verdicts.loc[verdicts.index[:7], "ai_correct"] = None  # unanswered tasks: not verdicts, not counted
    cells = reviewed.review_cells(phase_one, verdicts)
    assert cells["population"].sum() == len(phase_one)
    answered = int(verdicts["ai_correct"].notna().sum())
    assert cells["audited"].sum() == answered
    impact = ImpactConfig(systems={"default": {"cost_per_silent_error": 50.0}})
    frame = compute_kpis(cases, impact, cells)
    assert frame["reviewed_cases_audited"].sum() == answered  # every verdict used once, by one row
    assert (frame["reviewed_population_cases"] == frame["cases"] - frame["error_cases"]
            - frame["timeout_cases"]).all()
    assert (frame["accepted_cases_audited"] + frame["overridden_cases_audited"]
            <= frame["reviewed_cases_audited"]).all()
    available = frame["reviewed_accuracy"].notna()
    assert available.all() == (frame["reviewed_cases_audited"] >= impact.reviewed_min_audited).all()
    # override rows with fewer than 10 audited overridden verdicts: null, not a number from a handful
    assert frame.loc[frame["overridden_cases_audited"] < 10, "override_error_rate"].isna().all()
    # silent errors: rate × ok accepted cases × cost, the interval scaled alike
    accepted_ok = cases[(cases["status"] == "ok") & (cases["user_action"] == "accepted")].groupby(KEYS).size()
    row = frame.set_index(KEYS).loc[("s", "v1", "consumer")]
    expected = row["automation_bias_rate"] * accepted_ok.loc[("s", "v1", "consumer")] * 50.0
    assert row["silent_error_cost"] == pytest.approx(expected)
    assert row["silent_error_cost_ci_low"] < row["silent_error_cost"] < row["silent_error_cost_ci_high"]
    assert row["net_value_after_silent_errors_amount"] == pytest.approx(row["net_value_amount"]
                                                                        - row["silent_error_cost"])
    assert row["net_value_after_silent_errors_ci_low_amount"] == pytest.approx(
        row["net_value_amount"] - row["silent_error_cost_ci_high"])  # assumed baseline: the audit's part alone
    # A stale phase one (it misses some of the row's ok cases) is not used for that row.
    stale = reviewed.review_cells(phase_one.iloc[5:], verdicts[verdicts["event_id"].isin(phase_one["event_id"]
                                                                                          .iloc[5:])])
    frame = compute_kpis(cases, impact, stale)
    short = frame["reviewed_population_cases"] != frame["cases"] - frame["error_cases"] - frame["timeout_cases"]
    assert short.any() and frame.loc[short, "reviewed_accuracy"].isna().all()
    # A cell of the domain without any verdict: not estimated (its weight is not dropped silently).
    blind = verdicts.copy()
    in_cell = phase_one.set_index("event_id").loc[blind["event_id"], "stratum"].to_numpy() == \
        phase_one.loc[phase_one["selected"], "stratum"].iloc[0]
    blind.loc[in_cell, "ai_correct"] = None
    found, notes = reviewed.estimate_rows(reviewed.review_cells(phase_one, blind), [], 0.95)
    assert np.isnan(found["reviewed_accuracy"][0]) and any("no verdict" in n.reason for n in notes)
    with pytest.raises(ValueError, match="outside the audit sample"):
        reviewed.review_cells(phase_one, perfect_verdicts(phase_one, ~phase_one["selected"].to_numpy()).head(3))


def test_implicit_accuracy_is_biased_and_the_reviewed_intervals_cover_per_day_and_per_week():
    """200 seeded redraws of the audit over a fixed 7-day world: the day's and a narrow row's reviewed accuracy,
    and the week's (each day's cells separate strata), cover the truth at about 95 %; the automation-bias rate is
    unbiased; implicit accuracy is far above the truth with a CI that excludes it."""
    days = [world(seed) for seed in range(7)]
    cases = days[0][0]
    ok = cases[cases["status"] == "ok"]
    implicit = compute_kpis(cases, ImpactConfig())
    total_implicit = implicit["correct_cases"].sum() / implicit["labeled_cases"].sum()
    truth_day = float(ok["true_correct"].mean())
    assert total_implicit - truth_day > 0.05
    wilson_low = stats.binomtest(int(implicit["correct_cases"].sum()),
                                 int(implicit["labeled_cases"].sum())).proportion_ci(method="wilson").low
    assert wilson_low > truth_day  # the implicit figure's own interval excludes the truth

    row_key = ("s", "v2", "business")  # ~10 % of the day, cutting every cell
    in_row = (ok[KEYS].astype(str).agg("|".join, axis=1) == "|".join(row_key)).to_numpy()
    truth_row = float(ok["true_correct"].to_numpy()[in_row].mean())
    accepted = ok["user_action"] == "accepted"
    truth_bias = float((~ok.loc[accepted, "true_correct"].astype(bool)).mean())
    week_ok = pd.concat([p for _, p in days])
    truth_week = float(week_ok["true_correct"].mean())
    truth_week_row = float(week_ok.loc[(week_ok[KEYS].astype(str).agg("|".join, axis=1) == "|".join(row_key))
                                       .to_numpy(), "true_correct"].mean())
    redraws = [Redraw(p, row_key) for _, p in days]
    rng = np.random.default_rng(20261202)
    reps = 200
    hits = {"day": 0, "row": 0, "week": 0, "week_row": 0, "bias": 0}
    bias_estimates = []

    def covers(found: dict[str, object], name: str, truth: float) -> bool:
        return bool(found[f"{name}_ci_low"] <= truth <= found[f"{name}_ci_high"])

    for _ in range(reps):
        draws = [redraw.draw(rng) for redraw in redraws]
        total = _estimate(redraws[:1], draws[:1], False, ("reviewed_accuracy", "automation_bias_rate"))
        hits["day"] += covers(total, "reviewed_accuracy", truth_day)
        hits["bias"] += covers(total, "automation_bias_rate", truth_bias)
        bias_estimates.append(total["automation_bias_rate"])
        hits["row"] += covers(_estimate(redraws[:1], draws[:1], True, ("reviewed_accuracy",)),
                              "reviewed_accuracy", truth_row)
        hits["week"] += covers(_estimate(redraws, draws, False, ("reviewed_accuracy",)), "reviewed_accuracy",
                               truth_week)
        hits["week_row"] += covers(_estimate(redraws, draws, True, ("reviewed_accuracy",)), "reviewed_accuracy",
                                   truth_week_row)
    coverage = {k: v / reps for k, v in hits.items()}
    # 95 % nominal; with 200 replications the binomial SE is 0.015: 3 SE below is 0.905. Korn–Graubard is mildly
    # conservative, so the upper bound allows it, not a degenerate always-covering interval.
    for name, share in coverage.items():
        assert 0.905 <= share <= 0.995, (name, coverage)
    errors = np.asarray(bias_estimates) - truth_bias
    assert abs(errors.mean()) <= 3 * errors.std(ddof=1) / np.sqrt(reps), (errors.mean(), truth_bias)


def test_rollup_recomputes_from_the_days_cells_not_an_average_of_daily_rates():
    """combine over two days with their cells = estimate_rows over the pooled cells with the day as stratum
    identity; and differs from the mean of the two daily rates when the days differ in size."""
    impact = ImpactConfig()
    (cases_a, p1_a), (cases_b, p1_b) = world(21, n=2000), world(22, n=600)
    cells_a = reviewed.review_cells(p1_a, perfect_verdicts(p1_a))
    cells_b = reviewed.review_cells(p1_b, perfect_verdicts(p1_b))
    day_a, day_b = dt.date(2026, 3, 2), dt.date(2026, 3, 3)
    rows = pd.concat([compute_kpis(cases_a, impact, cells_a).assign(kpi_date=day_a),
                      compute_kpis(cases_b, impact, cells_b).assign(kpi_date=day_b)], ignore_index=True)
    cells = pd.concat([cells_a.assign(kpi_date=day_a), cells_b.assign(kpi_date=day_b)], ignore_index=True)
    percentiles = pd.DataFrame({"decision_seconds_p50": [np.nan], "decision_seconds_p90": [np.nan],
                                "latency_ms_p50": [np.nan], "latency_ms_p95": [np.nan], "latency_ms_p99": [np.nan]})
    total = combine(rows, percentiles, [], impact.ci_level, review_cells=cells)
    pooled, _ = reviewed.estimate_rows(cells, [], 0.95, identity=["kpi_date"])
    assert total["reviewed_accuracy"][0] == pytest.approx(pooled["reviewed_accuracy"][0], rel=1e-12)
    assert total["reviewed_cases_audited"][0] == cells["audited"].sum()
    daily = [reviewed.estimate_rows(c, [], 0.95)[0]["reviewed_accuracy"][0] for c in (cells_a, cells_b)]
    assert total["reviewed_accuracy"][0] != pytest.approx(np.mean(daily), abs=1e-6)
    lo, hi = total["reviewed_accuracy_ci_low"][0], total["reviewed_accuracy_ci_high"][0]
    assert lo < total["reviewed_accuracy"][0] < hi
