"""The trailing window in the lake, and the two-pass lake reader agreeing with the in-memory sampler."""

from __future__ import annotations

import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from eval_pipelines.evalsets import build
from eval_pipelines.evalsets.build import sample_cases, sample_from_lake
from eval_pipelines.evalsets.store import load_eval_set, write_version
from eval_pipelines.evalsets.window import lake_days, trailing_window
from eval_pipelines.lake import Lake
from eval_pipelines.warehouse.core import create_warehouse_engine
from eval_pipelines_tests.test_evalset_design import cases_frame, config


def test_window_anchors_on_the_newest_complete_day():
    days = ["2026-10-01", "2026-10-02", "2026-10-04", "2026-10-05", "2026-10-06"]
    window = trailing_window(days, 4, today=date(2026, 10, 6))
    assert (window.start, window.end) == (date(2026, 10, 2), date(2026, 10, 5))  # today is still filling up
    assert window.days == ["2026-10-02", "2026-10-04", "2026-10-05"] and window.missing == ["2026-10-03"]
    assert trailing_window(days, 4, today=date(2026, 10, 6), include_today=True).end == date(2026, 10, 6)
    assert trailing_window(days, 28, today=date(2026, 12, 1)).days == days  # old data: anchored on what exists
    with pytest.raises(ValueError, match="materialise labeled_cases"):
        trailing_window(["2026-10-06"], 4, today=date(2026, 10, 6))


def test_lake_days_lists_partitions_with_a_stamp_that_changes_on_rewrite(tmp_path: Path):
    lake = Lake(str(tmp_path / "lake"))
    assert lake_days(lake) == {}
    frame = pd.DataFrame({"a": [1]})
    lake.write("labeled_cases", "2026-10-02", frame)
    lake.write("labeled_cases", "2026-10-01", frame)
    (tmp_path / "lake" / "labeled_cases" / "notes.parquet").write_text("not a day")
    (tmp_path / "lake" / "labeled_cases" / "2026-10-03.parquet.abc.tmp").write_text("half-written")
    stamps = lake_days(lake)
    assert list(stamps) == ["2026-10-01", "2026-10-02"]
    time.sleep(0.01)
    lake.write("labeled_cases", "2026-10-02", pd.DataFrame({"a": [1, 2]}))
    assert lake_days(lake)["2026-10-02"] != stamps["2026-10-02"]
    assert lake_days(lake)["2026-10-01"] == stamps["2026-10-01"]


def test_lake_sampler_equals_the_in_memory_sampler_and_round_trips(tmp_path: Path):
    lake = Lake(str(tmp_path / "lake"))
    days = [f"2026-10-0{i + 1}" for i in range(3)]
    frames = [cases_frame(1500, seed=i, day=day) for i, day in enumerate(days)]
    for day, frame in zip(days, frames, strict=True):
        frame.loc[frame.index[:100], "is_labeled"] = False  # unlabeled rows: skipped, and row positions shift
        lake.write("labeled_cases", day, frame)
    window = trailing_window(lake_days(lake), 3, today=date(2026, 10, 10))
    features = ["channel", "customer_tenure_days"]
    from_lake = sample_from_lake(lake, window, config(), features)
    in_memory = sample_cases(pd.concat(frames, ignore_index=True), config(), window, features)
    assert from_lake.version == in_memory.version
    pd.testing.assert_frame_equal(from_lake.cases, in_memory.cases, check_dtype=False)

    engine = create_warehouse_engine(f"sqlite:///{tmp_path / 'w.db'}")
    now = pd.Timestamp("2026-10-11T06:00Z").to_pydatetime()
    assert write_version(engine, from_lake, now, "run-a") is True
    assert write_version(engine, from_lake, now, "run-b") is False  # immutable: nothing written again
    version, cases, strata = load_eval_set(engine)
    assert version == from_lake.version and len(cases) == from_lake.size
    assert strata["population"].sum() == from_lake.population
    assert set(cases["event_id"]) == set(from_lake.cases["event_id"])
    with pytest.raises(LookupError):
        load_eval_set(engine, "no-such-version")


@pytest.mark.parametrize("change", ["reordered", "shrunk"])
def test_a_day_rematerialised_between_the_two_passes_fails_naming_the_day(tmp_path: Path, monkeypatch, change):
    """Pass 2 reads the selected rows back by position: if labeled_cases of a day is rewritten after pass 1 (same
    cases in another order, or fewer rows), the build must stop and name the day, not version other cases."""
    lake = Lake(str(tmp_path / "lake"))
    days = ["2026-10-01", "2026-10-02", "2026-10-03"]
    frames = {day: cases_frame(800, seed=i, day=day) for i, day in enumerate(days)}
    for day, frame in frames.items():
        lake.write("labeled_cases", day, frame)
    window = trailing_window(lake_days(lake), 3, today=date(2026, 10, 10))
    real_frame_from_lake = build.frame_from_lake

    def frame_then_rewrite(*args, **kwargs):
        frame = real_frame_from_lake(*args, **kwargs)
        original = frames["2026-10-02"]
        rewritten = original.iloc[::-1] if change == "reordered" else original.iloc[: len(original) // 3]
        lake.write("labeled_cases", "2026-10-02", rewritten.reset_index(drop=True))
        return frame

    monkeypatch.setattr(build, "frame_from_lake", frame_then_rewrite)
    with pytest.raises(build.SourceChangedError,
                       match=r"^labeled_cases 2026-10-02 changed during the eval-set build; re-run$") as caught:
        sample_from_lake(lake, window, config())
    assert caught.value.days == ["2026-10-02"]


def test_replay_identity_names_only_the_days_whose_rows_differ():
    frame = build.frame_from_cases(cases_frame(600, seed=4), config())
    selected = np.arange(0, 600, 7)
    replay = cases_frame(600, seed=4).iloc[selected][["event_id"]]
    build.check_replay_identity(frame, selected, replay, config().seed)  # the right cases: no error
    swapped = replay.assign(event_id=replay["event_id"].to_numpy()[::-1])
    with pytest.raises(build.SourceChangedError, match="labeled_cases memory changed"):
        build.check_replay_identity(frame, selected, swapped, config().seed)
    with pytest.raises(build.SourceChangedError):
        build.check_replay_identity(frame, selected, replay.iloc[:-1], config().seed)
