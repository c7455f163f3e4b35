"""The sampling design: allocation, strata, exact inclusion probabilities, split, determinism and versions."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from eval_pipelines.config import ConfigError, parse_settings
from eval_pipelines.evalsets.build import sample_cases
from eval_pipelines.evalsets.design import (
    MAX_LEVELS_PER_COLUMN,
    allocate,
    allocation_scores,
    assign_strata,
    draw,
    holdout_split,
    sampling_keys,
    select_smallest,
)
from eval_pipelines.evalsets.settings import EvalSetConfig
from eval_pipelines.labeling.labels import FAILURE_TAGS

# ----------------------------------------------------------------------------------------------------------------
# Fixtures
# ----------------------------------------------------------------------------------------------------------------


def cases_frame(n: int, seed: int = 0, day: str = "2026-10-01", prefix: str = "e") -> pd.DataFrame:
    """A labeled_cases-shaped frame with the columns the design reads and replays."""
    rng = np.random.default_rng(seed)
    segment = rng.choice(["enterprise", "business", "consumer"], n, p=[0.2, 0.3, 0.5])
    action = rng.choice(["accepted", "edited", "overridden", "rejected", None], n, p=[0.6, 0.15, 0.15, 0.05, 0.05])
    version = rng.choice(["v1", "v2"], n)
    correct = np.where(action == "accepted", rng.random(n) < 0.95, rng.random(n) < 0.1)
    frame = pd.DataFrame({
        "event_id": [f"{prefix}-{day}-{i:06d}" for i in range(n)],
        "timestamp": pd.Timestamp(day, tz="UTC") + pd.to_timedelta(rng.integers(0, 86_400, n), unit="s"),
        "system": "triage", "model_version": version, "segment": segment,
        "input_text": [f"ticket {i} about {s}" for i, s in enumerate(segment)],
        "ai_output": "billing/low", "label": np.where(correct, "billing/low", "refund/high"),
        "user_action": pd.array(action, dtype="str"),
        "is_labeled": True, "ai_correct": pd.array(correct, dtype="boolean"),
        "correctness": np.where(correct, "correct", "wrong"), "failure_tags": "",
        "channel": rng.choice(["email", "chat"], n), "customer_tenure_days": rng.integers(0, 900, n),
    })
    for tag in FAILURE_TAGS:
        frame[f"tag_{tag}"] = False
    frame["tag_override"] = action == "overridden"
    frame["tag_edit"] = action == "edited"
    frame["tag_low_confidence"] = rng.random(n) < 0.1
    return frame


def config(**changes: object) -> EvalSetConfig:
    base = {"size": 300, "min_per_stratum": 3, "seed": 1}
    return EvalSetConfig(**{**base, **changes})


# ----------------------------------------------------------------------------------------------------------------
# Allocation
# ----------------------------------------------------------------------------------------------------------------


def test_allocation_sums_to_the_size_and_gives_every_stratum_its_minimum():
    rng = np.random.default_rng(42)
    checked = 0
    for _ in range(2000):
        strata = int(rng.integers(1, 40))
        population = rng.integers(1, 3000, strata) * (rng.random(strata) < 0.9) + rng.integers(1, 4, strata)
        scores = rng.random(strata) * rng.choice([1.0, 100.0], strata)
        minimum = int(rng.integers(2, 10))
        floor, total = int(np.minimum(minimum, population).sum()), int(population.sum())
        if total <= floor:  # every stratum below its minimum: nothing to allocate
            continue
        size = int(rng.integers(floor, total))  # feasible and smaller than the frame
        result = allocate(population, scores, size, minimum)
        assert result.sizes.sum() == size == result.size
        assert (result.sizes <= population).all()
        assert (result.sizes >= np.minimum(minimum, population)).all()  # a stratum with enough cases gets its minimum
        assert not result.size_raised and not result.census
        checked += 1
    assert checked > 1900


@pytest.mark.parametrize(
    ("population", "scores", "size", "minimum", "expected"),
    [
        ([100, 200, 700], [100, 200, 700], 100, 2, [10, 20, 70]),  # proportional, exact
        ([50, 50, 50, 9], [1, 1, 1, 1], 40, 2, [11, 10, 10, 9]),  # equal; the cap binds; remainder to the first
        ([1000, 3, 10], [1000, 3, 10], 50, 5, [42, 3, 5]),  # the minimum binds; a 3-case stratum is taken whole
        ([600, 400], [600, 1200], 100, 2, [33, 67]),  # over-sampling factor 3 on the second stratum
        ([5, 4, 3], [5, 4, 3], 6, 1, [3, 2, 1]),  # fractions .5/.0/.5 tie: the larger stratum gets the unit
    ],
)
def test_allocation_closed_forms(population, scores, size, minimum, expected):
    assert allocate(np.array(population), np.array(scores, dtype=float), size, minimum).sizes.tolist() == expected


def test_allocation_corner_cases():
    census = allocate(np.array([3, 4]), np.array([1.0, 1.0]), 10, 2)
    assert census.census and census.sizes.tolist() == [3, 4]
    raised = allocate(np.full(30, 100), np.ones(30), 100, 5)
    assert raised.size_raised and raised.sizes.tolist() == [5] * 30 and raised.size == 150
    with pytest.raises(ValueError):
        allocate(np.array([3, 4]), np.array([1.0, -1.0]), 5, 2)


def test_allocation_scores_match_their_definitions():
    population = np.array([1000, 1000, 10])
    correct = np.array([500, 1000, 5])
    assert allocation_scores(population, correct, "proportional").tolist() == [1000, 1000, 10]
    assert allocation_scores(population, correct, "equal").tolist() == [1, 1, 1]
    smoothed = (correct + 1) / (population + 2)
    np.testing.assert_allclose(allocation_scores(population, correct, "neyman"),
                               population * np.sqrt(smoothed * (1 - smoothed)))
    np.testing.assert_allclose(allocation_scores(population, correct, "proportional", np.array([1, 2, 3])),
                               [1000, 2000, 30])


# ----------------------------------------------------------------------------------------------------------------
# Strata and selection
# ----------------------------------------------------------------------------------------------------------------


def test_strata_labels_nulls_and_failure_groups():
    frame = pd.DataFrame({
        "segment": pd.array(["a", "b", None, "a"], dtype="str"),
        "tag_override": [True, False, False, True], "tag_error": [True, True, False, False],
    })
    strata = assign_strata(frame, ["segment"], [("error", 3.0), ("override", 2.0)])
    labels = [strata.labels[c] for c in strata.codes]
    assert labels == ["segment=a|failure=error", "segment=b|failure=error", "segment=<null>|failure=none",
                      "segment=a|failure=override"]
    assert strata.labels == sorted(strata.labels)
    factors = dict(zip(strata.labels, strata.factors, strict=True))
    assert factors["segment=a|failure=error"] == 3.0 and factors["segment=<null>|failure=none"] == 1.0


def test_strata_reject_continuous_and_missing_columns():
    with pytest.raises(ValueError, match="bin"):
        assign_strata(pd.DataFrame({"x": np.arange(MAX_LEVELS_PER_COLUMN + 1)}), ["x"])
    with pytest.raises(KeyError, match="not in labeled_cases"):
        assign_strata(pd.DataFrame({"x": [1]}), ["y"])


def test_select_smallest_equals_a_full_sort():
    rng = np.random.default_rng(7)
    for _ in range(300):
        strata = int(rng.integers(1, 8))
        codes = rng.integers(0, strata, int(rng.integers(1, 400)))
        population = np.bincount(codes, minlength=strata)
        sizes = np.array([rng.integers(0, p + 1) for p in population])
        keys = rng.integers(0, 2**64, len(codes), dtype=np.uint64)
        if rng.random() < 0.3:  # coarse keys: ties, and thresholds that cut through them
            keys = (keys >> np.uint64(60)) << np.uint64(60)
        order = np.lexsort((np.arange(len(codes)), keys, codes))
        rank = np.empty(len(codes), dtype=np.int64)
        for code in range(strata):
            members = order[codes[order] == code]
            rank[members] = np.arange(len(members))
        expected = np.flatnonzero(rank < sizes[codes])
        np.testing.assert_array_equal(select_smallest(codes, keys, sizes), expected)


def test_inclusion_probabilities_are_exact_on_a_small_frame():
    """Allocation by hand, pi = n_h / N_h, and the draw is SRSWOR: every subset of a stratum equally likely."""
    frame = pd.DataFrame({"segment": ["a"] * 5 + ["b"] * 4 + ["c"] * 3})
    ids = pd.Series([f"case-{i}" for i in range(12)])
    strata = assign_strata(frame, ["segment"])
    correct = np.zeros(12, dtype=bool)
    # Hand allocation of 6 over N = (5, 4, 3): 2.5 / 2 / 1.5 -> floors 2, 2, 1; the spare unit breaks the .5 tie
    # toward the larger stratum a -> (3, 2, 1); so pi = (3/5, 2/4, 1/3).
    design = draw(strata, sampling_keys(ids, 0), correct, size=6, allocation="proportional", minimum=1)
    table = design.strata.set_index("stratum")
    assert table["sample"].tolist() == [3, 2, 1]
    np.testing.assert_allclose(table["inclusion_prob"], [3 / 5, 2 / 4, 1 / 3], rtol=0, atol=1e-15)
    np.testing.assert_allclose(table["weight"], [5 / 3, 4 / 2, 3 / 1], rtol=0, atol=1e-15)

    draws = 3000
    hits = np.zeros(12)
    subsets_a: dict[tuple[int, ...], int] = {}
    for seed in range(draws):
        chosen = draw(strata, sampling_keys(ids, seed), correct, 6, "proportional", 1).selected
        hits[chosen] += 1
        key = tuple(int(i) for i in chosen if i < 5)
        subsets_a[key] = subsets_a.get(key, 0) + 1
    pi = np.array([3 / 5] * 5 + [2 / 4] * 4 + [1 / 3] * 3)
    z = (hits / draws - pi) / np.sqrt(pi * (1 - pi) / draws)
    assert np.abs(z).max() < 4.0, z  # 12 binomial z-scores: |z| < 4 fails with probability < 1e-3
    # All C(5, 3) = 10 subsets of stratum a occur, equally often (chi-square goodness of fit).
    assert set(subsets_a) == set(combinations(range(5), 3))
    assert stats.chisquare(list(subsets_a.values())).pvalue > 1e-3


# ----------------------------------------------------------------------------------------------------------------
# The eval set as a whole
# ----------------------------------------------------------------------------------------------------------------


def test_eval_set_carries_design_fields_and_respects_the_plan():
    cases = cases_frame(5000)
    built = sample_cases(cases, config(), feature_columns=["channel", "customer_tenure_days"])
    assert len(built.cases) == 300 == built.strata["sample"].sum()
    minimum = built.strata[built.strata["population"] >= 3]
    assert (minimum["sample"] >= 3).all()
    merged = built.cases.merge(built.strata, on="stratum", suffixes=("", "_s"))
    np.testing.assert_allclose(merged["inclusion_prob"], merged["sample"] / merged["population"])
    np.testing.assert_allclose(merged["weight"] * merged["inclusion_prob"], 1.0)
    assert built.strata["population"].sum() == built.population == len(cases)
    assert set(built.cases["event_id"]) <= set(cases["event_id"])
    row = built.cases.iloc[0]
    source = cases.set_index("event_id").loc[row["event_id"]]
    assert row["input_text"] == source["input_text"] and row["label"] == source["label"]
    assert row["features"].startswith('{"channel": ')
    assert all(s.endswith(("failure=none", "failure=override", "failure=low_confidence", "failure=edit"))
               for s in built.strata["stratum"])


def test_unlabeled_cases_are_not_in_the_frame():
    cases = cases_frame(2000)
    cases.loc[cases.index[:500], "is_labeled"] = False
    built = sample_cases(cases, config(size=2000))
    assert built.population == 1500 and built.allocation.census
    assert not set(built.cases["event_id"]) & set(cases["event_id"].iloc[:500])


def test_failure_rich_strata_are_oversampled():
    cases = cases_frame(20_000)
    plain = sample_cases(cases, config(oversample={}))
    rich = sample_cases(cases, config(oversample={"override": 4.0}))
    def overridden_share(built) -> float:
        return float(built.cases["stratum"].str.contains("user_action=overridden").mean())

    production = float((cases["user_action"] == "overridden").mean())
    assert abs(overridden_share(plain) - production) < 0.02  # proportional: the set mirrors production
    assert overridden_share(rich) > 2.5 * production  # factor 4 (shrunk a little by the other strata's minimums)


def test_same_data_and_plan_give_the_same_set_whatever_the_row_order():
    cases = cases_frame(4000)
    first = sample_cases(cases, config())
    again = sample_cases(cases.sample(frac=1.0, random_state=3).reset_index(drop=True), config())
    assert again.version == first.version
    pd.testing.assert_frame_equal(again.cases, first.cases)


def test_version_changes_with_the_plan_and_with_the_data():
    cases = cases_frame(4000)
    base = sample_cases(cases, config()).version
    for change in ({"size": 301}, {"seed": 2}, {"strata": ["segment"]}, {"allocation": "equal"},
                   {"holdout_fraction": 0.3}, {"min_per_stratum": 4}):
        assert sample_cases(cases, config(**change)).version != base, change
    built = sample_cases(cases, config())
    sampled = set(built.cases["event_id"])
    unsampled = cases.index[~cases["event_id"].isin(sampled)][0]
    assert sample_cases(cases.drop(index=unsampled), config()).version != base  # one fewer case in the window
    flipped = cases.copy()
    row = flipped.index[flipped["event_id"] == built.cases["event_id"].iloc[0]][0]
    flipped.loc[row, "label"] = "something/else"  # a sampled case's label changed
    assert sample_cases(flipped, config()).version != base
    relabeled = cases.copy()
    relabeled.loc[unsampled, "ai_correct"] = not bool(relabeled.loc[unsampled, "ai_correct"])
    assert sample_cases(relabeled, config()).version != base  # an unsampled case's correctness changed


def test_holdout_split_is_stable_per_case_and_near_the_fraction():
    ids = pd.Series([f"id-{i}" for i in range(20_000)])
    split = holdout_split(ids, seed=1, fraction=0.2)
    assert abs((split == "holdout").mean() - 0.2) < 0.015
    np.testing.assert_array_equal(holdout_split(ids.iloc[::-1], 1, 0.2), split[::-1])
    assert (holdout_split(ids, 1, 0.0) == "dev").all()


def test_consecutive_windows_share_most_of_their_cases():
    """Permanent random numbers: with the seed fixed, a case keeps its key, so a refresh over an overlapping window
    re-selects most cases and keeps their split."""
    days = [cases_frame(3000, seed=i, day=f"2026-10-0{i + 1}") for i in range(5)]
    week1 = sample_cases(pd.concat(days[:4], ignore_index=True), config())
    week2 = sample_cases(pd.concat(days[1:], ignore_index=True), config())
    old = week1.cases[~week1.cases["event_id"].str.contains("2026-10-01")]
    shared = old.merge(week2.cases, on="event_id", suffixes=("_1", "_2"))
    assert len(shared) > 0.6 * len(old)
    assert (shared["split_1"] == shared["split_2"]).all()


def test_config_is_validated_at_load_with_the_key_path():
    for section, fragment in (({"refresh_cron": "every monday"}, "eval_set.refresh_cron"),
                              ({"oversample": {"nope": 2.0}}, "eval_set.oversample"),
                              ({"oversample": {"override": 0.5}}, "eval_set.oversample"),
                              ({"min_per_stratum": 1}, "eval_set.min_per_stratum"),
                              ({"allocation": "optimal"}, "eval_set.allocation"),
                              ({"strata": ["segment", "segment"]}, "eval_set.strata"),
                              ({"holdout_fraction": 1.0}, "eval_set.holdout_fraction"),
                              ({"sizes": 10}, "eval_set.sizes")):
        with pytest.raises(ConfigError, match=fragment.replace(".", r"\.")):
            parse_settings({"eval_set": section})
    assert parse_settings({}).eval_set == EvalSetConfig()
    assert EvalSetConfig(oversample={"edit": 1.5, "error": 3.0, "override": 3.0}).oversample_order() == [
        ("error", 3.0), ("override", 3.0), ("edit", 1.5)]
