"""The demo log generator: deterministic, honest about what it wrote, inside the contract, and realistic enough
that the downstream checks (calibration, automation bias, drift, reliability) have something real to find."""

from __future__ import annotations

import io
import json
import re
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest

from eval_pipelines.demo import (
    MANIFEST_NAME,
    OUTPUT_COLUMNS,
    DayConditions,
    generate_day_frame,
    generate_logs,
    plan_scenario,
)
from eval_pipelines.demo.generator import TRUTH_COLUMN, _write_jsonl
from eval_pipelines.ingestion.contract import CANONICAL_FIELDS, STATUSES, USER_ACTIONS, FieldKind

DAYS = 8
EVENTS_PER_DAY = 2500
SEED = 11
START = date(2026, 11, 1)


def _reject_constant(name: str) -> None:
    raise ValueError(f"non-standard JSON constant {name}")


def _read_jsonl(path: Path) -> pd.DataFrame:
    """Strict reader: every line must be standard JSON (NaN/Infinity refused), one object per line."""
    records = [json.loads(line, parse_constant=_reject_constant) for line in path.read_text("utf-8").splitlines()]
    assert all(isinstance(record, dict) for record in records)
    return pd.DataFrame.from_records(records)


def _read_all(out_dir: Path) -> dict[str, pd.DataFrame]:
    """Relative path -> rows, for every part file the generator left."""
    # As ingestion reads CSV: timestamps stay text and an empty field is null.
    as_text = pa_csv.ConvertOptions(column_types={"timestamp": pa.string()}, strings_can_be_null=True)
    readers = {".jsonl": _read_jsonl, ".csv": lambda p: pa_csv.read_csv(p, convert_options=as_text).to_pandas(),
               ".parquet": lambda p: pq.read_table(p).to_pandas()}
    return {path.relative_to(out_dir).as_posix(): readers[path.suffix](path)
            for path in sorted(out_dir.glob("*/part-*")) if path.suffix in readers}


@pytest.fixture(scope="module")
def jsonl_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, dict[str, pd.DataFrame]]:
    out_dir = tmp_path_factory.mktemp("landing")
    generate_logs(out_dir, days=DAYS, events_per_day=EVENTS_PER_DAY, seed=SEED, start_date=START)
    manifest = json.loads((out_dir / MANIFEST_NAME).read_text("utf-8"))
    return out_dir, manifest, _read_all(out_dir)


@pytest.fixture(scope="module")
def all_events(jsonl_run: tuple[Path, dict, dict[str, pd.DataFrame]]) -> pd.DataFrame:
    _, _, files = jsonl_run
    return pd.concat([frame.assign(day=path.split("/")[0]) for path, frame in files.items()], ignore_index=True)


@pytest.fixture(scope="module")
def baseline_frame() -> pd.DataFrame:
    """A large pre-rollout, pre-launch day with the hidden true label, for statistical checks."""
    return generate_day_frame(START, 60_000, seed=5, with_truth=True)


def _category(labels: pd.Series) -> pd.Series:
    return labels.str.split("/").str[0]


# --- determinism and layout -----------------------------------------------------------------------------------


def _tree_bytes(root: Path) -> dict[str, bytes]:
    return {path.relative_to(root).as_posix(): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()}


def test_same_seed_gives_identical_bytes_and_another_seed_does_not(tmp_path: Path) -> None:
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        generate_logs(tmp_path / name, days=3, events_per_day=400, seed=seed)
    first, second, other = (_tree_bytes(tmp_path / name) for name in "abc")
    assert first == second
    assert first.keys() == other.keys()
    parts = [path for path in first if path.endswith(".jsonl")]
    assert all(first[path] != other[path] for path in parts)


def test_a_day_does_not_depend_on_how_many_days_are_generated(tmp_path: Path) -> None:
    generate_logs(tmp_path / "short", days=3, events_per_day=300, seed=9)
    generate_logs(tmp_path / "long", days=6, events_per_day=300, seed=9)
    first_day = "2026-11-01/part-000.jsonl"  # before any scenario event in both runs
    assert (tmp_path / "short" / first_day).read_bytes() == (tmp_path / "long" / first_day).read_bytes()


def test_layout_is_day_folders_with_parts_and_a_root_manifest(jsonl_run: tuple) -> None:
    out_dir, manifest, files = jsonl_run
    expected_days = [(START + timedelta(days=i)).isoformat() for i in range(DAYS)]
    assert sorted(p.name for p in out_dir.iterdir() if p.is_dir()) == expected_days
    assert sorted(files) == [f"{day}/part-{k:03d}.jsonl" for day in expected_days for k in range(2)]
    assert (out_dir / MANIFEST_NAME).is_file()
    assert not list(out_dir.glob(f"*/{MANIFEST_NAME}"))
    assert not list(out_dir.rglob("*.tmp"))
    assert manifest["seed"] == SEED
    assert manifest["params"] == {"days": DAYS, "events_per_day": EVENTS_PER_DAY, "fmt": "jsonl",
                                  "start_date": START.isoformat(), "files_per_day": 2, "system": "support_triage"}


def test_manifest_counts_match_what_is_read_back(jsonl_run: tuple, all_events: pd.DataFrame) -> None:
    _, manifest, files = jsonl_run
    assert manifest["total_events"] == len(all_events) == DAYS * EVENTS_PER_DAY
    assert {path: len(frame) for path, frame in files.items()} == {
        path: rows for day in manifest["days"].values() for path, rows in day["files"].items()}
    for day, frame in all_events.groupby("day"):
        expected = manifest["days"][day]
        assert expected["events"] == len(frame)
        actions = frame["user_action"].fillna("none").value_counts().to_dict()
        assert {k: v for k, v in expected["user_action"].items() if v} == actions
        assert {k: v for k, v in expected["status"].items() if v} == frame["status"].value_counts().to_dict()
        versions = frame["model_version"].value_counts().to_dict()
        assert {k: v for k, v in expected["model_version"].items() if v} == versions


def test_summary_mirrors_manifest(tmp_path: Path) -> None:
    summary = generate_logs(tmp_path, days=4, events_per_day=200, seed=1, files_per_day=3)
    manifest = json.loads(summary.manifest_path.read_text("utf-8"))
    assert manifest == json.loads(json.dumps(summary.manifest()))
    assert summary.total_events == 800 == sum(summary.files.values())
    assert len(summary.files) == 12
    assert manifest["scenario"] == summary.scenario.as_dict()


def test_rerun_with_fewer_files_leaves_no_stale_parts(tmp_path: Path) -> None:
    generate_logs(tmp_path, days=1, events_per_day=90, seed=1, files_per_day=3)
    summary = generate_logs(tmp_path, days=1, events_per_day=90, seed=1, files_per_day=2)
    assert sorted(_read_all(tmp_path)) == sorted(summary.files)


def test_invalid_arguments_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="fmt"):
        generate_logs(tmp_path, days=1, events_per_day=10, seed=1, fmt="xml")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="days"):
        generate_logs(tmp_path, days=0, events_per_day=10, seed=1)
    with pytest.raises(ValueError, match="files_per_day"):
        generate_logs(tmp_path, days=1, events_per_day=10, seed=1, files_per_day=0)


# --- the contract ---------------------------------------------------------------------------------------------


def test_every_value_is_within_the_contract(all_events: pd.DataFrame) -> None:
    assert list(all_events.columns[:-1]) == list(OUTPUT_COLUMNS)
    assert all_events["event_id"].is_unique
    for spec in CANONICAL_FIELDS:
        column = all_events[spec.name]
        present = column.dropna()
        if spec.required:
            assert len(present) == len(column), spec.name
        if spec.allowed is not None:
            assert set(present) <= set(spec.allowed), spec.name
        if spec.kind is FieldKind.FLOAT:
            assert pd.api.types.is_float_dtype(column), spec.name
        if spec.kind is FieldKind.BOOL:
            assert column.map(type).eq(bool).all(), spec.name
        if spec.minimum is not None:
            assert (present >= spec.minimum).all(), spec.name
        if spec.maximum is not None:
            assert (present <= spec.maximum).all(), spec.name
    assert set(all_events["user_action"].dropna()) == set(USER_ACTIONS)
    assert set(all_events["status"]) == set(STATUSES)
    assert set(all_events["system"]) == {"support_triage"}


def test_timestamps_are_utc_inside_their_day_in_order_and_follow_a_daily_curve(all_events: pd.DataFrame) -> None:
    assert all_events["timestamp"].str.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z").all()
    assert (all_events["timestamp"].str[:10] == all_events["day"]).all()
    for _, frame in all_events.groupby("day"):
        assert frame["timestamp"].is_monotonic_increasing
    hours = pd.Series([datetime.fromisoformat(t).hour for t in all_events["timestamp"]])
    assert (hours == 10).sum() > 4 * (hours == 3).sum()


def test_field_dependencies_hold(all_events: pd.DataFrame) -> None:
    no_human = all_events["user_action"].isna()
    assert 0.005 < no_human.mean() < 0.06
    assert (all_events["decision_seconds"].isna() == no_human).all()
    final_missing = no_human | (all_events["user_action"] == "ignored")
    assert (all_events["final_output"].isna() == final_missing).all()
    accepted = all_events["user_action"] == "accepted"
    assert (all_events.loc[accepted, "final_output"] == all_events.loc[accepted, "ai_output"]).all()
    failed = all_events["status"] != "ok"
    assert (all_events.loc[failed, "ai_output"] == "none").all()
    assert all_events.loc[failed, "confidence"].isna().all()
    assert all_events.loc[~failed, "confidence"].notna().all()
    assert set(all_events.loc[failed, "user_action"]) <= {"overridden", "rejected"}
    assert all_events.loc[~failed, "ai_output"].str.fullmatch(
        r"(billing|refund|technical|account|shipping|other)/(low|medium|high|urgent)").all()
    assert 0.06 < all_events["ground_truth"].notna().mean() < 0.15
    assert (all_events.loc[all_events["status"] == "timeout", "latency_ms"] == 30_000.0).all()


def test_some_ticket_texts_carry_pii(all_events: pd.DataFrame) -> None:
    text = all_events["input_text"]
    email = text.str.contains(r"[\w.]+@[\w-]+\.\w+")
    card = text.str.contains(r"\b\d{4}[ -]?\d{4}[ -]?\d{4}[ -]?\d{4}\b")
    iban = text.str.contains(r"\b[A-Z]{2}\d{2}(?: \d{4}){2,}")
    phone = text.str.contains(r"\+\d{1,2}[ (]")
    assert all(share.mean() > 0.01 for share in (email, card, iban, phone))
    assert 0.10 < (email | card | iban | phone).mean() < 0.20


# --- behaviour --------------------------------------------------------------------------------------------------


def test_accepts_are_decided_faster_than_overrides(all_events: pd.DataFrame) -> None:
    medians = all_events.groupby("user_action")["decision_seconds"].median()
    assert medians["accepted"] < 15 < 40 < medians["edited"] < medians["overridden"]


def test_wrong_suggestions_are_accepted_sometimes_but_far_less_than_right_ones(baseline_frame: pd.DataFrame) -> None:
    ok = baseline_frame[baseline_frame["status"] == "ok"]
    right = _category(ok["ai_output"]) == _category(ok[TRUTH_COLUMN])
    accepted = ok["user_action"] == "accepted"
    accept_if_right, accept_if_wrong = accepted[right].mean(), accepted[~right].mean()
    assert 0.05 < accept_if_wrong < 0.4 * accept_if_right
    # Automation bias grows with the model's confidence.
    wrong = ok[~right]
    assert (wrong["confidence"] > 0.8).sum() > 100
    assert accepted[~right & (ok["confidence"] > 0.8)].mean() > accepted[~right & (ok["confidence"] < 0.6)].mean()


def test_accepted_mistakes_drive_complaints(baseline_frame: pd.DataFrame) -> None:
    ok = baseline_frame[baseline_frame["status"] == "ok"]
    accepted_mistake = (ok["user_action"] == "accepted") & (_category(ok["ai_output"]) != _category(ok[TRUTH_COLUMN]))
    assert ok.loc[accepted_mistake, "complaint"].mean() > 4 * ok.loc[~accepted_mistake, "complaint"].mean()
    assert ok.loc[accepted_mistake, "escalation"].mean() > 3 * ok.loc[~accepted_mistake, "escalation"].mean()
    refund = _category(ok[TRUTH_COLUMN]) == "refund"
    assert ok.loc[refund, "compliance_flag"].mean() > 4 * ok.loc[~refund, "compliance_flag"].mean()


def test_confidence_is_roughly_calibrated(baseline_frame: pd.DataFrame) -> None:
    ok = baseline_frame[baseline_frame["status"] == "ok"]
    right = (_category(ok["ai_output"]) == _category(ok[TRUTH_COLUMN])).astype(float)
    bins = pd.cut(ok["confidence"], np.linspace(0, 1, 11))
    table = pd.DataFrame({"confidence": ok["confidence"], "right": right}).groupby(bins, observed=True).agg(
        rows=("right", "size"), accuracy=("right", "mean"), confidence=("confidence", "mean"))
    populated = table[table["rows"] >= 500]
    assert len(populated) >= 4
    assert (populated["accuracy"] - populated["confidence"]).abs().max() < 0.04
    assert populated["accuracy"].is_monotonic_increasing


def test_v2_is_better_than_v1_and_hard_tickets_are_harder() -> None:
    frame = generate_day_frame(START, 40_000, seed=6, conditions=DayConditions(v2_share=0.5), with_truth=True)
    ok = frame[frame["status"] == "ok"]
    right = _category(ok["ai_output"]) == _category(ok[TRUTH_COLUMN])
    accuracy = right.groupby(ok["model_version"]).mean()
    assert accuracy["triage-v2"] > accuracy["triage-v1"] + 0.03
    english = ok["language"] == "en"
    assert right[english].mean() > right[~english].mean() + 0.03


# --- the scenario -----------------------------------------------------------------------------------------------


def test_scenario_is_placed_relative_to_the_range_and_recorded(jsonl_run: tuple) -> None:
    _, manifest, _ = jsonl_run
    plan = plan_scenario(DAYS, START)
    assert plan is not None
    assert START < plan.rollout_start < plan.rollout_ramp <= plan.launch_day < plan.incident_day
    assert manifest["scenario"] == plan.as_dict()
    assert manifest["days"][plan.incident_day.isoformat()]["scenario_events"] == ["incident_day"]
    assert plan_scenario(2, START) is None
    tight = plan_scenario(3, START)
    assert tight is not None and tight.rollout_start > START and tight.incident_day < START + timedelta(days=3)


def test_scenario_shows_in_the_data(jsonl_run: tuple, all_events: pd.DataFrame) -> None:
    _, manifest, _ = jsonl_run
    scenario = {name: when for name, when in manifest["scenario"].items()}
    by_day = all_events.groupby("day")

    v2_days = sorted(all_events.loc[all_events["model_version"] == "triage-v2", "day"].unique())
    assert v2_days[0] == scenario["rollout_start"]
    v2_share = by_day["model_version"].apply(lambda s: (s == "triage-v2").mean())
    assert 0.2 < v2_share[scenario["rollout_start"]] < 0.4 < v2_share[scenario["rollout_ramp"]] < 0.6

    nova_days = sorted(all_events.loc[all_events["product"] == "nova", "day"].unique())
    assert nova_days[0] == scenario["launch_day"] and nova_days == sorted(d for d in by_day.groups
                                                                          if d >= scenario["launch_day"])
    new_languages = all_events["language"].isin(["pt", "ja"])
    assert all_events.loc[new_languages, "day"].min() == scenario["launch_day"]
    technical = _category(all_events["final_output"].fillna("")) == "technical"
    launched = all_events["day"] >= scenario["launch_day"]
    assert technical[launched].mean() > technical[~launched].mean() + 0.05

    timeout_rate = by_day["status"].apply(lambda s: (s == "timeout").mean())
    others = timeout_rate.drop(scenario["incident_day"])
    assert timeout_rate[scenario["incident_day"]] > 0.05 > 4 * others.max()
    latency = all_events[all_events["status"] == "ok"].groupby("day")["latency_ms"].median()
    assert latency[scenario["incident_day"]] > 3 * latency.drop(scenario["incident_day"]).max()


# --- other formats ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_other_formats_round_trip(tmp_path: Path, fmt: str) -> None:
    summary = generate_logs(tmp_path / fmt, days=3, events_per_day=600, seed=2, fmt=fmt)
    generate_logs(tmp_path / "jsonl", days=3, events_per_day=600, seed=2)
    written = _read_all(tmp_path / fmt)
    reference = _read_all(tmp_path / "jsonl")
    assert sorted(written) == sorted(summary.files)
    assert {path: len(frame) for path, frame in written.items()} == summary.files
    for path, frame in written.items():
        expected = reference[path.replace(f".{fmt}", ".jsonl")]
        assert list(frame.columns) == list(OUTPUT_COLUMNS)
        for column in OUTPUT_COLUMNS:
            left, right = frame[column], expected[column]
            assert (left.isna() == right.isna()).all(), (path, column)
            if pd.api.types.is_numeric_dtype(right) and not pd.api.types.is_bool_dtype(right):
                np.testing.assert_allclose(left.dropna().astype(float), right.dropna().astype(float))
            else:
                assert left.dropna().tolist() == right.dropna().tolist(), (path, column)


def test_frames_match_the_written_files(jsonl_run: tuple) -> None:
    _, _, files = jsonl_run
    day = START + timedelta(days=DAYS - 1)
    plan = plan_scenario(DAYS, START)
    assert plan is not None
    frame = generate_day_frame(day, EVENTS_PER_DAY, seed=SEED, day_index=DAYS - 1,
                               conditions=plan.conditions_on(day))
    written = pd.concat([files[f"{day.isoformat()}/part-{k:03d}.jsonl"] for k in range(2)], ignore_index=True)
    assert frame["event_id"].tolist() == written["event_id"].tolist()
    assert frame["input_text"].tolist() == written["input_text"].tolist()
    assert re.fullmatch(r"evt-20261108-[0-9a-f]{6}-0000000", written["event_id"].iloc[0])
    np.testing.assert_allclose(frame["latency_ms"], written["latency_ms"])


def test_jsonl_writer_emits_standard_json_for_awkward_values() -> None:
    """The column-wise JSON writer is hand-rolled for speed, so check it against the json module's reading."""
    rows = {
        "text": ['plain', 'with "quotes" and \\ backslash', "new\nline\ttab\x01ctrl", "ünïcödé 日本 😀", None],
        "number": [30000.0, 1e-7, 1e21, 123456789012345.0, None],
        "count": [0, -3, 2**40, 7, None],
        "flag": [True, False, None, True, False],
    }
    buffer = io.BytesIO()
    _write_jsonl(pa.table(rows), buffer)
    lines = buffer.getvalue().decode("utf-8").splitlines()
    parsed = [json.loads(line, parse_constant=_reject_constant) for line in lines]
    assert {key: [record[key] for record in parsed] for key in rows} == rows
    assert all(isinstance(record["number"], float) for record in parsed if record["number"] is not None)
    with pytest.raises(ValueError, match="NaN"):
        _write_jsonl(pa.table({"number": [1.0, float("nan")]}), io.BytesIO())
