"""Automation conditions shared by the daily assets, so every domain follows its upstream the same way."""

import dagster as dg

# Follow the upstream day as soon as it is updated and its blocking checks pass, for ANY day: plain eager() only
# looks at the latest partition, and late files for an older day must flow through labels, drift, KPIs and scores.
FOLLOW_UPSTREAM_ANY_DAY = (
    dg.AutomationCondition.eager().without(dg.AutomationCondition.in_latest_time_window())
    & dg.AutomationCondition.all_deps_blocking_checks_passed()
).with_label("eager_any_day")


def follow_upstream_any_day_ignoring_missing(*keys: str) -> dg.AutomationCondition:
    """``FOLLOW_UPSTREAM_ANY_DAY``, but a MISSING dependency among ``keys`` does not hold the asset back.

    For the review loop's datasets (``review_queue``, ``review_labels``) read by the business KPIs and the
    production scores: a late or absent audit (review disabled, reviewers behind) must never block them. An
    update of those deps still triggers a re-run (``any_deps_updated`` is untouched), so verdicts that arrive later
    flow into the corrected columns.
    """
    ignored = dg.AutomationCondition.any_deps_missing().ignore(dg.AssetSelection.assets(*keys))
    return FOLLOW_UPSTREAM_ANY_DAY.replace("any_deps_missing", ignored).with_label(
        f"eager_any_day (missing {', '.join(keys)} ignored)")
