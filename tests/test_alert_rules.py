"""The generated alert rules under the real promtool (check and unit tests), their configuration and CLI, and the
example Alertmanager routing under the real amtool."""

from __future__ import annotations

import argparse
import itertools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.utils import floatToGoString

from langchain_llmmonitor.ops.alerts import AlertConfig, add_cli, build_rules, load_config, render_rules, run_cli
from langchain_llmmonitor.telemetry.metrics import LATENCY_BUCKETS

from ._prom_tools import require_binary, run_tool

ALERTMANAGER_CONFIG = Path(__file__).resolve().parents[1] / "deploy" / "alertmanager.yml"
RECEIVER_BY_ROUTE = {
    "page": "llm-page",
    "chat": "llm-chat",
    "ticket": "llm-ticket",
    "review": "llm-review",
    "investigate": "llm-investigate",
}
JOB = {"job": "app", "instance": "app:8000"}
MODEL = "gpt-4o"
JUDGE = "offline-v1"


@pytest.fixture(scope="module")
def promtool() -> str:
    return require_binary("promtool")


@pytest.fixture(scope="module")
def amtool() -> str:
    return require_binary("amtool")


def _alerts(config: AlertConfig | None = None) -> dict[str, dict[str, Any]]:
    return {
        rule["alert"]: rule for group in build_rules(config)["groups"] for rule in group["rules"] if "alert" in rule
    }


# --- promtool input series ---------------------------------------------------------------------------------------


def _series(name: str, values: str, **labels: str) -> dict[str, str]:
    matchers = ",".join(f'{key}="{value}"' for key, value in {**JOB, **labels}.items())
    return {"series": f"{name}{{{matchers}}}", "values": values}


def _counter(*segments: tuple[float, int]) -> str:
    """A counter that grows by `per_step` for `steps` scrape intervals, segment after segment (promtool notation)."""
    parts, total = ["0"], 0.0
    for per_step, steps in segments:
        parts.append(f"{total + per_step:.12g}+{per_step:.12g}x{steps - 1}")
        total += per_step * steps
    return " ".join(parts)


def _histogram(
    name: str, bounds: tuple[float, ...], segments: list[tuple[dict[float, float], int]], **labels: str
) -> list[dict[str, str]]:
    """Bucket, count and sum series of a histogram observing {value: count} per step, segment after segment."""

    def per_step(counts: dict[float, float], bound: float) -> float:
        return sum(count for value, count in counts.items() if value <= bound)

    series = [
        _series(
            f"{name}_bucket",
            _counter(*((per_step(counts, bound), steps) for counts, steps in segments)),
            le=floatToGoString(bound),
            **labels,
        )
        for bound in bounds
    ]
    series.append(
        _series(f"{name}_count", _counter(*((sum(counts.values()), steps) for counts, steps in segments)), **labels)
    )
    series.append(
        _series(
            f"{name}_sum",
            _counter(*((sum(v * c for v, c in counts.items()), steps) for counts, steps in segments)),
            **labels,
        )
    )
    return series


def _requests(*segments: tuple[float, float, int], cancelled: float = 0) -> list[dict[str, str]]:
    """LLM call counters from (successes per minute, errors per minute, minutes) segments."""
    series = [
        _series("llm_requests_total", _counter(*((ok, n) for ok, _, n in segments)), model=MODEL, status="success"),
        _series("llm_requests_total", _counter(*((bad, n) for _, bad, n in segments)), model=MODEL, status="error"),
    ]
    if cancelled:
        series.append(
            _series(
                "llm_requests_total",
                _counter((cancelled, sum(n for *_, n in segments))),
                model=MODEL,
                status="cancelled",
            )
        )
    return series


def _latencies(*segments: tuple[dict[float, float], int]) -> list[dict[str, str]]:
    return _histogram("llm_request_duration_seconds", LATENCY_BUCKETS, list(segments), model=MODEL)


def _slo_traffic(
    kind: str, *segments: tuple[float, int], slow_seconds: float = 11.0, per_minute: float = 100
) -> list[dict[str, str]]:
    """`per_minute` calls a minute, a share of them bad (failed, or slower than 10 s), per (share, minutes)."""
    if kind == "errors":
        return _requests(*((per_minute * (1 - bad), per_minute * bad, minutes) for bad, minutes in segments))
    return _latencies(
        *(({1.0: per_minute * (1 - bad), slow_seconds: per_minute * bad}, minutes) for bad, minutes in segments)
    )


def _sparse(kind: str, good: range | tuple[int, ...], bad: int, minutes: int) -> list[dict[str, str]]:
    """Single calls at the given minutes of a service started at minute 0, all fine but the one at `bad` (failed, or
    11 s for latency)."""
    per_minute = [(int(minute in good), int(minute == bad)) for minute in range(1, minutes + 1)]
    runs = [(calls, len(list(run))) for calls, run in itertools.groupby(per_minute)]
    if kind == "errors":
        return _requests(*((ok, failed, steps) for (ok, failed), steps in runs))
    return _latencies(*(({1.0: ok, 11.0: slow}, steps) for (ok, slow), steps in runs))


def _scores(
    criterion: str, per_minute: float, mean: float, minutes: int, sampling: str = "random"
) -> list[dict[str, str]]:
    labels = {"criterion": criterion, "judge": JUDGE, "sampling": sampling}
    return [
        _series("llm_quality_score_count", _counter((per_minute, minutes)), **labels),
        _series("llm_quality_score_sum", _counter((per_minute * mean, minutes)), **labels),
    ]


def _verdicts(yes: float, no: float, minutes: int, sampling: str = "random") -> list[dict[str, str]]:
    return [
        _series(
            "llm_quality_hallucination_verdicts_total",
            _counter((per_minute, minutes)),
            judge=JUDGE,
            sampling=sampling,
            verdict=verdict,
        )
        for verdict, per_minute in (("yes", yes), ("no", no))
    ]


def _evaluations(**per_minute_by_status: float) -> list[dict[str, str]]:
    return [
        _series("llm_judge_evaluations_total", _counter((rate, 90)), judge=JUDGE, status=status)
        for status, rate in per_minute_by_status.items()
    ]


def _tokens(*segments: tuple[float, int], model: str = MODEL) -> list[dict[str, str]]:
    """Prompt tokens per 5-minute scrape by segment, plus a steady trickle of completion tokens (types are summed)."""
    steps = sum(n for _, n in segments)
    return [
        _series("llm_tokens_total", _counter(*segments), model=model, type="prompt"),
        _series("llm_tokens_total", _counter((segments[0][0] / 5, steps)), model=model, type="completion"),
    ]


# --- cases: every alert fires past its threshold, stays silent just inside it, and on too little volume -------------


@dataclass(frozen=True)
class Case:
    alert: str
    series: list[dict[str, str]]
    eval_times: tuple[str, ...]
    fires_with: dict[str, str] | None  # the alert's own labels when it must fire; None: must stay silent
    config: AlertConfig = field(default_factory=AlertConfig)
    interval: str = "1m"


DAY = 24 * 12  # 5-minute steps
CASES = [
    # Error rate: 2% over 5m, at least 20 calls, for 10m.
    pytest.param(
        Case("LLMErrorRateHigh", _requests((97, 3, 30)), ("20m",), {"model": MODEL}), id="error-rate-3pct-fires"
    ),
    pytest.param(Case("LLMErrorRateHigh", _requests((98.1, 1.9, 30)), ("20m",), None), id="error-rate-1.9pct-silent"),
    pytest.param(
        Case("LLMErrorRateHigh", _requests((0.6, 0.2, 30)), ("20m",), None), id="error-rate-low-volume-silent"
    ),
    pytest.param(
        Case("LLMErrorRateHigh", _requests((97, 3, 3), (100, 0, 27)), ("4m", "7m", "12m"), None),
        id="error-rate-3min-blip-silent",
    ),
    pytest.param(
        Case("LLMErrorRateHigh", _requests((97, 3, 30), cancelled=50), ("20m",), {"model": MODEL}),
        id="error-rate-ignores-cancelled",
    ),
    pytest.param(
        Case("LLMErrorRateHigh", _requests((97, 3, 30)), ("20m",), None, AlertConfig(error_rate=0.05)),
        id="error-rate-custom-5pct-silent-at-3pct",
    ),
    pytest.param(
        Case("LLMErrorRateHigh", _requests((94, 6, 30)), ("20m",), {"model": MODEL}, AlertConfig(error_rate=0.05)),
        id="error-rate-custom-5pct-fires-at-6pct",
    ),
    # p99 latency: 10 s over 5m, at least 20 calls, for 10m. 3% of calls at 11 s put p99 inside the (10, 12.5] bucket.
    pytest.param(
        Case("LLMLatencyP99High", _latencies(({1.0: 97, 11.0: 3}, 30)), ("20m",), {"model": MODEL}), id="p99-11s-fires"
    ),
    pytest.param(
        Case("LLMLatencyP99High", _latencies(({1.0: 98, 9.0: 1, 11.0: 1}, 30)), ("20m",), None), id="p99-at-10s-silent"
    ),
    pytest.param(Case("LLMLatencyP99High", _latencies(({11.0: 0.6}, 30)), ("20m",), None), id="p99-low-volume-silent"),
    pytest.param(
        Case("LLMLatencyP99High", _latencies(({1.0: 97, 11.0: 3}, 3), ({1.0: 100}, 27)), ("4m", "7m", "12m"), None),
        id="p99-3min-blip-silent",
    ),
    pytest.param(
        Case(
            "LLMLatencyP99High",
            _latencies(({1.0: 97, 11.0: 3}, 30)),
            ("20m",),
            None,
            AlertConfig(p99_latency_seconds=15),
        ),
        id="p99-custom-15s-silent-at-11s",
    ),
    pytest.param(
        Case(
            "LLMLatencyP99High",
            _latencies(({1.0: 97, 20.0: 3}, 30)),
            ("20m",),
            {"model": MODEL},
            AlertConfig(p99_latency_seconds=15),
        ),
        id="p99-custom-15s-fires-at-18s",
    ),
    # Quality: average faithfulness (random sample) below 3.5 over 1h, at least 20 judged, for 15m.
    pytest.param(
        Case(
            "LLMFaithfulnessLow",
            _scores("faithfulness", 2, 3.0, 60),
            ("50m",),
            {"criterion": "faithfulness", "judge": JUDGE},
        ),
        id="faithfulness-3.0-fires",
    ),
    pytest.param(
        Case("LLMFaithfulnessLow", _scores("faithfulness", 2, 3.6, 60), ("50m",), None), id="faithfulness-3.6-silent"
    ),
    pytest.param(
        Case("LLMFaithfulnessLow", _scores("faithfulness", 0.3, 2.0, 90), ("80m",), None),
        id="faithfulness-18-judged-silent",
    ),
    pytest.param(
        Case(
            "LLMFaithfulnessLow",
            _scores("faithfulness", 2, 4.5, 60) + _scores("faithfulness", 5, 1.0, 60, sampling="forced"),
            ("50m",),
            None,
        ),
        id="faithfulness-ignores-forced-samples",
    ),
    pytest.param(
        Case(
            "LLMFaithfulnessLow", _scores("faithfulness", 2, 4.5, 60) + _scores("relevance", 2, 1.0, 60), ("50m",), None
        ),
        id="faithfulness-ignores-other-criteria",
    ),
    pytest.param(
        Case(
            "LLMFaithfulnessLow", _scores("faithfulness", 2, 3.0, 60), ("50m",), None, AlertConfig(min_faithfulness=2.5)
        ),
        id="faithfulness-custom-2.5-silent-at-3.0",
    ),
    # Hallucination rate (random sample) above 5% over 1h, at least 20 judged, for 15m.
    pytest.param(
        Case("LLMHallucinationRateHigh", _verdicts(0.2, 1.8, 60), ("50m",), {"judge": JUDGE}),
        id="hallucination-10pct-fires",
    ),
    pytest.param(
        Case("LLMHallucinationRateHigh", _verdicts(0.09, 1.91, 60), ("50m",), None), id="hallucination-4.5pct-silent"
    ),
    pytest.param(
        Case("LLMHallucinationRateHigh", _verdicts(0.1, 0.1, 90), ("80m",), None), id="hallucination-12-judged-silent"
    ),
    pytest.param(
        Case(
            "LLMHallucinationRateHigh",
            _verdicts(0.02, 1.98, 60) + _verdicts(2, 2, 60, sampling="forced"),
            ("50m",),
            None,
        ),
        id="hallucination-ignores-forced-samples",
    ),
    pytest.param(
        Case("LLMHallucinationRateHigh", _verdicts(0.2, 1.8, 60), ("50m",), None, AlertConfig(hallucination_rate=0.15)),
        id="hallucination-custom-15pct-silent-at-10pct",
    ),
    # Spend: above $50 over the last hour, summed over models, for 15m.
    pytest.param(
        Case(
            "LLMCostPerHourHigh",
            [_series("llm_cost_usd_total", _counter((0.5, 110)), model=m) for m in ("a", "b")],
            ("100m",),
            {},
        ),
        id="cost-60-per-hour-over-two-models-fires",
    ),
    pytest.param(
        Case(
            "LLMCostPerHourHigh",
            [_series("llm_cost_usd_total", _counter((0.4, 110)), model=m) for m in ("a", "b")],
            ("100m",),
            None,
        ),
        id="cost-48-per-hour-silent",
    ),
    pytest.param(
        Case(
            "LLMCostPerHourHigh",
            [_series("llm_cost_usd_total", _counter((0.5, 110)), model=m) for m in ("a", "b")],
            ("100m",),
            None,
            AlertConfig(cost_per_hour=100),
        ),
        id="cost-custom-100-silent-at-60",
    ),
    # Tokens: 3x the 7-day average of the hourly rate, at least 10k tokens/h, a day of history, for 30m (5m steps).
    pytest.param(
        Case(
            "LLMTokenUsageAboveBaseline",
            _tokens((1000, 2 * DAY), (5000, 36)),
            ("51h",),
            {"model": MODEL},
            interval="5m",
        ),
        id="tokens-5x-fires",
    ),
    pytest.param(
        Case("LLMTokenUsageAboveBaseline", _tokens((1000, 2 * DAY), (2800, 36)), ("51h",), None, interval="5m"),
        id="tokens-2.8x-silent",
    ),
    pytest.param(
        Case("LLMTokenUsageAboveBaseline", _tokens((10, 2 * DAY), (50, 36)), ("51h",), None, interval="5m"),
        id="tokens-low-volume-silent",
    ),
    pytest.param(
        Case("LLMTokenUsageAboveBaseline", _tokens((1000, 240), (20000, 36)), ("23h",), None, interval="5m"),
        id="tokens-under-a-day-of-history-silent",
    ),
    pytest.param(
        Case(
            "LLMTokenUsageAboveBaseline",
            _tokens((1000, 2 * DAY), (5000, 36)),
            ("51h",),
            None,
            AlertConfig(token_baseline_factor=5),
            interval="5m",
        ),
        id="tokens-custom-5x-silent",
    ),
    # Judge health: more than 25% of evaluations failing over 1h, at least 20 evaluations, for 15m.
    pytest.param(
        Case("LLMJudgeFailing", _evaluations(error=1, success=2), ("60m",), {"judge": JUDGE}), id="judge-33pct-fires"
    ),
    pytest.param(
        Case("LLMJudgeFailing", _evaluations(error=1, success=2, cached=10), ("60m",), {"judge": JUDGE}),
        id="judge-ignores-cache-hits",
    ),
    pytest.param(
        Case("LLMJudgeFailing", _evaluations(error=0.4, success=1.6), ("60m",), None), id="judge-20pct-silent"
    ),
    pytest.param(
        Case("LLMJudgeFailing", _evaluations(error=0.1, success=0.1), ("80m",), None), id="judge-12-evaluations-silent"
    ),
]

# SLO burn rates, the same shapes for availability (failed calls) and latency (calls slower than 10 s). SLO 99%.
for kind, name in (("errors", "Error"), ("latency", "Latency")):
    fast, slow, job = f"LLM{name}BudgetFastBurn", f"LLM{name}BudgetSlowBurn", {"job": "app"}
    CASES += [
        pytest.param(Case(fast, _slo_traffic(kind, (0.2, 15)), ("10m",), job), id=f"{kind}-slo-20pct-pages"),
        # 6h clean, then 15 min all bad: 1h window at 25% with 5m at 100% pages; 6h stays at 4%.
        pytest.param(
            Case(fast, _slo_traffic(kind, (0, 360), (1, 15)), ("375m",), job), id=f"{kind}-slo-burst-pages-on-1h-5m"
        ),
        # ...and the page clears once the 5m window recovers, though the 1h window is still far above 14.4x.
        pytest.param(
            Case(fast, _slo_traffic(kind, (0, 360), (1, 15), (0, 20)), ("385m",), None),
            id=f"{kind}-slo-burst-over-clears",
        ),
        pytest.param(Case(fast, _slo_traffic(kind, (0.07, 60)), ("40m",), job), id=f"{kind}-slo-7pct-pages-on-6h-30m"),
        pytest.param(Case(fast, _slo_traffic(kind, (0.059, 120)), ("100m",), None), id=f"{kind}-slo-5.9pct-no-page"),
        pytest.param(Case(slow, _slo_traffic(kind, (0.04, 90)), ("60m",), job), id=f"{kind}-slo-4pct-ticket-on-1d-2h"),
        pytest.param(Case(slow, _slo_traffic(kind, (0.02, 90)), ("60m",), job), id=f"{kind}-slo-2pct-ticket-on-3d-6h"),
        pytest.param(Case(slow, _slo_traffic(kind, (0.009, 90)), ("60m",), None), id=f"{kind}-slo-0.9pct-no-ticket"),
        pytest.param(
            Case(
                fast,
                _slo_traffic(kind, (0.2, 15)),
                ("10m",),
                None,
                AlertConfig(slo_target=0.95, latency_slo_target=0.95),
            ),
            id=f"{kind}-slo-custom-95pct-no-page-at-20pct",
        ),
    ]
CASES += [
    pytest.param(
        Case(
            "LLMLatencyBudgetFastBurn",
            _slo_traffic("latency", (0.2, 15), slow_seconds=7.0),
            ("10m",),
            {"job": "app"},
            AlertConfig(latency_slo_seconds=5),
        ),
        id="latency-slo-custom-5s-pages-on-7s-calls",
    ),
    pytest.param(
        Case("LLMLatencyBudgetFastBurn", _slo_traffic("latency", (0.2, 15), slow_seconds=7.0), ("10m",), None),
        id="latency-slo-10s-ignores-7s-calls",
    ),
]


def _without_annotations(config: AlertConfig) -> dict[str, Any]:
    """The rules as generated, minus annotations: promtool compares annotations exactly, and values vary per case."""
    rules = build_rules(config)
    for group in rules["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    return rules


def _promtool_test(
    promtool: str, tmp_path: Path, rules: dict[str, Any], tests: list[dict[str, Any]], evaluation_interval: str
) -> None:
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(rules, sort_keys=False))
    suite = {"rule_files": ["rules.yml"], "evaluation_interval": evaluation_interval, "tests": tests}
    (tmp_path / "tests.yml").write_text(yaml.safe_dump(suite, sort_keys=False))
    result = run_tool(promtool, "test", "rules", "tests.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("case", CASES)
def test_alert_fires_only_past_threshold_with_volume_and_duration(promtool: str, tmp_path: Path, case: Case) -> None:
    """promtool runs the generated rules over synthetic series: the alert fires (or stays silent) as the case says."""
    rule_labels = _alerts(case.config)[case.alert]["labels"]
    expected = [] if case.fires_with is None else [{"exp_labels": {**rule_labels, **case.fires_with}}]
    test = {
        "interval": case.interval,
        "input_series": case.series,
        "alert_rule_test": [
            {"eval_time": at, "alertname": case.alert, "exp_alerts": expected} for at in case.eval_times
        ],
    }
    _promtool_test(promtool, tmp_path, _without_annotations(case.config), [test], evaluation_interval=case.interval)


def test_every_alert_has_a_firing_case() -> None:
    """No alert goes without a case proving it can fire."""
    firing = {param.values[0].alert for param in CASES if param.values[0].fires_with is not None}
    assert firing == set(_alerts())


# --- pages need call volume: a few calls, one of them bad, must not wake anyone -------------------------------------

# Every critical / page alert: the kind of bad call it counts, and the labels it fires with.
PAGES = {
    "LLMErrorRateHigh": ("errors", {"model": MODEL}),
    "LLMLatencyP99High": ("latency", {"model": MODEL}),
    "LLMErrorBudgetFastBurn": ("errors", {"job": "app"}),
    "LLMLatencyBudgetFastBurn": ("latency", {"job": "app"}),
}
UNGUARDED = AlertConfig(min_requests=0, min_slo_requests=0)
# (fine calls at these minutes, the bad call's minute, minutes of series): a service with very little traffic.
TINY_TRAFFIC = {
    "first-hour-1-bad-of-5": ((6, 18, 30, 42), 54, 90),
    "2-per-hour-1-bad-of-12": (range(15, 345, 30), 345, 400),
}
# (alert, (bad share, minutes) segments, minute to look at, calls a minute at the guard or above, below it)
PAGE_BURSTS = [
    # 20% bad for 30 min: 5 calls a minute are 25 per 5m (guard 20), 3 a minute are 15.
    pytest.param("LLMErrorRateHigh", ((0.2, 30),), 20, 5, 3, id="error-rate-20pct-25-vs-15-calls-per-5m"),
    pytest.param("LLMLatencyP99High", ((0.2, 30),), 20, 5, 3, id="p99-20pct-slow-25-vs-15-calls-per-5m"),
    # An hour fine, then every call bad for 15 min: 1 call a minute is 60 in the 1h window (guard 50), 0.5 is 30.
    pytest.param("LLMErrorBudgetFastBurn", ((0, 60), (1, 15)), 75, 1, 0.5, id="error-budget-outage-60-vs-30-per-1h"),
    pytest.param(
        "LLMLatencyBudgetFastBurn", ((0, 60), (1, 15)), 75, 1, 0.5, id="latency-budget-outage-60-vs-30-per-1h"
    ),
]


def _promtool_test_config(promtool: str, directory: Path, config: AlertConfig, tests: list[dict[str, Any]]) -> None:
    """`_promtool_test` of the rules generated from `config`, in a directory of its own."""
    directory.mkdir()
    _promtool_test(promtool, directory, _without_annotations(config), tests, evaluation_interval="1m")


@pytest.mark.parametrize(
    ("alert", "good", "bad", "minutes"),
    [pytest.param(alert, *traffic, id=f"{alert}-{name}") for alert in PAGES for name, traffic in TINY_TRAFFIC.items()],
)
def test_pages_stay_silent_on_a_few_calls_with_one_bad(
    promtool: str, tmp_path: Path, alert: str, good: tuple[int, ...], bad: int, minutes: int
) -> None:
    """A page never fires, nor does its condition hold, on a few calls with one bad; unguarded, the condition holds."""
    series = _sparse(PAGES[alert][0], good, bad, minutes)
    every_minute = [f"{minute}m" for minute in range(minutes + 1)]
    silent = {
        "interval": "1m",
        "input_series": series,
        "alert_rule_test": [{"eval_time": at, "alertname": alert, "exp_alerts": []} for at in every_minute],
        "promql_expr_test": [
            {"expr": _alerts()[alert]["expr"], "eval_time": at, "exp_samples": []} for at in every_minute
        ],
    }
    _promtool_test_config(promtool, tmp_path / "guarded", AlertConfig(), [silent])
    # Control: the bad call does cross the threshold, so the silence above is the volume guard's doing.
    crossing = {
        "interval": "1m",
        "input_series": series,
        "promql_expr_test": [
            {
                "expr": f"count({_alerts(UNGUARDED)[alert]['expr']})",
                "eval_time": f"{bad + 2}m",
                "exp_samples": [{"labels": "{}", "value": 1}],
            }
        ],
    }
    _promtool_test_config(promtool, tmp_path / "unguarded", UNGUARDED, [crossing])


def _burst(alert: str, segments: tuple, per_minute: float, minutes: range, fires: bool) -> dict[str, Any]:
    """A promtool test: `per_minute` calls a minute, shaped by `segments`; the alert fires (or not) at `minutes`."""
    kind, labels = PAGES[alert]
    expected = [{"exp_labels": {**_alerts()[alert]["labels"], **labels}}] if fires else []
    return {
        "interval": "1m",
        "input_series": _slo_traffic(kind, *segments, per_minute=per_minute),
        "alert_rule_test": [{"eval_time": f"{at}m", "alertname": alert, "exp_alerts": expected} for at in minutes],
    }


@pytest.mark.parametrize(("alert", "segments", "minute", "enough", "too_few"), PAGE_BURSTS)
def test_pages_fire_on_a_burst_with_enough_calls(
    promtool: str, tmp_path: Path, alert: str, segments: tuple, minute: int, enough: float, too_few: float
) -> None:
    """A burst pages once its calls reach the volume guard; below it, the same burst pages only without the guard."""
    pages, silent = (
        _burst(alert, segments, enough, range(minute, minute + 1), True),
        _burst(alert, segments, too_few, range(minute + 1), False),
    )
    _promtool_test_config(promtool, tmp_path / "guarded", AlertConfig(), [pages, silent])
    unguarded = _burst(alert, segments, too_few, range(minute, minute + 1), True)
    _promtool_test_config(promtool, tmp_path / "unguarded", UNGUARDED, [unguarded])


def test_every_page_has_volume_cases() -> None:
    """Each critical or page alert has tiny-traffic and burst cases, so no page can go without a volume guard."""
    labels = {name: rule["labels"] for name, rule in _alerts().items()}
    pages = {name for name, label in labels.items() if label["route"] == "page" or label["severity"] == "critical"}
    assert pages == set(PAGES) == {param.values[0] for param in PAGE_BURSTS}


def _rendered(template: str, labels: dict[str, str], value: str) -> str:
    text = re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda match: labels[match[1]], template)
    text = re.sub(r"\{\{ \$value \| [^}]+ \}\}", value, text)
    assert "{{" not in text, text
    return text


@pytest.mark.parametrize(
    ("alert", "series", "eval_time", "labels", "value"),
    [
        pytest.param(
            "LLMErrorRateHigh", _requests((97, 3, 30)), "20m", {"model": MODEL}, "3%", id="error-rate-percentage"
        ),
        pytest.param(
            "LLMLatencyP99High",
            _latencies(({1.0: 97, 11.0: 3}, 30)),
            "20m",
            {"model": MODEL},
            "11.67s",
            id="p99-duration",
        ),
        pytest.param(
            "LLMErrorBudgetFastBurn",
            _slo_traffic("errors", (0.2, 15)),
            "10m",
            {"job": "app"},
            "20%",
            id="burn-rate-percentage",
        ),
        pytest.param(
            "LLMFaithfulnessLow",
            _scores("faithfulness", 2, 3.0, 60),
            "50m",
            {"criterion": "faithfulness", "judge": JUDGE},
            "3.00",
            id="faithfulness-mean",
        ),
        pytest.param(
            "LLMHallucinationRateHigh",
            _verdicts(0.2, 1.8, 60),
            "50m",
            {"judge": JUDGE},
            "10%",
            id="hallucination-percentage",
        ),
        pytest.param(
            "LLMCostPerHourHigh",
            [_series("llm_cost_usd_total", _counter((1, 110)), model=MODEL)],
            "100m",
            {},
            "60.00",
            id="cost-dollars",
        ),
        pytest.param(
            "LLMJudgeFailing",
            _evaluations(error=1, success=2),
            "60m",
            {"judge": JUDGE},
            "33.33%",
            id="judge-percentage",
        ),
    ],
)
def test_annotations_render_the_current_value(
    promtool: str, tmp_path: Path, alert: str, series: list, eval_time: str, labels: dict, value: str
) -> None:
    """Summary and description render with the alert's labels and its current value in the right unit."""
    rule = _alerts()[alert]
    annotations = {key: _rendered(text, labels, value) for key, text in rule["annotations"].items()}
    test = {
        "interval": "1m",
        "input_series": series,
        "alert_rule_test": [
            {
                "eval_time": eval_time,
                "alertname": alert,
                "exp_alerts": [{"exp_labels": {**rule["labels"], **labels}, "exp_annotations": annotations}],
            }
        ],
    }
    _promtool_test(promtool, tmp_path, build_rules(), [test], evaluation_interval="1m")


# --- the rules file as a whole ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "config",
    [
        pytest.param(AlertConfig(), id="defaults"),
        pytest.param(
            AlertConfig(
                p99_latency_seconds=4.5,
                error_rate=0.1,
                min_faithfulness=4.2,
                hallucination_rate=0.01,
                cost_per_hour=1234.5,
                token_baseline_factor=1.5,
                min_requests=0,
                min_slo_requests=0,
                slo_target=0.9995,
                latency_slo_target=0.95,
                latency_slo_seconds=7.5,
            ),
            id="custom",
        ),
        pytest.param(AlertConfig(slo_ticket_alerts=False), id="no-ticket-alerts"),
    ],
)
def test_promtool_checks_generated_rules(promtool: str, tmp_path: Path, config: AlertConfig) -> None:
    """`promtool check rules` accepts the rendered file (syntax, PromQL, templates, no duplicates)."""
    path = tmp_path / "rules.yml"
    path.write_text(render_rules(config))
    result = run_tool(promtool, "check", "rules", path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (
        f"SUCCESS: {sum(len(group['rules']) for group in build_rules(config)['groups'])} rules found" in result.stdout
    )


def test_rendered_rules_carry_the_thresholds() -> None:
    """Custom thresholds land in the expressions and descriptions; the header records the settings."""
    text = render_rules(AlertConfig(error_rate=0.07, slo_target=0.995, latency_slo_seconds=7.5))
    alerts = _alerts(AlertConfig(error_rate=0.07, slo_target=0.995, latency_slo_seconds=7.5))
    assert "error_ratio_rate5m > 0.07" in alerts["LLMErrorRateHigh"]["expr"]
    assert "threshold 7%" in alerts["LLMErrorRateHigh"]["annotations"]["description"]
    assert "error_ratio_rate1h > 0.072" in alerts["LLMErrorBudgetFastBurn"]["expr"]  # 14.4 x 0.5% budget
    assert 'le="7.5"' in text
    assert text.startswith("# Generated by `llmmonitor rules`") and "error_rate=0.07" in text.splitlines()[0]


def test_ticket_alerts_can_be_left_out() -> None:
    """Without slow-burn tickets, neither the alerts nor their 1d/3d recording rules are generated."""
    rules = build_rules(AlertConfig(slo_ticket_alerts=False))
    names = {rule.get("alert") or rule["record"] for group in rules["groups"] for rule in group["rules"]}
    assert "LLMErrorBudgetSlowBurn" not in names and "job:llm_requests:error_ratio_rate3d" not in names
    assert "LLMErrorBudgetFastBurn" in names


def test_alert_table_routes() -> None:
    """The seed's alert table: which alert goes where."""
    routes = {name: rule["labels"]["route"] for name, rule in _alerts().items()}
    assert routes == {
        "LLMLatencyP99High": "page",
        "LLMErrorRateHigh": "page",
        "LLMErrorBudgetFastBurn": "page",
        "LLMErrorBudgetSlowBurn": "ticket",
        "LLMLatencyBudgetFastBurn": "page",
        "LLMLatencyBudgetSlowBurn": "ticket",
        "LLMFaithfulnessLow": "chat",
        "LLMHallucinationRateHigh": "review",
        "LLMCostPerHourHigh": "chat",
        "LLMTokenUsageAboveBaseline": "investigate",
        "LLMJudgeFailing": "chat",
    }


def test_every_alert_is_documented() -> None:
    """Each alert has a `for:`, the routing labels, a description with its value, and a numbered runbook."""
    for name, rule in _alerts().items():
        assert re.fullmatch(r"\d+[mh]", rule["for"]), name
        assert set(rule["labels"]) == {"severity", "route", "family"}, name
        assert "$value" in rule["annotations"]["description"], name
        assert rule["annotations"]["runbook"].startswith("1. ") and "2. " in rule["annotations"]["runbook"], name


def test_recording_rule_names_follow_level_metric_operations() -> None:
    """Recorded names are level:metric:operations, and the metric part names a monitor metric."""
    for group in build_rules()["groups"]:
        for rule in group["rules"]:
            if "record" in rule:
                level, metric, operations = rule["record"].split(":")
                assert level and operations and metric.startswith("llm_") and not metric.endswith("_total"), rule[
                    "record"
                ]


# --- configuration and CLI ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        pytest.param({"error_rate": -0.1}, "error_rate must be > 0", id="negative-threshold"),
        pytest.param({"cost_per_hour": 0}, "cost_per_hour must be > 0", id="zero-threshold"),
        pytest.param({"min_requests": -1}, "min_requests must be >= 0", id="negative-guard"),
        pytest.param({"min_requests": 2.5}, "min_requests must be an integer", id="fractional-count"),
        pytest.param({"min_slo_requests": -50}, "min_slo_requests must be >= 0", id="negative-slo-guard"),
        pytest.param({"min_slo_requests": 49.5}, "min_slo_requests must be an integer", id="fractional-slo-guard"),
        pytest.param({"slo_target": 1.0}, "slo_target must be a fraction strictly between 0 and 1", id="target-one"),
        pytest.param({"latency_slo_target": 0}, "latency_slo_target must be > 0", id="target-zero"),
        pytest.param({"hallucination_rate": 5}, "hallucination_rate must be a fraction", id="rate-as-percent"),
        pytest.param({"p99_latency_seconds": "10s"}, "p99_latency_seconds must be a finite number", id="string-number"),
        pytest.param({"p99_latency_seconds": True}, "p99_latency_seconds must be a finite number", id="bool-number"),
        pytest.param({"slo_ticket_alerts": "yes"}, "slo_ticket_alerts must be true or false", id="string-bool"),
        pytest.param({"p99_latency_seconds": 120}, "below the top finite latency bucket", id="p99-beyond-buckets"),
        pytest.param({"latency_slo_seconds": 9}, "must be a latency bucket boundary", id="slo-threshold-not-a-bucket"),
        pytest.param({"min_faithfulness": 6}, "min_faithfulness must be in (1, 5]", id="faithfulness-off-scale"),
        pytest.param({"token_baseline_factor": 0.5}, "token_baseline_factor must be > 1", id="factor-below-one"),
        pytest.param(
            {"error_rat": 0.1}, "unknown alert setting 'error_rat' (did you mean 'error_rate'?)", id="unknown-key"
        ),
    ],
)
def test_invalid_settings_are_rejected_clearly(overrides: dict[str, Any], message: str) -> None:
    """Bad settings raise ValueError naming the setting and the rule it breaks."""
    with pytest.raises(ValueError) as raised:
        AlertConfig.from_mapping(overrides)
    assert message in str(raised.value)


@pytest.mark.parametrize(
    ("filename", "text"),
    [
        pytest.param("alerts.yaml", "error-rate: 0.05\nslo_target: 0.995\nslo_ticket_alerts: false\n", id="yaml"),
        pytest.param(
            "alerts.json", json.dumps({"error_rate": 5e-2, "slo_target": 0.995, "slo_ticket_alerts": False}), id="json"
        ),
    ],
)
def test_load_config_reads_yaml_and_json(tmp_path: Path, filename: str, text: str) -> None:
    """A file of overrides gives those values and defaults elsewhere."""
    path = tmp_path / filename
    path.write_text(text)
    assert load_config(path) == AlertConfig(error_rate=0.05, slo_target=0.995, slo_ticket_alerts=False)


def test_load_config_names_the_file_in_errors(tmp_path: Path) -> None:
    """A bad file's error message says which file and what is wrong with it."""
    path = tmp_path / "alerts.yaml"
    path.write_text("- not a mapping\n")
    with pytest.raises(ValueError, match=r"alerts\.yaml: alert configuration must be a mapping"):
        load_config(path)


def _cli(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="llmmonitor")
    add_cli(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def test_cli_flags_override_the_config_file(tmp_path: Path) -> None:
    """`llmmonitor rules --config F --flag X --out P`: defaults, then the file, then flags."""
    config_file = tmp_path / "alerts.yaml"
    config_file.write_text("error_rate: 0.05\ncost_per_hour: 80\n")
    out = tmp_path / "rules.yml"
    args = _cli(
        ["rules", "--config", str(config_file), "--cost-per-hour", "120", "--no-slo-ticket-alerts", "--out", str(out)]
    )
    assert args.func(args) == 0
    assert out.read_text() == render_rules(AlertConfig(error_rate=0.05, cost_per_hour=120, slo_ticket_alerts=False))


def test_slo_page_guard_is_a_config_key_and_a_flag(tmp_path: Path) -> None:
    """`min-slo-requests` in the file, then `--min-slo-requests`, set the call guard of both burn pairs of each page."""
    config_file = tmp_path / "alerts.yaml"
    config_file.write_text("min-slo-requests: 200\n")
    assert load_config(config_file) == AlertConfig(min_slo_requests=200)
    out = tmp_path / "rules.yml"
    args = _cli(["rules", "--config", str(config_file), "--min-slo-requests", "300", "--out", str(out)])
    assert args.func(args) == 0
    groups = yaml.safe_load(out.read_text())["groups"]
    expressions = {rule["alert"]: rule["expr"] for group in groups for rule in group["rules"] if "alert" in rule}
    for kind in ("Error", "Latency"):
        assert expressions[f"LLM{kind}BudgetFastBurn"].count(":increase1h >= 300)") == 1
        assert expressions[f"LLM{kind}BudgetFastBurn"].count(":increase6h >= 300)") == 1
        assert ">=" not in expressions[f"LLM{kind}BudgetSlowBurn"]


def test_cli_writes_to_stdout_and_reports_bad_settings(capsys: pytest.CaptureFixture[str]) -> None:
    """Without --out the YAML goes to stdout; a bad setting exits 2 with the reason on stderr."""
    assert run_cli(_cli(["rules", "--p99-latency-seconds", "8"])) == 0
    assert "model:llm_request_duration_seconds:p99_rate5m > 8" in capsys.readouterr().out
    assert run_cli(_cli(["rules", "--slo-target", "1.5"])) == 2
    assert "slo_target must be a fraction strictly between 0 and 1" in capsys.readouterr().err


# --- Alertmanager ----------------------------------------------------------------------------------------------------


def test_amtool_accepts_the_alertmanager_config(amtool: str) -> None:
    """`amtool check-config` validates deploy/alertmanager.yml."""
    result = run_tool(amtool, "check-config", ALERTMANAGER_CONFIG)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.parametrize("alert", [pytest.param(name, id=name) for name in _alerts()])
def test_each_alert_routes_to_its_receiver(amtool: str, alert: str) -> None:
    """`amtool config routes test` sends each generated alert's label set to the receiver of its route."""
    labels = {"alertname": alert, **_alerts()[alert]["labels"], "model": MODEL}
    expected = RECEIVER_BY_ROUTE[labels["route"]]
    result = run_tool(
        amtool,
        "config",
        "routes",
        "test",
        f"--config.file={ALERTMANAGER_CONFIG}",
        f"--verify.receivers={expected}",
        *(f"{key}={value}" for key, value in labels.items()),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == expected


def _matches(matcher: str, labels: dict[str, str]) -> bool:
    name, operator, value = re.fullmatch(r'(\w+)(=~|!~|!=|=)"(.*)"', matcher).groups()
    actual = labels.get(name, "")
    return {
        "=": actual == value,
        "!=": actual != value,
        "=~": bool(re.fullmatch(value, actual)),
        "!~": not re.fullmatch(value, actual),
    }[operator]


def _inhibits(source: dict[str, str], target: dict[str, str]) -> bool:
    """Alertmanager's inhibition semantics over deploy/alertmanager.yml's inhibit_rules."""
    rules = yaml.safe_load(ALERTMANAGER_CONFIG.read_text())["inhibit_rules"]
    return any(
        all(_matches(m, source) for m in rule["source_matchers"])
        and all(_matches(m, target) for m in rule["target_matchers"])
        and all(source.get(label, "") == target.get(label, "") for label in rule["equal"])
        for rule in rules
    )


def test_pages_inhibit_lesser_alerts_of_the_same_family_and_model() -> None:
    """A fast-burn page silences the slow-burn ticket of its SLO, but nothing else."""
    alerts = {name: {"alertname": name, **rule["labels"]} for name, rule in _alerts().items()}
    assert _inhibits(alerts["LLMErrorBudgetFastBurn"], alerts["LLMErrorBudgetSlowBurn"])
    assert _inhibits(alerts["LLMLatencyBudgetFastBurn"], alerts["LLMLatencyBudgetSlowBurn"])
    assert not _inhibits(alerts["LLMErrorBudgetFastBurn"], alerts["LLMLatencyBudgetSlowBurn"])
    assert not _inhibits(alerts["LLMErrorBudgetFastBurn"], alerts["LLMLatencyP99High"])
    assert not _inhibits(alerts["LLMLatencyP99High"], alerts["LLMCostPerHourHigh"])
    assert not _inhibits(alerts["LLMErrorBudgetFastBurn"], alerts["LLMHallucinationRateHigh"])


# --- locating the tools ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ci", "outcome"),
    [
        pytest.param("true", pytest.fail.Exception, id="ci-fails"),
        pytest.param("", pytest.skip.Exception, id="local-skips"),
    ],
)
def test_missing_tool_fails_in_ci_and_skips_locally(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, ci: str, outcome: type[BaseException]
) -> None:
    """A missing promtool must not silently skip the rule tests in CI."""
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("PROMTOOL", raising=False)
    monkeypatch.setenv("CI", ci)
    with pytest.raises(outcome):
        require_binary("promtool")
