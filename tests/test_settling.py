"""Calls that end without an end event, or after their root: cancelled tasks, abandoned streams, failed calls.

LangChain sends no callback at all for an `ainvoke` whose task is cancelled, and a sync stream abandoned mid-way
reports its LLM call only after the root has ended. The invocation is written once its calls have settled.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.prompts import ChatPromptTemplate
from langchain_openai import ChatOpenAI

from langchain_llmmonitor import Monitor, MonitorConfig, RunsConfig
from langchain_llmmonitor.core.vocabulary import CANCELLED

from .conftest import value
from .fakes.openai_server import FakeOpenAI, Reply

PROMPT = ChatPromptTemplate.from_messages([("human", "{question}")])
USAGE = {"input_tokens": 100, "output_tokens": 3, "total_tokens": 103}


class Streamer(BaseChatModel):
    """Streams its usage first (as Anthropic's message_start does), then one token per step; async steps can hang."""

    model_name: str = "gpt-4o-mini"
    hang_after_first_token: bool = False

    @property
    def _llm_type(self) -> str:
        return "streamer"

    def _generate(self, messages: Any, stop: Any = None, run_manager: Any = None, **kwargs: Any) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=AIMessage("abc", usage_metadata=USAGE))])

    def _stream(self, messages: Any, stop: Any = None, run_manager: Any = None, **kwargs: Any) -> Iterator[Any]:
        yield ChatGenerationChunk(message=AIMessageChunk(content="", usage_metadata=USAGE))
        for token in "abc":
            if run_manager:
                run_manager.on_llm_new_token(token)
            yield ChatGenerationChunk(message=AIMessageChunk(content=token))

    async def _astream(
        self, messages: Any, stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> AsyncIterator[Any]:
        yield ChatGenerationChunk(message=AIMessageChunk(content="", usage_metadata=USAGE))
        if run_manager:
            await run_manager.on_llm_new_token("a")
        yield ChatGenerationChunk(message=AIMessageChunk(content="a"))
        if self.hang_after_first_token:
            await asyncio.sleep(60)


@pytest.fixture
def openai_server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


def chat(server: FakeOpenAI, **kwargs: Any) -> ChatOpenAI:
    return ChatOpenAI(model="gpt-4o-mini", base_url=server.base_url, api_key="test", max_retries=0, **kwargs)


async def settled(monitor: Monitor, within: float = 1.0) -> float:
    """Seconds until no LLM call is in flight; fails after `within`."""
    started = time.perf_counter()
    while value(monitor, "llm_active_requests") != 0:
        assert time.perf_counter() - started < within, "llm_active_requests did not return to 0"
        await asyncio.sleep(0.01)
    return time.perf_counter() - started


async def test_a_cancelled_ainvoke_is_counted_as_cancelled_and_leaves_the_gauge(monitor, openai_server):
    """task.cancel() on a real ChatOpenAI.ainvoke: LangChain sends no event, the Monitor still closes the call."""
    openai_server.enqueue(Reply.text("late").delayed(30))
    task = asyncio.create_task(chat(openai_server).ainvoke("hi", config={"callbacks": [monitor]}))
    while value(monitor, "llm_active_requests") == 0:
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await settled(monitor) < 1.0
    assert value(monitor, "llm_requests_total", model="gpt-4o-mini", status=CANCELLED) == 1
    assert value(monitor, "llm_invocations_total", name="ChatOpenAI", status=CANCELLED) == 1
    assert monitor.runs_in_flight == 0


async def test_cancelled_stream_keeps_its_time_to_first_token(monitor):
    """A stream cancelled after its first token still reports how long that token took, and the tokens billed."""

    first_token = asyncio.Event()

    async def consume() -> None:
        async for chunk in (PROMPT | Streamer(hang_after_first_token=True)).astream(
            {"question": "q"}, config={"callbacks": [monitor]}
        ):
            if chunk.content:
                first_token.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first_token.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await settled(monitor)
    assert value(monitor, "llm_requests_total", model="gpt-4o-mini", status=CANCELLED) == 1
    assert value(monitor, "llm_time_to_first_token_seconds_count", model="gpt-4o-mini") == 1


async def test_hundreds_of_tasks_with_some_cancelled_count_exactly(registry, logs, openai_server):
    """300 concurrent ainvoke calls, every 20th cancelled: each is counted once, by its outcome; the gauge is 0."""
    monitor = Monitor(registry=registry, logger=logs.logger)
    openai_server.set_default(lambda body: Reply.text("ok").delayed(0.3))
    model = chat(openai_server)
    tasks = [asyncio.create_task(model.ainvoke("hi", config={"callbacks": [monitor]})) for _ in range(300)]
    await asyncio.sleep(0.1)
    for task in tasks[::20]:
        task.cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    cancelled = sum(isinstance(result, asyncio.CancelledError) for result in results)
    await settled(monitor)
    answered = sum(isinstance(result, AIMessage) for result in results)
    assert cancelled == 15
    assert value(monitor, "llm_requests_total", model="gpt-4o-mini", status=CANCELLED) == cancelled
    assert value(monitor, "llm_requests_total", model="gpt-4o-mini", status="success") == answered
    assert value(monitor, "llm_requests_total", model="gpt-4o-mini", status="error") == 300 - cancelled - answered
    assert monitor.runs_in_flight == 0


def test_an_abandoned_stream_reports_its_tokens_in_the_invocation(tmp_path, registry, logs):
    """Breaking out of chain.stream(): the LLM call reports after the root ended; event and row still have its tokens."""
    monitor = Monitor(registry=registry, logger=logs.logger, store=str(tmp_path / "runs.db"))
    for number, _ in enumerate((PROMPT | Streamer()).stream({"question": "q"}, config={"callbacks": [monitor]})):
        if number == 1:
            break
    (event,) = logs.named("invocation")
    assert (event["prompt_tokens"], event["completion_tokens"], event["llm_calls"]) == (100, 3, 1)
    assert event["cost_usd"] > 0
    assert monitor.flush(10)
    (row,) = monitor.store.invocations(datetime.now(UTC) - timedelta(hours=1), datetime.now(UTC))
    assert (row.prompt_tokens, row.completion_tokens) == (100, 3)
    assert row.cost_usd == pytest.approx(event["cost_usd"], abs=1e-6)  # the event rounds to 6 places
    assert value(registry, "llm_tokens_total", model="gpt-4o-mini", type="prompt") == 100
    monitor.close()


def test_a_call_still_open_after_the_grace_is_closed_with_its_root(registry, logs):
    """A root that ends with an LLM call still open waits `settle_seconds`, then closes it as cancelled."""
    config = MonitorConfig(runs=RunsConfig(settle_seconds=0.0))
    monitor = Monitor(registry=registry, logger=logs.logger, config=config)
    stream = (PROMPT | Streamer()).stream({"question": "q"}, config={"callbacks": [monitor]})
    next(stream)
    next(stream)
    # The consumer is gone without closing the stream; the root's end is what LangChain reports first.
    root_id = next(iter(monitor._runs._runs.values())).trace.run_id
    monitor.on_chain_end({}, run_id=root_id)
    assert value(registry, "llm_active_requests") == 0
    assert value(registry, "llm_requests_total", model="gpt-4o-mini", status=CANCELLED) == 1
    (event,) = logs.named("invocation")
    assert (event["llm_calls"], event["failed_llm_calls"]) == (1, 0)
    stream.close()  # the late error finds nothing open: counted once
    assert value(registry, "llm_requests_total", model="gpt-4o-mini", status=CANCELLED) == 1
    assert monitor.runs_in_flight == 0


@pytest.mark.parametrize(
    ("replies", "fallback", "calls", "failed", "status"),
    [
        pytest.param([Reply.server_error()], False, 1, 1, "error", id="http-500"),
        pytest.param([Reply.server_error(), Reply.text("ok")], True, 2, 1, "success", id="fallback"),
    ],
)
def test_llm_calls_count_every_call_and_the_failed_ones_apart(
    monitor, logs, openai_server, replies, fallback, calls, failed, status
):
    """The invocation's llm_calls counts failed calls too; failed_llm_calls says how many failed."""
    openai_server.enqueue(*replies)
    model = chat(openai_server).with_fallbacks([chat(openai_server)]) if fallback else chat(openai_server)
    try:
        (PROMPT | model).invoke({"question": "hi"}, config={"callbacks": [monitor]})
    except Exception:  # noqa: BLE001 - the failing case raises, as the provider did
        assert status == "error"
    (event,) = logs.named("invocation")
    assert (event["llm_calls"], event["failed_llm_calls"], event["status"]) == (calls, failed, status)
