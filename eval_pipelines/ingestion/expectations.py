"""A Great Expectations 1.x suite generated from the canonical contract, run on the valid rows.

The row validator in ``conform`` already enforces the contract row by row; this suite is the independent second
line: it re-checks the landed frame with a well-known tool whose results people can read, and catches any drift
between the contract and the code that enforces it. The suite is derived from ``contract.CANONICAL_FIELDS`` so
the two can never disagree about what the contract says.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import TYPE_CHECKING

import pandas as pd

from eval_pipelines.ingestion.conform import SOURCE_FILE_COLUMN, SOURCE_LINE_COLUMN, day_window
from eval_pipelines.ingestion.contract import FieldKind, FieldSpec

if TYPE_CHECKING:
    # Imported where used: GX takes over a second to import, and every Dagster run process loads this module
    # with the code location, including the runs that never validate a contract.
    import great_expectations as gx
    import great_expectations.expectations as gxe


@dataclass(frozen=True)
class ExpectationOutcome:
    expectation: str
    column: str | None
    success: bool
    unexpected_count: int | None


@dataclass(frozen=True)
class ContractValidation:
    success: bool
    outcomes: tuple[ExpectationOutcome, ...]

    @property
    def failures(self) -> tuple[ExpectationOutcome, ...]:
        return tuple(o for o in self.outcomes if not o.success)

    def summary(self) -> str:
        if self.success:
            return f"all {len(self.outcomes)} expectations passed"
        return "; ".join(
            f"{o.expectation}({o.column}) failed on {o.unexpected_count if o.unexpected_count is not None else '?'} "
            "row(s)" for o in self.failures
        )


def _field_expectations(spec: FieldSpec) -> list[gxe.Expectation]:
    import great_expectations.expectations as gxe

    expectations: list[gxe.Expectation] = []
    if spec.required:
        expectations.append(gxe.ExpectColumnValuesToNotBeNull(column=spec.name))
    if spec.allowed is not None:
        expectations.append(gxe.ExpectColumnValuesToBeInSet(column=spec.name, value_set=list(spec.allowed)))
    if spec.kind is FieldKind.FLOAT and (spec.minimum is not None or spec.maximum is not None):
        expectations.append(gxe.ExpectColumnValuesToBeBetween(
            column=spec.name, min_value=spec.minimum, max_value=spec.maximum))
    return expectations


def build_contract_suite(specs: list[FieldSpec], name: str = "production_logs_contract") -> gx.ExpectationSuite:
    """The suite for a list of contract fields (the canonical ones plus configured features)."""
    import great_expectations as gx
    import great_expectations.expectations as gxe

    _batch_definition()  # GX 1.x needs an active context before a suite can be built
    suite = gx.ExpectationSuite(name=name)
    suite.add_expectation(gxe.ExpectColumnValuesToBeUnique(column="event_id"))
    for spec in specs:
        for expectation in _field_expectations(spec):
            suite.add_expectation(expectation)
    return suite


_FINGERPRINT_SWITCH = threading.Lock()


@contextmanager
def _without_batch_fingerprint() -> Iterator[None]:
    """Skip GX's md5 fingerprint of the whole batch frame while a batch is built.

    GX labels an in-memory batch with a hash of every cell (it already skips this above 1 GB); in an ephemeral
    context nothing ever reads that label, and on a million rows it cost more than all expectations together.
    If GX renames the threshold this degrades to the slower path, never to a wrong result. The threshold is a
    module global, so validations in one process take turns: interleaved save/restore could leave it at 0.
    """
    from great_expectations.execution_engine import pandas_execution_engine

    with _FINGERPRINT_SWITCH:
        original = getattr(pandas_execution_engine, "HASH_THRESHOLD", None)
        if original is None:
            yield
            return
        pandas_execution_engine.HASH_THRESHOLD = 0
        try:
            yield
        finally:
            pandas_execution_engine.HASH_THRESHOLD = original


@lru_cache(maxsize=1)
def _batch_definition() -> gx.core.batch_definition.BatchDefinition:
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    source = context.data_sources.add_pandas("production_logs")
    return source.add_dataframe_asset("valid_rows").add_batch_definition_whole_dataframe("partition")


def _batch_frame(frame: pd.DataFrame, tested: list[str], specs: list[FieldSpec]) -> pd.DataFrame:
    """The frame GX validates: the tested columns only, low-cardinality text as pandas categoricals.

    GX drops a column's nulls by filtering the whole batch frame once per expectation. Carrying untested free
    text through those filters tripled its cost, and copying a categorical is a copy of small integer codes
    rather than of a million strings. Values, nulls and therefore every expectation's verdict are unchanged.
    """
    low_cardinality = {spec.name for spec in specs if spec.low_cardinality}
    return pd.DataFrame({
        column: frame[column].astype("category") if column in low_cardinality else frame[column]
        for column in tested
    })


def validate_contract(frame: pd.DataFrame, specs: list[FieldSpec], day: date,
                      tolerance_minutes: float) -> ContractValidation:
    """Run the contract suite on ``frame``, plus the column set and the partition-day window."""
    batch_definition = _batch_definition()
    suite = build_contract_suite(specs)
    tested = sorted({e.column for e in suite.expectations if getattr(e, "column", None)})
    missing = [c for c in tested if c not in frame.columns]
    outcomes: list[ExpectationOutcome] = []
    expected_columns = [spec.name for spec in specs] + [SOURCE_FILE_COLUMN, SOURCE_LINE_COLUMN]
    column_set_ok = sorted(frame.columns) == sorted(expected_columns)
    outcomes.append(ExpectationOutcome("table_columns_match_contract", None, column_set_ok,
                                       None if column_set_ok else len(set(frame.columns) ^ set(expected_columns))))
    if missing:
        return ContractValidation(False, (*outcomes, *(ExpectationOutcome("column_exists", c, False, None)
                                                       for c in missing)))
    # Validating re-loads the batch, so both steps run without the fingerprint.
    with _without_batch_fingerprint():
        batch = batch_definition.get_batch(batch_parameters={"dataframe": _batch_frame(frame, tested, specs)})
        result = batch.validate(suite, result_format="BASIC")
    outcomes += [
        ExpectationOutcome(
            expectation=item.expectation_config.type,
            column=item.expectation_config.kwargs.get("column"),
            success=bool(item.success),
            unexpected_count=item.result.get("unexpected_count"),
        )
        for item in result.results
    ]
    # GX compares tz-aware datetimes unreliably across pandas versions; this bound is checked directly.
    start, end = day_window(day, tolerance_minutes)
    stamps = frame["timestamp"]
    outside = int(((stamps < start) | (stamps >= end)).sum())
    outcomes.append(ExpectationOutcome("timestamp_within_partition_day", "timestamp", outside == 0, outside))
    return ContractValidation(all(o.success for o in outcomes), tuple(outcomes))
