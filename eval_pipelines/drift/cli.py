"""``eval-pipelines drift REFERENCE CURRENT``: an ad-hoc drift report between two files, same verdicts as the asset.

Registered on the main parser by :func:`register`. Thresholds come from the ``drift`` section of the project config
(``--config``, ``$EVAL_PIPELINES_CONFIG`` or the shipped one). Exit codes follow the main CLI: 0 the report was
made, 1 with ``--fail-on`` when a column drifted at that severity, 2 a usage or data error (the message names the
file).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import pandas as pd

FORMATS = ("json", "md", "html")
_READERS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".tsv": "csv", ".jsonl": "jsonl",
            ".ndjson": "jsonl", ".json": "jsonl"}


class DriftDataError(ValueError):
    """A file or column the command cannot use; the message names it."""


def _columns(text: str | None) -> list[str]:
    return [c.strip() for c in text.split(",") if c.strip()] if text else []


def read_table(path: Path, role: str) -> pd.DataFrame:
    """Read Parquet, CSV/TSV or JSON lines (optionally .gz) by extension; errors name the file and its role."""
    if not path.is_file():
        raise DriftDataError(f"{role} file {path}: not found")
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    kind = _READERS.get(suffixes[-1] if suffixes else "")
    if kind is None:
        raise DriftDataError(f"{role} file {path}: unknown type; use .parquet, .csv, .tsv or .jsonl (optionally .gz)")
    try:
        if kind == "parquet":
            import pyarrow.parquet as pq

            table = pq.read_table(path)
        elif kind == "csv":
            import pyarrow.csv as pa_csv

            delimiter = "\t" if ".tsv" in suffixes else ","
            table = pa_csv.read_csv(path, parse_options=pa_csv.ParseOptions(delimiter=delimiter),
                                    convert_options=pa_csv.ConvertOptions(strings_can_be_null=True))
        else:
            import pyarrow.json as pa_json

            table = pa_json.read_json(path)
    except Exception as error:  # pyarrow raises ArrowInvalid, OSError, ...: all mean "cannot read this file"
        raise DriftDataError(f"{role} file {path}: cannot read as {kind}: {error}") from None
    if table.num_rows == 0:
        raise DriftDataError(f"{role} file {path}: no rows")
    return table.to_pandas()


def _check_columns(frame: pd.DataFrame, path: Path, role: str, numeric: list[str], categorical: list[str],
                   needed: list[str]) -> None:
    absent = [c for c in needed if c not in frame.columns]
    if absent:
        raise DriftDataError(f"{role} file {path}: column(s) not found: {', '.join(absent)} "
                             f"(has: {', '.join(map(str, frame.columns))})")
    for column in numeric:
        dtype = frame[column].dtype
        if not (pd.api.types.is_numeric_dtype(dtype) or frame[column].isna().all()):
            raise DriftDataError(f"{role} file {path}: column {column} is not numeric ({dtype}); "
                                 f"pass it with --categorical instead")


def run_drift(reference_path: Path, current_path: Path, numeric: list[str], categorical: list[str],
              fmt: str, config_path: str | None) -> tuple[str, Any]:
    """Build the report; returns (rendered text, the DriftReport). Raises DriftDataError on unusable input."""
    from eval_pipelines.config import load_settings
    from eval_pipelines.drift.monitors import infer_monitors
    from eval_pipelines.drift.render import html_report, markdown_summary
    from eval_pipelines.drift.report import compare_frames

    config = load_settings(config_path).drift
    reference = read_table(reference_path, "REFERENCE")
    current = read_table(current_path, "CURRENT")
    given = numeric + categorical
    _check_columns(reference, reference_path, "REFERENCE", numeric, categorical, given)
    try:
        inferred = infer_monitors(reference, numeric, categorical)
    except (KeyError, ValueError) as error:
        raise DriftDataError(f"REFERENCE file {reference_path}: {error.args[0]}") from None
    monitors = inferred.monitors
    needed = [m.source for m in monitors]
    _check_columns(current, current_path, "CURRENT", [m.source for m in monitors if m.kind == "numeric"],
                   [], needed)
    if not monitors:
        raise DriftDataError(f"REFERENCE file {reference_path}: no column to monitor "
                             f"(skipped: {'; '.join(f'{k}: {v}' for k, v in inferred.skipped.items())})")
    report = compare_frames(reference, current, monitors, config, with_plots=fmt != "json")
    if inferred.skipped:
        skipped = tuple(f"{column} skipped: {why}" for column, why in inferred.skipped.items())
        report = dataclasses.replace(report, notes=(*report.notes, *skipped))
    label = str(reference_path)
    if fmt == "json":
        text = json.dumps(report.json_records(None), indent=2, ensure_ascii=False)
    elif fmt == "md":
        text = markdown_summary(report, None, label, None, max_plots=len(report.results))
    else:
        text = html_report(report, None, label, None)
    return text, report


def _cmd_drift(args: argparse.Namespace) -> int:
    try:
        text, report = run_drift(Path(args.reference), Path(args.current), _columns(args.numeric),
                                 _columns(args.categorical), args.format, getattr(args, "config", None))
    except DriftDataError as error:
        print(f"eval-pipelines drift: {error}", file=sys.stderr)
        return 2
    if args.out:
        out = Path(args.out)
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(text + "\n", encoding="utf-8")
        except OSError as error:
            print(f"eval-pipelines drift: cannot write --out {out}: {error}", file=sys.stderr)
            return 2
        print(f"{len(report.drifted)} of {len(report.results)} checks drifted ({len(report.major)} major); "
              f"report written to {out}", file=sys.stderr)
    else:
        sys.stdout.write(text + "\n")
    worst = {"major": report.major, "minor": report.drifted}.get(args.fail_on, [])
    return 1 if worst else 0


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``drift`` subcommand to the main CLI's subparsers."""
    parser = subparsers.add_parser(
        "drift",
        help="ad-hoc drift report between two Parquet / CSV / JSONL files",
        description="Compare CURRENT with REFERENCE column by column (KS, Wasserstein, PSI; chi-square, "
                    "Jensen-Shannon, share changes; missing shares). A column drifts when its Benjamini-Hochberg "
                    "adjusted p-value is at most drift.alpha and its effect size is material (config: drift).",
    )
    parser.add_argument("reference", help="reference file (.parquet, .csv, .tsv, .jsonl; optionally .gz)")
    parser.add_argument("current", help="current file, same formats")
    parser.add_argument("--numeric", help="comma-separated numeric columns (with --categorical: only these "
                                          "columns; without both: every column, kinds inferred)")
    parser.add_argument("--categorical", help="comma-separated categorical columns")
    parser.add_argument("--format", choices=FORMATS, default="md",
                        help="json: one object per check with the drift_results fields; md: summary with Unicode "
                             "plots; html: standalone page with SVG plots (default: md)")
    parser.add_argument("--out", help="write the report here instead of stdout")
    parser.add_argument("--fail-on", choices=("never", "minor", "major"), default="never",
                        help="exit 1 when a check drifts at this severity or worse (default: never)")
    parser.set_defaults(handler=_cmd_drift)
    return parser
