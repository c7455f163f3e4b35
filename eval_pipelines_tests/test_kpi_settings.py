"""The ``impact`` config section: defaults, inheritance from ``default``, and errors that name the bad key."""

from __future__ import annotations

import pytest

from eval_pipelines.config import ConfigError, load_settings, parse_settings
from eval_pipelines.kpis.settings import ImpactConfig, SystemImpact


def test_shipped_config_loads_and_unlisted_systems_use_default():
    impact = load_settings().impact
    assert impact.for_system("some_new_system") == impact.systems["default"]
    assert 0.5 < impact.ci_level < 1


def test_section_is_optional():
    impact = parse_settings({}).impact
    assert impact == ImpactConfig()
    assert impact.for_system("support_triage") == SystemImpact()


def test_a_system_inherits_unset_keys_from_default():
    impact = parse_settings({"impact": {"systems": {
        "default": {"labour_cost_per_hour": 50, "cost_per_complaint": 12, "currency": "EUR",
                    "usd_to_currency": 0.9},
        "support_triage": {"manual_baseline_seconds": 150},
    }}}).impact
    triage = impact.for_system("support_triage")
    assert triage.manual_baseline_seconds == 150
    assert triage.labour_cost_per_hour == 50 and triage.cost_per_complaint == 12 and triage.currency == "EUR"
    assert impact.for_system("other").manual_baseline_seconds == SystemImpact().manual_baseline_seconds


def test_systems_without_default_get_the_builtin_default():
    impact = parse_settings({"impact": {"systems": {"support_triage": {"labour_cost_per_hour": 10}}}}).impact
    assert impact.for_system("unknown") == SystemImpact()
    assert impact.for_system("support_triage").labour_cost_per_hour == 10


@pytest.mark.parametrize(("raw", "path"), [
    ({"systems": {"support_triage": {"labour_cost_per_hour": -1}}},
     "impact.systems.support_triage.labour_cost_per_hour"),
    ({"systems": {"default": {"manual_baseline_seconds": 0}}}, "impact.systems.default.manual_baseline_seconds"),
    ({"systems": {"x": {"currency": "euro"}}}, "impact.systems.x.currency"),
    ({"systems": {"x": {"latency_slo_ms": 0}}}, "impact.systems.x.latency_slo_ms"),
    ({"systems": {"x": {"cost_per_complaint": -5}}}, "impact.systems.x.cost_per_complaint"),
    ({"systems": {"x": {"platform_cost_per_day": -1}}}, "impact.systems.x.platform_cost_per_day"),
    ({"systems": {"x": {"labour_cost_per_houre": 5}}}, "impact.systems.x.labour_cost_per_houre"),
    ({"systems": {"x": "cheap"}}, "impact.systems.x"),
    ({"ci_level": 1.5}, "impact.ci_level"),
    ({"low_volume_below": 0}, "impact.low_volume_below"),
    ({"systems": {"x": {"baseline_control": {"column": "", "value": "manual"}}}},
     "impact.systems.x.baseline_control.column"),
    ({"systems": {"x": {"baseline_control": {"column": "segment"}}}}, "impact.systems.x.baseline_control.value"),
    ({"systems": {"x": {"usd_to_currency": 0.9}}}, "impact.systems.x"),  # USD must convert at 1
])
def test_bad_values_fail_at_load_with_their_path(raw, path):
    with pytest.raises(ConfigError) as error:
        parse_settings({"impact": raw})
    assert f"  - {path}" in str(error.value)
