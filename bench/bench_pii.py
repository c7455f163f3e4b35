"""PII masking speed on demo-like text: rows per second for input_text and for all four free-text fields.

    PYTHONPATH=. .venv/bin/python bench/bench_pii.py [rows] [--old PATH_TO_OLD_PII_MODULE]

The baseline printed first is the native candidate prefilter alone (the floor: rows that may hold PII, found by
pyarrow); ``--old`` also times a previous masker module's ``mask_pii`` on the same input_text column.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from datetime import date

import pyarrow as pa

from eval_pipelines.demo.generator import generate_day_frame
from eval_pipelines.ingestion.pii import Masker, _candidates

FREE_TEXT = ("input_text", "ai_output", "final_output", "ground_truth")


def _time(label: str, rows: int, function, unit: str = "masks") -> None:
    start = time.perf_counter()
    masks = function()
    seconds = time.perf_counter() - start
    print(f"{label:<42} {rows:>9,} rows {seconds:7.2f} s {rows / seconds:>12,.0f} rows/s  {masks:,} {unit}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("rows", nargs="?", type=int, default=200_000)
    parser.add_argument("--old", help="path of an older pii.py to compare with")
    args = parser.parse_args()
    frame = generate_day_frame(date(2026, 10, 1), args.rows, seed=7, with_truth=True)
    # Baseline, the floor of any masker here: the native prefilter that finds the rows that may hold PII.
    _time("baseline: candidate prefilter (pyarrow)", args.rows,
          lambda: int(_candidates(pa.array(frame["input_text"].astype(str).to_numpy())).sum()), unit="candidates")
    if args.old:
        spec = importlib.util.spec_from_file_location("old_pii", args.old)
        old = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = old  # dataclasses look their module up while the class is created
        spec.loader.exec_module(old)
        _time("old mask_pii, input_text", args.rows, lambda: int(old.mask_pii(frame["input_text"])[1].sum()))
    _time("new, input_text (cold cache)", args.rows,
          lambda: int(Masker().mask_series(frame["input_text"])[1].sum()))
    masker = Masker()
    _time("new, 4 free-text fields (cold cache)", args.rows,
          lambda: sum(int(masker.mask_series(frame[c])[1].sum()) for c in FREE_TEXT if c in frame))


if __name__ == "__main__":
    main()
