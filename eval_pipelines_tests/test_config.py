from pathlib import Path

import pytest

from eval_pipelines.config import DEFAULT_CONFIG_PATH, ConfigError, _parsed_settings, load_settings, parse_settings


def test_shipped_demo_config_loads():
    settings = load_settings(DEFAULT_CONFIG_PATH)
    assert settings.source.kind == "landing"
    assert "language" in settings.features.categorical


@pytest.mark.parametrize(
    ("raw", "expected_fragments"),
    [
        ({"source": {"landng_dir": "x"}}, ["source.landng_dir", "unknown key"]),
        ({"source": {"kind": "ftp"}}, ["source.kind", "'landing'", "'sql'", "'ftp'"]),
        ({"quality": {"max_quarantine_rate": 1.5}}, ["quality.max_quarantine_rate", "less than or equal to 1"]),
        ({"mapping": {"timestamp_format": "unix"}}, ["mapping.timestamp_format", "epoch_ms"]),
        ({"mapping": {"scale": {"status": 2}}}, ["mapping.scale", "not numeric"]),
        ({"mapping": {"columns": {"latncy_ms": "lat"}}}, ["mapping.columns.latncy_ms", "unknown target field"]),
        ({"source": {"kind": "sql"}}, ["source.sql", "missing"]),
        ({"features": {"numeric": ["a"], "categorical": ["a"]}}, ["features", "both numeric and categorical"]),
    ],
)
def test_bad_values_name_the_key_and_what_is_allowed(raw, expected_fragments):
    with pytest.raises(ConfigError) as error:
        parse_settings(raw, "my.yaml")
    message = str(error.value)
    assert message.startswith("my.yaml: invalid configuration")
    for fragment in expected_fragments:
        assert fragment in message


def test_missing_and_malformed_files_are_named(tmp_path: Path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings(tmp_path / "nope.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("source: [unclosed\n")
    with pytest.raises(ConfigError, match=r"broken\.yaml: not valid YAML"):
        load_settings(broken)
    listed = tmp_path / "list.yaml"
    listed.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_settings(listed)


def test_environment_overrides_urls(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("EVAL_PIPELINES_WAREHOUSE_URL", "postgresql+psycopg://u:secret@127.0.0.1/wh")
    monkeypatch.setenv("EVAL_PIPELINES_SOURCE_URL", "sqlite:///events.db")
    settings = parse_settings({"source": {"kind": "sql", "sql": {"url": "x", "table": "t", "timestamp_column": "ts"}}})
    assert settings.storage.warehouse_url == "postgresql+psycopg://u:secret@127.0.0.1/wh"
    assert settings.source.sql.url == "sqlite:///events.db"


def test_config_env_var_selects_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = tmp_path / "mine.yaml"
    path.write_text("quality:\n  max_quarantine_rate: 0.2\n")
    monkeypatch.setenv("EVAL_PIPELINES_CONFIG", str(path))
    assert load_settings().quality.max_quarantine_rate == 0.2


def test_passwords_in_the_file_are_refused_but_allowed_from_the_environment(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("EVAL_PIPELINES_WAREHOUSE_URL", raising=False)
    raw = {"storage": {"warehouse_url": "postgresql+psycopg://bi:s3cr3t@db.internal/wh"}}
    with pytest.raises(ConfigError) as error:
        parse_settings(raw, "prod.yaml")
    message = str(error.value)
    assert "storage.warehouse_url" in message and "EVAL_PIPELINES_WAREHOUSE_URL" in message
    assert "s3cr3t" not in message
    with pytest.raises(ConfigError, match=r"source\.sql\.url"):
        parse_settings({"source": {"kind": "sql", "sql": {"url": "postgresql://u:pw@h/db", "table": "t",
                                                          "timestamp_column": "ts"}}})
    monkeypatch.setenv("EVAL_PIPELINES_WAREHOUSE_URL", "postgresql+psycopg://bi:s3cr3t@db.internal/wh")
    assert parse_settings({}).storage.warehouse_url.endswith("@db.internal/wh")


# Issue 15.7: holes that used to pass loading and fail (or silently misbehave) at run time.
@pytest.mark.parametrize(
    ("raw", "expected_fragments"),
    [
        ({"features": {"categorical": ["channel", "label"]}}, ["features.categorical.1", "'label'", "derives"]),
        ({"features": {"numeric": ["correctness"]}}, ["features.numeric.0", "'correctness'"]),
        ({"features": {"categorical": ["source_file"]}}, ["features.categorical.0", "'source_file'"]),
        ({"mapping": {"value_maps": {"user_action": {"ok": "approve"}}}},
         ["mapping.value_maps.user_action.ok", "'approve'", "'accepted'"]),
        ({"mapping": {"value_maps": {"status": {"200": "fine"}}}}, ["mapping.value_maps.status.200", "'fine'"]),
        ({"mapping": {"value_maps": {"compliance_flag": {"Y": "maybe"}}}},
         ["mapping.value_maps.compliance_flag.Y", "'maybe'", "'true'"]),
        ({"eval_set": {"strata": ["segment", "segmnt"]}}, ["eval_set.strata.1", "'segmnt'", "labeled_cases"]),
        ({"edge_cases": {"rules": [{"category": "x", "description": "x",
                                    "where": [{"column": "confidnce", "op": "ge", "value": 0.8}]}]}},
         ["edge_cases.rules.0.where.0.column", "'confidnce'"]),
        ({"edge_cases": {"text_column": "input"}}, ["edge_cases.text_column", "'input'"]),
    ],
)
def test_config_holes_are_refused_at_load_with_the_key_path(raw, expected_fragments):
    with pytest.raises(ConfigError) as error:
        parse_settings(raw, "my.yaml")
    message = str(error.value)
    for fragment in expected_fragments:
        assert fragment in message, message


def test_valid_value_maps_strata_and_rules_still_load():
    settings = parse_settings({
        "mapping": {"value_maps": {"user_action": {"ok": "accepted"}, "escalation": {"Y": "TRUE", "N": "false"}}},
        "eval_set": {"strata": ["segment", "channel", "label_source"]},
        "features": {"categorical": ["channel"]},
    })
    assert settings.mapping.value_maps["user_action"] == {"ok": "accepted"}


def test_an_impossible_date_is_a_config_error_with_its_line(tmp_path: Path):
    path = tmp_path / "c.yaml"
    path.write_text("storage: {lake_dir: lake}\npartitions:\n  start_date: 2026-02-30\n")
    with pytest.raises(ConfigError) as error:
        load_settings(path)
    message = str(error.value)
    assert str(path) in message and "'2026-02-30' is not a valid date" in message and "line 3" in message


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"eval_set": {"refresh_cron": "61 6 * * 1"}}, "eval_set.refresh_cron: '61 6 * * 1'"),
        ({"eval_set": {"refresh_cron": "0 6 * * MONDAY"}}, "eval_set.refresh_cron"),
        ({"eval_set": {"cron_timezone": "Europe/Berln"}}, "eval_set.cron_timezone: 'Europe/Berln'"),
        ({"scoring": {"candidates": [{"name": "c", "adapter": "python",
                                      "target": "eval_pipelines.demo.candidates:no_such_function"}]}},
         "scoring.candidates.0.target: module 'eval_pipelines.demo.candidates' has no attribute"),
        ({"scoring": {"candidates": [{"name": "c", "adapter": "python", "target": "no_such_package.mod:f"}]}},
         "scoring.candidates.0.target: cannot import module 'no_such_package.mod'"),
        ({"scoring": {"candidates": [{"name": "c", "adapter": "python",
                                      "target": "eval_pipelines.demo.candidates:__name__"}]}},
         "not a function"),
    ],
)
def test_check_config_reports_values_that_would_fail_at_run_time(raw, expected, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch,
                                                                  capsys: pytest.CaptureFixture[str]):
    import yaml

    from eval_pipelines.cli import main
    from eval_pipelines.config_checks import runtime_problems

    assert runtime_problems(load_settings(DEFAULT_CONFIG_PATH)) == []  # the shipped config is clean
    shipped = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text())
    config = {**shipped, **{k: {**shipped.get(k, {}), **v} for k, v in raw.items()}}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    monkeypatch.setenv("EVAL_PIPELINES_CONFIG", str(path))  # main() sets it; restored after the test
    assert main(["--config", str(path), "check-config"]) == 2
    assert expected in capsys.readouterr().err


def test_a_mapping_that_finds_no_column_in_the_day_is_warned_with_its_field():
    import pandas as pd

    from eval_pipelines.config_checks import unmatched_mappings

    settings = parse_settings({"mapping": {"columns": {"user_action": "action", "final_output": "decision",
                                                       "ground_truth": "truth"}}})
    rows = pd.DataFrame({"user_action": [None, None], "final_output": ["a", None], "ground_truth": [None, None]})
    warnings = unmatched_mappings(settings, rows)
    assert [w.split(":")[0] for w in warnings] == ["mapping.columns.user_action", "mapping.columns.ground_truth"]
    assert "'action'" in warnings[0] and "user_action is null for the whole day" in warnings[0]
    assert unmatched_mappings(settings, rows.iloc[:0]) == []  # an empty day says nothing about the mapping


def test_a_loaded_config_is_read_afresh_when_the_file_or_an_override_changes(tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch):
    # Loads are cached (every asset step loads the config); the cache must never serve a stale config.
    monkeypatch.delenv("EVAL_PIPELINES_LAKE_DIR", raising=False)
    path = tmp_path / "eval_pipelines.yaml"
    text = DEFAULT_CONFIG_PATH.read_text()
    path.write_text(text)
    parses = _parsed_settings.cache_info().misses
    first = load_settings(path)
    again = load_settings(path)
    assert _parsed_settings.cache_info().misses == parses + 1  # parsed once, the second load from the cache
    assert again == first and again is not first
    again.alerts.rules.append(again.alerts.rules[0])  # the frozen models' lists are mutable: a copy per load
    again.eval_set.strata.clear()
    assert load_settings(path) == first
    path.write_text(text.replace("lake_dir: data/lake", "lake_dir: data/other_lake"))
    assert str(load_settings(path).storage.lake_dir).endswith("other_lake")
    monkeypatch.setenv("EVAL_PIPELINES_LAKE_DIR", str(tmp_path / "from_env"))
    assert str(load_settings(path).storage.lake_dir) == str(tmp_path / "from_env")
    path.write_text("storage: [")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(path)
