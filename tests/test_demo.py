"""The README's main command: `llmmonitor demo` runs offline and its summary matches what it did."""

from __future__ import annotations

import json

import pytest

from langchain_llmmonitor.cli import main
from langchain_llmmonitor.demo import DemoOptions, histogram_quantile, run_demo


def test_demo_counts_match_what_it_sent(tmp_path):
    """Every request the demo drove shows up in the scraped metrics; logs are JSON lines; nothing left in flight."""
    result = run_demo(DemoOptions(requests=60, port=0, out_dir=tmp_path, latency_seconds=0.001), echo=lambda *_: None)
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


def test_cli_demo_prints_a_summary(tmp_path, capsys):
    """`llmmonitor demo` exits 0 and prints the summary with latency percentiles and cost."""
    assert main(["demo", "--requests", "20", "--port", "0", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "Serving metrics at http://127.0.0.1:" in out
    for heading in ("invocations", "LLM calls", "time to first token", "tokens", "cost", "errors"):
        assert heading in out
    assert "p99" in out


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
    [pytest.param(0.25, 1.5, id="quartile-interpolated"), pytest.param(0.99, 4.94, id="p99"), pytest.param(1.0, 5.0, id="max")],
)
def test_histogram_quantile_matches_prometheus_interpolation(q, expected):
    """Quantiles interpolate linearly inside a bucket, as PromQL's histogram_quantile does."""
    buckets = [(1.0, 0), (2.0, 50), (5.0, 100), (float("inf"), 100)]
    assert histogram_quantile(q, buckets) == pytest.approx(expected)
