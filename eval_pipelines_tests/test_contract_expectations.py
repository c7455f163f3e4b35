"""The Great Expectations suite generated from the contract: it passes clean rows and names each failure's count."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from eval_pipelines.config import parse_settings
from eval_pipelines.ingestion.conform import target_fields
from eval_pipelines.ingestion.expectations import validate_contract
from eval_pipelines.ingestion.ingest import ingest_frame

DAY = date(2026, 11, 20)
SETTINGS = parse_settings({"features": {"categorical": ["channel"]}})


def landed_rows(n: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({
        "event_id": [f"e{i}" for i in range(n)],
        "timestamp": [f"2026-11-20T{i % 24:02d}:00:00Z" for i in range(n)],
        "system": "triage", "model_version": rng.choice(["v1", "v2"], n), "segment": rng.choice(["smb", "ent"], n),
        "ai_output": "billing/high", "latency_ms": rng.uniform(10, 900, n), "cost_usd": 0.002,
        "status": rng.choice(["ok", "error"], n), "user_action": rng.choice(["accepted", "edited", None], n),
        "confidence": rng.uniform(0, 1, n), "channel": rng.choice(["web", "email"], n),
    })
    result = ingest_frame(frame, SETTINGS, DAY, "frame")
    assert result.rows_valid == n
    return result.valid


def outcomes(frame: pd.DataFrame) -> dict[tuple[str, str | None], tuple[bool, int | None]]:
    validation = validate_contract(frame, target_fields(SETTINGS), DAY, 60)
    return {(o.expectation, o.column): (o.success, o.unexpected_count) for o in validation.outcomes}


def test_landed_rows_pass_every_expectation():
    validation = validate_contract(landed_rows(), target_fields(SETTINGS), DAY, 60)
    assert validation.success, validation.summary()
    assert len(validation.outcomes) >= 15


def test_each_broken_expectation_is_named_with_its_row_count():
    frame = landed_rows()
    frame["status"] = frame["status"].astype(object)
    frame.loc[[1, 2, 3], "status"] = "exploded"
    frame.loc[[4, 5], "segment"] = None
    frame.loc[6, "latency_ms"] = -1.0
    frame.loc[7, "event_id"] = frame.loc[8, "event_id"]
    frame.loc[9, "timestamp"] = pd.Timestamp("2026-11-23T00:00:00Z")
    frame.loc[10, "confidence"] = 1.5
    found = outcomes(frame)
    assert found[("expect_column_values_to_be_in_set", "status")] == (False, 3)
    assert found[("expect_column_values_to_not_be_null", "segment")] == (False, 2)
    assert found[("expect_column_values_to_be_between", "latency_ms")] == (False, 1)
    assert found[("expect_column_values_to_be_unique", "event_id")] == (False, 2)
    assert found[("timestamp_within_partition_day", "timestamp")] == (False, 1)
    assert found[("expect_column_values_to_be_between", "confidence")] == (False, 1)
    assert found[("expect_column_values_to_be_in_set", "user_action")] == (True, 0)
    summary = validate_contract(frame, target_fields(SETTINGS), DAY, 60).summary()
    assert "expect_column_values_to_be_in_set(status) failed on 3 row(s)" in summary


def test_a_missing_column_fails_without_running_the_suite():
    validation = validate_contract(landed_rows().drop(columns=["segment"]), target_fields(SETTINGS), DAY, 60)
    assert not validation.success
    assert ("column_exists", "segment") in {(o.expectation, o.column) for o in validation.failures}
