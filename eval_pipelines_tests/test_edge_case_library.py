"""The library as data: incremental merge, idempotent re-merge, lifecycle, and the warehouse round trip."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from eval_pipelines.demo.generator import generate_day_frame
from eval_pipelines.edge_cases import store
from eval_pipelines.edge_cases.library import (
    ENTRY_COLUMNS,
    FIXED,
    OPEN,
    REGRESSED,
    apply_run_results,
    empty_entries,
    merge_day,
    rerun_basis_from_ledger,
)
from eval_pipelines.edge_cases.settings import DedupConfig, EdgeCaseConfig, FailureModeRule
from eval_pipelines.labeling.assets import label_cases
from eval_pipelines.labeling.labels import FAILURE_TAGS
from eval_pipelines.warehouse.core import create_warehouse_engine

AT = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
CONFIG = EdgeCaseConfig()


def demo_day(index: int, n: int = 4000) -> pd.DataFrame:
    day = date(2026, 10, 1 + index)
    events = generate_day_frame(day, n, seed=5, day_index=index)
    events["timestamp"] = pd.to_datetime(events["timestamp"], utc=True)
    return label_cases(events, 0.5, 120.0)


def hand_day(day: str, rows: list[tuple[str, str, str, float, set[str]]]) -> pd.DataFrame:
    """rows: (event_id, hh:mm, input_text, confidence, tags); every case overridden unless it has no override."""
    frame = pd.DataFrame({
        "event_id": [r[0] for r in rows],
        "timestamp": pd.to_datetime([f"{day}T{r[1]}:00Z" for r in rows], utc=True),
        "input_text": [r[2] for r in rows], "confidence": [r[3] for r in rows],
        "user_action": ["overridden" if "override" in r[4] else "accepted" for r in rows],
        "ai_output": "billing/low", "label": "refund/high", "correctness": "wrong", "failure_tags": "",
        "system": "triage", "model_version": "v1", "segment": "consumer",
    })
    for tag in FAILURE_TAGS:
        frame[f"tag_{tag}"] = [tag in r[4] for r in rows]
    return frame


REFUND = "Your agent promised me a refund of $120.00 last week and I still have nothing."
PARCEL = "The package for order ORD-1200 arrived damaged, the screen is cracked."


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path: Path) -> Iterator[sa.Engine]:
    """A fresh warehouse on each backend: PostgreSQL enforces types and isolation that SQLite does not."""
    url = f"sqlite:///{tmp_path / 'w.db'}" if request.param == "sqlite" else request.getfixturevalue(
        "postgres_database")
    created = create_warehouse_engine(url)
    yield created
    created.dispose()


def _utc(value: object) -> pd.Timestamp:
    """A timestamp as UTC (SQLite gives back naive UTC, PostgreSQL aware)."""
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def ledger_of(*merges: tuple[str, object]) -> pd.DataFrame:
    return pd.concat([m.contribution.assign(partition_date=day) for day, m in merges], ignore_index=True)


def test_first_day_creates_deduplicated_entries():
    day = hand_day("2026-10-01", [
        ("e3", "09:00", "Hi, " + REFUND.replace("120", "75") + " Thanks", 0.95, {"override"}),
        ("e1", "08:00", REFUND, 0.91, {"override"}),
        ("e2", "08:30", REFUND.upper(), 0.99, {"override"}),
        ("e4", "10:00", PARCEL, 0.97, {"override"}),
        ("e5", "11:00", REFUND, 0.9, {"compliance"}),  # same text, other failure mode: its own entry
        ("e6", "12:00", PARCEL, 0.3, {"override"}),  # not confident: no failure mode, not in the library
    ])
    merge = merge_day(empty_entries(), day, "2026-10-01", CONFIG, "run-1", AT)
    lib = merge.entries.set_index("representative_event_id")
    assert sorted(lib.index) == ["e1", "e4", "e5"]
    refund = lib.loc["e1"]  # the earliest case founds the entry
    assert (refund["failure_mode"], refund["occurrences"], refund["days_seen"]) == (
        "overridden_high_confidence", 3, 1)
    assert refund["first_seen"] == pd.Timestamp("2026-10-01T08:00Z")
    assert refund["last_seen"] == pd.Timestamp("2026-10-01T09:00Z")
    assert refund["example_event_ids"] == '["e1", "e2", "e3"]'
    assert (refund["status"], refund["input_text"], refund["expected_output"]) == (OPEN, REFUND, "refund/high")
    assert lib.loc["e5", "failure_mode"] == "compliance_flag"
    assert merge.contribution["occurrences"].sum() == 5 == merge.stats["failing_cases"]
    assert sorted(merge.events["to_status"]) == [OPEN] * 3 and set(merge.events["run_id"]) == {"run-1"}


def test_merging_a_new_day_touches_older_entries_only_through_counts_and_last_seen():
    day1, day2 = demo_day(0), demo_day(1)
    first = merge_day(empty_entries(), day1, "2026-10-01", CONFIG, "r1", AT)
    second = merge_day(first.entries, day2, "2026-10-02", CONFIG, "r2", AT)
    before = first.entries.set_index("entry_id")
    after = second.entries.set_index("entry_id").loc[before.index]
    untouched = [c for c in ENTRY_COLUMNS if c not in ("entry_id", "occurrences", "days_seen", "last_seen")]
    pd.testing.assert_frame_equal(after[untouched], before[untouched])
    assert (after["occurrences"] >= before["occurrences"]).all()
    assert (after["last_seen"] >= before["last_seen"]).all()
    grew = after["occurrences"] > before["occurrences"]
    assert grew.any() and (after.loc[grew, "days_seen"] == 2).all()
    assert second.updated_ids and set(second.updated_ids) <= set(before.index)
    assert set(second.new_ids).isdisjoint(before.index)
    total = second.entries["occurrences"].sum()
    assert total == first.stats["failing_cases"] + second.stats["failing_cases"]  # every failing case counted once


def test_rerunning_a_day_does_not_double_counts():
    day1, day2 = demo_day(0), demo_day(1)
    first = merge_day(empty_entries(), day1, "2026-10-01", CONFIG, "r1", AT)
    second = merge_day(first.entries, day2, "2026-10-02", CONFIG, "r2", AT)
    ledger = ledger_of(("2026-10-01", first), ("2026-10-02", second))
    again = merge_day(second.entries, day2, "2026-10-02", CONFIG, "r3",
                      datetime(2026, 11, 21, tzinfo=UTC), rerun_basis_from_ledger(ledger, "2026-10-02"))
    pd.testing.assert_frame_equal(again.entries, second.entries)
    assert again.new_ids == [] and again.removed_ids == []
    pd.testing.assert_frame_equal(again.contribution, second.contribution)
    # ... and re-running the first day (merged before the second) as well.
    again1 = merge_day(second.entries, day1, "2026-10-01", CONFIG, "r4", AT,
                       rerun_basis_from_ledger(ledger, "2026-10-01"))
    pd.testing.assert_frame_equal(again1.entries, second.entries)


def test_rerunning_a_changed_day_replaces_its_contribution():
    day1, day2 = demo_day(0), demo_day(1)
    first = merge_day(empty_entries(), day1, "2026-10-01", CONFIG, "r1", AT)
    second = merge_day(first.entries, day2, "2026-10-02", CONFIG, "r2", AT)
    ledger = ledger_of(("2026-10-01", first), ("2026-10-02", second))
    changed = day2.iloc[: len(day2) // 2]  # the day was re-ingested with half its rows
    rerun = merge_day(second.entries, changed, "2026-10-02", CONFIG, "r3", AT,
                      rerun_basis_from_ledger(ledger, "2026-10-02"))
    fresh = merge_day(empty_entries(), changed, "2026-10-02", CONFIG, "r3", AT)
    assert rerun.entries["occurrences"].sum() == first.stats["failing_cases"] + fresh.stats["failing_cases"]
    # Entry totals equal the ledger after replacing the day's rows.
    new_ledger = ledger_of(("2026-10-01", first), ("2026-10-02", rerun))
    sums = new_ledger.groupby("entry_id")["occurrences"].sum()
    lib = rerun.entries.set_index("entry_id")
    assert (lib["occurrences"].reindex(sums.index) == sums).all()
    assert (lib.loc[~lib.index.isin(sums.index), "occurrences"] == 0).all()
    days = new_ledger.groupby("entry_id").size()
    assert (lib["days_seen"].reindex(days.index) == days).all()
    # Entries founded by the dropped half and never scored are gone, with an event saying so.
    assert rerun.removed_ids and not lib.index.isin(rerun.removed_ids).any()
    assert set(rerun.events.loc[rerun.events["to_status"] == "removed", "entry_id"]) == set(rerun.removed_ids)


def test_a_late_older_day_moves_first_seen():
    day = [("e1", "08:00", REFUND, 0.95, {"override"})]
    later = merge_day(empty_entries(), hand_day("2026-10-05", day), "2026-10-05", CONFIG, "r1", AT)
    earlier = merge_day(later.entries, hand_day("2026-10-02", [("e0", "07:00", REFUND, 0.9, {"override"})]),
                        "2026-10-02", CONFIG, "r2", AT)
    (entry,) = earlier.entries.itertuples()
    assert entry.first_seen == pd.Timestamp("2026-10-02T07:00Z")
    assert entry.last_seen == pd.Timestamp("2026-10-05T08:00Z")
    assert (entry.occurrences, entry.days_seen) == (2, 2)


@pytest.mark.parametrize(
    ("status", "passed", "expected"),
    [(OPEN, True, FIXED), (OPEN, False, OPEN), (FIXED, True, FIXED), (FIXED, False, REGRESSED),
     (REGRESSED, True, FIXED), (REGRESSED, False, REGRESSED)],
)
def test_lifecycle_transitions(status, passed, expected):
    lib = merge_day(empty_entries(), hand_day("2026-10-01", [("e1", "08:00", REFUND, 0.95, {"override"})]),
                    "2026-10-01", CONFIG, "r1", AT).entries.assign(status=status)
    entry_id = lib["entry_id"].iloc[0]
    at = datetime(2026, 11, 22, 9, 30, tzinfo=UTC)
    update = apply_run_results(lib, pd.DataFrame({"entry_id": [entry_id], "passed": [passed]}), "score-7", at)
    row = update.entries.iloc[0]
    assert row["status"] == expected
    assert (row["last_run_id"], row["last_run_at"], bool(row["last_run_passed"])) == ("score-7", pd.Timestamp(at),
                                                                                       passed)
    if expected != status:
        assert update.events.to_dict("records") == [{
            "entry_id": entry_id, "occurred_at": pd.Timestamp(at), "run_id": "score-7", "from_status": status,
            "to_status": expected, "reason": "scored run passed" if passed else "scored run failed"}]
        assert (row["status_changed_at"], row["status_run_id"]) == (pd.Timestamp(at), "score-7")
    else:
        assert update.events.empty and row["status_run_id"] == "r1"


def test_lifecycle_open_fixed_regressed_sequence_and_aggregation():
    merge = merge_day(empty_entries(), hand_day("2026-10-01", [("e1", "08:00", REFUND, 0.95, {"override"}),
                                                               ("e2", "09:00", PARCEL, 0.95, {"override"})]),
                      "2026-10-01", CONFIG, "r1", AT)
    lib = merge.entries
    a, b = lib["entry_id"].tolist()
    run1 = apply_run_results(lib, pd.DataFrame({"entry_id": [a, a, b, "ghost"], "passed": [True, True, True, True]}),
                             "s1", AT)
    assert run1.changes.set_index("entry_id")["to_status"].to_dict() == {a: FIXED, b: FIXED}
    assert run1.unknown == ["ghost"]
    run2 = apply_run_results(run1.entries, pd.DataFrame({"entry_id": [a, a, b], "passed": [True, False, True]}),
                             "s2", AT)
    assert run2.changes.to_dict("records") == [{"entry_id": a, "from_status": FIXED, "to_status": REGRESSED}]
    # A merge never touches the lifecycle columns.
    merged = merge_day(run2.entries, hand_day("2026-10-02", [("e9", "08:00", REFUND, 0.95, {"override"})]),
                       "2026-10-02", CONFIG, "r3", AT)
    lifecycle = ["status", "status_changed_at", "status_run_id", "last_run_id", "last_run_at", "last_run_passed"]
    pd.testing.assert_frame_equal(merged.entries[lifecycle], run2.entries[lifecycle])
    assert merged.entries.set_index("entry_id").loc[a, "occurrences"] == 2


def test_fingerprint_method_and_a_dedup_settings_change():
    rows = [("e1", "08:00", REFUND, 0.95, {"override"}), ("e2", "08:10", REFUND.upper() + "!!", 0.95, {"override"}),
            ("e3", "08:20", "Hi, " + REFUND, 0.95, {"override"})]
    exact = EdgeCaseConfig(dedup=DedupConfig(method="fingerprint"))
    merge = merge_day(empty_entries(), hand_day("2026-10-01", rows), "2026-10-01", exact, "r1", AT)
    assert sorted(merge.entries["occurrences"]) == [1, 2]  # case and punctuation only; the greeting is a new text
    # Switching to MinHash: old entries get signatures and new cases still match them.
    switched = merge_day(merge.entries, hand_day("2026-10-02", [("e4", "08:00", REFUND, 0.95, {"override"})]),
                         "2026-10-02", CONFIG, "r2", AT)
    assert sorted(switched.resigned_ids) == sorted(merge.entries["entry_id"])
    assert switched.new_ids == [] and switched.entries["occurrences"].sum() == 4


def test_warehouse_round_trip(engine: sa.Engine):
    library = store.load_entries(engine)
    assert library.empty
    merges = []
    for index, day in enumerate(["2026-10-01", "2026-10-02"]):
        merge = merge_day(library, demo_day(index, 2000), day, CONFIG, f"r{index}", AT, store.rerun_basis(engine, day))
        store.write_merge(engine, merge, day, f"stamp-{index}", f"r{index}", AT)
        library = merge.entries
        merges.append((day, merge))
    loaded = store.load_entries(engine).sort_values("entry_id").reset_index(drop=True)
    expected = library.sort_values("entry_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(loaded, expected, check_dtype=False)
    assert store.merged_days(engine) == {"2026-10-01": "stamp-0", "2026-10-02": "stamp-1"}
    assert store.ledger_mismatches(engine) == 0

    # The re-merge basis read from the warehouse, against the two days' contributions by hand: entries of day 2,
    # and for those also seen on day 1 that day's figures (the only other day, so days_seen is 1).
    from_store = store.rerun_basis(engine, "2026-10-02")
    (_, day1), (_, day2) = merges
    assert from_store.previous == set(day2.contribution["entry_id"])
    day1_rows = {row.entry_id: row for row in day1.contribution.itertuples()}
    expected_others = {entry_id: (day1_rows[entry_id].occurrences, 1, day1_rows[entry_id].first_seen,
                                  day1_rows[entry_id].last_seen)
                       for entry_id in from_store.previous if entry_id in day1_rows}
    assert expected_others  # the days share entries: the aggregate is really exercised
    others = from_store.others.set_index("entry_id")
    assert set(others.index) == set(expected_others)
    for entry_id, (occurrences, days_seen, first, last) in expected_others.items():
        row = others.loc[entry_id]
        assert (int(row["occurrences"]), int(row["days_seen"])) == (occurrences, days_seen)
        assert (_utc(row["first_seen"]), _utc(row["last_seen"])) == (_utc(first), _utc(last))
    assert store.rerun_basis(engine, "2026-10-03") is None  # never merged: nothing to take out

    # Re-merge a day through the warehouse: same totals, ledger still consistent.
    rerun = merge_day(library, demo_day(1, 2000), "2026-10-02", CONFIG, "r9", AT, from_store)
    store.write_merge(engine, rerun, "2026-10-02", "stamp-9", "r9", AT)
    assert store.load_entries(engine)["occurrences"].sum() == library["occurrences"].sum()
    assert store.ledger_mismatches(engine) == 0

    first_id = loaded["entry_id"].iloc[0]
    update = store.record_run_results(engine, pd.DataFrame({"entry_id": [first_id], "passed": [True]}), "s1", AT)
    assert update.changes["to_status"].tolist() == [FIXED]
    row = store.load_entries(engine, [first_id]).iloc[0]
    assert (row["status"], row["status_run_id"], bool(row["last_run_passed"])) == (FIXED, "s1", True)
    events = store.load_events(engine, first_id)
    assert events["to_status"].tolist() == [OPEN, FIXED]
    replay = store.load_library(engine, statuses=[OPEN, REGRESSED])
    assert first_id not in set(replay["entry_id"]) and "minhash" not in replay.columns
    assert np.isclose(len(replay), len(loaded) - 1)


def test_rerun_basis_accepts_rows_pre_aggregated_over_other_days():
    """The warehouse hands the pure function one row per entry for its other days (``days_seen`` > 1, no date):
    the basis must be the one of the raw per-day rows."""
    t = pd.Timestamp
    raw = pd.DataFrame({
        "partition_date": ["2026-10-03", "2026-10-03", "2026-10-01", "2026-10-02", "2026-10-02", "2026-10-01"],
        "entry_id": ["a", "b", "a", "a", "b", "c"],
        "occurrences": [4, 1, 2, 3, 5, 9],
        "first_seen": [t("2026-10-03T01:00Z"), t("2026-10-03T02:00Z"), t("2026-10-01T05:00Z"),
                       t("2026-10-02T04:00Z"), t("2026-10-02T03:00Z"), t("2026-10-01T00:00Z")],
        "last_seen": [t("2026-10-03T09:00Z"), t("2026-10-03T02:00Z"), t("2026-10-01T06:00Z"),
                      t("2026-10-02T23:00Z"), t("2026-10-02T08:00Z"), t("2026-10-01T01:00Z")],
    })
    basis = rerun_basis_from_ledger(raw, "2026-10-03")
    assert basis.previous == {"a", "b"}  # c did not occur on the day: not part of the basis
    expected = {"a": (5, 2, t("2026-10-01T05:00Z"), t("2026-10-02T23:00Z")),
                "b": (5, 1, t("2026-10-02T03:00Z"), t("2026-10-02T08:00Z"))}
    got = {row.entry_id: (row.occurrences, row.days_seen, row.first_seen, row.last_seen)
           for row in basis.others.itertuples()}
    assert got == expected
    aggregated = pd.concat([raw.iloc[:2].assign(days_seen=1), pd.DataFrame({
        "partition_date": [None, None], "entry_id": ["a", "b"], "occurrences": [5, 5], "days_seen": [2, 1],
        "first_seen": [t("2026-10-01T05:00Z"), t("2026-10-02T03:00Z")],
        "last_seen": [t("2026-10-02T23:00Z"), t("2026-10-02T08:00Z")]})], ignore_index=True)
    again = rerun_basis_from_ledger(aggregated, "2026-10-03")
    assert again.previous == basis.previous
    assert {row.entry_id: (row.occurrences, row.days_seen, row.first_seen, row.last_seen)
            for row in again.others.itertuples()} == expected
    assert rerun_basis_from_ledger(raw, "2026-10-05") is None  # no row on the day: nothing to take out


INVOICE = "My invoice for March shows the same subscription charged twice, please refund one of them."


def test_an_entry_scored_while_a_remerge_removes_it_is_kept_with_empty_counts(engine: sa.Engine):
    """A re-merge removes entries left without occurrences; if a scored run replays one of them between the merge
    loading the library and writing it, the DELETE keeps it (it is scored now) — and its counts must still go to 0,
    or the library disagrees with its ledger (the edge_case_ledger check)."""
    day = "2026-10-01"
    rows = [("e1", "08:00", REFUND, 0.95, {"override"}), ("e2", "09:00", PARCEL, 0.95, {"override"}),
            ("e3", "10:00", INVOICE, 0.95, {"override"})]
    first = merge_day(store.load_entries(engine), hand_day(day, rows), day, CONFIG, "r1", AT,
                      store.rerun_basis(engine, day))
    assert store.write_merge(engine, first, day, "stamp-1", "r1", AT) == []
    ids = first.entries.set_index("representative_event_id")["entry_id"]

    library = store.load_entries(engine)  # the re-merge run loads the library ...
    again = merge_day(library, hand_day(day, rows[:1]), day, CONFIG, "r2", AT, store.rerun_basis(engine, day))
    assert sorted(again.removed_ids) == sorted([ids["e2"], ids["e3"]])
    # ... a scored run replays the parcel entry meanwhile ...
    store.record_run_results(engine, pd.DataFrame({"entry_id": [ids["e2"]], "passed": [True]}), "score-1", AT)
    # ... and the merge is written.
    survivors = store.write_merge(engine, again, day, "stamp-2", "r2", AT)

    assert survivors == [ids["e2"]]
    assert store.ledger_mismatches(engine) == 0
    kept = store.load_entries(engine, [ids["e2"]]).iloc[0]
    assert (kept["status"], kept["last_run_id"], kept["occurrences"], kept["days_seen"]) == (FIXED, "score-1", 0, 0)
    assert pd.isna(kept["first_seen"]) and pd.isna(kept["last_seen"])
    assert store.load_events(engine, ids["e2"])["to_status"].tolist() == [OPEN, FIXED]  # not "removed"
    # The entry nobody scored is gone, with its removed event.
    assert store.load_entries(engine, [ids["e3"]]).empty
    assert store.load_events(engine, ids["e3"])["to_status"].tolist() == [OPEN, "removed"]
    assert store.load_entries(engine, [ids["e1"]]).iloc[0]["occurrences"] == 1


def test_a_scored_run_and_a_remerge_in_parallel_leave_no_orphan_events(engine: sa.Engine,
                                                                       monkeypatch: pytest.MonkeyPatch):
    """The scored run reads its entries, then pauses before writing; meanwhile a re-merge that would remove one of
    them tries to write. Under the library lock the merge waits, then sees the entry scored and keeps it. Without
    the lock the merge deleted it in between and the run then wrote a lifecycle event for an entry that is gone."""
    day = "2026-10-01"
    rows = [("e1", "08:00", REFUND, 0.95, {"override"}), ("e2", "09:00", PARCEL, 0.95, {"override"})]
    first = merge_day(store.load_entries(engine), hand_day(day, rows), day, CONFIG, "r1", AT,
                      store.rerun_basis(engine, day))
    store.write_merge(engine, first, day, "stamp-1", "r1", AT)
    parcel = first.entries.set_index("representative_event_id")["entry_id"]["e2"]
    again = merge_day(store.load_entries(engine), hand_day(day, rows[:1]), day, CONFIG, "r2", AT,
                      store.rerun_basis(engine, day))
    assert again.removed_ids == [parcel]

    read_done, merge_done = threading.Event(), threading.Event()
    original = store.apply_run_results

    def read_then_pause(*args, **kwargs):
        read_done.set()
        merge_done.wait(timeout=1.5)  # the merge finishes here unless a lock holds it off
        return original(*args, **kwargs)

    monkeypatch.setattr(store, "apply_run_results", read_then_pause)
    scored = threading.Thread(target=store.record_run_results, args=(
        engine, pd.DataFrame({"entry_id": [parcel], "passed": [True]}), "score-1", AT))
    scored.start()
    assert read_done.wait(timeout=30)
    store.write_merge(engine, again, day, "stamp-2", "r2", AT)
    merge_done.set()
    scored.join(timeout=60)

    kept = store.load_entries(engine, [parcel])
    assert len(kept) == 1 and kept.iloc[0]["status"] == FIXED
    assert store.load_events(engine, parcel)["to_status"].tolist() == [OPEN, FIXED]
    assert set(store.load_events(engine)["entry_id"]) <= set(store.load_entries(engine)["entry_id"])
    assert store.ledger_mismatches(engine) == 0


def test_load_library_skips_entries_without_occurrences_unless_asked(engine: sa.Engine):
    """After a rule change and a re-merge, a scored entry can lose its cases to a new entry founded by the same
    event: two rows with one representative event. Only the one with occurrences is replayed by default."""
    day = "2026-10-01"
    cases = hand_day(day, [("e1", "08:00", REFUND, 0.95, {"override"})])
    first = merge_day(store.load_entries(engine), cases, day, CONFIG, "r1", AT, store.rerun_basis(engine, day))
    store.write_merge(engine, first, day, "stamp-1", "r1", AT)
    (old_id,) = first.new_ids
    store.record_run_results(engine, pd.DataFrame({"entry_id": [old_id], "passed": [True]}), "score-1", AT)

    renamed = EdgeCaseConfig(rules=[FailureModeRule(category="confident_override", tags_all=["override"])])
    again = merge_day(store.load_entries(engine), cases, day, renamed, "r2", AT, store.rerun_basis(engine, day))
    store.write_merge(engine, again, day, "stamp-1", "r2", AT)
    (new_id,) = again.new_ids
    everything = store.load_library(engine, include_empty=True).set_index("entry_id")
    assert set(everything.index) == {old_id, new_id}
    assert set(everything["representative_event_id"]) == {"e1"}  # one event, two entries
    assert everything.loc[old_id, "occurrences"] == 0 and everything.loc[old_id, "status"] == FIXED
    replay = store.load_library(engine)
    assert replay["entry_id"].tolist() == [new_id]
    assert store.load_library(engine, statuses=[FIXED]).empty
    assert store.load_library(engine, statuses=[FIXED], include_empty=True)["entry_id"].tolist() == [old_id]
    assert store.ledger_mismatches(engine) == 0
