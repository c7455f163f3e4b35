"""The story the UI and the report tell, in headless Chromium on the production stack (issue 14, "Must show").

After the shared chain has run (conftest ``landed``: 3 demo days through the landing sensor and automation, the
weekly ``quality_report`` launched by hand like every cron asset), this test

- opens the report HTML of the landed days' week from the lake, checks it rendered its plots, fetched nothing, and
  that its "Cases" of the period equals a query on the warehouse (PostgreSQL here);
- opens the history page of the drift check and the checks page of ``scored_runs``, and asserts through Dagster's
  GraphQL API that the check evaluations carry their partition (the landed days; the candidates) and that the
  daily chain ran as the named job ``daily_chain``;
- saves screenshots under ``test-artifacts/e2e/`` and prints their paths.

The partition and named-job assertions need the partition-aware checks and named jobs of branch wt-ui (issue 14
items 1 and 2); without them they fail, by design.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import date
from urllib.parse import quote

import pytest
import sqlalchemy as sa

from eval_pipelines.reporting.periods import week_of
from eval_pipelines_tests.e2e.browser import Page, chromium_page
from eval_pipelines_tests.e2e.conftest import LandedChain, artifact

pytestmark = pytest.mark.e2e

DRIFT_ASSET, DRIFT_CHECK = "drift_report", "no_major_drift"
SCORED_ASSET, GATE_CHECK = "scored_runs", "release_gate"
DAILY_CHAIN_JOB = "daily_chain"

CHECK_EXECUTIONS = """
query CheckExecutions($assetKey: AssetKeyInput!, $checkName: String!) {
  assetCheckExecutions(assetKey: $assetKey, checkName: $checkName, limit: 100) {
    runId
    status
    partition
    evaluation { partition success description }
    run { jobName }
  }
}
"""

# What the browser fetched besides the page itself: a standalone report fetches nothing.
RESOURCES_JS = "performance.getEntriesByType('resource').map(e => e.name)"


@pytest.fixture(scope="module")
def page(landed: LandedChain) -> Iterator[Page]:
    with chromium_page(artifact("logs"), width=1400, height=1000) as browser_page:
        browser_page.navigate(f"{landed.stack.webserver_url}/server_info")
        browser_page.evaluate("localStorage.setItem('communityNux', JSON.stringify('1')); true")
        yield browser_page


def _executions(landed: LandedChain, asset: str, check: str) -> list[dict]:
    return landed.stack.graphql(CHECK_EXECUTIONS, {"assetKey": {"path": [asset]}, "checkName": check})[
        "assetCheckExecutions"]


# The check page opens on its latest execution ("Overview"); the history of every partition is the next tab.
OPEN_EXECUTION_HISTORY_JS = """
(() => {
  const tab = [...document.querySelectorAll('[role=tab]')].find(e => e.innerText.trim() === 'Execution history');
  if (!tab) return false;
  if (tab.getAttribute('aria-selected') !== 'true') tab.click();
  return tab.getAttribute('aria-selected') === 'true';
})()
"""


def _open_check_history(page: Page, url: str) -> None:
    page.navigate(url)
    page.wait_for_js(OPEN_EXECUTION_HISTORY_JS, 60, "the check's Execution history tab")


def _screenshot(page: Page, name: str) -> None:
    path = page.screenshot(artifact(name))
    print(f"screenshot: {path}")  # the path a person opens


def test_the_report_opens_standalone_and_its_numbers_are_the_warehouse(landed: LandedChain, page: Page):
    week = week_of(date.fromisoformat(max(landed.days)))
    report = landed.stack.lake_dir / "quality_report" / f"{week.label}.html"
    assert report.exists(), f"the hand-launched quality_report did not write {report}"
    page.resize(1400, 1000)
    page.navigate(report.as_uri())
    page.wait_for_js("document.body.innerText.includes('Where the numbers come from')", 30, "the report to render")
    page.wait_until_settled()
    assert page.evaluate(RESOURCES_JS) == []
    assert page.evaluate("document.querySelectorAll('svg').length") >= 3
    text = page.evaluate("document.body.innerText")
    assert f"AI quality report, {week.label}" in text
    assert "Partial period" in text  # the landed days end today: the week is not over
    # The period's "Cases" card equals SUM(cases) of kpi_daily over the week, on the stack's warehouse.
    cards = page.evaluate("[...document.querySelectorAll('.card')].map(c => c.innerText)")
    shown = next(c for c in cards if c.startswith("Cases"))
    engine = sa.create_engine(landed.stack.warehouse_url)
    try:
        with engine.connect() as connection:
            cases = connection.execute(sa.text("SELECT SUM(cases) FROM kpi_daily WHERE kpi_date >= :s AND "
                                               "kpi_date <= :e"), {"s": week.start, "e": week.end}).scalar_one()
    finally:
        engine.dispose()
    assert int(re.sub(r"\D", "", shown)) == int(cases) > 0
    _screenshot(page, "quality_report.png")


def test_drift_check_history_names_its_days_and_the_named_job(landed: LandedChain, page: Page):
    executions = _executions(landed, DRIFT_ASSET, DRIFT_CHECK)
    assert executions, "no evaluation of the drift check"
    partitions = {e["partition"] for e in executions}
    assert partitions == set(landed.days), partitions  # each evaluation is one day's verdict
    assert all(e["evaluation"] is None or e["evaluation"]["partition"] == e["partition"] for e in executions)
    # The landing sensor launched each day's whole chain as one named run; a later follow-up (a day whose reference
    # profiles arrived after its first report) is requested by automation, which Dagster runs as __ASSET_JOB.
    assert {e["partition"] for e in executions if e["run"]["jobName"] == DAILY_CHAIN_JOB} == set(landed.days)
    assert {e["run"]["jobName"] for e in executions} <= {DAILY_CHAIN_JOB, "__ASSET_JOB"}
    page.resize(1400, 1000)
    _open_check_history(page, f"{landed.stack.webserver_url}/assets/{DRIFT_ASSET}"
                              f"?view=checks&checkDetail={DRIFT_CHECK}")
    days = " && ".join(f"t.includes({json.dumps(d)})" for d in landed.days)
    page.wait_for_js(f"(() => {{ const t = document.body.innerText; return t.includes({json.dumps(DRIFT_CHECK)}) "
                     f"&& {days}; }})()", 60, "the drift check's history with its days")
    page.wait_until_settled()
    _screenshot(page, "drift_check_history.png")


def test_scored_runs_checks_name_each_candidate(landed: LandedChain, page: Page):
    candidates = set(next(e for e in landed.outcome.expected.values()
                          if e.key.to_user_string() == SCORED_ASSET).partitions or [])
    assert candidates, "the config lists no candidates"
    executions = _executions(landed, SCORED_ASSET, GATE_CHECK)
    assert {e["partition"] for e in executions} == candidates
    jobs = {e["run"]["jobName"] for e in executions}
    # Launched by candidate_change_sensor (named job) or, after a new eval set, by automation: Dagster launches
    # automation-requested runs under its implicit asset job, which cannot be renamed.
    assert jobs <= {"candidate_runs", "__ASSET_JOB"}, jobs
    page.resize(1400, 1000)
    page.navigate(f"{landed.stack.webserver_url}/assets/{quote(SCORED_ASSET)}?view=checks")
    names = " && ".join(f"t.includes({json.dumps(c)})" for c in sorted(candidates))
    page.wait_for_js(f"(() => {{ const t = document.body.innerText; return t.includes({json.dumps(GATE_CHECK)}); "
                     "})()", 60, "the scored_runs checks")
    _open_check_history(page, f"{landed.stack.webserver_url}/assets/{quote(SCORED_ASSET)}"
                              f"?view=checks&checkDetail={GATE_CHECK}")
    page.wait_for_js(f"(() => {{ const t = document.body.innerText; return {names}; }})()", 60,
                     "the release gate's history with its candidates")
    page.wait_until_settled()
    _screenshot(page, "scored_runs_checks.png")
