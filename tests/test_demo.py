"""The README's main command: `llmmonitor demo` runs offline and its summary matches what it did."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from langchain_llmmonitor.cli import main
from langchain_llmmonitor.demo.run import DemoOptions, histogram_quantile, run_demo
from langchain_llmmonitor.storage.store import Store

pytestmark = pytest.mark.slow  # `pytest -m "not slow"` runs the quick rest


def test_demo_counts_match_what_it_sent(tmp_path):
    """Every request the demo drove shows up in the scraped metrics; logs are JSON lines; nothing left in flight."""
    options = DemoOptions(requests=60, port=0, out_dir=tmp_path, latency_seconds=0.001, history_weeks=0)
    result = run_demo(options, echo=lambda *_: None)
    counts, samples = result["counts"], result["samples"]

    def total(name: str, **labels: str) -> float:
        return sum(s.value for s in samples[name] if all(s.labels.get(k) == v for k, v in labels.items()))

    sent = sum(counts.values()) - counts.get("failed", 0)
    assert total("llm_invocations_total", status="success") == sent
    assert total("llm_invocations_total", status="error") == counts.get("failed", 0)
    assert total("llm_requests_total") == sum(counts.values())
    assert total("llm_tokens_total", type="prompt") > 0
    assert total("llm_cost_usd_total") > 0
    assert total("llm_active_requests") == 0
    assert total("llm_monitor_handler_errors_total") == 0
    events = [json.loads(line)["event"] for line in result["log_path"].read_text().splitlines()]
    assert events.count("invocation") == sum(counts.values())


def test_demo_closes_the_quality_loop(tmp_path):
    """Judge scores, user ratings and invocations all reach the store and agree with the metrics; forced evaluations
    follow thumbs-down; the review of the simulated history finds the degradation and writes its report."""
    options = DemoOptions(
        requests=80, port=0, out_dir=tmp_path, latency_seconds=0.001, sample_rate=0.3, feedback_rate=0.5
    )
    result = run_demo(options, echo=lambda *_: None)
    samples, ratings = result["samples"], result["ratings"]

    def total(name: str, **labels: str) -> float:
        return sum(s.value for s in samples[name] if all(s.labels.get(k) == v for k, v in labels.items()))

    store = Store(result["store_path"])
    try:
        window = (datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))
        invocations = list(store.invocations(*window))
        evaluations = list(store.evaluations(*window))
        feedback = list(store.user_feedback(*window))
    finally:
        store.close()
    assert len(invocations) == total("llm_invocations_total")
    assert len(evaluations) == total("llm_judge_evaluations_total") > 0
    assert len(feedback) == ratings["up"] + ratings["down"] == total("llm_user_feedback_total") > 0
    forced_by_feedback = [e for e in evaluations if e.sample_reason == "feedback"]
    assert all(e.sampling == "forced" for e in forced_by_feedback)
    assert {e.run_id for e in forced_by_feedback} <= {f.run_id for f in feedback if f.score < 0}
    review = result["review"]
    assert review["review"].status == "degraded"
    assert review["paths"].html.is_file() and review["paths"].markdown.is_file()


def test_cli_demo_prints_a_summary(tmp_path, capsys):
    """`llmmonitor demo` exits 0 and prints the summary with latency percentiles, cost, quality and the review's path."""
    assert main(["demo", "--requests", "20", "--port", "0", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "Serving metrics at http://127.0.0.1:" in out
    for heading in (
        "invocations",
        "LLM calls",
        "time to first token",
        "tokens",
        "cost",
        "errors",
        "judged",
        "quality",
        "feedback",
    ):
        assert heading in out
    assert "p99" in out
    assert "Weekly review: DEGRADED" in out
    report = out.split("Report: ")[1].split(" ")[0]
    assert (tmp_path / report.split("/")[-1]).is_file()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(["demo", "--requests", "0"], "must be >= 1", id="zero-requests"),
        pytest.param(["demo", "--error-rate", "1.5"], "must be between 0 and 1", id="error-rate"),
    ],
)
def test_cli_rejects_bad_options(argv, message, capsys):
    """Bad options fail with a clear message and exit code 2."""
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        pytest.param(0.25, 1.5, id="quartile-interpolated"),
        pytest.param(0.99, 4.94, id="p99"),
        pytest.param(1.0, 5.0, id="max"),
    ],
)
def test_histogram_quantile_matches_prometheus_interpolation(q, expected):
    """Quantiles interpolate linearly inside a bucket, as PromQL's histogram_quantile does."""
    buckets = [(1.0, 0), (2.0, 50), (5.0, 100), (float("inf"), 100)]
    assert histogram_quantile(q, buckets) == pytest.approx(expected)
