"""Prometheus recording and alerting rules for the monitor's metrics, generated from one set of thresholds.

The rules are generated rather than shipped as a fixed file because each threshold appears in several places (the
expression, the description, SLO burn factors, the dashboard's threshold lines) and must change everywhere at once.

Every alert carries three routing labels: `severity` (critical / warning / info, for existing Alertmanager setups),
`route` (page, chat, ticket, review, investigate: the channel in `deploy/alertmanager.yml`) and `family` (errors,
latency, quality, cost, judge: lets a page inhibit lesser alerts about the same problem).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from ..core.settings import from_mapping
from ..telemetry.metrics import LATENCY_BUCKETS

SEVERITY_BY_ROUTE = {
    "page": "critical",
    "chat": "warning",
    "ticket": "warning",
    "review": "info",
    "investigate": "info",
}

FINITE_LATENCY_BUCKETS = tuple(bound for bound in LATENCY_BUCKETS if math.isfinite(bound))

# Google SRE workbook, "Alerting on SLOs", for a 30-day SLO period: (long window, short window, burn factor).
PAGE_BURNS = (("1h", "5m", 14.4), ("6h", "30m", 6.0))
TICKET_BURNS = (("1d", "2h", 3.0), ("3d", "6h", 1.0))

_COMPLETED_REQUESTS = 'llm_requests_total{status=~"success|error"}'  # cancelled calls are neither good nor bad
_FAILED_REQUESTS = 'llm_requests_total{status="error"}'


def _setting(default: Any, help_text: str) -> Any:
    return field(default=default, metadata={"help": help_text})


@dataclass(frozen=True, kw_only=True)
class AlertConfig:
    """Thresholds, volume guards and SLO targets for the generated rules (defaults: the alert table in DESIGN.md)."""

    p99_latency_seconds: float = _setting(10.0, "page when a model's p99 LLM latency over 5m exceeds this (seconds)")
    error_rate: float = _setting(0.02, "page when a model's share of failed LLM calls over 5m exceeds this")
    min_faithfulness: float = _setting(3.5, "chat when average faithfulness (1-5, random sample, 1h) drops below this")
    hallucination_rate: float = _setting(0.05, "review when the hallucination share (random sample, 1h) exceeds this")
    cost_per_hour: float = _setting(50.0, "chat when LLM spend over the last hour exceeds this many USD")
    token_baseline_factor: float = _setting(
        3.0, "investigate when a model's hourly token rate exceeds this multiple of its 7-day average"
    )
    judge_error_rate: float = _setting(0.25, "chat when the share of failed judge evaluations over 1h exceeds this")
    min_requests: int = _setting(20, "volume guard: LLM calls per model in 5m before error rate and p99 may alert")
    min_slo_requests: int = _setting(
        50, "volume guard: LLM calls per job in a fast-burn page's long window (1h, 6h) before an SLO burn may page"
    )
    min_judged_samples: int = _setting(
        20, "volume guard: judged samples (or judge evaluations) in 1h before quality ratios may alert"
    )
    min_tokens_per_hour: float = _setting(
        10_000.0, "volume guard: tokens per hour before a model's token spike may alert"
    )
    slo_target: float = _setting(0.99, "availability SLO over 30 days: share of completed LLM calls that succeed")
    latency_slo_target: float = _setting(
        0.99, "latency SLO over 30 days: share of LLM calls faster than --latency-slo-seconds"
    )
    latency_slo_seconds: float = _setting(
        10.0, "latency SLO threshold in seconds; must be a bucket boundary of llm_request_duration_seconds"
    )
    slo_ticket_alerts: bool = _setting(True, "also emit the slow-burn SLO alerts (1d/2h at 3x, 3d/6h at 1x) as tickets")
    pending_scale: float = _setting(
        1.0, "multiply every alert's `for:` duration by this (below 1 only for demos and end-to-end tests)"
    )

    def __post_init__(self) -> None:
        problems = _problems(self)
        if problems:
            raise ValueError("invalid alert configuration: " + "; ".join(problems))

    @classmethod
    def from_mapping(cls, overrides: Mapping[str, Any], *, base: AlertConfig | None = None) -> AlertConfig:
        """`base` (or the defaults) with `overrides` applied; keys may use dashes or underscores."""
        return from_mapping(cls, overrides, base=base, what="alert")


_FRACTIONS = ("error_rate", "hallucination_rate", "judge_error_rate", "slo_target", "latency_slo_target")
_GUARDS = ("min_requests", "min_slo_requests", "min_judged_samples", "min_tokens_per_hour")


def _problems(config: AlertConfig) -> list[str]:
    problems = []
    for spec in dataclasses.fields(config):
        value = getattr(config, spec.name)
        if isinstance(spec.default, bool):
            if not isinstance(value, bool):
                problems.append(f"{spec.name} must be true or false, got {value!r}")
        elif isinstance(spec.default, int) and (isinstance(value, bool) or not isinstance(value, int)):
            problems.append(f"{spec.name} must be an integer, got {value!r}")
        elif isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            problems.append(f"{spec.name} must be a finite number, got {value!r}")
        elif spec.name in _GUARDS and value < 0:
            problems.append(f"{spec.name} must be >= 0, got {value!r}")
        elif spec.name not in _GUARDS and value <= 0:
            problems.append(f"{spec.name} must be > 0, got {value!r}")
        elif spec.name in _FRACTIONS and not value < 1:
            problems.append(f"{spec.name} must be a fraction strictly between 0 and 1, got {value!r}")
    if problems:
        return problems
    if not 1 < config.min_faithfulness <= 5:
        problems.append(f"min_faithfulness must be in (1, 5] (scores are 1-5), got {config.min_faithfulness!r}")
    if config.token_baseline_factor <= 1:
        problems.append(f"token_baseline_factor must be > 1, got {config.token_baseline_factor!r}")
    if config.p99_latency_seconds >= FINITE_LATENCY_BUCKETS[-1]:
        problems.append(
            f"p99_latency_seconds must be below the top finite latency bucket ({FINITE_LATENCY_BUCKETS[-1]:g}s): "
            "histogram_quantile never reports more, so the alert could not fire"
        )
    if config.latency_slo_seconds not in FINITE_LATENCY_BUCKETS:
        bounds = ", ".join(f"{bound:g}" for bound in FINITE_LATENCY_BUCKETS)
        problems.append(
            f"latency_slo_seconds must be a latency bucket boundary ({bounds}), got {config.latency_slo_seconds!r}"
        )
    return problems


def load_config(path: str | Path) -> AlertConfig:
    """Defaults overridden by a YAML or JSON file of `setting: value` pairs (`.json` files are read as JSON)."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as error:
        raise ValueError(
            f"{path}: not valid {'JSON' if path.suffix.lower() == '.json' else 'YAML'}: {error}"
        ) from error
    try:
        return AlertConfig.from_mapping(data or {})
    except (TypeError, ValueError) as error:
        raise ValueError(f"{path}: {error}") from error


# --- PromQL and text building blocks -------------------------------------------------------------------------------


def _number(value: float) -> str:
    return f"{value:.12g}"


def _percent(fraction: float) -> str:
    return f"{fraction * 100:.4g}%"


def _ratio(bad: str, total: str, *, by: str, window: str) -> str:
    """Share of `bad` in `total`; groups with no `bad` series read 0 instead of vanishing from graphs."""
    return (
        f"(sum by ({by}) (rate({bad}[{window}])) or sum by ({by}) (rate({total}[{window}])) * 0)\n"
        f"/ sum by ({by}) (rate({total}[{window}]))"
    )


def le_matcher(bound: float) -> str:
    """Matches a bucket boundary however the client formatted it (prometheus_client writes 10 as "10.0")."""
    return f'le=~"{bound:g}|{float(bound)!r}"' if float(bound).is_integer() else f'le="{bound!r}"'


def _record(name: str, expr: str) -> dict[str, Any]:
    return {"record": name, "expr": expr}


def _alert(
    name: str, expr: str, *, for_: str, route: str, family: str, summary: str, description: str, runbook: str
) -> dict[str, Any]:
    return {
        "alert": name,
        "expr": expr,
        "for": for_,
        "labels": {"severity": SEVERITY_BY_ROUTE[route], "route": route, "family": family},
        "annotations": {"summary": summary, "description": description, "runbook": runbook},
    }


def _burn_condition(
    ratio_rule: str, budget: float, burns: tuple[tuple[str, str, float], ...], *, volume_rule: str = "", guard: int = 0
) -> str:
    """Multi-window burn rate: the long window (significant) and short one (still burning) both exceed the factor.

    With a `volume_rule`, each pair also needs `guard` calls in its long window, so a few calls cannot page.
    """
    return "\nor\n".join(
        f"({ratio_rule}{long} > {_number(factor * budget)} and {ratio_rule}{short} > {_number(factor * budget)}"
        + (f" and on (job) {volume_rule}{long} >= {guard}" if volume_rule else "")
        + ")"
        for long, short, factor in burns
    )


# --- Rule groups ---------------------------------------------------------------------------------------------------


def _requests_group(config: AlertConfig) -> dict[str, Any]:
    p99, guard = config.p99_latency_seconds, config.min_requests
    return {
        "name": "llmmonitor.requests",
        "rules": [
            _record("model:llm_requests:increase5m", f"sum by (model) (increase({_COMPLETED_REQUESTS}[5m]))"),
            _record(
                "model:llm_requests:error_ratio_rate5m",
                _ratio(_FAILED_REQUESTS, _COMPLETED_REQUESTS, by="model", window="5m"),
            ),
            _record(
                "model:llm_request_duration_seconds_count:increase5m",
                "sum by (model) (increase(llm_request_duration_seconds_count[5m]))",
            ),
            _record(
                "model:llm_request_duration_seconds:p99_rate5m",
                "histogram_quantile(0.99, sum by (model, le) (rate(llm_request_duration_seconds_bucket[5m])))",
            ),
            _alert(
                "LLMLatencyP99High",
                f"model:llm_request_duration_seconds:p99_rate5m > {_number(p99)}\n"
                f"and on (model) model:llm_request_duration_seconds_count:increase5m >= {guard}",
                for_="10m",
                route="page",
                family="latency",
                summary=f"LLM p99 latency above {p99:g}s for {{{{ $labels.model }}}}",
                description=(
                    "p99 latency of {{ $labels.model }} is {{ $value | humanizeDuration }} over the last 5 minutes "
                    f"(threshold {p99:g}s, at least {guard} calls)."
                ),
                runbook=(
                    "1. Dashboard, Latency row: one model or all? Compare time to first token with total latency "
                    "(slow provider vs longer outputs). 2. Traffic and errors row: "
                    "timeouts and rate limits by error_type; "
                    "check the provider's status page. 3. Tokens row: completion tokens per call up after a prompt or "
                    "model change? 4. Mitigate: fail over to a fallback model, cap max_tokens, or shed load."
                ),
            ),
            _alert(
                "LLMErrorRateHigh",
                f"model:llm_requests:error_ratio_rate5m > {_number(config.error_rate)}\n"
                f"and on (model) model:llm_requests:increase5m >= {guard}",
                for_="10m",
                route="page",
                family="errors",
                summary=f"LLM error rate above {_percent(config.error_rate)} for {{{{ $labels.model }}}}",
                description=(
                    "{{ $value | humanizePercentage }} of LLM calls to {{ $labels.model }} failed over the last "
                    f"5 minutes (threshold {_percent(config.error_rate)}, at least {guard} calls)."
                ),
                runbook=(
                    "1. Dashboard, Traffic and errors row: errors by error_type (rate limit, auth, timeout, 5xx). "
                    "2. Logs: llm_call events with an error field for this model give the provider's message. "
                    "3. Rate limits: lower concurrency or raise the quota; auth: check key rotation; timeouts and 5xx: "
                    "provider status page. 4. Mitigate: switch traffic to the fallback model."
                ),
            ),
        ],
    }


def _slo_windows(config: AlertConfig) -> list[str]:
    burns = PAGE_BURNS + (TICKET_BURNS if config.slo_ticket_alerts else ())
    windows = {window for long, short, _ in burns for window in (long, short)}
    return sorted(windows, key=_seconds)


def _seconds(window: str) -> int:
    return int(window[:-1]) * {"m": 60, "h": 3600, "d": 86400}[window[-1]]


def _slo_group(config: AlertConfig) -> dict[str, Any]:
    return {"name": "llmmonitor.slo", "rules": _slo_ratio_records(config) + _slo_burn_alerts(config)}


def _slo_ratio_records(config: AlertConfig) -> list[dict[str, Any]]:
    """Bad-call ratios per job for every window a burn alert reads, so the alerts compare precomputed series, then
    call counts per job over the pages' long windows, which their volume guard reads."""
    fast_bucket = f"llm_request_duration_seconds_bucket{{{le_matcher(config.latency_slo_seconds)}}}"
    rules: list[dict[str, Any]] = []
    for window in _slo_windows(config):
        rules.append(
            _record(
                f"job:llm_requests:error_ratio_rate{window}",
                _ratio(_FAILED_REQUESTS, _COMPLETED_REQUESTS, by="job", window=window),
            )
        )
        rules.append(
            _record(
                f"job:llm_request_duration_seconds:slow_ratio_rate{window}",
                f"1 - sum by (job) (rate({fast_bucket}[{window}]))\n"
                f"/ sum by (job) (rate(llm_request_duration_seconds_count[{window}]))",
            )
        )
    for window in sorted({long for long, _, _ in PAGE_BURNS}, key=_seconds):
        rules.append(
            _record(f"job:llm_requests:increase{window}", f"sum by (job) (increase({_COMPLETED_REQUESTS}[{window}]))")
        )
        rules.append(
            _record(
                f"job:llm_request_duration_seconds_count:increase{window}",
                f"sum by (job) (increase(llm_request_duration_seconds_count[{window}]))",
            )
        )
    return rules


class _Slo(NamedTuple):
    """What the burn-rate alerts of one SLO read and say."""

    kind: str
    family: str
    ratio_rule: str  # bad-call ratio per job, the window appended
    volume_rule: str  # calls per job, the window appended: what the pages' volume guard counts
    target: float
    bad: str  # what a bad call did
    per_model_rule: str
    sibling_alert: str


def _slos(config: AlertConfig) -> tuple[_Slo, ...]:
    return (
        _Slo(
            kind="Error",
            family="errors",
            ratio_rule="job:llm_requests:error_ratio_rate",
            volume_rule="job:llm_requests:increase",
            target=config.slo_target,
            bad="failed",
            per_model_rule="model:llm_requests:error_ratio_rate5m",
            sibling_alert="LLMErrorRateHigh",
        ),
        _Slo(
            kind="Latency",
            family="latency",
            ratio_rule="job:llm_request_duration_seconds:slow_ratio_rate",
            volume_rule="job:llm_request_duration_seconds_count:increase",
            target=config.latency_slo_target,
            bad=f"took longer than {config.latency_slo_seconds:g}s",
            per_model_rule="model:llm_request_duration_seconds:p99_rate5m",
            sibling_alert="LLMLatencyP99High",
        ),
    )


def _slo_burn_alerts(config: AlertConfig) -> list[dict[str, Any]]:
    """Fast-burn pages (and slow-burn tickets) for each SLO, sharing one runbook that points at the per-model alert.

    Pages also need `min_slo_requests` calls in the long window: in a quiet hour one failure is a 14.4x burn.
    """
    rules: list[dict[str, Any]] = []
    guard = config.min_slo_requests
    for slo in _slos(config):
        budget = 1 - slo.target
        terms = f"SLO {_percent(slo.target)} over 30 days, error budget {_percent(budget)}"
        runbook = (
            f"1. Find the model: {slo.per_model_rule} in Prometheus, or the dashboard's {slo.family} panels. "
            f"2. Follow the runbook of {slo.sibling_alert}. "
            "3. While the budget burns, hold risky deploys (prompt, model, retrieval changes)."
        )
        rules.append(
            _alert(
                f"LLM{slo.kind}BudgetFastBurn",
                _burn_condition(slo.ratio_rule, budget, PAGE_BURNS, volume_rule=slo.volume_rule, guard=guard),
                for_="2m",
                route="page",
                family=slo.family,
                summary=f"LLM {slo.family} SLO budget burning fast ({{{{ $labels.job }}}})",
                description=(
                    f"{{{{ $value | humanizePercentage }}}} of LLM calls {slo.bad} over the last 1h or 6h ({terms}, "
                    f"at least {guard} calls in the window): at 14.4x "
                    "the 30-day budget lasts about 2 days, at 6x about 5 days."
                ),
                runbook=runbook,
            )
        )
        if config.slo_ticket_alerts:
            rules.append(
                _alert(
                    f"LLM{slo.kind}BudgetSlowBurn",
                    _burn_condition(slo.ratio_rule, budget, TICKET_BURNS),
                    for_="15m",
                    route="ticket",
                    family=slo.family,
                    summary=f"LLM {slo.family} SLO budget burning steadily ({{{{ $labels.job }}}})",
                    description=(
                        f"{{{{ $value | humanizePercentage }}}} of LLM calls {slo.bad} over the last 1d or 3d "
                        f"({terms}): the budget runs out before the 30-day window ends."
                    ),
                    runbook=runbook,
                )
            )
    return rules


def _spend_group(config: AlertConfig) -> dict[str, Any]:
    factor = config.token_baseline_factor
    return {
        "name": "llmmonitor.spend",
        "rules": [
            _record("model:llm_tokens:rate1h", "sum by (model) (rate(llm_tokens_total[1h]))"),
            _record("model:llm_tokens:rate1h_avg_over_time7d", "avg_over_time(model:llm_tokens:rate1h[7d])"),
            _record("model:llm_cost_usd:rate1h", "sum by (model) (rate(llm_cost_usd_total[1h]))"),
            _alert(
                "LLMCostPerHourHigh",
                f"sum(model:llm_cost_usd:rate1h) * 3600 > {_number(config.cost_per_hour)}",
                for_="15m",
                route="chat",
                family="cost",
                summary=f"LLM spend above ${config.cost_per_hour:g}/h",
                description=(
                    'LLM spend over the last hour is ${{ $value | printf "%.2f" }} (threshold '
                    f"${config.cost_per_hour:g}/h; models missing from the price table are not included)."
                ),
                runbook=(
                    "1. Dashboard, Tokens and cost row: which model, prompt or completion tokens? "
                    "2. More calls (a retry "
                    "loop, a batch job, abuse) or more tokens per call (longer context, more retrieved documents)? "
                    "3. Mitigate: rate-limit the caller, cap max_tokens, route to a cheaper model."
                ),
            ),
            _alert(
                "LLMTokenUsageAboveBaseline",
                f"model:llm_tokens:rate1h / model:llm_tokens:rate1h_avg_over_time7d > {_number(factor)}\n"
                f"and on (model) model:llm_tokens:rate1h * 3600 >= {_number(config.min_tokens_per_hour)}\n"
                # A model seen for less than a day has no baseline yet, only its own ramp-up.
                "and on (model) model:llm_tokens:rate1h_avg_over_time7d offset 1d",
                for_="30m",
                route="investigate",
                family="cost",
                summary=f"Token usage of {{{{ $labels.model }}}} above {factor:g}x its 7-day baseline",
                description=(
                    'Token usage of {{ $labels.model }} over the last hour is {{ $value | printf "%.1f" }}x its 7-day '
                    f"average (threshold {factor:g}x)."
                ),
                runbook=(
                    "1. Dashboard, Tokens and cost row, tokens by type: prompt growth points at context (retrieved "
                    "documents, chat history), completion growth at the prompt or the model. 2. Calls per second: more "
                    "traffic or a retry loop (errors by type)? 3. Check the last deploy and any new caller."
                ),
            ),
        ],
    }


def _quality_group(config: AlertConfig) -> dict[str, Any]:
    return {
        "name": "llmmonitor.quality",
        "rules": [
            *_quality_records(),
            _faithfulness_alert(config),
            _hallucination_alert(config),
            _judge_failing_alert(config),
        ],
    }


def _quality_records() -> list[dict[str, Any]]:
    """Hourly judge aggregates with their sample counts, so each quality alert can also check its volume guard."""
    random_scores = 'sampling="random"'
    return [
        _record(
            "criterion_judge:llm_quality_score_count:increase1h",
            f"sum by (criterion, judge) (increase(llm_quality_score_count{{{random_scores}}}[1h]))",
        ),
        _record(
            "criterion_judge:llm_quality_score:mean1h",
            f"sum by (criterion, judge) (rate(llm_quality_score_sum{{{random_scores}}}[1h]))\n"
            f"/ sum by (criterion, judge) (rate(llm_quality_score_count{{{random_scores}}}[1h]))",
        ),
        _record(
            "judge:llm_quality_hallucination_verdicts:increase1h",
            f"sum by (judge) (increase(llm_quality_hallucination_verdicts_total{{{random_scores}}}[1h]))",
        ),
        _record(
            "judge:llm_quality_hallucination_verdicts:yes_ratio_rate1h",
            _ratio(
                f'llm_quality_hallucination_verdicts_total{{{random_scores},verdict="yes"}}',
                f"llm_quality_hallucination_verdicts_total{{{random_scores}}}",
                by="judge",
                window="1h",
            ),
        ),
        _record(
            "judge:llm_judge_evaluations:increase1h",
            'sum by (judge) (increase(llm_judge_evaluations_total{status=~"success|error"}[1h]))',
        ),
        _record(
            "judge:llm_judge_evaluations:error_ratio_rate1h",
            _ratio(
                'llm_judge_evaluations_total{status="error"}',
                'llm_judge_evaluations_total{status=~"success|error"}',
                by="judge",
                window="1h",
            ),
        ),
    ]


def _faithfulness_alert(config: AlertConfig) -> dict[str, Any]:
    """Average faithfulness of the random sample, the score that drops first when answers lose their grounding."""
    guard = config.min_judged_samples
    return _alert(
        "LLMFaithfulnessLow",
        'criterion_judge:llm_quality_score:mean1h{criterion="faithfulness"} < '
        f"{_number(config.min_faithfulness)}\n"
        f"and on (criterion, judge) criterion_judge:llm_quality_score_count:increase1h >= {guard}",
        for_="15m",
        route="chat",
        family="quality",
        summary=f"Average faithfulness below {config.min_faithfulness:g} ({{{{ $labels.judge }}}})",
        description=(
            'Average faithfulness judged by {{ $labels.judge }} is {{ $value | printf "%.2f" }} over the last '
            f"hour (threshold {config.min_faithfulness:g}, random sample, at least {guard} judged)."
        ),
        runbook=(
            "1. Dashboard, Quality row: did relevance and completeness drop too (an app change) or only "
            "faithfulness (grounding)? 2. Retrieval row: fewer documents or retriever errors leave answers "
            "ungrounded. 3. In LangSmith, open the lowest faithfulness scores of the last hour "
            "and read context "
            "against answer. 4. Check recent prompt, model and index changes; a judge change appears as a new "
            "judge label, not as a drop."
        ),
    )


def _hallucination_alert(config: AlertConfig) -> dict[str, Any]:
    """Hallucination share of the random sample; goes to review, as only reading the answers tells judge mistakes apart."""
    guard = config.min_judged_samples
    return _alert(
        "LLMHallucinationRateHigh",
        f"judge:llm_quality_hallucination_verdicts:yes_ratio_rate1h > {_number(config.hallucination_rate)}\n"
        f"and on (judge) judge:llm_quality_hallucination_verdicts:increase1h >= {guard}",
        for_="15m",
        route="review",
        family="quality",
        summary=f"Hallucination rate above {_percent(config.hallucination_rate)} ({{{{ $labels.judge }}}})",
        description=(
            "{{ $value | humanizePercentage }} of randomly sampled answers judged by {{ $labels.judge }} were "
            f"hallucinations over the last hour (threshold {_percent(config.hallucination_rate)}, at least "
            f"{guard} judged)."
        ),
        runbook=(
            "1. In LangSmith, filter the last hour's runs with hallucination feedback and review a handful by "
            "hand: real hallucinations or judge mistakes? "
            "2. Real: check retrieval (empty or off-topic context) "
            "and recent prompt or model changes. 3. Judge mistakes: pin the previous judge prompt version and "
            "keep the examples for the judge's evaluation set."
        ),
    )


def _judge_failing_alert(config: AlertConfig) -> dict[str, Any]:
    """Failed judge evaluations: a failing judge stores no scores, so the other quality alerts would just go quiet."""
    guard = config.min_judged_samples
    return _alert(
        "LLMJudgeFailing",
        f"judge:llm_judge_evaluations:error_ratio_rate1h > {_number(config.judge_error_rate)}\n"
        f"and on (judge) judge:llm_judge_evaluations:increase1h >= {guard}",
        for_="15m",
        route="chat",
        family="judge",
        summary=f"Judge {{{{ $labels.judge }}}} failing over {_percent(config.judge_error_rate)} of the time",
        description=(
            "{{ $value | humanizePercentage }} of evaluations by {{ $labels.judge }} failed over the last hour "
            f"(threshold {_percent(config.judge_error_rate)}); quality alerts go blind while the judge fails."
        ),
        runbook=(
            "1. Dashboard, Judge health row: errors by error_type. "
            "2. rate_limit or api: the judge's key, quota "
            "and provider status; timeout: raise the judge timeout or lower its concurrency; parse or refusal: "
            "the judge model changed behaviour, pin its version. 3. Failed evaluations are stored as missing, "
            "never as scores: expect gaps, not a drop, in quality graphs."
        ),
    )


def build_rules(config: AlertConfig | None = None) -> dict[str, Any]:
    """The rules file as a Prometheus `groups:` structure."""
    config = config or AlertConfig()
    groups = [_requests_group(config), _slo_group(config), _spend_group(config), _quality_group(config)]
    if config.pending_scale != 1:
        for group in groups:
            for rule in group["rules"]:
                if "for" in rule:
                    rule["for"] = _scaled_duration(rule["for"], config.pending_scale)
    return {"groups": groups}


def _scaled_duration(window: str, factor: float) -> str:
    """`window` times `factor` as a Prometheus duration, in the largest unit that keeps it exact to the millisecond."""
    milliseconds = round(_seconds(window) * factor * 1000)
    for unit, size in (("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if milliseconds % size == 0:
            return f"{milliseconds // size}{unit}"
    return f"{milliseconds}ms"


class _RulesDumper(yaml.SafeDumper):
    """Writes multi-line PromQL as `|` blocks so the file stays readable."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)


_RulesDumper.add_representer(str, _represent_str)


def _setting_text(value: float | bool) -> str:
    return str(value).lower() if isinstance(value, bool) else f"{value:.12g}"


def render_rules(config: AlertConfig | None = None) -> str:
    """The rules file as YAML text, headed by the settings that produced it."""
    config = config or AlertConfig()
    settings = ", ".join(f"{f.name}={_setting_text(getattr(config, f.name))}" for f in dataclasses.fields(config))
    header = f"# Generated by `llmmonitor rules` (langchain-llmmonitor). Settings: {settings}\n"
    return header + yaml.dump(build_rules(config), Dumper=_RulesDumper, sort_keys=False, width=120, allow_unicode=True)


# --- CLI -------------------------------------------------------------------------------------------------------------


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """`--config FILE` plus one flag per `AlertConfig` setting; unset flags leave the file's or default value."""
    parser.add_argument(
        "--config", type=Path, metavar="FILE", help="YAML or JSON file of alert settings (flags override it)"
    )
    for spec in dataclasses.fields(AlertConfig):
        flag = "--" + spec.name.replace("_", "-")
        help_text = f"{spec.metadata['help']} (default: {spec.default!r})"
        if isinstance(spec.default, bool):
            parser.add_argument(
                flag, dest=spec.name, action=argparse.BooleanOptionalAction, default=None, help=help_text
            )
        else:
            kind = int if isinstance(spec.default, int) else float
            parser.add_argument(flag, dest=spec.name, type=kind, default=None, metavar="X", help=help_text)


def config_from_args(args: argparse.Namespace) -> AlertConfig:
    """Defaults, then `--config`, then individual flags."""
    config = load_config(args.config) if args.config else AlertConfig()
    flags = {
        f.name: getattr(args, f.name)
        for f in dataclasses.fields(AlertConfig)
        if getattr(args, f.name, None) is not None
    }
    return AlertConfig.from_mapping(flags, base=config)


def add_cli(subparsers: Any) -> argparse.ArgumentParser:
    """Register `llmmonitor rules`; the parser's default `func` is `run_cli`."""
    parser = subparsers.add_parser(
        "rules",
        help="write Prometheus recording and alerting rules",
        description="Write the Prometheus recording and alerting rules for the monitor's metrics.",
    )
    parser.add_argument("--out", type=Path, metavar="PATH", help="write to PATH instead of stdout")
    add_config_arguments(parser)
    parser.set_defaults(func=run_cli)
    return parser


def run_cli(args: argparse.Namespace) -> int:
    """Write the rules; 2 on a configuration error, reported on stderr."""
    try:
        text = render_rules(config_from_args(args))
    except (OSError, ValueError) as error:
        print(f"llmmonitor rules: error: {error}", file=sys.stderr)
        return 2
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0
