"""Runs that never end are aged out by age and by count, and give back their share of the in-flight gauge."""

from __future__ import annotations

import gc
import uuid

import pytest
from langchain_core.prompts import ChatPromptTemplate

from langchain_llmmonitor import Monitor, MonitorConfig, RunsConfig

from .conftest import fake_model, value

PROMPT = ChatPromptTemplate.from_messages([("human", "{question}")])


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


AGE_60 = MonitorConfig(runs=RunsConfig(max_age_seconds=60))


def abandoned_stream(monitor: Monitor):
    """A stream whose consumer read one chunk and then walked away without closing it."""
    stream = (PROMPT | fake_model(answer="one two three four")).stream(
        {"question": "x"}, config={"callbacks": [monitor]}
    )
    next(stream)
    return stream


def test_abandoned_stream_ages_out_and_returns_the_gauge(registry, logs):
    """A run older than the age bound is expired at the next sweep; its late end does not decrement twice."""
    clock = FakeClock()
    monitor = Monitor(AGE_60, registry=registry, logger=logs.logger, clock=clock)
    stream = abandoned_stream(monitor)
    assert value(registry, "llm_active_requests") == 1

    clock.now += 30
    assert monitor.expire_stale_runs() == 0
    assert value(registry, "llm_active_requests") == 1

    clock.now += 31
    assert monitor.expire_stale_runs() == 2  # the root chain and the chat model (the prompt step had ended)
    assert value(registry, "llm_active_requests") == 0
    assert value(registry, "llm_monitor_runs_expired_total", kind="llm") == 1
    assert monitor.runs_in_flight == 0
    assert [e["kind"] for e in logs.named("run_expired")].count("llm") == 1

    stream.close()  # the late end of an expired run is ignored
    del stream
    gc.collect()
    assert value(registry, "llm_active_requests") == 0
    assert value(registry, "llm_requests_total", model="gpt-4o-mini", status="success") == 0


def test_sweep_runs_by_itself_on_new_requests(registry, logs):
    """Without anyone calling expire_stale_runs, a later request sweeps the stale ones."""
    clock = FakeClock()
    monitor = Monitor(AGE_60, registry=registry, logger=logs.logger, clock=clock)
    streams = [abandoned_stream(monitor) for _ in range(5)]
    assert value(registry, "llm_active_requests") == 5
    clock.now += 120
    fake_model().invoke("fresh request", config={"callbacks": [monitor]})
    assert value(registry, "llm_active_requests") == 0
    assert value(registry, "llm_monitor_runs_expired_total", kind="llm") == 5
    assert value(registry, "llm_requests_total", model="gpt-4o-mini", status="success") == 1
    assert monitor.runs_in_flight == 0
    del streams


def test_count_bound_evicts_the_oldest_first_and_counts_them_apart(registry, logs):
    """Past the count bound, the oldest runs are forgotten first, counted as evicted (not expired: they may have been
    live), and the gauge matches what is still tracked."""
    clock = FakeClock()
    config = MonitorConfig(runs=RunsConfig(max_tracked=9))
    monitor = Monitor(config, registry=registry, logger=logs.logger, clock=clock)
    streams = []
    for _ in range(10):
        clock.now += 1
        streams.append(abandoned_stream(monitor))
    assert monitor.runs_in_flight <= 9
    tracked_llm_runs = 10 - value(registry, "llm_monitor_runs_evicted_total", kind="llm", reason="capacity")
    assert value(registry, "llm_active_requests") == tracked_llm_runs
    assert tracked_llm_runs == 5  # the newest nine runs: five model calls and the chains of the last four streams
    assert value(registry, "llm_monitor_runs_expired_total", kind="llm") == 0
    evicted = logs.named("run_evicted")
    assert evicted and all(uuid.UUID(event["run_id"]) and uuid.UUID(event["trace_id"]) for event in evicted)
    assert {event["reason"] for event in evicted} == {"capacity"}
    for stream in streams[-2:]:  # the newest are still tracked and end normally
        list(stream)
    assert value(registry, "llm_requests_total", model="gpt-4o-mini", status="success") == 2
    del streams


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"max_age_seconds": 0}, "max_age_seconds must be a number > 0, got 0", id="zero-age"),
        pytest.param({"max_tracked": 0}, "max_tracked must be an integer >= 1, got 0", id="zero-runs"),
        pytest.param({"max_tracked": 2.5}, "max_tracked must be an integer >= 1, got 2.5", id="fractional-runs"),
    ],
)
def test_bounds_are_validated(kwargs, message):
    """Nonsense bounds are rejected when the configuration is built, saying what is allowed."""
    with pytest.raises(ValueError, match=message):
        RunsConfig(**kwargs)


def test_nested_steps_alone_are_held_to_the_count_bound(registry, logs):
    """A trace that only opens nested chain steps (no model, retriever or tool call) cannot grow past the bound."""
    monitor = Monitor(MonitorConfig(runs=RunsConfig(max_tracked=9)), registry=registry, logger=logs.logger)
    root = uuid.uuid4()
    monitor.on_chain_start({}, {"question": "x"}, run_id=root)
    for _ in range(50):
        monitor.on_chain_start({}, {}, run_id=uuid.uuid4(), parent_run_id=root)
    assert monitor.runs_in_flight <= 9
    assert value(registry, "llm_monitor_runs_evicted_total", kind="chain", reason="capacity") >= 42
