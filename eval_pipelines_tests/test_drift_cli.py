"""``eval-pipelines drift REFERENCE CURRENT``: formats, kind inference, exit codes and messages that name the file."""

from __future__ import annotations

import argparse
import json
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

from eval_pipelines.drift.cli import register
from eval_pipelines.drift.report import RESULT_FIELDS
from eval_pipelines.drift.synthetic import synthetic_frame


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="eval-pipelines")
    parser.add_argument("--config")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.handler(args)


@pytest.fixture
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    monkeypatch.delenv("EVAL_PIPELINES_CONFIG", raising=False)
    reference = synthetic_frame(4000, seed=1, categorical_dtype="str")
    current = synthetic_frame(3000, seed=2, categorical_dtype="str", mean_shift={"num_normal": 8.0},
                              share_shift={"cat_tier": (2, 0, 0.08)})
    for frame in (reference, current):
        frame["event_id"] = [f"evt-{i}" for i in range(len(frame))]  # an id: skipped when kinds are inferred
    paths = {"parquet": tmp_path / "reference.parquet", "csv": tmp_path / "current.csv",
             "jsonl": tmp_path / "current.jsonl", "jsonl_ref": tmp_path / "reference.jsonl.gz"}
    reference.to_parquet(paths["parquet"])
    current.to_csv(paths["csv"], index=False)
    current.to_json(paths["jsonl"], orient="records", lines=True)
    reference.to_json(paths["jsonl_ref"], orient="records", lines=True, compression="gzip")
    return paths


def test_json_output_has_one_object_per_check_with_the_table_fields(files, capsys) -> None:
    assert run(["drift", str(files["parquet"]), str(files["csv"]), "--format", "json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert {(r["column"], r["kind"]) for r in records} >= {("num_normal", "numeric"), ("cat_tier", "categorical"),
                                                           ("num_amount", "missing")}
    assert "event_id" not in {r["column"] for r in records}
    for record in records:
        assert set(RESULT_FIELDS) <= set(record)
    drifted = {r["column"] for r in records if r["drifted"]}
    assert drifted == {"num_normal", "cat_tier"}


def test_same_verdicts_from_parquet_csv_and_jsonl(files, capsys) -> None:
    verdicts = []
    for reference, current in ((files["parquet"], files["csv"]), (files["jsonl_ref"], files["jsonl"])):
        assert run(["drift", str(reference), str(current), "--format", "json"]) == 0
        records = json.loads(capsys.readouterr().out)
        verdicts.append({(r["column"], r["kind"]): (r["drifted"], round(r["effect_size"], 9)) for r in records})
    assert verdicts[0] == verdicts[1]


def test_given_columns_only_and_markdown(files, capsys) -> None:
    code = run(["drift", str(files["parquet"]), str(files["csv"]), "--numeric", "num_normal,num_uniform",
                "--categorical", "cat_tier"])
    out = capsys.readouterr().out
    assert code == 0
    assert "2 of 3 tested checks drifted" in out and "`num_uniform`" in out and "cat_code" not in out
    assert "█" in out  # the plots


def test_html_to_a_file_and_fail_on(files, tmp_path, capsys) -> None:
    out = tmp_path / "reports" / "drift.html"
    assert run(["drift", str(files["parquet"]), str(files["csv"]), "--format", "html", "--out", str(out),
                "--fail-on", "major"]) == 1
    assert "report written to" in capsys.readouterr().err
    page = out.read_text(encoding="utf-8")
    HTMLParser().feed(page)  # well-formed enough to parse
    assert page.startswith("<!doctype html>") and "<svg" in page and "num_normal" in page
    assert run(["drift", str(files["parquet"]), str(files["parquet"]), "--fail-on", "minor"]) == 0


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["{tmp}/missing.parquet", "{csv}"], "REFERENCE file {tmp}/missing.parquet: not found"),
        (["{parquet}", "{tmp}/current.xlsx"], "CURRENT file {tmp}/current.xlsx: not found"),
        (["{parquet}", "{bad}"], "CURRENT file {bad}: unknown type"),
        (["{parquet}", "{broken}"], "CURRENT file {broken}: cannot read as parquet"),
        (["{parquet}", "{csv}", "--numeric", "cat_tier"], "REFERENCE file {parquet}: column cat_tier is not numeric"),
        (["{parquet}", "{csv}", "--categorical", "nope"], "REFERENCE file {parquet}: column(s) not found: nope"),
        (["{parquet}", "{narrow}"], "CURRENT file {narrow}: column(s) not found"),
    ],
)
def test_data_errors_exit_2_and_name_the_file(files, tmp_path, capsys, argv, fragment) -> None:
    (tmp_path / "current.xlsx.txt").write_text("x")
    bad = tmp_path / "current.txt"
    bad.write_text("a,b\n1,2\n")
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"not parquet at all")
    narrow = tmp_path / "narrow.csv"
    pd.DataFrame({"num_normal": [1.0, 2.0]}).to_csv(narrow, index=False)
    names = {"tmp": tmp_path, "csv": files["csv"], "parquet": files["parquet"], "bad": bad, "broken": broken,
             "narrow": narrow}
    assert run(["drift", *[a.format(**names) for a in argv]]) == 2
    err = capsys.readouterr().err
    assert err.startswith("eval-pipelines drift: ")
    assert fragment.format(**names) in err


def test_usage_errors_exit_2(files) -> None:
    with pytest.raises(SystemExit) as exit_info:
        run(["drift", str(files["parquet"])])
    assert exit_info.value.code == 2
    with pytest.raises(SystemExit):
        run(["drift", str(files["parquet"]), str(files["csv"]), "--format", "pdf"])
