"""Hostile landing files (issue 15): deep nesting, symlinks, BOMs, conflicting duplicates, NaN literals.

Each test reproduces one attack from the issue; the day still lands, the attack is quarantined or refused with a
reason, and the conservation equation holds.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from eval_pipelines.config import ConfigError, parse_settings
from eval_pipelines.ingestion import readers
from eval_pipelines.ingestion.ingest import ingest_files, landing_files
from eval_pipelines.ingestion.readers import json_depth, read_log_file
from eval_pipelines_tests.test_ingest import DAY, event, write_jsonl


def conserved(result) -> bool:
    """The conservation equation, per file and for the day."""
    files = all(f.rows_read == f.rows_valid + f.rows_quarantined + f.rows_duplicate + f.rows_conflicting
                for f in result.files)
    return files and result.rows_read == (result.rows_valid + result.rows_quarantined + result.rows_duplicate
                                          + result.rows_conflicting)


# ------------------------------------------------------------------------------------------------ deep nesting

def deep_line(levels: int) -> str:
    return '{"event_id": "deep", "payload": ' + "[" * levels + "]" * levels + "}"


def test_json_depth_ignores_brackets_inside_strings():
    assert json_depth(b'{"a": "[[[[{{", "b": [[1]], "c": "x\\"[[", "d": "\\\\"}') == 3
    assert json_depth(b"[" * 5_000, stop_above=64) == 65  # stops counting past the limit


def test_a_1500_deep_line_in_a_fallback_file_is_quarantined_not_a_recursion_error(tmp_path: Path):
    """Before: json.loads raised RecursionError out of ingest_files and the day was not ingested."""
    day_dir = tmp_path / DAY.isoformat()
    write_jsonl(day_dir / "a.jsonl", [event("a1"), '{"broken": ', deep_line(1_500), event("a2")])
    result = ingest_files(landing_files(tmp_path, DAY), parse_settings({}), DAY, root=tmp_path)
    assert sorted(result.valid["event_id"]) == ["a1", "a2"]
    reasons = dict(zip(result.quarantined["line_number"], result.quarantined["reason"], strict=True))
    assert reasons[3].startswith("nesting deeper than 64 levels")
    assert "unparseable JSON" in reasons[2]
    assert result.rows_read == 4 and conserved(result)


def test_a_20000_deep_line_never_reaches_pyarrow(tmp_path: Path):
    """Before: pyarrow's parser segfaulted the process. Run in a child so a crash fails the test, not the suite."""
    path = tmp_path / "deep.jsonl"
    write_jsonl(path, [event("a1"), deep_line(20_000), event("a2")])
    script = (
        "import sys; from pathlib import Path; from eval_pipelines.ingestion.readers import read_log_file; "
        "r = read_log_file(Path(sys.argv[1])); "
        "print(len(r.rows), [(x.line_number, x.reason[:29]) for x in r.rejected], r.error)"
    )
    child = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True, timeout=60,
                           cwd=Path(__file__).resolve().parent.parent)
    assert child.returncode == 0, child.stderr[-2000:]
    assert child.stdout.strip() == "2 [(2, 'nesting deeper than 64 levels')] None"


def test_deep_text_inside_strings_keeps_the_vectorised_path_off_only_when_needed(tmp_path: Path):
    """A line with many brackets in a string is valid; the cheap bound sends it to the exact scan, which keeps it."""
    path = tmp_path / "brackets.jsonl"
    write_jsonl(path, [event("a1", input_text="[" * 500), event("a2")])
    read = read_log_file(path)
    assert read.rejected == [] and read.rows["event_id"].tolist() == ["a1", "a2"]
    assert read.rows.loc[0, "input_text"] == "[" * 500


@pytest.mark.parametrize("tail_bytes", [4, 1 << 14])
def test_the_bound_finds_a_bracket_dense_line_across_chunk_boundaries(monkeypatch, tail_bytes: int):
    monkeypatch.setattr(readers, "_COUNT_CHUNK", 7)
    monkeypatch.setattr(readers, "_TAIL_BYTES", tail_bytes)
    shallow = b'{"a": [[1]], "b": {"c": [2]}}\n' * 40  # 5 opening brackets a line, 200 a file
    assert not readers._may_crash_pyarrow(shallow, 5)
    assert readers._may_crash_pyarrow(shallow, 4)
    assert readers._may_crash_pyarrow(shallow + b"[" * 30 + b"]" * 30, 29)  # last line, no line break
    assert not readers._may_crash_pyarrow(shallow + b"[" * 30 + b"]" * 30, 30)


def test_a_moderately_deep_line_is_caught_on_the_parsed_schema(tmp_path: Path):
    """Below pyarrow's danger zone the file is parsed; the schema shows the depth, the line reader names the line."""
    path = tmp_path / "deep.jsonl"
    # the row object is level 1: 63 arrays inside it make 64 levels (kept), 64 arrays make 65 (refused)
    write_jsonl(path, [event("a1"), deep_line(64), deep_line(63).replace("deep", "ok64"), event("a2")])
    read = read_log_file(path)
    assert read.used_fallback
    assert read.rows["event_id"].tolist() == ["a1", "ok64", "a2"]
    assert [r.line_number for r in read.rejected] == [2]


def test_the_depth_limit_is_validated_with_its_path():
    assert parse_settings({"ingestion": {"max_json_depth": 10}}).ingestion.max_json_depth == 10
    with pytest.raises(ConfigError, match=r"ingestion\.max_json_depth"):
        parse_settings({"ingestion": {"max_json_depth": 5_000}})


def test_a_deep_gzip_line_is_quarantined(tmp_path: Path):
    import gzip
    path = tmp_path / "deep.jsonl.gz"
    path.write_bytes(gzip.compress((json.dumps(event("a1")) + "\n" + deep_line(300) + "\n").encode()))
    read = read_log_file(path)
    assert read.rows["event_id"].tolist() == ["a1"]
    assert [r.line_number for r in read.rejected] == [2]


# ---------------------------------------------------------------------------------------------------- symlinks

def test_a_link_out_of_the_landing_dir_is_refused_and_recorded(tmp_path: Path):
    """Before: ``ln -s /etc/shadow landing/D/x.csv`` put every line of the target into quarantined_events."""
    landing = tmp_path / "landing"
    secret = tmp_path / "secret.csv"
    secret.write_text("root:CANARY-SECRET:19000:0:99999:7:::\n")
    day_dir = landing / DAY.isoformat()
    write_jsonl(day_dir / "a.jsonl", [event("a1")])
    (day_dir / "x.csv").symlink_to(secret)
    (landing / "elsewhere").mkdir()
    write_jsonl(landing / "elsewhere" / "inside.jsonl", [event("i1")])
    (day_dir / "inside.jsonl").symlink_to(landing / "elsewhere" / "inside.jsonl")  # stays inside: followed
    (day_dir / "dangling.jsonl").symlink_to(tmp_path / "gone.jsonl")
    result = ingest_files(landing_files(landing, DAY), parse_settings({}), DAY, root=landing)

    assert sorted(result.valid["event_id"]) == ["a1", "i1"]
    assert result.quarantined.empty
    reports = {f.source_file: f for f in result.files}
    refused = reports[f"{DAY}/x.csv"]
    assert refused.status == "refused" and "outside the landing directory" in refused.error
    assert refused.rows_read == 0
    assert reports[f"{DAY}/dangling.jsonl"].status == "refused"
    assert reports[f"{DAY}/inside.jsonl"].status == "ok"
    assert result.files_failed == 2
    assert "CANARY" not in repr(result.file_records())


def test_a_linked_day_folder_out_of_the_landing_dir_is_refused(tmp_path: Path):
    landing = tmp_path / "landing"
    landing.mkdir()
    outside = tmp_path / "outside"
    write_jsonl(outside / "a.jsonl", [event("a1")])
    (landing / DAY.isoformat()).symlink_to(outside, target_is_directory=True)
    result = ingest_files(landing_files(landing, DAY), parse_settings({}), DAY, root=landing)
    assert result.valid.empty and [f.status for f in result.files] == ["refused"]


# ----------------------------------------------------------------------------------------------------- CSV / BOM

CSV_HEADER = "event_id,timestamp,system,model_version,segment,ai_output,latency_ms,cost_usd,status"


def csv_row(event_id: str) -> str:
    return f"{event_id},2026-11-20T01:00:00Z,triage,v1,smb,billing/low,12,0.1,ok"


def test_a_csv_with_a_bom_and_one_irregular_row_keeps_its_good_rows(tmp_path: Path):
    """Before: the line reader kept the BOM in the first column name, so every row lacked event_id."""
    day_dir = tmp_path / DAY.isoformat()
    day_dir.mkdir()
    text = "\n".join([CSV_HEADER, csv_row("c1"), "c2,2026-11-20T01:00:00Z,triage", csv_row("c3")]) + "\n"
    (day_dir / "bom.csv").write_bytes(b"\xef\xbb\xbf" + text.encode())
    result = ingest_files(landing_files(tmp_path, DAY), parse_settings({}), DAY, root=tmp_path)
    assert sorted(result.valid["event_id"]) == ["c1", "c3"]
    (reason,) = result.quarantined["reason"]
    assert reason.startswith("wrong number of fields")


def test_a_jsonl_with_a_bom_and_one_broken_line_keeps_its_good_rows(tmp_path: Path):
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + (json.dumps(event("j1")) + '\n{"broken\n' + json.dumps(event("j2"))).encode())
    read = read_log_file(path)
    assert read.rows["event_id"].tolist() == ["j1", "j2"] and [r.line_number for r in read.rejected] == [2]


def test_a_csv_read_with_the_wrong_delimiter_names_the_setting(tmp_path: Path):
    day_dir = tmp_path / DAY.isoformat()
    day_dir.mkdir()
    lines = [CSV_HEADER, csv_row("c1"), csv_row("c2")]
    (day_dir / "semi.csv").write_text("\n".join(line.replace(",", ";") for line in lines) + "\n")
    result = ingest_files(landing_files(tmp_path, DAY), parse_settings({}), DAY, root=tmp_path)
    (report,) = result.files
    assert report.status == "failed"
    assert report.error.startswith("the header has one column: is `source.csv_delimiter` right?")
    assert result.quarantined.empty
    right = ingest_files(landing_files(tmp_path, DAY), parse_settings({"source": {"csv_delimiter": ";"}}), DAY,
                         root=tmp_path)
    assert sorted(right.valid["event_id"]) == ["c1", "c2"]


# --------------------------------------------------------------------------------------- conflicting duplicates

def ingest_named(tmp_path: Path, files: dict[str, list]) -> object:
    for name, lines in files.items():
        write_jsonl(tmp_path / DAY.isoformat() / name, lines)
    return ingest_files(landing_files(tmp_path, DAY), parse_settings({}), DAY, root=tmp_path)


def test_the_survivor_of_a_conflict_does_not_depend_on_file_names(tmp_path: Path):
    """Before: the first file by name won, and the dropped row was counted as an exact duplicate."""
    first = [event("e1", ai_output="billing/high"), event("same"), event("e2", user_action=None)]
    second = [event("e1", ai_output="billing/low"), event("same"), event("e2")]
    kept = []
    for order, names in enumerate([("a.jsonl", "b.jsonl"), ("b.jsonl", "a.jsonl")]):
        result = ingest_named(tmp_path / str(order), dict(zip(names, (first, second), strict=True)))
        assert result.rows_duplicate == 1 and result.rows_conflicting == 2 and conserved(result)
        assert sorted(result.conflicts["event_id"]) == ["e1", "e2"]
        rows = result.valid.set_index("event_id")
        e1 = result.conflicts.set_index("event_id").loc["e1"]
        assert rows.loc["e1", "source_file"] == e1["kept_file"] != e1["dropped_file"]
        kept.append(rows[["ai_output", "user_action"]].sort_index())
    # e2: the row with more fields filled wins, whichever file it is in; e1 (equal fields and time): the hash
    assert kept[0].loc["e2", "user_action"] == "accepted"
    assert kept[0].equals(kept[1])


def test_a_later_timestamp_wins_when_fields_are_equally_filled(tmp_path: Path):
    result = ingest_named(tmp_path, {
        "a.jsonl": [event("e1", timestamp="2026-11-20T12:00:00Z")],
        "b.jsonl": [event("e1", timestamp="2026-11-20T10:00:00Z")],
    })
    assert result.valid["timestamp"].tolist() == [__import__("pandas").Timestamp("2026-11-20T12:00:00Z")]
    assert result.rows_conflicting == 1 and result.files[0].rows_conflicting == 0
    assert result.files[1].rows_conflicting == 1


def test_duplicate_keys_and_nan_literals_are_quarantined_not_resolved(tmp_path: Path):
    """Before: json.loads kept the last of two keys, and NaN became a silent null (pyarrow reads it too)."""
    path = tmp_path / DAY.isoformat() / "a.jsonl"
    good = json.dumps(event("ok"))
    write_jsonl(path, [
        good,
        json.dumps(event("twice"))[:-1] + ', "event_id": "other"}',
        json.dumps(event("nan", confidence=0.5)).replace("0.5", "NaN"),
        json.dumps(event("nested"))[:-1] + ', "meta": {"k": 1, "k": 2}}',
    ])
    result = ingest_files(landing_files(tmp_path, DAY), parse_settings({}), DAY, root=tmp_path)
    assert result.valid["event_id"].tolist() == ["ok"]
    reasons = dict(zip(result.quarantined["line_number"], result.quarantined["reason"], strict=True))
    assert reasons[2].startswith("duplicate key 'event_id' in one JSON object")
    assert reasons[3].startswith("NaN literal is not JSON")
    assert reasons[4].startswith("duplicate key 'k'")
    assert conserved(result)


def test_a_nan_literal_alone_does_not_pass_the_vectorised_path(tmp_path: Path):
    path = tmp_path / "nan.jsonl"
    write_jsonl(path, [json.dumps(event("nan", confidence=0.5)).replace("0.5", "NaN"), event("ok")])
    read = read_log_file(path)
    assert read.rows["event_id"].tolist() == ["ok"] and read.rejected[0].reason.startswith("NaN literal")
