"""Per-stratum sampling rates (``review.rates``), the documented alternative to ``review.daily_size``."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from eval_pipelines.config import ConfigError, parse_settings
from eval_pipelines.review.design import AuditDesignConfig, draw_audit_sample, rate_for_stratum
from eval_pipelines.review.settings import DEFAULT_DAILY_SIZE
from eval_pipelines_tests.test_review_vectorised import random_cases

DAY = dt.date(2026, 3, 2)
RATES = {"default": 0.02, "failure=fast_accept": 0.25, "segment=enterprise": 0.1}


def test_each_stratum_takes_its_rate_of_its_population() -> None:
    cases = random_cases(21, 20_000)
    config = AuditDesignConfig(rates=tuple(RATES.items()), minimum_per_stratum=2, seed=5)
    sample = draw_audit_sample(cases, DAY, config)
    strata = sample.strata[sample.strata["stratum"] != "certainty"].set_index("stratum")
    for label, row in strata.iterrows():
        rate = 0.25 if "failure=fast_accept" in label else 0.1 if "segment=enterprise" in label else 0.02
        assert rate_for_stratum(label, RATES) == rate
        expected = min(max(round(rate * row["population"]), 2), row["population"])
        assert row["sample"] == expected, label
        assert row["inclusion_prob"] == pytest.approx(expected / row["population"])
    # The selection is the design: per stratum exactly n_h selected, each with inclusion probability n_h / N_h.
    frame = sample.frame[~sample.frame["certainty"]]
    chosen = frame[frame["selected"]].groupby("stratum").size()
    assert chosen.reindex(strata.index, fill_value=0).tolist() == strata["sample"].tolist()
    assert sample.frame["inclusion_prob"].sum() == pytest.approx(len(sample.tasks))
    # The certainty stratum is still taken whole, on top of the rates.
    assert sample.tasks["certainty"].sum() == sample.frame["certainty"].sum() > 0
    fast = strata[strata.index.str.contains("failure=fast_accept")]
    other = strata[~strata.index.str.contains("failure=fast_accept|segment=enterprise")]
    assert fast["sample"].sum() / fast["population"].sum() > 5 * other["sample"].sum() / other["population"].sum()


def test_rates_overlapping_keys_take_the_largest() -> None:
    label = "review_action=accepted|confidence_band=[0.8,1]|segment=enterprise|failure=fast_accept"
    assert rate_for_stratum(label, RATES) == 0.25
    assert rate_for_stratum("review_action=edited|segment=consumer|failure=none", RATES) == 0.02


def test_rates_a_census_when_every_rate_is_one() -> None:
    cases = random_cases(22, 2000)
    sample = draw_audit_sample(cases, DAY, AuditDesignConfig(rates=(("default", 1.0),)))
    assert sample.frame["selected"].all() and (sample.frame["inclusion_prob"] == 1.0).all()
    assert sample.allocation.census


def test_config_rates_reach_the_design_and_daily_size_keeps_its_default() -> None:
    settings = parse_settings({"review": {"rates": {"default": 0.01, "review_action=overridden": 0.2}}})
    assert dict(settings.review.design().rates) == {"default": 0.01, "review_action=overridden": 0.2}
    assert parse_settings({}).review.design().daily_size == DEFAULT_DAILY_SIZE
    assert parse_settings({}).review.design().rates is None
    assert parse_settings({"review": {"daily_size": 75}}).review.design().daily_size == 75


@pytest.mark.parametrize(("review", "message"), [
    ({"rates": {"default": 0.01, "segmnt=consumer": 0.1}}, r"review.*rates\.segmnt=consumer.*not a strata column"),
    ({"rates": {"default": 0.01, "failure=slow": 0.1}}, r"rates\.failure=slow.*not a risk group"),
    ({"rates": {"default": 0.01, "overridden": 0.1}}, r"rates\.overridden.*<column>=<value>"),
    ({"rates": {"default": 0.0}}, r"rates\.default.*\(0, 1\]"),
    ({"rates": {"default": 1.5}}, r"rates\.default.*\(0, 1\]"),
    ({"rates": {"segment=consumer": 0.1}}, r"rates: give a 'default' rate"),
    ({"rates": {"default": 0.01}, "daily_size": 100}, r"either daily_size .* or rates .*not both"),
])
def test_config_rates_wrong_keys_fail_with_their_path(review: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_settings({"review": review})


def test_rates_keys_checked_against_the_configured_strata() -> None:
    # segment is not a stratum here, so a segment key would never match: refused rather than silently unused.
    with pytest.raises(ConfigError, match=r"rates\.segment=consumer"):
        parse_settings({"review": {"strata": ["review_action"], "rates": {"default": 0.1, "segment=consumer": 0.5}}})
    with pytest.raises(ValueError, match="not a strata column"):
        AuditDesignConfig(strata_columns=("review_action",), rates=(("default", 0.1), ("segment=consumer", 0.5)))
    assert np.isclose(rate_for_stratum("review_action=accepted|failure=none", {"default": 0.1}), 0.1)
