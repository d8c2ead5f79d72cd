"""How a `MetricsSnapshot` reads: the same rows as aligned text (`print`, IPython's plain view) and as compact HTML
tables (Jupyter). Model, chain, judge and reason names are label values that applications and their chains choose, so
the HTML escapes every one of them."""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .snapshot import Latency, MetricsSnapshot

ESTIMATE_NOTE = "Percentiles are estimated from histogram buckets (linear within a bucket, like histogram_quantile)."
MODEL_COLUMNS = ("model", "calls", "errors", "error_rate", "latency_p50", "latency_p95", "latency_p99", "ttft_p50",
                 "prompt_tokens", "completion_tokens", "cost_usd", "unpriced_calls")  # fmt: skip
_STYLE = (
    ".llmmonitor-snapshot table { border-collapse: collapse; margin: 0.2rem 0 0.6rem; font-size: 0.9em; }"
    ".llmmonitor-snapshot caption { text-align: left; font-weight: 600; padding-bottom: 0.2rem; }"
    ".llmmonitor-snapshot th, .llmmonitor-snapshot td { padding: 0.15rem 0.7rem 0.15rem 0; text-align: left;"
    " border-bottom: 1px solid #e5e5e5; vertical-align: top; }"
    ".llmmonitor-snapshot .note { color: #666; font-size: 0.85em; margin: 0; }"
)


def summary_rows(snapshot: MetricsSnapshot) -> list[tuple[str, str]]:
    """(what, value) lines of the totals, the ones an on-call engineer looks at first."""
    s = snapshot
    rows = [
        ("LLM calls", _counts(s.llm_calls)),
        ("LLM error rate", _share(s.llm_error_rate)),
        ("Invocations", _counts(s.invocations)),
        ("Invocation error rate", _share(s.invocation_error_rate)),
        ("LLM latency p50 / p95 / p99", _percentiles(s.llm_latency)),
    ]
    if s.time_to_first_token.count:
        rows.append(("Time to first token p50 / p95 / p99", _percentiles(s.time_to_first_token)))
    unpriced = f" (+{s.unpriced_calls:,} calls without a price)" if s.unpriced_calls else ""
    rows += [
        ("Invocation latency p50 / p95 / p99", _percentiles(s.invocation_latency)),
        ("Tokens", _listing(s.tokens) or "0"),
        ("Cost", _money(s.cost_usd) + unpriced),
        ("Judge evaluations", _counts(s.judge_evaluations)),
        ("Mean scores (random samples)", _listing(s.mean_scores, _score) or "–"),
        ("Hallucination rate (random samples)", _share(s.hallucination_rate)),
        ("Traces sampled for judging", _counts(s.quality_samples)),
        ("User feedback", _counts(s.user_feedback)),
        ("In flight", f"{s.active_requests:,} LLM calls · {s.judge_queue_depth:,} evaluations queued"),
        ("Dropped", _listing(s.dropped) or "none"),
    ]
    if s.outbox_pending is not None:
        rows.append(("Feedback waiting for LangSmith", f"{s.outbox_pending:,}"))
    return rows


def model_rows(snapshot: MetricsSnapshot) -> list[dict[str, Any]]:
    """One row per model, as numbers (None when unknown): what `MetricsSnapshot.to_frame` tabulates."""
    return [
        dict(
            model=m.model,
            calls=m.total,
            errors=m.calls.get("error", 0),
            error_rate=m.error_rate,
            latency_p50=m.latency.p50,
            latency_p95=m.latency.p95,
            latency_p99=m.latency.p99,
            ttft_p50=m.time_to_first_token.p50,
            prompt_tokens=m.tokens.get("prompt", 0),
            completion_tokens=m.tokens.get("completion", 0),
            cost_usd=m.cost_usd,
            unpriced_calls=m.unpriced_calls,
        )
        for m in snapshot.models
    ]


def to_text(snapshot: MetricsSnapshot) -> str:
    rows = summary_rows(snapshot)
    width = max(len(what) for what, _ in rows)
    lines = [f"Monitor snapshot at {snapshot.taken_at:%Y-%m-%d %H:%M:%S} UTC (this process)"]
    lines += [f"{what:<{width}}  {value}" for what, value in rows]
    return "\n".join([*lines, ESTIMATE_NOTE])


def to_html(snapshot: MetricsSnapshot) -> str:
    """The totals, then one table per model, invocation name and judge: compact, self-contained, names escaped."""
    caption = f"Monitor snapshot at {snapshot.taken_at:%Y-%m-%d %H:%M:%S} UTC (this process)"
    tables = [_table(caption, (), summary_rows(snapshot), row_headers=True)]
    tables += [table for table in (_models(snapshot), _chains(snapshot), _judges(snapshot)) if table]
    note = f'<p class="note">{html.escape(ESTIMATE_NOTE)}</p>'
    return f'<div class="llmmonitor-snapshot"><style>{_STYLE}</style>{"".join(tables)}{note}</div>'


def _models(snapshot: MetricsSnapshot) -> str:
    header = ("Model", "Calls", "Error rate", "p50", "p95", "p99", "First token p50", "Tokens", "Cost")
    rows = [
        (
            m.model,
            _counts(m.calls),
            _share(m.error_rate),
            *_each(m.latency),
            _seconds(m.time_to_first_token.p50),
            _listing(m.tokens) or "0",
            _money(m.cost_usd),
        )
        for m in snapshot.models
    ]
    return _table("By model (LLM calls)", header, rows) if rows else ""


def _chains(snapshot: MetricsSnapshot) -> str:
    header = ("Invocation", "Runs", "Error rate", "p50", "p95", "p99")
    rows = [(c.name, _counts(c.runs), _share(c.error_rate), *_each(c.latency)) for c in snapshot.chains]
    return _table("By invocation name (root runs, end to end)", header, rows) if rows else ""


def _judges(snapshot: MetricsSnapshot) -> str:
    header = ("Judge", "Sampling", "Evaluations", "Faithfulness", "Relevance", "Completeness", "Hallucination")
    rows = [
        (q.judge, q.sampling, f"{q.evaluations:,}", *map(_score, q.mean_scores.values()), _share(q.hallucination_rate))
        for q in snapshot.quality
    ]
    return _table("Judge verdicts (mean score 1-5, hallucination share)", header, rows) if rows else ""


def _table(caption: str, header: Sequence[str], rows: Sequence[Sequence[str]], *, row_headers: bool = False) -> str:
    """An HTML table of escaped text; with `row_headers` the first cell of each row is its header."""
    first = "th" if row_headers else "td"
    body = "".join(
        f"<tr><{first}>{html.escape(row[0])}</{first}>"
        + "".join(f"<td>{html.escape(c)}</td>" for c in row[1:])
        + "</tr>"
        for row in rows
    )
    head = (
        "<thead><tr>" + "".join(f"<th>{html.escape(cell)}</th>" for cell in header) + "</tr></thead>" if header else ""
    )
    return f"<table><caption>{html.escape(caption)}</caption>{head}<tbody>{body}</tbody></table>"


def _counts(counts: Mapping[str, int]) -> str:
    """`40 (success 36 · error 4)`."""
    return f"{sum(counts.values()):,} ({_listing(counts)})" if counts else "0"


def _listing(values: Mapping[str, Any], show: Callable[[Any], str] = "{:,}".format) -> str:
    """`key value · key value`, in the mapping's order."""
    return " · ".join(f"{key} {show(value)}" for key, value in values.items())


def _each(latency: Latency) -> tuple[str, str, str]:
    return _seconds(latency.p50), _seconds(latency.p95), _seconds(latency.p99)


def _percentiles(latency: Latency) -> str:
    if not latency.count:
        return "–"
    return " / ".join(_each(latency)) + f" (n={latency.count:,})"


def _seconds(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.3f} s" if value < 10 else f"{value:.1f} s"


def _share(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def _score(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def _money(value: float) -> str:
    """Cents once there are dollars; a notebook's few calls cost fractions of a cent."""
    return f"${value:,.2f}" if value >= 1 else f"${value:.6f}"
