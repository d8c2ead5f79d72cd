"""Real LangChain runtimes (invoke, ainvoke, stream, astream, batch, abatch) driven through the Monitor."""

from __future__ import annotations

import asyncio
import gc
import inspect
import uuid
from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableLambda
from langchain_core.tools import tool

from langchain_llmmonitor import Monitor
from langchain_llmmonitor.core.usage import Usage
from langchain_llmmonitor.demo.app import build_retriever
from langchain_llmmonitor.pricing import PriceTable

from .conftest import USAGE, fake_model, value

PROMPT = ChatPromptTemplate.from_messages([("system", "Be brief."), ("human", "{question}")])
QUESTIONS = [{"question": f"question {i}"} for i in range(4)]


def invoke(chain: Any, config: dict) -> Any:
    return [chain.invoke(q, config=config) for q in QUESTIONS]


async def ainvoke(chain: Any, config: dict) -> Any:
    return [await chain.ainvoke(q, config=config) for q in QUESTIONS]


def stream(chain: Any, config: dict) -> Any:
    return ["".join(chain.stream(q, config=config)) for q in QUESTIONS]


async def astream(chain: Any, config: dict) -> Any:
    answers = []
    for question in QUESTIONS:  # an async comprehension inside a comprehension is a SyntaxError before Python 3.11
        answers.append("".join([chunk async for chunk in chain.astream(question, config=config)]))
    return answers


def batch(chain: Any, config: dict) -> Any:
    return chain.batch(QUESTIONS, config=config)


async def abatch(chain: Any, config: dict) -> Any:
    return await chain.abatch(QUESTIONS, config=config)


ENTRY_POINTS = [
    pytest.param(invoke, False, id="invoke"),
    pytest.param(ainvoke, False, id="ainvoke"),
    pytest.param(stream, True, id="stream"),
    pytest.param(astream, True, id="astream"),
    pytest.param(batch, False, id="batch"),
    pytest.param(abatch, False, id="abatch"),
]


async def call(entry_point: Any, chain: Any, config: dict) -> Any:
    result = entry_point(chain, config)
    return await result if inspect.isawaitable(result) else result


@pytest.mark.parametrize(("entry_point", "streams"), ENTRY_POINTS)
async def test_every_entry_point_counts_requests_tokens_cost_and_latency(entry_point, streams, monitor, registry):
    """Each runtime yields exact request, token, cost, invocation and TTFT figures, and leaves nothing in flight."""
    chain = (PROMPT | fake_model() | StrOutputParser()).with_config(run_name="qa")
    answers = await call(entry_point, chain, {"callbacks": [monitor]})

    n = len(QUESTIONS)
    assert answers == ["Paris is the capital of France."] * n
    assert value(registry, "llm_requests_total", model="gpt-4o-mini", status="success") == n
    assert value(registry, "llm_request_duration_seconds_count", model="gpt-4o-mini") == n
    for kind, tokens in [("prompt", 120), ("completion", 30), ("cache_read", 20), ("reasoning", 10)]:
        assert value(registry, "llm_tokens_total", model="gpt-4o-mini", type=kind) == n * tokens
    expected_cost = PriceTable.default().lookup("gpt-4o-mini").cost(Usage(prompt=120, completion=30, cache_read=20))
    assert value(registry, "llm_cost_usd_total", model="gpt-4o-mini") == pytest.approx(n * expected_cost)
    assert value(registry, "llm_invocations_total", name="qa", status="success") == n
    assert value(registry, "llm_invocation_duration_seconds_count", name="qa") == n
    assert value(registry, "llm_time_to_first_token_seconds_count", model="gpt-4o-mini") == (n if streams else 0)
    assert value(registry, "llm_active_requests") == 0
    assert value(registry, "llm_monitor_handler_errors_total", event="on_llm_end") == 0
    assert monitor.runs_in_flight == 0


async def test_chat_model_alone_is_its_own_root(monitor, registry, logs):
    """A chat model invoked directly (no chain) is counted as a call and as a root invocation."""
    model = fake_model()
    await model.ainvoke("hello", config={"callbacks": [monitor]})
    model.invoke("hello", config={"callbacks": [monitor]})
    assert value(registry, "llm_requests_total", model="gpt-4o-mini", status="success") == 2
    assert value(registry, "llm_invocations_total", name="UsageFakeChatModel", status="success") == 2
    assert [e["event"] for e in logs.events] == ["llm_call", "invocation"] * 2


def test_nested_chains_are_one_invocation_with_every_llm_call(monitor, registry, logs):
    """A chain calling another chain is one root invocation; its log line totals both LLM calls."""
    inner = PROMPT | fake_model() | StrOutputParser()
    outer = (RunnableLambda(lambda q, config: inner.invoke({"question": inner.invoke(q, config)}, config))).with_config(
        run_name="outer"
    )
    outer.invoke({"question": "why?"}, config={"callbacks": [monitor]})

    assert value(registry, "llm_requests_total", model="gpt-4o-mini", status="success") == 2
    assert value(registry, "llm_invocations_total", name="outer", status="success") == 1
    (invocation,) = logs.named("invocation")
    assert invocation["llm_calls"] == 2
    assert invocation["prompt_tokens"] == 2 * USAGE["input_tokens"]
    llm_calls = logs.named("llm_call")
    assert {e["trace_id"] for e in llm_calls} == {invocation["run_id"]}


def test_retriever_latency_and_documents(monitor, registry):
    """Retriever calls inside a chain are timed and their documents counted."""
    retriever = build_retriever(k=3)
    chain = {"question": lambda x: x, "docs": retriever} | RunnableLambda(lambda d: len(d["docs"]))
    assert chain.invoke("How do I reset my password?", config={"callbacks": [monitor]}) == 3
    assert value(registry, "llm_retriever_requests_total", retriever="VectorStoreRetriever", status="success") == 1
    assert value(registry, "llm_retriever_documents_sum", retriever="VectorStoreRetriever") == 3
    assert value(registry, "llm_retriever_duration_seconds_count", retriever="VectorStoreRetriever") == 1
    assert monitor.runs_in_flight == 0


def test_retriever_alone_is_a_root_invocation(monitor, registry):
    """A retriever invoked on its own ends its own invocation."""
    build_retriever(k=2).invoke("backups", config={"callbacks": [monitor]})
    assert value(registry, "llm_invocations_total", name="VectorStoreRetriever", status="success") == 1


def test_retriever_error_is_counted(monitor, registry):
    """A failing retriever is counted as an error, and the chain still sees the original exception."""
    from langchain_core.retrievers import BaseRetriever

    class BrokenRetriever(BaseRetriever):
        def _get_relevant_documents(self, query: str, *, run_manager: Any) -> list:
            raise ConnectionError("vector store down")

    with pytest.raises(ConnectionError, match="vector store down"):
        BrokenRetriever().invoke("x", config={"callbacks": [monitor]})
    assert value(registry, "llm_retriever_requests_total", retriever="BrokenRetriever", status="error") == 1
    assert value(registry, "llm_invocations_total", name="BrokenRetriever", status="error") == 1


def test_tool_calls_success_and_error(monitor, registry):
    """Tool calls are counted by tool and outcome."""

    @tool
    def lookup_order(order_id: str) -> str:
        """Look up an order."""
        if order_id == "bad":
            raise ValueError("no such order")
        return f"order {order_id}: shipped"

    assert lookup_order.invoke({"order_id": "42"}, config={"callbacks": [monitor]}) == "order 42: shipped"
    with pytest.raises(ValueError, match="no such order"):
        lookup_order.invoke({"order_id": "bad"}, config={"callbacks": [monitor]})
    assert value(registry, "llm_tool_calls_total", tool="lookup_order", status="success") == 1
    assert value(registry, "llm_tool_calls_total", tool="lookup_order", status="error") == 1
    assert value(registry, "llm_tool_duration_seconds_count", tool="lookup_order") == 2


class ExplodingModel(GenericFakeChatModel):
    model_name: str = "gpt-4o"

    def _generate(self, *args: Any, **kwargs: Any) -> Any:
        raise TimeoutError("upstream timed out after 60s")


@pytest.mark.parametrize("use_async", [pytest.param(False, id="sync"), pytest.param(True, id="async")])
async def test_llm_error_is_counted_by_type_and_reraised_untouched(use_async, monitor, registry, logs):
    """A failing model counts an error by exception type, fails the invocation, and the caller gets its own exception."""
    chain = (PROMPT | ExplodingModel(messages=iter(()))).with_config(run_name="qa")
    with pytest.raises(TimeoutError, match="upstream timed out"):
        if use_async:
            await chain.ainvoke({"question": "x"}, config={"callbacks": [monitor]})
        else:
            chain.invoke({"question": "x"}, config={"callbacks": [monitor]})
    assert value(registry, "llm_requests_total", model="gpt-4o", status="error") == 1
    assert value(registry, "llm_errors_total", model="gpt-4o", error_type="TimeoutError") == 1
    assert value(registry, "llm_request_duration_seconds_count", model="gpt-4o") == 1
    assert value(registry, "llm_invocations_total", name="qa", status="error") == 1
    assert value(registry, "llm_active_requests") == 0
    failed = [e for e in logs.events if e["log_level"] == "warning"]
    assert [e["event"] for e in failed] == ["llm_call", "invocation"]
    assert all("TimeoutError: upstream timed out" in e["error"] for e in failed)


async def test_cancelled_astream_is_cancelled_not_error(monitor, registry):
    """Cancelling the task that consumes a stream counts as cancelled, not as an error, and frees the gauge."""

    class SlowModel(GenericFakeChatModel):
        model_name: str = "gpt-4o-mini"

        async def _astream(self, *args: Any, **kwargs: Any) -> Any:
            async for chunk in super()._astream(*args, **kwargs):
                yield chunk
                await asyncio.sleep(10)

    started = asyncio.Event()

    async def consume() -> None:
        async for _ in (PROMPT | SlowModel(messages=iter([AIMessage(content="a b c")]))).astream(
            {"question": "x"}, config={"callbacks": [monitor]}
        ):
            started.set()

    task = asyncio.create_task(consume())
    await started.wait()
    assert value(registry, "llm_active_requests") == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    del task  # the task's CancelledError keeps the abandoned generator alive (through its traceback) on Python 3.10
    for _ in range(200):  # LangChain reports the LLM's cancellation just after the chain's: from a shielded task,
        if monitor.runs_in_flight == 0:  # or (langchain-core < 1.8) when the abandoned generator is collected
            break
        gc.collect()
        await asyncio.sleep(0.01)
    assert value(registry, "llm_requests_total", model="gpt-4o-mini", status="cancelled") == 1
    assert value(registry, "llm_invocations_total", name="RunnableSequence", status="cancelled") == 1
    assert value(registry, "llm_requests_total", model="gpt-4o-mini", status="error") == 0
    assert value(registry, "llm_active_requests") == 0
    assert monitor.runs_in_flight == 0


def test_caller_supplied_run_id_is_the_logged_run_and_trace(monitor, logs):
    """When the caller passes `run_id`, logs carry it as run and trace id (it is the LangSmith run id too)."""
    run_id = uuid.uuid4()
    (PROMPT | fake_model()).invoke({"question": "x"}, config={"callbacks": [monitor], "run_id": run_id})
    (invocation,) = logs.named("invocation")
    assert invocation["run_id"] == str(run_id) == invocation["trace_id"]
    assert logs.named("llm_call")[0]["trace_id"] == str(run_id)


def test_unknown_model_is_labelled_unknown_and_unpriced(monitor, registry):
    """A model with no name anywhere is labelled "unknown" and its cost is counted as unpriced, not as zero."""
    model = GenericFakeChatModel(messages=iter([AIMessage(content="hi", usage_metadata=USAGE)]))
    model.invoke("x", config={"callbacks": [monitor]})
    assert value(registry, "llm_requests_total", model="unknown", status="success") == 1
    assert value(registry, "llm_unpriced_requests_total", model="unknown") == 1
    assert registry.get_sample_value("llm_cost_usd_total", {"model": "unknown"}) is None


def test_model_without_usage_is_counted_as_missing_usage(monitor, registry):
    """A provider reporting no usage is visible as such instead of silently counting zero tokens."""
    model = fake_model()
    model.messages = iter([AIMessage(content="no usage here")])
    model.invoke("x", config={"callbacks": [monitor]})
    assert value(registry, "llm_usage_missing_total", model="gpt-4o-mini") == 1
    assert value(registry, "llm_tokens_total", model="gpt-4o-mini", type="prompt") == 0


def test_two_monitors_on_separate_registries_do_not_collide(registry):
    """Two default monitors never raise duplicate-timeseries errors and count independently."""
    first, second = Monitor(), Monitor()
    fake_model().invoke("x", config={"callbacks": [first]})
    assert value(first.registry, "llm_requests_total", model="gpt-4o-mini", status="success") == 1
    assert value(second.registry, "llm_requests_total", model="gpt-4o-mini", status="success") == 0


def test_two_monitors_can_share_one_registry(registry):
    """Monitors sharing a registry reuse its metrics and add up."""
    first, second = Monitor(registry=registry), Monitor(registry=registry)
    fake_model().invoke("x", config={"callbacks": [first]})
    fake_model().invoke("x", config={"callbacks": [second]})
    assert value(registry, "llm_requests_total", model="gpt-4o-mini", status="success") == 2
