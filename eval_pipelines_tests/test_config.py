from pathlib import Path

import pytest

from eval_pipelines.config import DEFAULT_CONFIG_PATH, ConfigError, load_settings, parse_settings


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
