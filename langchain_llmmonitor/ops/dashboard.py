"""The Grafana dashboard for the monitor's metrics, generated as importable JSON.

One row per monitoring layer (traffic, latency, spend, retrieval, quality, feedback, judge health). Threshold lines come
from the same `AlertConfig` as the alert rules, so what the dashboard marks as bad is what pages. Panels that show the
alerts' own numbers (token baseline, quality over the last hour, SLO ratios) read the recording rules from
`llmmonitor rules`, which must be loaded into Prometheus.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.vocabulary import NEGATIVE_RATING
from .alerts import AlertConfig, add_config_arguments, config_from_args, le_matcher

SCHEMA_VERSION = 39
NEGATIVE_RATINGS_MATCHER = f"{NEGATIVE_RATING}|1|2"
"""Negative ratings on either scale: a thumbs-down, or 1-2 of 5."""

_GRID_WIDTH = 24
_PANEL_HEIGHT = 8
_MODEL = 'model=~"$model"'
_RATE = "$__rate_interval"
_COMPLETED = 'status=~"success|error"'


@dataclass(frozen=True)
class _Panel:
    title: str
    description: str
    targets: tuple[tuple[str, str], ...]  # (PromQL, legend)
    unit: str = "short"
    threshold: float | None = None
    width: int = 8
    min: float | None = None
    max: float | None = None


_Row = tuple[str, list[_Panel]]  # (row title, its panels left to right, top to bottom)


def _over(numerator: str, denominator: str) -> str:
    """A ratio query, one operand per line as in the rules file."""
    return f"{numerator}\n/ {denominator}"


def _quantiles(
    metric: str, selector: str = "", *, by: str = "", quantiles: tuple[float, ...] = (0.5, 0.95, 0.99)
) -> tuple[tuple[str, str], ...]:
    """histogram_quantile targets; `by` adds grouping labels besides `le`."""
    group = f"{by}, le" if by else "le"
    legend_prefix = "".join(f"{{{{{label.strip()}}}}} " for label in by.split(",") if label.strip())
    return tuple(
        (
            f"histogram_quantile({q:g}, sum by ({group}) (rate({metric}_bucket{selector}[{_RATE}])))",
            f"{legend_prefix}p{q * 100:g}",
        )
        for q in quantiles
    )


def _rows(config: AlertConfig) -> list[_Row]:
    """The dashboard top to bottom: from "is it up" to "is the monitoring itself healthy"."""
    return [
        _traffic_and_errors_row(config),
        _latency_row(config),
        _tokens_and_cost_row(config),
        _retrieval_and_tools_row(),
        _quality_row(config),
        _user_feedback_row(),
        _judge_and_monitor_health_row(),
    ]


def _traffic_and_errors_row(config: AlertConfig) -> _Row:
    """Call volume and failures, with the lines LLMErrorRateHigh and the availability SLO alerts page on."""
    error_budget = 1 - config.slo_target
    return "Traffic and errors", [
        _Panel(
            "LLM calls per second",
            "LLM and chat-model calls by model and outcome (success, error, cancelled).",
            ((f"sum by (model, status) (rate(llm_requests_total{{{_MODEL}}}[{_RATE}]))", "{{model}} {{status}}"),),
            unit="reqps",
        ),
        _Panel(
            "LLM error ratio",
            "Failed share of completed calls (cancelled excluded). The line is the LLMErrorRateHigh threshold.",
            (
                (
                    _over(
                        f'sum by (model) (rate(llm_requests_total{{{_MODEL},status="error"}}[{_RATE}]))',
                        f"sum by (model) (rate(llm_requests_total{{{_MODEL},{_COMPLETED}}}[{_RATE}]))",
                    ),
                    "{{model}}",
                ),
            ),
            unit="percentunit",
            threshold=config.error_rate,
            min=0,
        ),
        _Panel(
            "LLM errors by type",
            "Failed calls per second by exception type: rate limits, timeouts, auth and provider errors.",
            (
                (
                    f"sum by (model, error_type) (rate(llm_errors_total{{{_MODEL}}}[{_RATE}]))",
                    "{{model}} {{error_type}}",
                ),
            ),
            unit="reqps",
        ),
        _Panel(
            "LLM calls in flight",
            "Calls started and not yet ended, over all workers.",
            (("sum(llm_active_requests)", "in flight"),),
        ),
        _Panel(
            "Invocations per second",
            "Root runs (one per user request) by chain name and outcome.",
            ((f"sum by (name, status) (rate(llm_invocations_total[{_RATE}]))", "{{name}} {{status}}"),),
            unit="reqps",
        ),
        _Panel(
            "Availability SLO: failed share by window",
            f"The windows the burn-rate alerts read (recording rules). The line is the error budget, "
            f"{error_budget:.4g} of calls (SLO {config.slo_target:.4g}); pages fire at 14.4x and 6x of it.",
            tuple((f"job:llm_requests:error_ratio_rate{w}", f"{{{{job}}}} {w}") for w in ("5m", "1h", "6h")),
            unit="percentunit",
            threshold=error_budget,
            min=0,
        ),
    ]


def _latency_row(config: AlertConfig) -> _Row:
    """Latency and time to first token, with the lines LLMLatencyP99High and the latency SLO alerts page on."""
    latency_budget = 1 - config.latency_slo_target
    slow = config.latency_slo_seconds
    return "Latency and time to first token", [
        _Panel(
            "LLM latency",
            "Whole-call latency of the selected models.",
            _quantiles("llm_request_duration_seconds", f"{{{_MODEL}}}"),
            unit="s",
        ),
        _Panel(
            "LLM p99 latency by model",
            "The line is the LLMLatencyP99High threshold.",
            _quantiles("llm_request_duration_seconds", f"{{{_MODEL}}}", by="model", quantiles=(0.99,)),
            unit="s",
            threshold=config.p99_latency_seconds,
        ),
        _Panel(
            "Time to first token",
            "Streaming calls only: what the user waits before text appears.",
            _quantiles("llm_time_to_first_token_seconds", f"{{{_MODEL}}}"),
            unit="s",
        ),
        _Panel(
            "Invocation latency",
            "End-to-end latency of root runs (retrieval, tools and LLM calls together).",
            _quantiles("llm_invocation_duration_seconds"),
            unit="s",
        ),
        _Panel(
            f"Latency SLO: share slower than {slow:g}s",
            f"The windows the latency burn-rate alerts read (recording rules). The line is the budget, "
            f"{latency_budget:.4g} of calls (SLO {config.latency_slo_target:.4g}).",
            tuple(
                (f"job:llm_request_duration_seconds:slow_ratio_rate{w}", f"{{{{job}}}} {w}") for w in ("5m", "1h", "6h")
            ),
            unit="percentunit",
            threshold=latency_budget,
            min=0,
        ),
        _Panel(
            f"Share of LLM calls slower than {slow:g}s",
            "Per model, over the dashboard's rate interval.",
            (
                (
                    _over(
                        "1 - sum by (model) (rate(llm_request_duration_seconds_bucket"
                        f"{{{_MODEL},{le_matcher(slow)}}}[{_RATE}]))",
                        f"sum by (model) (rate(llm_request_duration_seconds_count{{{_MODEL}}}[{_RATE}]))",
                    ),
                    "{{model}}",
                ),
            ),
            unit="percentunit",
            min=0,
        ),
    ]


def _tokens_and_cost_row(config: AlertConfig) -> _Row:
    """Spend and what drives it, next to the numbers LLMCostPerHourHigh and LLMTokenUsageAboveBaseline compare."""
    token_baseline = f"model:llm_tokens:rate1h_avg_over_time7d{{{_MODEL}}}"
    return "Tokens and cost", [
        _Panel(
            "Tokens per second by type",
            "Prompt, completion, cached and reasoning tokens of the application (not the judge).",
            ((f"sum by (model, type) (rate(llm_tokens_total{{{_MODEL}}}[{_RATE}]))", "{{model}} {{type}}"),),
        ),
        _Panel(
            "Tokens per hour against the 7-day baseline",
            "The numbers LLMTokenUsageAboveBaseline compares (recording rules).",
            (
                (f"model:llm_tokens:rate1h{{{_MODEL}}} * 3600", "{{model}} last hour"),
                (f"{token_baseline} * 3600", "{{model}} 7-day average"),
                (
                    f"{token_baseline} * 3600 * {config.token_baseline_factor:g}",
                    f"{{{{model}}}} alert level ({config.token_baseline_factor:g}x)",
                ),
            ),
        ),
        _Panel(
            "Spend per hour",
            "USD per hour from the price table. The total over the last hour is what LLMCostPerHourHigh reads.",
            (
                (f"sum by (model) (rate(llm_cost_usd_total{{{_MODEL}}}[{_RATE}])) * 3600", "{{model}}"),
                ("sum(model:llm_cost_usd:rate1h) * 3600", "all models, last hour"),
            ),
            unit="currencyUSD",
            threshold=config.cost_per_hour,
            min=0,
        ),
        _Panel(
            "Tokens per successful call",
            "Context growth (more retrieved text, longer history) shows here before it shows in spend.",
            (
                (
                    _over(
                        f"sum by (model) (rate(llm_tokens_total{{{_MODEL}}}[{_RATE}]))",
                        f'sum by (model) (rate(llm_requests_total{{{_MODEL},status="success"}}[{_RATE}]))',
                    ),
                    "{{model}}",
                ),
            ),
        ),
        _Panel(
            "Calls without a price or token usage",
            "Unpriced calls are missing from spend (cost unknown, not zero); add the model to the price table.",
            (
                (f"sum by (model) (rate(llm_unpriced_requests_total{{{_MODEL}}}[{_RATE}]))", "{{model}} unpriced"),
                (f"sum by (model) (rate(llm_usage_missing_total{{{_MODEL}}}[{_RATE}]))", "{{model}} no usage reported"),
            ),
            unit="reqps",
        ),
    ]


def _retrieval_and_tools_row() -> _Row:
    """Retriever and tool health: empty or failed retrievals are the usual cause of ungrounded answers."""
    retriever_calls = f"sum by (retriever) (rate(llm_retriever_documents_count[{_RATE}]))"
    empty_results = f"sum by (retriever) (rate(llm_retriever_documents_bucket{{{le_matcher(0)}}}[{_RATE}]))"
    return "Retrieval and tools", [
        _Panel(
            "Retriever latency",
            "Retriever call latency.",
            _quantiles("llm_retriever_duration_seconds"),
            unit="s",
        ),
        _Panel(
            "Documents returned per call",
            "Mean documents per retriever call.",
            (
                (
                    _over(f"sum by (retriever) (rate(llm_retriever_documents_sum[{_RATE}]))", retriever_calls),
                    "{{retriever}}",
                ),
            ),
            min=0,
        ),
        _Panel(
            "Retriever calls returning nothing",
            "Share of retriever calls with zero documents: answers without context invite hallucinations.",
            ((_over(empty_results, retriever_calls), "{{retriever}}"),),
            unit="percentunit",
            min=0,
        ),
        _Panel(
            "Retriever calls by outcome",
            "Errors here leave answers ungrounded.",
            (
                (
                    f"sum by (retriever, status) (rate(llm_retriever_requests_total[{_RATE}]))",
                    "{{retriever}} {{status}}",
                ),
            ),
            unit="reqps",
        ),
        _Panel(
            "Tool calls by outcome",
            "Agent tool calls per second.",
            ((f"sum by (tool, status) (rate(llm_tool_calls_total[{_RATE}]))", "{{tool}} {{status}}"),),
            unit="reqps",
        ),
        _Panel(
            "Tool latency p95",
            "Per tool.",
            _quantiles("llm_tool_duration_seconds", by="tool", quantiles=(0.95,)),
            unit="s",
        ),
    ]


def _quality_row(config: AlertConfig) -> _Row:
    """Judge scores as the quality alerts see them (recording rules), with their thresholds and volume guard."""
    return "Quality (judge scores)", [
        _Panel(
            "Average score by criterion, last hour",
            "Random sample only (forced evaluations of errors and negative feedback would bias it). "
            "The line is "
            "the LLMFaithfulnessLow threshold.",
            (("criterion_judge:llm_quality_score:mean1h", "{{criterion}} ({{judge}})"),),
            threshold=config.min_faithfulness,
            min=1,
            max=5,
        ),
        _Panel(
            "Hallucination rate, last hour",
            "Random sample only. The line is the LLMHallucinationRateHigh threshold.",
            (("judge:llm_quality_hallucination_verdicts:yes_ratio_rate1h", "{{judge}}"),),
            unit="percentunit",
            threshold=config.hallucination_rate,
            min=0,
        ),
        _Panel(
            "Judged samples, last hour",
            "Quality alerts stay silent below the line (too few random samples to tell).",
            (
                (
                    'sum by (sampling) (increase(llm_quality_score_count{criterion="faithfulness"}[1h]))',
                    "{{sampling}}",
                ),
            ),
            threshold=config.min_judged_samples,
            min=0,
        ),
        _Panel(
            "Traces chosen for evaluation",
            "By reason: random rate, metadata or tag override, error, negative feedback.",
            ((f"sum by (reason) (rate(llm_quality_samples_total[{_RATE}]))", "{{reason}}"),),
            unit="ops",
        ),
    ]


def _user_feedback_row() -> _Row:
    """What users say, and whether their feedback reaches LangSmith."""
    return "User feedback", [
        _Panel(
            "Feedback by rating",
            "User feedback received per second.",
            ((f"sum by (rating) (rate(llm_user_feedback_total[{_RATE}]))", "{{rating}}"),),
            unit="ops",
        ),
        _Panel(
            "Negative feedback share, last hour",
            "Share of feedback in the last hour that was a thumbs-down or a 1-2 of 5.",
            (
                (
                    _over(
                        f'sum(increase(llm_user_feedback_total{{rating=~"{NEGATIVE_RATINGS_MATCHER}"}}[1h]))',
                        "sum(increase(llm_user_feedback_total[1h]))",
                    ),
                    "thumbs down",
                ),
            ),
            unit="percentunit",
            min=0,
        ),
        _Panel(
            "Feedback delivery to LangSmith",
            "Delivered items by kind and failed attempts by reason (failures are retried from the outbox).",
            (
                (f"sum by (kind) (rate(llm_feedback_delivered_total[{_RATE}]))", "delivered {{kind}}"),
                (f"sum by (reason) (rate(llm_feedback_delivery_failures_total[{_RATE}]))", "failed {{reason}}"),
            ),
            unit="ops",
        ),
        _Panel(
            "Feedback waiting in the outbox",
            "Stored, not yet delivered to LangSmith. Growth means LangSmith is unreachable.",
            (("max(llm_feedback_outbox_pending)", "pending"),),
        ),
    ]


def _judge_and_monitor_health_row() -> _Row:
    """Whether the monitoring itself works: a failing or starved judge leaves the quality row blind."""
    return "Judge and monitor health", [
        _Panel(
            "Judge backlog",
            "Evaluations waiting for a judge: in memory (no store), or as jobs in the store (every process and "
            "`llmmonitor worker` reports the same count). Growth means the judges cannot keep up.",
            (("sum(llm_judge_queue_depth)", "in memory"), ("max(llm_judge_jobs_pending)", "jobs in the store")),
        ),
        _Panel(
            "Evaluations dropped",
            "Not judged: queue full, hourly budget spent, shutdown (no store), a rating's request nobody could answer "
            "(expired), or a job that failed every claim (abandoned).",
            ((f"sum by (reason) (rate(llm_judge_dropped_total[{_RATE}]))", "{{reason}}"),),
            unit="ops",
        ),
        _Panel(
            "Rows not stored",
            "Invocations the store never got: beyond the writer's buffer during an outage, a row the database refused, "
            "or still held at shutdown. Any value here is data lost.",
            ((f"sum by (what, reason) (rate(llm_monitor_dropped_total[{_RATE}]))", "{{what}} {{reason}}"),),
            unit="ops",
        ),
        _Panel(
            "Judge evaluations by outcome",
            "Success, error (stored as missing, never as a score) and cache hits.",
            ((f"sum by (judge, status) (rate(llm_judge_evaluations_total[{_RATE}]))", "{{judge}} {{status}}"),),
            unit="ops",
        ),
        _Panel(
            "Judge errors by type",
            "Timeout, parse, refusal, rate_limit, api, other.",
            ((f"sum by (judge, error_type) (rate(llm_judge_errors_total[{_RATE}]))", "{{judge}} {{error_type}}"),),
            unit="ops",
        ),
        _Panel(
            "Judge latency",
            "Per evaluation.",
            _quantiles("llm_judge_duration_seconds", by="judge", quantiles=(0.5, 0.95)),
            unit="s",
        ),
        _Panel(
            "Judge spend per hour",
            "What quality monitoring costs, kept apart from the application's spend.",
            ((f"sum by (judge) (rate(llm_judge_cost_usd_total[{_RATE}])) * 3600", "{{judge}}"),),
            unit="currencyUSD",
            min=0,
        ),
        _Panel(
            "Monitor handler errors and expired runs",
            "Callback events the monitor failed to process (the chain was unaffected); runs that never ended.",
            (
                (f"sum by (event) (rate(llm_monitor_handler_errors_total[{_RATE}]))", "handler error {{event}}"),
                (f"sum by (kind) (rate(llm_monitor_runs_expired_total[{_RATE}]))", "expired {{kind}}"),
            ),
            unit="ops",
        ),
    ]


def _panel_json(panel: _Panel, *, panel_id: int, x: int, y: int, datasource: dict[str, str]) -> dict[str, Any]:
    steps: list[dict[str, Any]] = [{"color": "green", "value": None}]
    custom: dict[str, Any] = {"lineWidth": 1, "fillOpacity": 10, "showPoints": "never", "spanNulls": False}
    if panel.threshold is not None:
        steps.append({"color": "red", "value": panel.threshold})
        custom["thresholdsStyle"] = {"mode": "dashed"}
    defaults: dict[str, Any] = {
        "unit": panel.unit,
        "custom": custom,
        "thresholds": {"mode": "absolute", "steps": steps},
    }
    if panel.min is not None:
        defaults["min"] = panel.min
    if panel.max is not None:
        defaults["max"] = panel.max
    return {
        "id": panel_id,
        "type": "timeseries",
        "title": panel.title,
        "description": panel.description,
        "datasource": datasource,
        "gridPos": {"h": _PANEL_HEIGHT, "w": panel.width, "x": x, "y": y},
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
        "targets": [
            {
                "refId": chr(ord("A") + index),
                "datasource": datasource,
                "expr": expr,
                "legendFormat": legend,
                "range": True,
                "editorMode": "code",
            }
            for index, (expr, legend) in enumerate(panel.targets)
        ],
    }


def build_dashboard(
    *,
    title: str = "LangChain LLM monitor",
    uid: str = "llmmonitor",
    datasource_uid_variable: str = "datasource",
    alert_config: AlertConfig | None = None,
) -> dict[str, Any]:
    """An importable Grafana dashboard; panels query the Prometheus data source picked in `datasource_uid_variable`."""
    config = alert_config or AlertConfig()
    datasource = {"type": "prometheus", "uid": f"${{{datasource_uid_variable}}}"}
    return {
        "title": title,
        "uid": uid,
        "description": (
            "Traffic, latency, spend, retrieval, judged quality, user feedback and judge health of LangChain apps "
            "monitored by langchain-llmmonitor."
        ),
        "tags": ["llm", "langchain", "llmmonitor"],
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "editable": True,
        "graphTooltip": 1,
        "timezone": "browser",
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "1m",
        "links": [],
        "annotations": {"list": _annotations(datasource)},
        "templating": {"list": _template_variables(datasource_uid_variable, datasource)},
        "panels": _laid_out(_rows(config), datasource),
    }


def _laid_out(rows: list[_Row], datasource: dict[str, str]) -> list[dict[str, Any]]:
    """Row headers and panels in Grafana's flat list: panels fill each row left to right, wrapping at the grid width."""
    panels: list[dict[str, Any]] = []
    y = 0
    for row_title, row_panels in rows:
        panels.append(
            {
                "id": len(panels) + 1,
                "type": "row",
                "title": row_title,
                "collapsed": False,
                "panels": [],
                "gridPos": {"h": 1, "w": _GRID_WIDTH, "x": 0, "y": y},
            }
        )
        y += 1
        x = 0
        for panel in row_panels:
            if x + panel.width > _GRID_WIDTH:
                x, y = 0, y + _PANEL_HEIGHT
            panels.append(_panel_json(panel, panel_id=len(panels) + 1, x=x, y=y, datasource=datasource))
            x += panel.width
        y += _PANEL_HEIGHT
    return panels


def _annotations(datasource: dict[str, str]) -> list[dict[str, Any]]:
    """Grafana's own annotations, plus a marker on every graph while an LLM alert fires, to line alerts up with causes."""
    return [
        {
            "builtIn": 1,
            "datasource": {"type": "grafana", "uid": "-- Grafana --"},
            "enable": True,
            "hide": True,
            "iconColor": "rgba(0, 211, 255, 1)",
            "name": "Annotations & Alerts",
            "type": "dashboard",
        },
        {
            "name": "LLM alerts firing",
            "datasource": datasource,
            "enable": True,
            "iconColor": "red",
            "expr": 'ALERTS{alertstate="firing",alertname=~"LLM.+"}',
            "step": "60s",
            "titleFormat": "{{alertname}}",
            "textFormat": "{{route}} {{model}}{{judge}}{{job}}",
            "useValueForTime": False,
        },
    ]


def _template_variables(datasource_uid_variable: str, datasource: dict[str, str]) -> list[dict[str, Any]]:
    """The data source picker (so one JSON imports anywhere) and the `$model` filter the per-model panels use."""
    return [
        {
            "type": "datasource",
            "name": datasource_uid_variable,
            "label": "Data source",
            "query": "prometheus",
            "current": {},
            "hide": 0,
            "refresh": 1,
            "regex": "",
            "options": [],
        },
        {
            "type": "query",
            "name": "model",
            "label": "Model",
            "datasource": datasource,
            "definition": "label_values(llm_requests_total, model)",
            "query": {
                "qryType": 1,
                "query": "label_values(llm_requests_total, model)",
                "refId": "PrometheusVariableQueryEditor-VariableQuery",
            },
            "refresh": 2,
            "includeAll": True,
            "allValue": ".*",
            "multi": True,
            "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
            "sort": 1,
            "hide": 0,
            "options": [],
            "regex": "",
        },
    ]


def dashboard_queries(dashboard: dict[str, Any]) -> list[str]:
    """Every PromQL expression in `dashboard`: panel targets (also inside collapsed rows) and annotation queries."""
    queries: list[str] = []

    def walk(panels: list[dict[str, Any]]) -> None:
        for panel in panels:
            queries.extend(target["expr"] for target in panel.get("targets", []) if target.get("expr"))
            walk(panel.get("panels", []))

    walk(dashboard.get("panels", []))
    queries.extend(item["expr"] for item in dashboard.get("annotations", {}).get("list", []) if item.get("expr"))
    return queries


def write_dashboard(path: str | Path, **options: Any) -> Path:
    """Write `build_dashboard(**options)` as JSON to `path`."""
    path = Path(path)
    path.write_text(json.dumps(build_dashboard(**options), indent=2) + "\n", encoding="utf-8")
    return path


def add_cli(subparsers: Any) -> argparse.ArgumentParser:
    """Register `llmmonitor dashboard`; the parser's default `func` is `run_cli`."""
    parser = subparsers.add_parser(
        "dashboard",
        help="write the Grafana dashboard JSON",
        description="Write the Grafana dashboard; threshold lines follow the same settings as `llmmonitor rules`.",
    )
    parser.add_argument("--out", type=Path, metavar="PATH", help="write to PATH instead of stdout")
    parser.add_argument("--title", default="LangChain LLM monitor", help="dashboard title")
    add_config_arguments(parser)
    parser.set_defaults(func=run_cli)
    return parser


def run_cli(args: argparse.Namespace) -> int:
    """Write the dashboard; 2 on a configuration error, reported on stderr."""
    try:
        options = {"title": args.title, "alert_config": config_from_args(args)}
        if args.out:
            write_dashboard(args.out, **options)
        else:
            sys.stdout.write(json.dumps(build_dashboard(**options), indent=2) + "\n")
    except (OSError, ValueError) as error:
        print(f"llmmonitor dashboard: error: {error}", file=sys.stderr)
        return 2
    return 0
