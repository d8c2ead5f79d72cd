"""`Monitor.snapshot()`: real chains through a Monitor on a fake clock, and the snapshot's numbers checked against what
was sent, what the judge logged and what the store holds."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from IPython.core.formatters import DisplayFormatter
from prometheus_client import CollectorRegistry

from langchain_llmmonitor import LangSmithConfig, MetricsSnapshot, Monitor, MonitorConfig, OfflineJudge, StoreConfig
from langchain_llmmonitor.demo.app import ProviderOverloadedError, build_chain
from langchain_llmmonitor.telemetry.snapshot import histogram_quantile
from tests.conftest import USAGE, LogRecorder, UsageFakeChatModel, fake_model, value

FAST, SLOW = 0.02, 0.3  # seconds on the fake clock: the first latency bucket (<= 0.05) and (0.25, 0.5]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class TimedModel(UsageFakeChatModel):
    """The suite's fake chat model, taking `seconds` of the monitor's fake clock per call, and failing if told to."""

    clock: Any = None
    seconds: float = 0.0
    fails: bool = False

    def _generate(self, messages: Any, stop: Any = None, run_manager: Any = None, **kwargs: Any) -> Any:
        self.clock.now += self.seconds
        if self.fails:
            raise ProviderOverloadedError("the provider is overloaded (HTTP 529)")
        return super()._generate(messages, stop=stop, run_manager=run_manager, **kwargs)


def timed(clock: FakeClock, seconds: float, *, fails: bool = False, name: str = "gpt-4o-mini") -> TimedModel:
    template = fake_model()
    return TimedModel(messages=template.messages, clock=clock, seconds=seconds, fails=fails, model_name=name)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def judged(registry: CollectorRegistry, logs: LogRecorder, clock: FakeClock) -> Monitor:
    """A monitor on the fake clock whose offline judge scores every trace."""
    monitor = Monitor(registry=registry, logger=logs.logger, judge=OfflineJudge(), sample_rate=1.0, clock=clock)
    yield monitor
    monitor.close()


def send_traffic(monitor: Monitor, clock: FakeClock) -> None:
    """12 questions through the demo's RAG chain: 5 fast invokes and 1 fast stream, 3 slow ones, 3 failures."""
    config = {"callbacks": [monitor]}
    for _ in range(5):
        build_chain(timed(clock, FAST)).invoke("How do I reset my password?", config=config)
    "".join(build_chain(timed(clock, FAST)).stream("What is the API rate limit?", config=config))
    for _ in range(3):
        build_chain(timed(clock, SLOW)).invoke("How is my data encrypted?", config=config)
    for _ in range(3):
        with pytest.raises(ProviderOverloadedError):
            build_chain(timed(clock, FAST, fails=True)).invoke("Is phone support available?", config=config)
    assert monitor.flush(30)


def test_snapshot_counts_calls_errors_tokens_and_cost_as_sent(judged: Monitor, clock: FakeClock) -> None:
    """12 invocations with 3 failures: counts by status, error rates 3/12, the fake model's tokens and the cost."""
    send_traffic(judged, clock)
    snapshot = judged.snapshot()
    assert snapshot.llm_calls == {"success": 9, "error": 3}
    assert snapshot.invocations == {"success": 9, "error": 3}
    assert snapshot.llm_error_rate == snapshot.invocation_error_rate == 3 / 12
    [model] = snapshot.models
    assert (model.model, model.errors) == ("gpt-4o-mini", {"ProviderOverloadedError": 3})
    assert [chain.name for chain in snapshot.chains] == ["support_bot"]
    assert snapshot.tokens["prompt"] == 9 * USAGE["input_tokens"]
    assert snapshot.tokens["completion"] == 9 * USAGE["output_tokens"]
    assert snapshot.cost_usd == pytest.approx(value(judged, "llm_cost_usd_total", model="gpt-4o-mini"))
    assert snapshot.cost_usd > 0 and snapshot.unpriced_calls == 0
    assert (snapshot.active_requests, snapshot.judge_queue_depth, snapshot.dropped) == (0, 0, {})


def test_latency_percentiles_fall_in_the_bucket_that_holds_them(judged: Monitor, clock: FakeClock) -> None:
    """9 calls of 20 ms and 3 of 300 ms: p50 interpolated in (0, 0.05], p95 and p99 in (0.25, 0.5]; the mean exact."""
    send_traffic(judged, clock)
    snapshot = judged.snapshot()
    for latency in (snapshot.llm_latency, snapshot.invocation_latency, snapshot.models[0].latency):
        assert latency.count == 12
        assert latency.mean == pytest.approx((9 * FAST + 3 * SLOW) / 12)
        assert latency.p50 == pytest.approx(0.05 * 6 / 9)  # rank 6 of the 9 in [0, 0.05]
        assert latency.p95 == pytest.approx(0.25 + 0.25 * (0.95 * 12 - 9) / 3)
        assert 0.25 < latency.p95 < latency.p99 <= 0.5
    ttft = snapshot.time_to_first_token
    assert ttft.count == 1 and ttft.mean == pytest.approx(FAST) and 0 < ttft.p50 <= 0.05


def test_judge_scores_match_what_the_judge_logged(judged: Monitor, clock: FakeClock, logs: LogRecorder) -> None:
    """Mean scores and the hallucination rate of random samples are those of the judge's own log events."""
    send_traffic(judged, clock)
    snapshot = judged.snapshot()
    random = [
        e for e in logs.events if e["event"] == "quality_eval" and e["sampling"] == "random" and e["faithfulness"]
    ]
    assert len(random) == 9  # each answered trace once (cached verdicts count too)
    for criterion in ("faithfulness", "relevance", "completeness"):
        assert snapshot.mean_scores[criterion] == pytest.approx(sum(e[criterion] for e in random) / 9)
    assert snapshot.hallucination_rate == pytest.approx(sum(bool(e["hallucination"]) for e in random) / 9)
    assert sum(snapshot.judge_evaluations.values()) == len([e for e in logs.events if e["event"] == "quality_eval"])
    [random_stats] = [q for q in snapshot.quality if q.sampling == "random"]
    assert (random_stats.judge, random_stats.evaluations) == ("offline", 9)
    assert random_stats.mean_scores == pytest.approx(snapshot.mean_scores)


def test_feedback_and_the_outbox_are_counted_with_a_store(registry: CollectorRegistry, tmp_path: Path) -> None:
    """A thumbs-down and a thumbs-up: counted by rating, the thumbs-down forces a judgement, the outbox as stored."""
    config = MonitorConfig(langsmith=LangSmithConfig(forward=False), store=StoreConfig(outbox=True))
    with Monitor(config, registry=registry, judge=OfflineJudge(), sample_rate=0.0, store=tmp_path / "m.db") as monitor:
        chain = build_chain(fake_model())
        for request_id in ("down", "up"):
            chain.invoke(
                "How do I reset my password?", config={"callbacks": [monitor], "metadata": {"request_id": request_id}}
            )
        assert monitor.flush(30)
        monitor.feedback("down", score=-1)
        monitor.feedback("up", score=1)
        assert monitor.flush(30)
        snapshot = monitor.snapshot()
        assert snapshot.user_feedback == {"positive": 1, "negative": 1}
        assert snapshot.quality_samples == {"feedback": 1}
        assert snapshot.judge_evaluations == {"success": 1}
        assert [(q.sampling, q.evaluations) for q in snapshot.quality] == [("forced", 1)]
        assert snapshot.mean_scores == {"faithfulness": None, "relevance": None, "completeness": None}
        assert snapshot.outbox_pending == monitor.store.pending_count() == 2 + 4  # two ratings, four judge scores


def test_an_unused_monitor_reads_as_zeros(monitor: Monitor) -> None:
    """Nothing sent: empty counts, no percentiles, no store numbers, and both views still render."""
    snapshot = monitor.snapshot()
    assert (snapshot.llm_calls, snapshot.invocations, snapshot.models, snapshot.quality) == ({}, {}, (), ())
    assert snapshot.llm_latency.count == 0 and snapshot.llm_latency.p99 is None and snapshot.llm_error_rate is None
    assert snapshot.outbox_pending is None and snapshot.cost_usd == 0
    assert "LLM calls" in str(snapshot) and "<table>" in snapshot._repr_html_()
    assert list(snapshot.to_frame().columns)[:3] == ["calls", "errors", "error_rate"]


class Tags(HTMLParser):
    def __init__(self, page: str) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.rows: list[list[str]] = []
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th") and self.rows:
            self.rows[-1].append("")

    def handle_data(self, data: str) -> None:
        if self.rows and self.rows[-1]:
            self.rows[-1][-1] += data


HOSTILE = '<script>alert(1)</script>"><img src=x onerror=alert(1)>'


def test_html_is_a_compact_table_with_every_label_value_escaped(judged: Monitor, clock: FakeClock) -> None:
    """Model and chain names chosen by the application show as text: no tag of theirs reaches the page."""
    chain = build_chain(timed(clock, FAST, name=HOSTILE)).with_config(run_name=HOSTILE)
    chain.invoke("How do I reset my password?", config={"callbacks": [judged]})
    assert judged.flush(30)
    shown, _ = DisplayFormatter().format(judged.snapshot())  # what Jupyter does with a cell's last value
    page = shown["text/html"]
    assert shown["text/plain"].startswith("Monitor snapshot at ")
    parsed = Tags(page)
    assert parsed.tags <= {"div", "style", "table", "caption", "thead", "tbody", "tr", "th", "td", "p"}
    cells = {cell for row in parsed.rows for cell in row}
    assert HOSTILE[:120] in cells  # the model label, as text (labels are cut at 120 characters)
    assert ["LLM calls", "1 (success 1)"] in parsed.rows
    assert "<script>" not in page and "&lt;script&gt;" in page


def test_to_dict_is_json_and_to_frame_has_a_row_per_model(judged: Monitor, clock: FakeClock) -> None:
    """The dict holds the totals as JSON types; the frame one row per model with its counts."""
    send_traffic(judged, clock)
    snapshot = judged.snapshot()
    plain = json.loads(json.dumps(snapshot.to_dict()))
    assert plain["llm_calls"] == {"success": 9, "error": 3} and plain["llm_error_rate"] == 0.25
    assert plain["models"][0]["latency"]["count"] == 12
    assert MetricsSnapshot.__name__ in repr(snapshot)
    frame = snapshot.to_frame()
    assert frame.loc["gpt-4o-mini", "calls"] == 12 and frame.loc["gpt-4o-mini", "errors"] == 3
    assert frame.loc["gpt-4o-mini", "prompt_tokens"] == 9 * USAGE["input_tokens"]


@pytest.mark.parametrize(
    ("q", "buckets", "expected"),
    [
        pytest.param(0.5, [(1.0, 2), (2.0, 4), (float("inf"), 4)], 1.0, id="at-a-bound"),
        pytest.param(0.5, [(1.0, 0), (2.0, 4), (float("inf"), 4)], 1.5, id="interpolated"),
        pytest.param(0.25, [(1.0, 4), (float("inf"), 4)], 0.25, id="first-bucket-from-zero"),
        pytest.param(0.99, [(1.0, 1), (2.0, 1), (float("inf"), 10)], 2.0, id="in-inf-highest-finite-bound"),
        pytest.param(0.5, [(1.0, 0), (float("inf"), 0)], None, id="empty"),
        pytest.param(0.5, [], None, id="no-buckets"),
    ],
)
def test_histogram_quantile_interpolates_like_promql(q: float, buckets: list, expected: float | None) -> None:
    """Linear inside the bucket, from 0 in the first, the highest finite bound in +Inf, None when empty."""
    assert histogram_quantile(q, buckets) == expected
