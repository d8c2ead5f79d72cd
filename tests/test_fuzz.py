"""Property-based fuzzing of callback payloads: the handler never raises, and its books always balance."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langchain_core.documents import Document
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, Generation, LLMResult
from prometheus_client import CollectorRegistry

from langchain_llmmonitor import Monitor, MonitorConfig, RunsConfig

from .conftest import LogRecorder, value

pytestmark = pytest.mark.slow  # `pytest -m "not slow"` runs the quick rest

RUN_IDS = [uuid.UUID(int=i) for i in range(1, 6)]

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=20))
junk = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)),
    max_leaves=12,
)
usage_dicts = st.dictionaries(
    st.sampled_from(
        [
            "input_tokens",
            "output_tokens",
            "prompt_tokens",
            "completion_tokens",
            "cache_read_input_tokens",
            "token_usage",
            "usage",
        ]
    ),
    junk,
    max_size=4,
)
responses = st.one_of(
    junk,
    st.builds(
        lambda llm_output: LLMResult(generations=[[Generation(text="x")]], llm_output=llm_output),
        st.one_of(
            st.none(), usage_dicts, st.dictionaries(st.sampled_from(["token_usage", "usage", "model_name"]), junk)
        ),
    ),
    st.builds(
        lambda n: LLMResult(
            generations=[
                [
                    ChatGeneration(
                        message=AIMessage(
                            content="x", usage_metadata={"input_tokens": n, "output_tokens": n, "total_tokens": 2 * n}
                        )
                    )
                ]
            ]
        ),
        st.integers(min_value=0, max_value=10**6),
    ),
    st.just(LLMResult(generations=[])),
)
errors = st.one_of(
    st.sampled_from(
        [ValueError("boom"), TimeoutError(), KeyboardInterrupt(), GeneratorExit(), Exception("x" * 10_000)]
    ),
    junk,
)
run_ids = st.one_of(
    st.sampled_from(RUN_IDS), st.none(), st.text(max_size=5), st.integers(), st.lists(st.integers(), max_size=2)
)
metadata = st.one_of(junk, st.fixed_dictionaries({"ls_model_name": st.one_of(st.text(max_size=200), junk)}))
documents = st.one_of(junk, st.lists(st.builds(Document, page_content=st.text(max_size=30)), max_size=5))

START = {
    "on_chain_start": junk,
    "on_chat_model_start": junk,
    "on_llm_start": junk,
    "on_retriever_start": junk,
    "on_tool_start": junk,
}
END = {
    "on_chain_end": junk,
    "on_chain_error": errors,
    "on_llm_new_token": junk,
    "on_llm_end": responses,
    "on_llm_error": errors,
    "on_retriever_end": documents,
    "on_retriever_error": errors,
    "on_tool_end": junk,
    "on_tool_error": errors,
}


@st.composite
def events(draw):
    name = draw(st.sampled_from(sorted(START) + sorted(END)))
    kwargs = {"run_id": draw(run_ids), "parent_run_id": draw(run_ids)}
    if draw(st.booleans()):
        kwargs["tags"] = draw(st.one_of(junk, st.lists(st.text(max_size=20), max_size=3)))
    if name in START:
        args = (draw(junk), draw(START[name]))  # serialized, inputs/messages/prompts/query
        kwargs["metadata"] = draw(metadata)
        kwargs["invocation_params"] = draw(junk)
        kwargs["name"] = draw(junk)
    else:
        args = (draw(END[name]),)
    return name, args, kwargs


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(events(), max_size=40))
def test_arbitrary_event_sequences_never_raise_and_leave_no_debt(sequence):
    """Any sequence of callbacks with any payloads: no exception escapes, and once stale runs expire nothing is in flight."""
    registry, clock = CollectorRegistry(), Clock()
    config = MonitorConfig(runs=RunsConfig(max_age_seconds=60))
    monitor = Monitor(config, registry=registry, logger=LogRecorder().logger, clock=clock)
    for name, args, kwargs in sequence:
        clock.now += 0.01
        getattr(monitor, name)(*args, **kwargs)
        assert value(registry, "llm_active_requests") >= 0
    clock.now += 3600
    monitor.expire_stale_runs()
    assert monitor.runs_in_flight == 0
    assert value(registry, "llm_active_requests") == 0
