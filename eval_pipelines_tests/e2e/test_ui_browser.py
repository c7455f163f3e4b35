"""The UI as users see it: headless Chromium on the production webserver, after the chain has run.

Two independent views of the same promise, "every asset, every upstream edge, every check is there": the GraphQL
API the UI reads, and the page Chromium rendered from it (asset nodes and edge paths read from the lineage SVG:
an edge is matched to the nodes at its two ends by geometry). Screenshots of the lineage and of one asset's
metadata page are saved under ``test-artifacts/e2e/`` for a person to look at.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from urllib.parse import quote

import dagster as dg
import pytest

from eval_pipelines_tests.e2e.browser import Page, chromium_page
from eval_pipelines_tests.e2e.conftest import LandedChain, artifact
from eval_pipelines_tests.e2e.stack import wait_for

pytestmark = pytest.mark.e2e

GRAPH_QUERY = """
query Graph {
  assetNodes {
    assetKey { path }
    groupName
    dependencyKeys { path }
    assetChecksOrError { __typename ... on AssetChecks { checks { name } } }
  }
}
"""

# Reads the rendered lineage: asset nodes (name from the node's tooltip, box from its foreignObject) and edges
# (first and last point of every arrowed path), all in the SVG's own coordinates.
READ_LINEAGE_JS = """
(() => {
  const svg = document.querySelector('svg[class*="AssetGraphExplorer_svgContainer"]');
  if (!svg) return null;
  const nodes = [...svg.querySelectorAll('foreignObject')]
    .filter(f => f.querySelector('[class*="AssetNode_assetNodeContainer"]'))
    .map(f => {
      const name = f.querySelector('[class*="AssetNode_assetName"] [data-tooltip], [data-tooltip]');
      return {name: name && name.getAttribute('data-tooltip'), x: +f.getAttribute('x'), y: +f.getAttribute('y'),
              w: +f.getAttribute('width'), h: +f.getAttribute('height'),
              text: (f.firstElementChild || f).innerText || ''};
    });
  const edges = [...svg.querySelectorAll('path[marker-end]')].map(p => {
    const a = p.getPointAtLength(0), b = p.getPointAtLength(p.getTotalLength());
    return [a.x, a.y, b.x, b.y];
  });
  const boxes = [...svg.querySelectorAll('foreignObject')].map(f => f.getBoundingClientRect())
    .filter(r => r.width > 0 && r.height > 0);
  const clip = boxes.length ? {
    x: Math.max(0, Math.min(...boxes.map(r => r.left)) - 40), y: Math.max(0, Math.min(...boxes.map(r => r.top)) - 40),
    right: Math.min(window.innerWidth, Math.max(...boxes.map(r => r.right)) + 40),
    bottom: Math.min(window.innerHeight, Math.max(...boxes.map(r => r.bottom)) + 40)} : null;
  return {nodes, edges, clip};
})()
"""
# The lineage fits the whole graph to the window, and below some scale Dagster draws each node as its name alone
# (no "Latest event" or "Asset checks" rows). Fifteen assets in nine groups, spread over seven columns and a tall
# fan-out, need about 3000 x 3400 CSS pixels to stay above that scale (2200 x 2400 drew name-only nodes).
LINEAGE_VIEWPORT = (3000, 3400)
# Tolerance (SVG units) between an edge's end and the node side it attaches to; nodes are hundreds of units apart.
EDGE_SNAP = 30.0


@pytest.fixture(scope="module")
def page(landed: LandedChain) -> Iterator[Page]:
    with chromium_page(artifact("logs"), width=LINEAGE_VIEWPORT[0], height=LINEAGE_VIEWPORT[1]) as browser_page:
        # The first visit shows a community sign-up dialog over the graph; a returning user has dismissed it.
        browser_page.navigate(f"{landed.stack.webserver_url}/server_info")
        browser_page.evaluate("localStorage.setItem('communityNux', JSON.stringify('1')); true")
        yield browser_page


def _graph_truth(defs: dg.Definitions) -> tuple[set[str], set[tuple[str, str]], dict[str, set[str]]]:
    graph = defs.resolve_asset_graph()
    assets = {k.to_user_string() for k in graph.get_all_asset_keys()}
    edges = {(p.to_user_string(), k.to_user_string()) for k in graph.get_all_asset_keys()
             for p in graph.get(k).parent_keys}
    checks: dict[str, set[str]] = {a: set() for a in assets}
    for check in graph.asset_check_keys:
        checks[check.asset_key.to_user_string()].add(check.name)
    return assets, edges, checks


def test_graphql_serves_every_asset_edge_and_check(landed: LandedChain):
    assets, edges, checks = _graph_truth(landed.defs)
    nodes = landed.stack.graphql(GRAPH_QUERY)["assetNodes"]
    served = {"/".join(n["assetKey"]["path"]): n for n in nodes}
    assert set(served) == assets
    assert {("/".join(d["path"]), name) for name, n in served.items() for d in n["dependencyKeys"]} == edges
    for name, node in served.items():
        assert node["assetChecksOrError"]["__typename"] == "AssetChecks", node
        assert {c["name"] for c in node["assetChecksOrError"]["checks"]} == checks[name], name
        assert node["groupName"] not in (None, "default"), name


def _attach(nodes: list[dict], x: float, y: float, side: str) -> tuple[str, float]:
    """The node whose ``side`` (left/right edge, vertical middle) is nearest (x, y), and the distance."""
    def distance(node: dict) -> float:
        edge_x = node["x"] + node["w"] if side == "right" else node["x"]
        return abs(edge_x - x) + abs(node["y"] + node["h"] / 2 - y)
    best = min(nodes, key=distance)
    return best["name"], distance(best)


def _check_counts(text: str) -> list[tuple[str, str]]:
    return re.findall(r"(\d+)\s*/\s*(\d+)\s*Passed", text)


def _with_check_rows(rendered: dict, checks: dict[str, set[str]]) -> dict | None:
    """``rendered`` once every node of an asset with checks shows its "passed / total" row, else None."""
    ready = all(_check_counts(n["text"]) for n in rendered["nodes"] if checks.get(n["name"]))
    return rendered if ready else None


def test_lineage_page_renders_every_asset_edge_and_check(landed: LandedChain, page: Page):
    assets, edges, checks = _graph_truth(landed.defs)
    page.resize(*LINEAGE_VIEWPORT)
    page.navigate(f"{landed.stack.webserver_url}/asset-groups")  # "Lineage" in the navigation: global lineage
    page.wait_for_js(f"(() => {{ const r = {READ_LINEAGE_JS}; return r && r.nodes.length + r.edges.length > 0; }})()",
                     60, "the lineage graph to render")
    if len(page.evaluate(READ_LINEAGE_JS)["nodes"]) < len(assets):
        # Groups start collapsed; the UI's own shortcut (Alt+E) expands them all, as a user would.
        for kind in ("rawKeyDown", "keyUp"):
            page.send("Input.dispatchKeyEvent", {"type": kind, "modifiers": 1, "code": "KeyE", "key": "e",
                                                 "windowsVirtualKeyCode": 69})
    # Each node fills its rows (latest event, checks) from its own GraphQL query after the graph is drawn.
    try:
        page.wait_for_js(f"(() => {{ const r = {READ_LINEAGE_JS}; return r && r.nodes.length >= {len(assets)} && "
                         f"r.edges.length >= {len(edges)} && r.nodes.every(n => /Asset checks/.test(n.text) && "
                         "!/Loading/.test(n.text)); })()", 90, "every asset node with its details")
    except AssertionError as error:
        shown = page.evaluate(READ_LINEAGE_JS) or {"nodes": []}
        page.screenshot(artifact("lineage_failed.png"))
        names_only = [n["text"] for n in shown["nodes"] if "\n" not in n["text"].strip()]
        hint = (f"; {len(names_only)} nodes are drawn as their name alone: the graph outgrew LINEAGE_VIEWPORT "
                f"{LINEAGE_VIEWPORT}, raise it" if names_only else "")
        raise AssertionError(f"{error}{hint}; nodes: {[n['text'][:60] for n in shown['nodes']]}") from error
    wait_for(lambda: _with_check_rows(page.evaluate(READ_LINEAGE_JS), checks), 60,
             "the check counts of the asset nodes", interval=1.0)
    page.wait_until_settled()
    rendered = page.evaluate(READ_LINEAGE_JS)

    assert {n["name"] for n in rendered["nodes"]} == assets
    drawn = set()
    for x1, y1, x2, y2 in rendered["edges"]:
        source, d_source = _attach(rendered["nodes"], x1, y1, "right")
        target, d_target = _attach(rendered["nodes"], x2, y2, "left")
        assert max(d_source, d_target) < EDGE_SNAP, f"edge {(x1, y1, x2, y2)} ends at no node"
        drawn.add((source, target))
    assert drawn == edges

    for node in rendered["nodes"]:
        counts = _check_counts(node["text"])
        if checks[node["name"]]:
            assert counts and int(counts[0][1]) == len(checks[node["name"]]), (node["name"], node["text"])
        else:
            assert not counts, (node["name"], node["text"])

    clip = rendered["clip"]
    path = page.screenshot(artifact("lineage.png"), clip={"x": clip["x"], "y": clip["y"], "scale": 1,
                                                          "width": clip["right"] - clip["x"],
                                                          "height": clip["bottom"] - clip["y"]})
    assert path.stat().st_size > 50_000  # a rendered graph, not a blank page


def test_asset_page_shows_the_latest_metadata_and_checks(landed: LandedChain, page: Page):
    _, _, checks = _graph_truth(landed.defs)
    root = next(k for k, e in landed.outcome.expected.items() if e.trigger == "landing_sensor")
    record = landed.instance.fetch_materializations(root, limit=1).records[0]
    materialization = record.asset_materialization
    assert materialization is not None and materialization.partition in landed.days
    labels = list(materialization.metadata)
    assert len(labels) >= 5, labels
    base = f"{landed.stack.webserver_url}/assets/{quote(root.to_user_string())}"
    page.resize(1600, 1100)  # a laptop screen: the metadata table fits

    page.navigate(f"{base}?view=events")
    conditions = " && ".join(f"t.includes({json.dumps(label)})" for label in labels)
    page.wait_for_js(f"(() => {{ const t = document.body.innerText; return t.includes('Metadata') && "
                     f"t.includes({json.dumps(materialization.partition)}) && {conditions}; }})()",
                     60, f"the metadata of {root.to_user_string()} {materialization.partition}")
    page.wait_until_settled()
    page.screenshot(artifact("asset_metadata.png"))

    with_checks = max(checks, key=lambda a: len(checks[a]))
    page.navigate(f"{landed.stack.webserver_url}/assets/{quote(with_checks)}?view=checks")
    names = " && ".join(f"t.includes({json.dumps(c)})" for c in sorted(checks[with_checks]))
    page.wait_for_js(f"(() => {{ const t = document.body.innerText; return {names}; }})()", 60,
                     f"the checks of {with_checks}")
    page.wait_until_settled()
    page.screenshot(artifact("asset_checks.png"))
