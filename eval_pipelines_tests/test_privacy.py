"""Which fields ingestion masks, quarantined records (masked, capped), the raw store, and the privacy config."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
import sqlalchemy as sa

from eval_pipelines.config import ConfigError, parse_settings
from eval_pipelines.ingestion.assets import production_logs
from eval_pipelines.ingestion.contract import PII_TEXT_FIELDS
from eval_pipelines.ingestion.ingest import FileReport, IngestResult, ingest_files
from eval_pipelines.ingestion.pii import Masker, find_tokens
from eval_pipelines.ingestion.privacy import (
    RAW_QUARANTINE_DATASET,
    RAW_ROWS_DATASET,
    mask_ingest_result,
)
from eval_pipelines.lake import Lake
from eval_pipelines_tests.conftest import Project, make_project

DAY = date(2026, 10, 5)
EMAIL, CARD, PHONE = "jane.doe@example.com", "4111 1111 1111 1111", "+49 30 1234567"
GOOD = {"event_id": "e1", "timestamp": "2026-10-05T09:00:00Z", "system": "s", "model_version": "v1",
        "segment": "smb", "input_text": f"I am {EMAIL}", "ai_output": f"refund to {CARD}", "latency_ms": 10,
        "cost_usd": 0.0, "status": "ok", "user_action": "accepted", "final_output": f"refund to {CARD}",
        "ground_truth": f"call {PHONE}", "channel": f"chat {EMAIL}"}


def _land(root: Path) -> Path:
    day_dir = root / "landing" / DAY.isoformat()
    day_dir.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(GOOD),
             json.dumps({**GOOD, "event_id": "e2", "timestamp": f"at {EMAIL}"}),  # reason quotes the value
             json.dumps({**GOOD, "event_id": "e3", "latency_ms": -1, "input_text": f"{CARD} " * 500}),
             '{"broken": "' + PHONE + '"']
    (day_dir / "part-000.jsonl").write_text("\n".join(lines) + "\n")
    return day_dir / "part-000.jsonl"


def _ingest(settings, path: Path):
    return ingest_files([path], settings, DAY, root=path.parent.parent)


def test_default_fields_are_every_free_text_field():
    assert PII_TEXT_FIELDS == ("input_text", "ai_output", "final_output", "ground_truth")
    assert parse_settings({}).masked_fields() == PII_TEXT_FIELDS


def test_every_free_text_field_is_masked_with_consistent_tokens(tmp_path: Path):
    settings = parse_settings({})
    result, masks = mask_ingest_result(_ingest(settings, _land(tmp_path)), settings, Masker(b"k"))
    (row,) = result.valid.to_dict(orient="records")
    assert masks == 4
    for field in PII_TEXT_FIELDS:
        assert len(find_tokens(row[field])) == 1, field
        assert EMAIL not in row[field] and CARD not in row[field] and PHONE not in row[field]
    assert row["ai_output"] == row["final_output"]  # equal before, equal after: scoring still compares them


def test_quarantined_records_and_reasons_are_masked_and_capped(tmp_path: Path):
    settings = parse_settings({"privacy": {"max_raw_record_bytes": 1000}})
    raw = _ingest(settings, _land(tmp_path))
    assert raw.rows_quarantined == 3
    result, _ = mask_ingest_result(raw, settings, Masker(b"k"))
    text = "\n".join(result.quarantined["raw_record"]) + "\n".join(result.quarantined["reason"])
    assert EMAIL not in text and CARD not in text and PHONE not in text
    assert all(len(r.encode("utf-8")) <= 1000 for r in result.quarantined["raw_record"])
    capped = result.quarantined.loc[result.quarantined["line_number"] == 3, "raw_record"].item()
    assert capped.endswith(" bytes]") and "[truncated:" in capped
    reason = result.quarantined.loc[result.quarantined["line_number"] == 2, "reason"].item()
    assert find_tokens(reason), reason  # the quoted timestamp value, masked


def test_json_unicode_escapes_do_not_hide_pii_in_raw_records(tmp_path: Path):
    settings = parse_settings({})
    day_dir = tmp_path / "landing" / DAY.isoformat()
    day_dir.mkdir(parents=True)
    # ensure_ascii spelling: the IDN domain and the full-width digits are \\uXXXX escapes in the line
    line = json.dumps({**GOOD, "latency_ms": -1, "input_text": "zoë@bücher.de ４１１１ １１１１ １１１１ １１１１"})
    assert "\\u00fc" in line
    (day_dir / "part-000.jsonl").write_text(line + "\n")
    result, _ = mask_ingest_result(_ingest(settings, day_dir / "part-000.jsonl"), settings, Masker(b"k"))
    (record,) = result.quarantined["raw_record"]
    assert "<EMAIL_" in record and "<CARD_" in record and "cher.de" not in record


def test_file_errors_are_masked():
    settings = parse_settings({})
    failed = FileReport("a.csv", "csv", 10, "failed", f"CSV parse error: row 'x,{EMAIL}'", 0, 0, 0, 0)
    result = IngestResult(DAY, pd.DataFrame(columns=list(PII_TEXT_FIELDS)),
                          pd.DataFrame(columns=["source_file", "line_number", "reason", "field", "raw_record"]),
                          (failed,))
    masked, _ = mask_ingest_result(result, settings, Masker(b"k"))
    assert EMAIL not in masked.files[0].error and find_tokens(masked.files[0].error)
    assert replace(masked.files[0], error=failed.error) == failed


def test_mask_fields_is_configurable(tmp_path: Path):
    settings = parse_settings({"features": {"categorical": ["channel"]},
                               "privacy": {"mask_fields": ["input_text", "channel"]}})
    result, _ = mask_ingest_result(_ingest(settings, _land(tmp_path)), settings, Masker(b"k"))
    (row,) = result.valid.to_dict(orient="records")
    assert find_tokens(row["input_text"]) and find_tokens(row["channel"])
    assert row["ai_output"] == f"refund to {CARD}"  # not listed: left as sent


@pytest.mark.parametrize(("privacy", "message"), [
    ({"mask_fields": ["latency_ms"]}, "privacy.mask_fields.latency_ms: not a text field"),
    ({"mask_fields": ["nope"]}, "privacy.mask_fields.nope: not a text field"),
    ({"phone_regions": ["XX"]}, "privacy.phone_regions"),
    ({"phone_regions": []}, "privacy.phone_regions"),
    ({"max_raw_record_bytes": 10}, "privacy.max_raw_record_bytes"),
    ({"keep_raw": True}, "privacy.keep_raw"),
])
def test_privacy_config_is_validated_with_its_path(privacy: dict, message: str):
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        parse_settings({"privacy": privacy})


def _materialise(project: Project) -> None:
    assert dg.materialize([production_logs], partition_key=DAY.isoformat(), resources=project.resources(),
                          instance=dg.DagsterInstance.ephemeral(), raise_on_error=False
                          ).asset_materializations_for_node("production_logs")


def test_raw_is_kept_only_in_the_lake_and_only_when_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    for name in ("EVAL_PIPELINES_WAREHOUSE_URL", "EVAL_PIPELINES_LAKE_DIR", "EVAL_PIPELINES_LANDING_DIR"):
        monkeypatch.delenv(name, raising=False)
    project = make_project(tmp_path, {"privacy": {"keep_raw_in_lake": True}})
    _land(tmp_path)
    _materialise(project)
    lake = Lake(str(tmp_path / "lake"))
    raw_rows = lake.read(RAW_ROWS_DATASET, DAY.isoformat())
    raw_quarantine = lake.read(RAW_QUARANTINE_DATASET, DAY.isoformat())
    assert raw_rows["input_text"].tolist() == [f"I am {EMAIL}"]
    assert raw_quarantine["raw_record"].str.contains(EMAIL, regex=False).any()
    assert EMAIL not in lake.read("production_logs", DAY.isoformat())["input_text"].item()
    with sa.create_engine(project.warehouse_url).connect() as connection:
        stored = connection.execute(sa.text("SELECT raw_record || reason FROM quarantined_events")).scalars().all()
    assert stored and not any(EMAIL in value or CARD in value for value in stored)

    # Turned off: re-ingesting the day removes the raw partitions it left.
    project = make_project(tmp_path, {"privacy": {"keep_raw_in_lake": False}})
    _materialise(project)
    assert not lake.exists(RAW_ROWS_DATASET, DAY.isoformat())
    assert not lake.exists(RAW_QUARANTINE_DATASET, DAY.isoformat())
