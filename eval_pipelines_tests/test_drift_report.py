"""Drift verdicts: quiet without drift at 10k / 100k / 1M rows, silent on immaterial shifts, loud on material ones."""

from __future__ import annotations

import re
from datetime import date
from xml.etree import ElementTree

import numpy as np
import pandas as pd
import pytest

from eval_pipelines.config import ConfigError, parse_settings
from eval_pipelines.drift.monitors import Monitor, default_monitors, infer_monitors
from eval_pipelines.drift.render import html_report, markdown_summary, sparkline
from eval_pipelines.drift.report import (
    RESULT_FIELDS,
    compare,
    compare_frames,
    major_drift_exclusions,
    profile_frame,
    reference_window,
    screen_major_drift,
    window_profile,
)
from eval_pipelines.drift.settings import DriftConfig, ReferenceWindowConfig
from eval_pipelines.drift.stats import calibration_shift
from eval_pipelines.drift.synthetic import (
    CATEGORICAL_COLUMNS,
    NORMAL_STD,
    NUMERIC_COLUMNS,
    synthetic_frame,
)

CONFIG = DriftConfig()
MONITORS = [Monitor(c, "numeric", c) for c in NUMERIC_COLUMNS] + [
    Monitor(c, "categorical", c) for c in CATEGORICAL_COLUMNS
]


def _by_key(report) -> dict[tuple[str, str], object]:
    return {(r.column, r.kind): r for r in report.results}


# ----------------------------------------------------------------------------------------------------------------
# No drift: false positives at every sample size
# ----------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("rows", "seeds"), [(10_000, 30), (100_000, 8), (1_000_000, 2)])
def test_no_drift_flags_at_most_one_percent_of_columns(rows: int, seeds: int) -> None:
    flagged = checks = 0
    raw_rejections = raw_tests = 0
    for seed in range(seeds):
        reference = synthetic_frame(rows, seed=10_000 + 2 * seed)
        current = synthetic_frame(rows, seed=10_001 + 2 * seed)
        report = compare_frames(reference, current, MONITORS, CONFIG, with_plots=False)
        assert len(report.results) == 16  # 14 columns + the missing share of the 2 columns with missing values
        flagged += len(report.drifted)
        checks += len(report.results)
        pvalues = [r.p_value for r in report.results if r.p_value is not None]
        raw_rejections += sum(p <= 0.05 for p in pvalues)
        raw_tests += len(pvalues)
    assert flagged <= 0.01 * checks, f"{flagged} of {checks} checks flagged without drift at {rows:,} rows"
    # The tests themselves are calibrated (not merely gated by the effect size): about 5 % raw p <= 0.05.
    if raw_tests >= 200:
        assert raw_rejections / raw_tests <= 0.09


# ----------------------------------------------------------------------------------------------------------------
# Immaterial at 1M, material at 10k
# ----------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def million_reference():
    return profile_frame(synthetic_frame(1_000_000, seed=1), MONITORS, CONFIG)


def test_tiny_shifts_on_a_million_rows_are_detectable_but_not_flagged(million_reference) -> None:
    current = synthetic_frame(1_000_000, seed=2, mean_shift={"num_normal": 1.0},  # 1 % of the mean 100
                              share_shift={"cat_binary": (0, 1, 0.003),  # 0.3 points of share, 90 % -> 89.7 %
                                           "cat_channel": (0, 1, 0.003)})
    results = _by_key(compare(million_reference, current, MONITORS, CONFIG))
    mean_shift, share_shift = results[("num_normal", "numeric")], results[("cat_binary", "categorical")]
    for result in (mean_shift, share_shift):
        assert result.p_adjusted < 1e-6, "at 1M rows the shift is statistically detectable..."
        assert not result.drifted and result.severity == "none", "...but immaterial by default"
        assert result.reason.startswith("immaterial")
    assert mean_shift.effect_size == pytest.approx(1.0 / NORMAL_STD, abs=0.01)
    assert share_shift.effect_size == pytest.approx(0.003, abs=0.0015)
    assert results[("cat_channel", "categorical")].effect_size < 0.006
    assert not any(r.drifted for r in results.values())


def test_material_shifts_on_ten_thousand_rows_are_flagged() -> None:
    hits = 0
    for seed in range(5):
        reference = synthetic_frame(10_000, seed=100 + 2 * seed)
        current = synthetic_frame(10_000, seed=101 + 2 * seed, mean_shift={"num_normal": 0.3 * NORMAL_STD},
                                  share_shift={"cat_channel": (0, 1, 0.05)})
        results = _by_key(compare_frames(reference, current, MONITORS, CONFIG))
        mean_shift, share_shift = results[("num_normal", "numeric")], results[("cat_channel", "categorical")]
        assert mean_shift.drifted and share_shift.drifted
        assert "channel_000" in share_shift.reason and "channel_001" in share_shift.reason
        hits += sum(r.drifted for r in results.values())
    assert hits == 10, "nothing else drifted"


def test_an_eight_point_drop_in_a_rate_is_flagged_though_distances_are_small() -> None:
    """The issue's example: fixed distance thresholds miss an 8-point acceptance drop; share changes do not."""
    rng = np.random.default_rng(5)
    actions = np.array(["accepted", "edited", "overridden", "rejected", "ignored"])
    reference = pd.DataFrame({"user_action": rng.choice(actions, 20_000, p=[0.85, 0.07, 0.04, 0.02, 0.02])})
    current = pd.DataFrame({"user_action": rng.choice(actions, 5_000, p=[0.77, 0.10, 0.07, 0.03, 0.03])})
    result = compare_frames(reference, current, [Monitor("user_action", "categorical", "user_action")],
                            CONFIG).results[0]
    assert result.details["jensen_shannon"] < 0.1  # what a "Jensen-Shannon >= 0.1" rule would miss (true: 0.088)
    assert result.drifted and result.severity == "major"
    assert "share of 'accepted' 84.8% → 78.1%" in result.reason


# ----------------------------------------------------------------------------------------------------------------
# Missing values, unseen categories, calibration, overrides
# ----------------------------------------------------------------------------------------------------------------


def test_missing_share_is_monitored_and_unseen_categories_are_named() -> None:
    rng = np.random.default_rng(3)
    reference = pd.DataFrame({
        "amount": np.where(rng.random(20_000) < 0.01, np.nan, rng.normal(50, 5, 20_000)),
        "product": rng.choice(["core", "pro"], 20_000, p=[0.65, 0.35]),
    })
    current = pd.DataFrame({
        "amount": np.where(rng.random(8000) < 0.12, np.nan, rng.normal(50, 5, 8000)),
        "product": rng.choice(["core", "pro", "nova", "beta"], 8000, p=[0.5, 0.28, 0.21, 0.01]),
    })
    current.loc[:4, "product"] = None
    monitors = [Monitor("amount", "numeric", "amount"), Monitor("product", "categorical", "product")]
    results = _by_key(compare_frames(reference, current, monitors, CONFIG))
    assert not results[("amount", "numeric")].drifted  # the distribution of the present values did not move
    missing = results[("amount", "missing")]
    assert missing.drifted and missing.severity == "major" and "missing 1.1% → 12.4%" in missing.reason
    product = results[("product", "categorical")]
    assert product.drifted
    assert "unseen: 'nova' 21" in product.reason and "'beta'" in product.reason
    assert [u["category"] for u in product.details["unseen"]] == ["nova", "beta"]
    assert results[("product", "missing")].effect_size == pytest.approx(5 / 8000)


def test_not_enough_rows_is_not_tested_and_never_drifts() -> None:
    reference = synthetic_frame(5000, seed=1)
    current = synthetic_frame(60, seed=2, mean_shift={"num_normal": 100.0})
    results = compare_frames(reference, current, MONITORS, CONFIG).results
    assert all(r.reason.startswith("not enough data: ") for r in results)
    assert not any(r.drifted for r in results) and all(r.p_adjusted is None for r in results)


@pytest.mark.parametrize("rows", [0, 60])
def test_an_empty_or_tiny_day_says_not_enough_data_instead_of_no_drift(rows: int) -> None:
    from eval_pipelines.drift.assets import _check_result

    current = synthetic_frame(max(rows, 1), seed=2).iloc[:rows]
    report = compare_frames(synthetic_frame(5000, seed=1), current, MONITORS, CONFIG)
    assert report.verdict == "not enough data" and report.tested == [] and len(report.results) == 16
    for text in (markdown_summary(report, "2026-03-01", "x"), html_report(report, "2026-03-01", "x")):
        assert "Not enough data" in text and "No drift" not in text
    check = _check_result(report, ["2026-02-28"])
    assert check.description.startswith("not enough data") and check.metadata["verdict"].value == "not enough data"
    # a normal day keeps its verdict, and the headline counts only what was tested
    normal = compare_frames(synthetic_frame(5000, seed=1), synthetic_frame(5000, seed=3), MONITORS, CONFIG)
    assert normal.verdict == "no drift" and "No drift** in 16 tested checks." in markdown_summary(normal, None, "x")


def _calibration_frame(rows: int, accuracy_offset: float, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    confidence = rng.beta(6, 2, rows)
    correct = rng.random(rows) < np.clip(confidence + accuracy_offset, 0, 1)
    return pd.DataFrame({"confidence": confidence, "ai_correct": pd.array(correct, dtype="boolean")})


def test_calibration_drift_is_accuracy_at_equal_confidence() -> None:
    monitors = [Monitor("confidence", "numeric", "confidence"),
                Monitor("confidence", "calibration", "confidence", "calibration")]
    reference = _calibration_frame(20_000, 0.0, seed=1)
    overconfident = _calibration_frame(10_000, -0.08, seed=2)  # same confidence, 8 points less often right
    results = _by_key(compare_frames(reference, overconfident, monitors, CONFIG))
    assert not results[("confidence", "numeric")].drifted  # the confidence distribution itself did not move
    calibration = results[("confidence", "calibration")]
    assert calibration.drifted and calibration.effect_size == pytest.approx(0.08, abs=0.02)
    assert "accuracy at equal confidence -" in calibration.reason
    steady = _by_key(compare_frames(reference, _calibration_frame(10_000, 0.0, seed=3), monitors, CONFIG))
    assert not steady[("confidence", "calibration")].drifted


CALIBRATION = [Monitor("confidence", "calibration", "confidence", "calibration")]


def _uniform_confidence_frame(rows: int, accuracy, seed: int) -> pd.DataFrame:
    """Confidence uniform on [0, 1]; P(correct) = accuracy(confidence)."""
    rng = np.random.default_rng(seed)
    confidence = rng.random(rows)
    correct = rng.random(rows) < np.clip(accuracy(confidence), 0, 1)
    return pd.DataFrame({"confidence": confidence, "ai_correct": pd.array(correct, dtype="boolean")})


def test_calibration_flattening_is_major_although_the_overall_accuracy_is_unchanged() -> None:
    """Accuracy goes from P(correct) = confidence to a flat 50 %: over- and under-confidence must not cancel.

    Per-bin shifts are 0.5 − bin centre, i.e. ±5 … ±45 pt: RMS sqrt(mean((0.5 − c)²)) = 28.7 pt, net ~0 pt.
    """
    reference = _uniform_confidence_frame(20_000, lambda c: c, seed=1)
    current = _uniform_confidence_frame(20_000, lambda c: np.full_like(c, 0.5), seed=2)
    result = compare_frames(reference, current, CALIBRATION, CONFIG, with_plots=False).results[0]
    assert result.drifted and result.severity == "major", result.reason
    assert result.effect_size == pytest.approx(0.287, abs=0.01)
    assert abs(result.details["accuracy_shift"]) < 0.01  # the signed net shift stays in the details
    assert result.details["accuracy_shift_mean_abs"] == pytest.approx(0.25, abs=0.01)
    assert result.details["ece_bin_centre_cur"] > 0.2 > 0.02 > result.details["ece_bin_centre_ref"]
    assert "per bin -4" in result.reason and "to +4" in result.reason and "RMS accuracy shift 2" in result.reason


def test_calibration_uniform_small_shift_is_detected_but_immaterial() -> None:
    """2 points less often right in every bin, on 200k rows: significant, but under the 5 pt threshold."""
    reference = _uniform_confidence_frame(200_000, lambda c: c, seed=3)
    current = _uniform_confidence_frame(200_000, lambda c: c - 0.02, seed=4)
    result = compare_frames(reference, current, CALIBRATION, CONFIG, with_plots=False).results[0]
    assert result.p_adjusted < 1e-10 and not result.drifted and result.severity == "none", result.reason
    assert result.effect_size == pytest.approx(0.02, abs=0.004)
    assert result.details["accuracy_shift"] == pytest.approx(-0.02, abs=0.004)


def test_calibration_rms_shift_matches_the_closed_form_and_is_unbiased() -> None:
    # Hand-computed: bins 0.2 → 0.3 (+10 pt, 100 current rows), 0.8 → 0.7 (−10 pt, 300 rows).
    k_ref, n_ref = np.array([20.0, 80.0]), np.array([100.0, 100.0])
    k_cur, n_cur = np.array([30.0, 210.0]), np.array([100.0, 300.0])
    shift = calibration_shift(k_ref, n_ref, k_cur, n_cur)
    weights = np.array([0.25, 0.75])
    variance = np.array([0.2 * 0.8 / 99 + 0.3 * 0.7 / 99, 0.8 * 0.2 / 99 + 0.7 * 0.3 / 299])
    assert shift.signed == pytest.approx(0.25 * 0.1 - 0.75 * 0.1)
    assert shift.mean_abs == pytest.approx(0.1)
    assert shift.rms == pytest.approx(np.sqrt(np.sum(weights * (0.01 - variance))))
    # Seeded simulation: the noise-corrected mean square is unbiased (the plain one is not), with and without drift.
    rng = np.random.default_rng(0)
    p_ref = np.linspace(0.05, 0.95, 10)
    rows = np.full(10, 40)
    for delta in (np.zeros(10), np.where(np.arange(10) % 2, 0.04, -0.04)):
        squares, plain = [], []
        for _ in range(4000):
            kr, kc = rng.binomial(rows * 7, p_ref), rng.binomial(rows, np.clip(p_ref + delta, 0, 1))
            result = calibration_shift(kr, rows * 7, kc, rows)
            squares.append(result.mean_square)
            plain.append(np.mean((kc / rows - kr / (rows * 7)) ** 2))
        truth = float(np.mean(delta**2))
        assert np.mean(squares) == pytest.approx(truth, abs=4 * np.std(squares) / np.sqrt(4000))
        assert np.mean(plain) > truth + 0.004  # ~p(1-p)(1/40 + 1/280) of noise per bin, were it not removed


def test_per_column_overrides_and_relative_effects() -> None:
    reference = synthetic_frame(20_000, seed=1)
    current = synthetic_frame(20_000, seed=2, mean_shift={"num_lognormal": 0.06 * 850})  # ~6 % of the mean
    default = _by_key(compare_frames(reference, current, MONITORS, CONFIG))[("num_lognormal", "numeric")]
    assert default.drifted and default.effect == "wasserstein"
    relaxed = DriftConfig(columns={"num_lognormal": {"effect": "relative_mean", "minor": 0.1, "major": 0.3}})
    result = _by_key(compare_frames(reference, current, MONITORS, relaxed))[("num_lognormal", "numeric")]
    assert result.effect == "relative_mean" and result.threshold == 0.1
    assert result.effect_size == pytest.approx(0.06, abs=0.01)
    assert not result.drifted and "relative mean shift" in result.reason


def test_results_carry_every_table_field_and_secondary_statistics() -> None:
    report = compare_frames(synthetic_frame(5000, seed=1), synthetic_frame(5000, seed=2), MONITORS, CONFIG)
    frame = report.frame("2026-03-01")
    assert list(frame.columns[: len(RESULT_FIELDS)]) == list(RESULT_FIELDS)
    assert set(frame["severity"]) <= {"none", "minor", "major"}
    numeric = _by_key(report)[("num_normal", "numeric")].details
    assert {"psi", "wasserstein", "wasserstein_normalised", "ks_statistic_max_error", "mean_ref"} <= set(numeric)
    categorical = _by_key(report)[("cat_code", "categorical")].details
    assert {"jensen_shannon", "psi", "pooled_categories", "share_changes"} <= set(categorical)
    assert categorical["pooled_categories"], "the rare codes are pooled for the chi-square test"
    for record in report.json_records():
        assert set(RESULT_FIELDS) <= set(record) and record["date"] is None


# ----------------------------------------------------------------------------------------------------------------
# Windows, merged references, config, rendering
# ----------------------------------------------------------------------------------------------------------------


def test_reference_windows() -> None:
    day = date(2026, 3, 10)
    trailing = ReferenceWindowConfig(trailing_days=3, exclude_days=[date(2026, 3, 8)])
    assert reference_window(trailing, day) == [date(2026, 3, 7), date(2026, 3, 9)]
    fixed = ReferenceWindowConfig(mode="fixed", start=date(2026, 3, 8), end=date(2026, 3, 11))
    assert reference_window(fixed, day) == [date(2026, 3, 8), date(2026, 3, 9), date(2026, 3, 11)]
    weekly = ReferenceWindowConfig(mode="same_weekday", weeks=3, exclude_days=[date(2026, 2, 24)])
    assert reference_window(weekly, day) == [date(2026, 2, 17), date(2026, 3, 3)]  # Tuesdays only
    assert {d.weekday() for d in reference_window(weekly, day)} == {day.weekday()}


def test_days_with_their_own_major_drift_leave_that_columns_reference_while_they_are_few() -> None:
    window = ReferenceWindowConfig(trailing_days=6, exclude_major_drift=True)
    days = [f"2026-03-0{i}" for i in range(1, 7)]
    major = {"latency_ms": {"2026-03-04"}, "product": {"2026-03-03", "2026-03-04", "2026-03-05", "2026-03-06"},
             "status": {"2026-02-20"}}
    # a one-day incident is excluded; a change that now fills 4 of 6 days is the new normal; outside days ignored
    assert major_drift_exclusions(window, days, major) == {"latency_ms": ["2026-03-04"]}
    assert major_drift_exclusions(window.model_copy(update={"exclude_major_drift": False}), days, major) == {}
    wider = window.model_copy(update={"exclude_major_drift_max_share": 0.7})
    assert set(major_drift_exclusions(wider, days, major)) == {"latency_ms", "product"}

    # the excluded day leaves every kind of that column, and only that column
    frames = [synthetic_frame(2_000, seed=s) for s in range(3)]
    frames[1]["num_normal"] = frames[1]["num_normal"] * 10.0  # the "incident" day
    profiles = [profile_frame(f, MONITORS, CONFIG, f"2026-03-0{i + 1}") for i, f in enumerate(frames)]
    excluded = {"num_normal": ["2026-03-02"]}
    merged = window_profile(profiles, CONFIG, excluded)
    assert merged.columns[("num_normal", "numeric")].n == window_profile([profiles[0], profiles[2]], CONFIG).columns[
        ("num_normal", "numeric")].n
    assert merged.columns[("cat_tier", "categorical")].n == sum(p.columns[("cat_tier", "categorical")].n
                                                                for p in profiles)
    report = compare(merged, synthetic_frame(2_000, seed=9), MONITORS, CONFIG, excluded=excluded)
    row = _by_key(report)[("num_normal", "numeric")]
    assert not row.drifted and "reference without 2026-03-02" in row.reason
    assert row.details["reference_days_excluded"] == ["2026-03-02"]
    assert any(note.startswith("num_normal: reference without 2026-03-02") for note in report.notes)


def test_screening_excludes_an_incident_from_the_window_data_alone_in_any_order() -> None:
    """exclude_major_drift decides from the window's own days (leave-one-out, trimmed), not from stored reports."""
    config = DriftConfig(reference=ReferenceWindowConfig(trailing_days=6, exclude_major_drift=True))
    days = [f"2026-03-0{i}" for i in range(1, 7)]
    frames = [synthetic_frame(1_000, seed=s) for s in range(6)]
    frames[2]["num_normal"] = frames[2]["num_normal"] * 10.0  # 2026-03-03: the incident
    cases = dict(zip(days, frames, strict=True))
    profiles = [profile_frame(f, MONITORS, config, d) for d, f in cases.items()]
    found = screen_major_drift(profiles, cases, MONITORS, config)
    assert found == {"num_normal": ["2026-03-03"]}  # the incident only, not the days judged against it
    assert screen_major_drift(profiles[::-1], dict(reversed(cases.items())), MONITORS, config) == found
    assert major_drift_exclusions(config.reference, days, found) == {"num_normal": ["2026-03-03"]}
    # a day without cases cannot be screened, so it is never excluded (the others then look drifted against it,
    # more of them than the share allows: nothing is excluded)
    unscreened = screen_major_drift(profiles, {d: f for d, f in cases.items() if d != "2026-03-03"}, MONITORS,
                                    config)
    assert "2026-03-03" not in unscreened.get("num_normal", [])
    assert major_drift_exclusions(config.reference, days, unscreened) == {}

    # a lasting change (4 of 6 days at the new level): the new level is the window's normal now, the two days
    # before it are the outliers, and they leave the reference (the change is no longer flagged)
    lasting = {d: (f.assign(num_normal=f["num_normal"] * 10.0) if i >= 2 else f)
               for i, (d, f) in enumerate(zip(days, [synthetic_frame(1_000, seed=s) for s in range(6)],
                                              strict=True))}
    lasting_profiles = [profile_frame(f, MONITORS, config, d) for d, f in lasting.items()]
    flagged = screen_major_drift(lasting_profiles, lasting, MONITORS, config)
    assert major_drift_exclusions(config.reference, days, flagged) == {"num_normal": ["2026-03-01", "2026-03-02"]}
    # while the change is the minority of the window (2 of 6 days), its days are the ones left out
    early = {d: (f.assign(num_normal=f["num_normal"] * 10.0) if i >= 4 else f)
             for i, (d, f) in enumerate(zip(days, [synthetic_frame(1_000, seed=s) for s in range(6)], strict=True))}
    early_profiles = [profile_frame(f, MONITORS, config, d) for d, f in early.items()]
    assert screen_major_drift(early_profiles, early, MONITORS, config) == {"num_normal": ["2026-03-05",
                                                                                         "2026-03-06"]}


def test_a_merged_window_gives_the_verdicts_of_the_raw_window() -> None:
    days = [synthetic_frame(20_000, seed=s) for s in range(4)]
    current = synthetic_frame(20_000, seed=9, mean_shift={"num_normal": 6.0}, share_shift={"cat_tier": (2, 0, 0.06)})
    merged = window_profile([profile_frame(d, MONITORS, CONFIG, f"2026-03-0{i + 1}") for i, d in enumerate(days)],
                            CONFIG)
    assert merged.days == ("2026-03-01", "2026-03-02", "2026-03-03", "2026-03-04") and merged.rows == 80_000
    from_profiles = _by_key(compare(merged, current, MONITORS, CONFIG))
    from_raw = _by_key(compare_frames(pd.concat(days, ignore_index=True), current, MONITORS, CONFIG))
    for key, raw in from_raw.items():
        assert from_profiles[key].drifted == raw.drifted, key
        assert from_profiles[key].effect_size == pytest.approx(raw.effect_size, abs=0.01), key
    assert from_raw[("num_normal", "numeric")].drifted and from_raw[("cat_tier", "categorical")].drifted
    # categorical statistics are exact after merging
    assert from_profiles[("cat_tier", "categorical")].statistic == pytest.approx(
        from_raw[("cat_tier", "categorical")].statistic, rel=1e-12)


@pytest.mark.parametrize(
    ("raw", "fragments"),
    [
        ({"drift": {"alpha": 1.5}}, ["drift.alpha", "less than 1"]),
        ({"drift": {"reference": {"mode": "fixed"}}}, ["drift.reference", "needs both start and end"]),
        ({"drift": {"reference": {"mode": "weekly"}}}, ["drift.reference.mode", "'trailing'", "'same_weekday'"]),
        ({"drift": {"reference": {"mode": "same_weekday", "weeks": 2, "min_days": 3}}},
         ["drift.reference", "exceeds weeks 2"]),
        ({"drift": {"reference": {"weeks": 0}}}, ["drift.reference.weeks"]),
        ({"drift": {"reference": {"exclude_major_drift_max_share": 0}}},
         ["drift.reference.exclude_major_drift_max_share"]),
        ({"drift": {"reference": {"exclude_major_drift": "sometimes"}}}, ["drift.reference.exclude_major_drift"]),
        ({"drift": {"effect_ci_level": 1.2}}, ["drift.effect_ci_level"]),
        ({"drift": {"numeric": {"discrete_max_values": -1}}}, ["drift.numeric.discrete_max_values"]),
        ({"drift": {"categorical": {"minor": 0.1, "major": 0.05}}}, ["drift.categorical", "minor <= major"]),
        ({"drift": {"columns": {"x": {"effect": "median"}}}}, ["drift.columns.x.effect"]),
        ({"drift": {"numeric": {"treshold": 1}}}, ["drift.numeric.treshold", "unknown key"]),
    ],
)
def test_bad_drift_config_fails_at_load_with_its_path(raw: dict, fragments: list[str]) -> None:
    with pytest.raises(ConfigError) as error:
        parse_settings(raw, "my.yaml")
    for fragment in fragments:
        assert fragment in str(error.value)


def test_default_monitors_cover_inputs_outputs_confidence_and_humans() -> None:
    monitors = default_monitors(["customer_tenure_days"], ["channel", "language", "product"])
    keys = {m.key for m in monitors}
    expected = {("customer_tenure_days", "numeric"), ("language", "categorical"), ("input_text_length", "numeric"),
                ("ai_output", "categorical"), ("confidence", "numeric"), ("confidence", "calibration"),
                ("user_action", "categorical"), ("decision_seconds", "numeric"), ("latency_ms", "numeric"),
                ("status", "categorical"), ("model_version", "categorical")}
    assert expected <= keys
    assert ("input_text_script", "categorical") not in keys  # the language column stands in for it
    without_language = default_monitors([], ["channel"], exclude=["cost_usd"])
    assert ("input_text_script", "categorical") in {m.key for m in without_language}
    assert "cost_usd" not in {m.column for m in without_language}


def test_script_mix_stands_in_for_a_missing_language_column() -> None:
    texts = ["Hello there", "Привет, мир", "注文が届きません Nova", "مرحبا", None, "  ", "12345"]
    monitor = [m for m in default_monitors([], []) if m.column == "input_text_script"]
    frame = pd.DataFrame({"input_text": pd.Series(texts * 30, dtype="str")})
    profile = profile_frame(frame, monitor, CONFIG).columns[("input_text_script", "categorical")]
    counts = dict(zip(profile.categories, profile.counts.tolist(), strict=True))
    assert counts == {"arabic": 30, "cjk": 30, "cyrillic": 30, "latin": 30, "other": 30}
    assert profile.n_missing == 60


def test_infer_monitors_by_type() -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "n": [1, 2, 3], "flag": [True, False, True],
                          "tier": pd.Series(["a", "b", "a"], dtype="str"), "when": pd.date_range("2026", periods=3),
                          "id": pd.Series([f"id{i}" for i in range(3)], dtype="str")})
    inferred = infer_monitors(frame, max_categories=2)
    assert {m.column: m.kind for m in inferred.monitors} == {"x": "numeric", "n": "numeric", "flag": "categorical",
                                                              "tier": "categorical"}
    assert set(inferred.skipped) == {"when", "id"}
    assert [m.column for m in infer_monitors(frame, numeric=["n"]).monitors] == ["n"]
    with pytest.raises(KeyError, match="nope"):
        infer_monitors(frame, numeric=["nope"])


def test_markdown_and_html_render_the_drifted_columns() -> None:
    current = synthetic_frame(10_000, seed=2, mean_shift={"num_normal": 9.0}, share_shift={"cat_tier": (2, 0, 0.1)})
    report = compare_frames(synthetic_frame(10_000, seed=1), current, MONITORS, CONFIG)
    history = pd.DataFrame([{**r.record("2026-03-02")} for r in report.results]
                           + [{**r.record("2026-03-01"), "drifted": False, "effect_size": 0.0}
                              for r in report.results])
    text = markdown_summary(report, "2026-03-02", "2026-03-01 (1 day)", history)
    assert "2 of 16 tested checks drifted (2 major)" in text and "`num_normal`" in text
    assert "█" in text and "| `num_normal` | numeric |" in text and "#### Timeline" in text
    page = html_report(report, "2026-03-02", "2026-03-01 (1 day)", history)
    assert page.startswith("<!doctype html>") and page.count("<svg") == 3  # two drifted columns + the timeline
    assert "num_normal" in page and "<polyline" in page
    for svg in re.findall(r"<svg.*?</svg>", page, re.S):
        ElementTree.fromstring(svg)  # each plot is well-formed XML
    assert sparkline([0.0, 1.0, None, 4.0, float("inf")]) == "▁▃ ██"
