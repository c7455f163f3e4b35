"""Automation conditions shared by the daily assets, so every domain follows its upstream the same way."""

import dagster as dg

# Follow the upstream day as soon as it is updated and its blocking checks pass, for ANY day: plain eager() only
# looks at the latest partition, and late files for an older day must flow through labels, drift, KPIs and scores.
FOLLOW_UPSTREAM_ANY_DAY = (
    dg.AutomationCondition.eager().without(dg.AutomationCondition.in_latest_time_window())
    & dg.AutomationCondition.all_deps_blocking_checks_passed()
).with_label("eager_any_day")
