"""Dagster side of the edge-case library: the cumulative ``edge_case_library`` asset.

How a daily-partitioned upstream feeds a cumulative asset here: the library is *not* partitioned. Its state lives
in the warehouse, with a watermark table (``edge_case_merges``: each merged labeled_cases day and the change stamp
of the file it came from). Each materialisation lists the labeled_cases files in the lake and merges, oldest first,
every day that is new or whose file changed since it was merged — incremental, no full recompute. A changed day is
re-merged idempotently: its previous contribution (``edge_case_days``) is taken out before the new one goes in, so
re-running a labeled_cases partition never double counts. Each day is committed in its own transaction, so a
failure part-way keeps the days already merged.

Why not a daily-partitioned library with a self-dependency: each partition would hold a full snapshot, a re-run of
an old day would have to cascade through every later partition, backfills would have to run strictly in sequence,
and lifecycle updates from scored runs would have no single partition to live in.
"""


from datetime import UTC, datetime

import dagster as dg
import pandas as pd
import sqlalchemy as sa
from pydantic import Field

from eval_pipelines.edge_cases.library import STATUSES, empty_entries, merge_day, required_columns
from eval_pipelines.edge_cases.store import ledger_mismatches, load_entries, merged_days, rerun_basis, write_merge
from eval_pipelines.edge_cases.tables import EDGE_CASE_TABLES, edge_cases
from eval_pipelines.evalsets.window import lake_days
from eval_pipelines.labeling.labels import LABELED_CASES_ASSET
from eval_pipelines.lake import Lake
from eval_pipelines.metadata import markdown_table
from eval_pipelines.resources import ProjectConfigResource, WarehouseResource, lake_root
from eval_pipelines.warehouse.core import ensure_tables

LEDGER_CHECK = "edge_case_ledger"

# Run when any labeled_cases partition was updated since the library last ran (eager() would wait for *every*
# daily partition since the start date to exist, which a cumulative consumer must not).
ON_NEW_DAYS = (dg.AutomationCondition.any_deps_updated().since_last_handled()
               & ~dg.AutomationCondition.in_progress()).with_label("any labeled_cases day updated")


class LibraryRunConfig(dg.Config):
    """On-demand options."""

    remerge_days: list[str] = Field(
        default_factory=list,
        description="Days (YYYY-MM-DD) to merge again even if their file did not change (e.g. after a rule change).",
    )


def pending_days(available: dict[str, str], merged: dict[str, str], forced: list[str] | None = None) -> list[str]:
    """Days to merge, oldest first: never merged, merged from a file that has changed since, or forced."""
    forced_set = set(forced or [])
    return sorted(day for day, stamp in available.items() if merged.get(day) != stamp or day in forced_set)


def _counts_table(engine: sa.Engine) -> pd.DataFrame:
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(edge_cases.c.failure_mode, edge_cases.c.status, sa.func.count().label("entries"),
                      sa.func.sum(edge_cases.c.occurrences).label("occurrences"))
            .group_by(edge_cases.c.failure_mode, edge_cases.c.status)).mappings().all()
    frame = pd.DataFrame([dict(r) for r in rows], columns=["failure_mode", "status", "entries", "occurrences"])
    if frame.empty:
        return pd.DataFrame(columns=["failure_mode", *STATUSES, "entries", "occurrences"])
    pivot = frame.pivot_table(index="failure_mode", columns="status", values="entries", aggfunc="sum",
                              fill_value=0).reindex(columns=list(STATUSES), fill_value=0)
    totals = frame.groupby("failure_mode")[["entries", "occurrences"]].sum()
    table = pivot.join(totals).reset_index().sort_values("occurrences", ascending=False)
    return table.astype({column: "int64" for column in [*STATUSES, "entries", "occurrences"]})


def _newest(engine: sa.Engine, limit: int = 15) -> pd.DataFrame:
    columns = [edge_cases.c.first_seen, edge_cases.c.failure_mode, edge_cases.c.status, edge_cases.c.occurrences,
               edge_cases.c.last_seen, edge_cases.c.input_text, edge_cases.c.ai_output,
               edge_cases.c.expected_output, edge_cases.c.entry_id]
    with engine.connect() as connection:
        rows = connection.execute(sa.select(*columns).order_by(edge_cases.c.first_seen.desc(),
                                                               edge_cases.c.entry_id).limit(limit)).mappings().all()
    return pd.DataFrame([dict(r) for r in rows], columns=[c.name for c in columns])


@dg.asset(
    deps=["labeled_cases"],
    group_name="evaluation",
    kinds={"python", "sql"},
    pool="warehouse",
    automation_condition=ON_NEW_DAYS,
    description=(
        "Cumulative library of real production failure modes. Each new (or re-materialised) day of labeled_cases "
        "is merged incrementally: cases matching an edge_cases rule get a failure mode, near-duplicate inputs "
        "(MinHash, Jaccard >= edge_cases.dedup.threshold) collapse into one entry with occurrences, first/last seen "
        "and example ids; entries move open → fixed → regressed as scored runs replay them. Warehouse: "
        "edge_cases (state), edge_case_events (history), edge_case_days (per-day ledger), edge_case_merges "
        "(watermark)."
    ),
    check_specs=[dg.AssetCheckSpec(LEDGER_CHECK, asset="edge_case_library",
                                   description="Every entry's occurrences equal the sum of its per-day ledger rows.")],
)
def edge_case_library(
    context: dg.AssetExecutionContext, config: LibraryRunConfig, project: ProjectConfigResource,
    warehouse: WarehouseResource,
) -> dg.MaterializeResult:
    settings = project.load()
    rules = settings.edge_cases
    lake = Lake(lake_root(settings))
    engine = warehouse.engine()
    ensure_tables(engine, EDGE_CASE_TABLES)
    available = lake_days(lake)
    unknown = sorted(set(config.remerge_days) - set(available))
    if unknown:
        raise ValueError(f"remerge_days not in the lake's labeled_cases: {unknown}")
    todo = pending_days(available, merged_days(engine), config.remerge_days)
    context.log.info(f"{len(todo)} labeled_cases day(s) to merge: {todo}")
    library = load_entries(engine) if todo else empty_entries()
    columns = required_columns(rules)
    merged_rows = []
    for day in todo:
        cases = lake.read_columns(LABELED_CASES_ASSET, day, columns).to_pandas()
        at = datetime.now(UTC)
        merge = merge_day(library, cases, day, rules, context.run.run_id, at, rerun_basis(engine, day))
        survivors = write_merge(engine, merge, day, available[day], context.run.run_id, at)
        # An entry the merge removed but a scored run replayed meanwhile was kept: reload so later days see it.
        library = load_entries(engine) if survivors else merge.entries
        merged_rows.append({"day": day, "cases": merge.stats["cases"], "failing": merge.stats["failing_cases"],
                            "new_entries": len(merge.new_ids), "entries_updated": len(merge.updated_ids),
                            "removed": len(merge.removed_ids) - len(survivors)})
        context.log.info(f"{day}: {merge.stats['failing_cases']:,} failing case(s), {len(merge.new_ids):,} new "
                         f"entr(y/ies), {len(merge.updated_ids):,} updated")

    counts = _counts_table(engine)
    mismatches = ledger_mismatches(engine)
    merged = pd.DataFrame(merged_rows, columns=["day", "cases", "failing", "new_entries", "entries_updated",
                                                "removed"])
    total_entries = int(counts["entries"].sum()) if len(counts) else 0
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": total_entries,
            "entries": total_entries,
            "occurrences": int(counts["occurrences"].sum()) if len(counts) else 0,
            "days_merged_this_run": len(todo),
            "new_entries_this_run": int(merged["new_entries"].sum()) if len(merged) else 0,
            "days_in_library": len(merged_days(engine)),
            **{f"entries_{status}": int(counts[status].sum()) if len(counts) else 0 for status in STATUSES},
            "by_failure_mode_and_status": markdown_table(counts, max_rows=50),
            "newest_entries": markdown_table(_newest(engine), max_rows=15, max_chars=70),
            "merged_days": markdown_table(merged, max_rows=60),
            "dedup": dg.MetadataValue.json(rules.dedup.model_dump()),
        },
        check_results=[dg.AssetCheckResult(
            check_name=LEDGER_CHECK, passed=mismatches == 0,
            description="library and ledger agree" if mismatches == 0
            else f"{mismatches} entr(y/ies) disagree with edge_case_days",
            metadata={"mismatches": mismatches},
        )],
    )


def lifecycle_observation(engine: sa.Engine, changes: pd.DataFrame, by: str) -> dg.AssetObservation:
    """The library's status counts after a scored run moved entries, as an observation of edge_case_library.

    The library page then follows the lifecycle between its own materialisations: the same ``entries_<status>``
    numbers its materialisations carry (so the UI plots them as one trend over time), the counts per failure mode
    and status, and what this run moved (``moved_this_run``: e.g. ``open → fixed: 12``) per failure mode.
    """
    counts = _counts_table(engine)
    if len(changes):
        with engine.connect() as connection:
            modes = dict(connection.execute(
                sa.select(edge_cases.c.entry_id, edge_cases.c.failure_mode)
                .where(edge_cases.c.entry_id.in_(changes["entry_id"].tolist()))).all())
        moved = changes.assign(failure_mode=changes["entry_id"].map(modes))
        text = (moved.groupby(["failure_mode", "from_status", "to_status"]).size().rename("n").reset_index()
                .assign(label=lambda f: f["from_status"] + " → " + f["to_status"] + ": " + f["n"].astype(str))
                .groupby("failure_mode")["label"].agg(", ".join))
        counts = counts.assign(moved_this_run=counts["failure_mode"].map(text).fillna(""))
    else:
        counts = counts.assign(moved_this_run="")
    return dg.AssetObservation(
        asset_key=edge_case_library.key,
        description=f"lifecycle after {by}: {len(changes)} entr(y/ies) moved",
        metadata={
            **{f"entries_{status}": int(counts[status].sum()) if len(counts) else 0 for status in STATUSES},
            "moved_this_run": len(changes),
            "moved_by": by,
            "by_failure_mode_and_status": markdown_table(counts, max_rows=50),
        },
    )


ASSETS = [edge_case_library]
ASSET_CHECKS: list[dg.AssetChecksDefinition] = []
