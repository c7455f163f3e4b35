"""The Parquet lake: atomic partition files, and column-pruned reads that say what is missing."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from eval_pipelines.lake import Lake


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    lake = Lake(str(tmp_path / "lake"))
    lake.write("cases", "2026-11-20", pd.DataFrame({"id": ["a", "b", "c"], "segment": ["smb", "ent", "smb"],
                                                     "score": [0.1, 0.2, 0.3]}))
    return lake


def test_reads_required_then_present_optional_columns_in_order(lake: Lake):
    table = lake.read_columns("cases", "2026-11-20", ["score"], optional=["absent", "id", "score"])
    assert table.column_names == ["score", "id"]
    assert table.column("id").to_pylist() == ["a", "b", "c"]


def test_dictionary_columns_come_back_as_categoricals_and_absent_ones_are_ignored(lake: Lake):
    frame = lake.read_columns("cases", "2026-11-20", ["segment", "id"], dictionary=["segment", "absent"]).to_pandas()
    assert isinstance(frame["segment"].dtype, pd.CategoricalDtype)
    assert frame["segment"].tolist() == ["smb", "ent", "smb"]
    assert not isinstance(frame["id"].dtype, pd.CategoricalDtype)


def test_a_missing_required_column_or_file_names_the_file(lake: Lake):
    with pytest.raises(KeyError, match=r"cases/2026-11-20.parquet has no column\(s\) \['absent'\]"):
        lake.read_columns("cases", "2026-11-20", ["id", "absent"])
    with pytest.raises(FileNotFoundError, match="materialise cases for partition 2026-11-21 first"):
        lake.read_columns("cases", "2026-11-21", ["id"])


def test_a_rewrite_replaces_the_partition_whole_and_leaves_no_temporary_file(lake: Lake, tmp_path: Path):
    lake.write("cases", "2026-11-20", pd.DataFrame({"id": ["z"]}))
    assert lake.read("cases", "2026-11-20")["id"].tolist() == ["z"]
    assert [p.name for p in (tmp_path / "lake" / "cases").iterdir()] == ["2026-11-20.parquet"]
