"""The canary scan (issue 15 item 4): PII planted in every free-text field and in bad lines reaches no sink.

A small demo landing directory gets canary e-mails, phone numbers, card numbers and an IBAN in input_text,
ai_output, final_output and ground_truth, and in lines that are quarantined (unparseable JSON, a bad timestamp
quoting the value, an over-long segment). The whole graph is materialised in process on a file-backed Dagster
instance, then every sink is scanned for every canary in every spelling it could be stored in:

- the SQLite warehouse file, read as bytes (deleted pages included: a value written and then replaced counts);
- every Parquet file in the lake, every string cell, and every other lake file (HTML reports) as bytes;
- every file of the temporary DAGSTER_HOME (event log, run and schedule storage, compute logs) as bytes.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from eval_pipelines.definitions import ALL_ASSETS
from eval_pipelines.demo.generator import generate_logs
from eval_pipelines.ingestion.privacy import RAW_QUARANTINE_DATASET, RAW_ROWS_DATASET
from eval_pipelines.partitions import partitions_holding
from eval_pipelines.scoring.assets import scored_runs
from eval_pipelines_tests.conftest import Project, make_project

START = date(2026, 10, 1)
DAYS = [(START + timedelta(days=i)).isoformat() for i in range(4)]
PLAN = {"window_days": 4, "size": 300, "min_per_stratum": 3, "holdout_fraction": 0.25, "seed": 5}
DRIFT = {"reference": {"mode": "trailing", "trailing_days": 3, "exclude_days": []}, "min_rows": 30}

EMAILS = ["canary.one@example.com", "Canary.Two@Bücher.de", "ｃａｎａｒｙ３＠ｅｘａｍｐｌｅ．ｏｒｇ"]
PHONES = ["+49 30 9876543", "(030) 9876542", "06 98 76 54 32", "+1 (415) 555-0187", "０３０ ９８７６５４１"]
CARDS = ["4539 1488 0343 6467", "4539.1488.0343.6467", "4716-1089-9971-6531", "４５３９１４８８０３４３６４６７"]
IBANS = ["DE44 5001 0517 5407 3249 31"]
CANARIES = EMAILS + PHONES + CARDS + IBANS


def _spellings(canary: str) -> set[bytes]:
    """Every byte string a canary could be stored as: as sent, NFKC-folded, digits only, JSON-escaped, any case."""
    import unicodedata

    forms = {canary, unicodedata.normalize("NFKC", canary)}
    digits = "".join(ch for ch in unicodedata.normalize("NFKC", canary) if ch.isdigit())
    if len(digits) >= 9:
        forms.add(digits)
    forms |= {json.dumps(form)[1:-1] for form in list(forms)}  # \\u00fc escapes, as JSON writers store them
    forms |= {form.lower() for form in list(forms)}
    return {form.encode("utf-8") for form in forms} | {form.encode("utf-16-le") for form in forms if "@" in form}


SPELLINGS = {canary: _spellings(canary) for canary in CANARIES}


def _plant(landing: Path) -> None:
    """Canaries in every free-text field of one row in six, and three quarantined lines per day."""
    rand = random.Random(3)
    for day_dir in sorted(p for p in landing.iterdir() if p.is_dir()):
        last_day = day_dir.name == DAYS[-1]
        for part in sorted(day_dir.glob("*.jsonl")):
            rows = [json.loads(line) for line in part.read_text().splitlines() if line]
            for index, row in enumerate(rows):
                if index % 6 == 0:
                    email, phone, card, iban = (rand.choice(EMAILS), rand.choice(PHONES), rand.choice(CARDS),
                                                IBANS[0])
                    row["input_text"] = f"{row['input_text']} mail {email}, call {phone}, card {card}, IBAN {iban}"
                    row["final_output"] = row["ai_output"] = f"{row['ai_output']} for {email}"
                    row["ground_truth"] = f"refund to {card} / {phone}"
                elif last_day and index % 3 == 0:  # frequent enough to be a drifted ai_output category
                    row["ai_output"] = f"callback {PHONES[0]}"
            bad = [
                '{"event_id": "bad-1", "input_text": "broken line with ' + EMAILS[0] + " and " + CARDS[0] + '"',
                json.dumps({**rows[0], "event_id": f"bad-2-{part.stem}", "timestamp": f"when {EMAILS[0]} {PHONES[1]}"}),
                json.dumps({**rows[0], "event_id": f"bad-3-{part.stem}", "segment": f"{IBANS[0]} " + "x" * 300}),
                # A quarantined record over the 4 KB cap (privacy.max_raw_record_bytes): capped. 8 KB raw, still
                # ~5 KB once its cards are masked (without the cap the test fails: 5005 > 4096). Masking reads the
                # whole record before the cut, ~0.4 ms a card number, so 40 KB cost 4 s more and proved no more.
                json.dumps({**rows[0], "event_id": f"bad-4-{part.stem}", "input_text": f"{CARDS[2]} " * 410,
                            "latency_ms": -1}),
            ]
            lines = [json.dumps(row, ensure_ascii=False) for row in rows] + bad
            part.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _materialise_everything(project: Project, instance: dg.DagsterInstance) -> None:
    daily = [a for a in ALL_ASSETS if isinstance(a.partitions_def, dg.DailyPartitionsDefinition)]
    unpartitioned = [a for a in ALL_ASSETS if a.partitions_def is None]
    for day in DAYS:
        result = dg.materialize(daily, partition_key=day, resources=project.resources(), instance=instance,
                                raise_on_error=False, selection=[a.key for a in daily])
        for asset in daily:  # every sink was written (a failing blocking check would hide one from the scan)
            assert result.asset_materializations_for_node(asset.key.to_python_identifier()), (asset.key, day)
    assert dg.materialize(unpartitioned, resources=project.resources(), instance=instance).success
    for candidate in scored_runs.partitions_def.get_partition_keys():
        result = dg.materialize([scored_runs], partition_key=candidate, resources=project.resources(),
                                instance=instance, raise_on_error=False)  # a failing release gate is a verdict
        assert result.asset_materializations_for_node("scored_runs"), candidate
    # Coarser time partitions (the weekly quality report, whose HTML quotes failure examples) for the days' weeks.
    for asset in ALL_ASSETS:
        if isinstance(asset.partitions_def, dg.TimeWindowPartitionsDefinition) and asset not in daily:
            for key in partitions_holding(asset.partitions_def, DAYS):
                assert dg.materialize([asset], partition_key=key, resources=project.resources(),
                                      instance=instance).success, (asset.key, key)


@pytest.fixture(scope="module")
def canary_project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Project, Path]]:
    with pytest.MonkeyPatch.context() as patch:
        for name in ("EVAL_PIPELINES_WAREHOUSE_URL", "EVAL_PIPELINES_LAKE_DIR", "EVAL_PIPELINES_LANDING_DIR"):
            patch.delenv(name, raising=False)
        patch.setenv("EVAL_PIPELINES_PII_SALT", "canary-test-salt")
        root = tmp_path_factory.mktemp("canary")
        project = make_project(root, {"eval_set": PLAN, "drift": DRIFT})
        generate_logs(project.landing_dir, days=len(DAYS), events_per_day=400, seed=11, start_date=START)
        _plant(project.landing_dir)
        dagster_home = root / "dagster_home"
        dagster_home.mkdir()
        with dg.instance_for_test(temp_dir=str(dagster_home)) as instance:
            _materialise_everything(project, instance)
        yield project, dagster_home


def _found_in(data: bytes) -> list[str]:
    return [canary for canary, forms in SPELLINGS.items() if any(form in data for form in forms)]


def _lake_cells(path: Path) -> bytes:
    table = pq.read_table(path)
    out = []
    for column in table.columns:
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            out += [value for value in column.to_pylist() if value]
        elif pa.types.is_dictionary(column.type):
            out += [str(value) for value in column.to_pylist() if value]
    return "\n".join(out).encode("utf-8")


def test_the_landing_files_do_hold_the_canaries(canary_project):
    project, _ = canary_project
    landed = b"".join(p.read_bytes() for p in project.landing_dir.rglob("*.jsonl"))
    assert set(_found_in(landed)) == set(CANARIES)  # else the scan below would prove nothing


def test_no_canary_in_the_warehouse(canary_project):
    project, _ = canary_project
    database = Path(project.warehouse_url.removeprefix("sqlite:///"))
    data = b"".join(p.read_bytes() for p in database.parent.glob(database.name + "*"))  # -wal, -journal too
    assert _found_in(data) == []


def test_no_canary_in_the_lake(canary_project):
    project, _ = canary_project
    lake = project.root / "lake"
    parquet = sorted(lake.rglob("*.parquet"))
    assert {p.parent.name for p in parquet} >= {"production_logs", "labeled_cases", "drift_profile", "drift_report",
                                                 "production_scores", "scored_runs"}
    assert not {p.parent.name for p in parquet} & {RAW_ROWS_DATASET, RAW_QUARANTINE_DATASET}
    leaks = {str(p.relative_to(lake)): found for p in parquet if (found := _found_in(_lake_cells(p)))}
    others = [p for p in lake.rglob("*") if p.is_file() and p.suffix != ".parquet"]
    assert any(p.suffix == ".html" for p in others)
    # The drifted ai_output category reached the last day's report, masked: the scan looks where text goes.
    last_report = (lake / "drift_report" / f"{DAYS[-1]}.html").read_text(encoding="utf-8")
    assert re.search(r"(<|&lt;)PHONE_[a-z]{8}", last_report)
    # The weekly quality report quotes failure examples: masked tokens, no canary (scanned with the others below).
    quality = sorted((lake / "quality_report").glob("*.html"))
    assert quality and any(re.search(r"&lt;(EMAIL|CARD|PHONE)_[a-z]{8}&gt;", p.read_text(encoding="utf-8"))
                           for p in quality)
    leaks |= {str(p.relative_to(lake)): found for p in others if (found := _found_in(p.read_bytes()))}
    assert leaks == {}


def test_no_canary_in_the_review_outbox(canary_project):
    project, _ = canary_project
    outbox = sorted((project.root / "review" / "outbox").glob("*.jsonl"))
    assert [p.stem for p in outbox] == list(DAYS)  # the reviewers' copy of the tasks is a sink too
    assert {p.name: found for p in outbox if (found := _found_in(p.read_bytes()))} == {}


def test_no_canary_in_dagster_storage(canary_project):
    _, dagster_home = canary_project
    files = [p for p in dagster_home.rglob("*") if p.is_file()]
    assert any(p.suffix == ".db" for p in files)
    leaks = {str(p.relative_to(dagster_home)): found for p in files if (found := _found_in(p.read_bytes()))}
    assert leaks == {}
    # The scan reads where the values go: the previews' masked text is in there, as tokens.
    assert any(re.search(rb"(<|&lt;|\\u003c)EMAIL_[a-z]{8}", p.read_bytes()) for p in files)


def test_the_masked_data_still_works(canary_project):
    """Tokens stand where the canaries were, equal fields stayed equal, and the capped record says it was cut."""
    import sqlalchemy as sa

    project, _ = canary_project
    logs = pq.read_table(project.root / "lake" / "production_logs" / f"{DAYS[0]}.parquet").to_pandas()
    planted = logs["ai_output"].str.contains(" for <EMAIL_", regex=False)
    assert planted.mean() > 0.1 and logs.loc[planted, "input_text"].str.contains("<CARD_", regex=False).all()
    assert (logs.loc[planted, "ai_output"] == logs.loc[planted, "final_output"]).all()
    with sa.create_engine(project.warehouse_url).connect() as connection:
        records = connection.execute(sa.text("SELECT raw_record, reason FROM quarantined_events")).all()
    assert len(records) >= 4 * len(DAYS)
    assert max(len(raw.encode("utf-8")) for raw, _ in records) <= 4096
    assert any("[truncated:" in raw for raw, _ in records)
    assert any("<EMAIL_" in reason for _, reason in records)  # the bad timestamp was quoted, masked
