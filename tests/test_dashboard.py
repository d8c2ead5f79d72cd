"""The Grafana dashboard's structure, its PromQL under the real promtool, and the metric-name contract between the
monitor's metrics and everything the rules and dashboard query."""

from __future__ import annotations

import argparse
import itertools
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from langchain_llmmonitor.ops.alerts import AlertConfig, build_rules
from langchain_llmmonitor.ops.dashboard import add_cli, build_dashboard, dashboard_queries, write_dashboard
from langchain_llmmonitor.telemetry.metrics import MonitorMetrics, StoreGauges

from ._prom_tools import require_binary, run_tool

LAYERS = [
    "Traffic and errors",
    "Latency and time to first token",
    "Tokens and cost",
    "Retrieval and tools",
    "Quality (judge scores)",
    "User feedback",
    "Judge and monitor health",
]
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$model": ".*"}


@pytest.fixture(scope="module")
def promtool() -> str:
    return require_binary("promtool")


def _query_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [panel for panel in dashboard["panels"] if panel["type"] != "row"]


def test_every_panel_queries_prometheus_through_the_datasource_variable() -> None:
    """Panels and their targets use `${datasource}`, which the template offers from the Prometheus data sources."""
    dashboard = build_dashboard()
    datasource = {"type": "prometheus", "uid": "${datasource}"}
    variables = {variable["name"]: variable for variable in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    assert variables["model"]["definition"] == "label_values(llm_requests_total, model)"
    assert variables["model"]["datasource"] == datasource and variables["model"]["includeAll"]
    for panel in _query_panels(dashboard):
        assert panel["datasource"] == datasource, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == datasource and target["expr"].strip(), panel["title"]
        assert len({target["refId"] for target in panel["targets"]}) == len(panel["targets"]), panel["title"]


def test_datasource_variable_name_is_configurable() -> None:
    """A custom variable name is both declared and referenced."""
    dashboard = build_dashboard(title="Checkout bot", datasource_uid_variable="prom")
    assert dashboard["title"] == "Checkout bot"
    assert dashboard["templating"]["list"][0]["name"] == "prom"
    assert {panel["datasource"]["uid"] for panel in _query_panels(dashboard)} == {"${prom}"}


def test_panels_have_unique_ids_and_do_not_overlap() -> None:
    """Ids are unique and every panel sits inside the 24-column grid without covering another."""
    dashboard = build_dashboard()
    panels = dashboard["panels"]
    assert dashboard["schemaVersion"] >= 39
    assert len({panel["id"] for panel in panels}) == len(panels)
    cells = []
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["w"] > 0 and grid["x"] + grid["w"] <= 24 and grid["h"] > 0, panel["title"]
        cells.append(
            {(x, y) for x in range(grid["x"], grid["x"] + grid["w"]) for y in range(grid["y"], grid["y"] + grid["h"])}
        )
    for first, second in itertools.combinations(range(len(panels)), 2):
        assert not cells[first] & cells[second], (panels[first]["title"], panels[second]["title"])


def test_one_row_per_monitoring_layer_each_with_panels() -> None:
    """Rows appear in layer order, and each row has panels below it."""
    panels = build_dashboard()["panels"]
    rows = [index for index, panel in enumerate(panels) if panel["type"] == "row"]
    assert [panels[index]["title"] for index in rows] == LAYERS
    for start, end in zip(rows, [*rows[1:], len(panels)], strict=True):
        assert end - start > 1, panels[start]["title"]


def test_threshold_lines_follow_the_alert_config() -> None:
    """The dashboard marks the thresholds the generated alerts use."""
    config = AlertConfig(p99_latency_seconds=7, cost_per_hour=200, min_faithfulness=4)
    panels = {panel["title"]: panel for panel in _query_panels(build_dashboard(alert_config=config))}

    def threshold(title: str) -> float:
        return panels[title]["fieldConfig"]["defaults"]["thresholds"]["steps"][-1]["value"]

    assert threshold("LLM p99 latency by model") == 7
    assert threshold("Spend per hour") == 200
    assert threshold("Average score by criterion, last hour") == 4


def test_quality_panels_use_the_random_sample_only() -> None:
    """Quality averages and hallucination rate read recording rules that keep `sampling="random"` only."""
    records = {
        rule["record"]: rule["expr"] for group in build_rules()["groups"] for rule in group["rules"] if "record" in rule
    }
    panels = {panel["title"]: panel for panel in _query_panels(build_dashboard())}
    for title in ("Average score by criterion, last hour", "Hallucination rate, last hour"):
        for target in panels[title]["targets"]:
            recorded = records[target["expr"]]
            assert recorded.count('sampling="random"') == recorded.count("llm_quality_"), title


def test_dashboard_queries_lists_every_expression() -> None:
    """Every target (also in collapsed rows) and annotation query is returned."""
    dashboard = build_dashboard()
    queries = dashboard_queries(dashboard)
    targets = [target["expr"] for panel in _query_panels(dashboard) for target in panel["targets"]]
    assert queries[: len(targets)] == targets
    assert any("ALERTS" in query for query in queries)
    dashboard["panels"].append({"type": "row", "collapsed": True, "panels": [{"targets": [{"expr": "up"}]}]})
    assert "up" in dashboard_queries(dashboard)


def test_every_query_parses_with_promtool(promtool: str, tmp_path: Path) -> None:
    """Each expression, with Grafana's variables substituted, is valid PromQL to `promtool check rules`."""
    queries = dashboard_queries(build_dashboard())
    rules = []
    for index, query in enumerate(queries):
        for variable, value in GRAFANA_VARIABLES.items():
            query = query.replace(variable, value)
        assert "$" not in query, query
        rules.append({"record": f"llmmonitor_dashboard_query_{index}", "expr": query})
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = run_tool(promtool, "check", "rules", path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(queries)} rules found" in result.stdout


def test_write_dashboard_and_cli(tmp_path: Path) -> None:
    """`write_dashboard` and `llmmonitor dashboard --out` write the same importable JSON."""
    written = write_dashboard(tmp_path / "direct.json", title="LLM")
    assert json.loads(written.read_text()) == build_dashboard(title="LLM")
    parser = argparse.ArgumentParser(prog="llmmonitor")
    add_cli(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(
        ["dashboard", "--title", "LLM", "--cost-per-hour", "75", "--out", str(tmp_path / "cli.json")]
    )
    assert args.func(args) == 0
    assert json.loads((tmp_path / "cli.json").read_text()) == build_dashboard(
        title="LLM", alert_config=AlertConfig(cost_per_hour=75)
    )


# --- contract: every name queried exists ---------------------------------------------------------------------------

_NOT_METRICS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "and",
    "or",
    "unless",
    "offset",
    "bool",
    "inf",
    "nan",
}


def _exported_series() -> dict[str, set[str]]:
    """Series names MonitorMetrics exposes, with their label names (plus `le` on buckets)."""
    metrics = MonitorMetrics(CollectorRegistry())
    series: dict[str, set[str]] = {}
    for metric in metrics.families():
        labels = set(metric._labelnames)  # prometheus_client keeps label names only privately
        suffixes = {"counter": ["_total"], "gauge": [""], "histogram": ["_bucket", "_sum", "_count"]}[metric._type]
        for suffix in suffixes:
            series[metric._name + suffix] = labels | ({"le"} if suffix == "_bucket" else set())
    gauges = StoreGauges(outbox_pending=lambda: 0, jobs_pending=lambda: 0)  # counted in the store at scrape time
    series.update({family.name: set() for family in gauges.describe()})
    return series


def _selectors(expr: str) -> list[tuple[str, set[str]]]:
    """(metric name, label names matched) for every series selector in a PromQL expression."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'', '""', expr)
    text = re.sub(r"\[[^\]]*\]", "", text)
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    found = []
    for match in re.finditer(r"(?<![\w:.$])([a-zA-Z_:][\w:]*)\b(?!\s*\()(\{[^}]*\})?", text):
        name, matchers = match[1], match[2] or ""
        if name.lower() not in _NOT_METRICS:
            found.append((name, set(re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", matchers))))
    return found


def _recorded_labels(record: str) -> set[str]:
    """The labels a level:metric:operations name keeps, by its level."""
    return set(record.split(":")[0].split("_"))


def test_selector_parser_finds_names_and_labels() -> None:
    """The contract test's PromQL scanner sees metrics, not functions, keywords, durations or label values."""
    expr = 'sum by (model) (rate(llm_a_total{status="x y",le=~"1"}[5m] offset 1d)) / on (model) job:b:rate5m and ALERTS'
    assert _selectors(expr) == [("llm_a_total", {"status", "le"}), ("job:b:rate5m", set()), ("ALERTS", set())]


def test_rules_and_dashboard_only_query_exported_metrics_and_labels() -> None:
    """Renaming a metric or label in _metrics.py without updating the rules and dashboard fails here."""
    exported = _exported_series()
    rules = [rule for group in build_rules()["groups"] for rule in group["rules"]]
    records = {rule["record"] for rule in rules if "record" in rule}
    expressions = [rule["expr"] for rule in rules] + dashboard_queries(build_dashboard())
    seen: set[str] = set()
    for expr in expressions:
        for name, labels in _selectors(expr):
            seen.add(name)
            if name in records:
                assert labels <= _recorded_labels(name), (name, labels, expr)
            elif name != "ALERTS":
                assert name in exported, f"{name} is not exported by MonitorMetrics: {expr}"
                assert labels <= exported[name] | {"job", "instance"}, (name, labels - exported[name], expr)
    assert {"llm_requests_total", "llm_request_duration_seconds_bucket", "llm_quality_score_sum"} <= seen
    assert records <= seen, f"recorded but never used: {records - seen}"
