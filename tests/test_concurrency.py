"""One Monitor shared by many threads and asyncio tasks: exact counts, and the in-flight gauge back at zero."""

from __future__ import annotations

import asyncio
import gc
import random
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate

from langchain_llmmonitor.demo.app import DemoChatModel, ProviderOverloadedError, build_chain

from .conftest import fake_model, value

PROMPT = ChatPromptTemplate.from_messages([("human", "{question}")])


def test_many_threads_share_one_monitor(monitor, registry):
    """16 threads x 40 requests mixing invoke, stream and failures: every call counted once, gauge back to 0."""
    chain = build_chain(DemoChatModel(error_rate=0.2, latency_seconds=0.001, seed=3))
    outcomes: list[str] = []

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(40):
            try:
                if rng.random() < 0.5:
                    chain.invoke("How do I reset my password?", config={"callbacks": [monitor]})
                else:
                    "".join(chain.stream("What is the API rate limit?", config={"callbacks": [monitor]}))
                outcomes.append("success")
            except ProviderOverloadedError:
                outcomes.append("error")

    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(worker, range(16)))

    assert len(outcomes) == 640
    for status in ("success", "error"):
        expected = outcomes.count(status)
        assert value(registry, "llm_requests_total", model="gpt-4o-mini", status=status) == expected
        assert value(registry, "llm_invocations_total", name="support_bot", status=status) == expected
    assert 0 < outcomes.count("error") < 640
    assert value(registry, "llm_retriever_requests_total", retriever="VectorStoreRetriever", status="success") == 640
    assert value(registry, "llm_active_requests") == 0
    assert monitor.runs_in_flight == 0


async def test_many_asyncio_tasks_share_one_monitor(monitor, registry):
    """300 concurrent tasks (ainvoke, astream, cancellations): counts exact, gauge back to 0."""
    chain = PROMPT | fake_model() | StrOutputParser()
    config: dict[str, Any] = {"callbacks": [monitor]}

    async def ask(i: int) -> None:
        if i % 3 == 0:
            await chain.ainvoke({"question": str(i)}, config=config)
        else:
            async for _ in chain.astream({"question": str(i)}, config=config):
                await asyncio.sleep(0)

    await asyncio.gather(*(ask(i) for i in range(300)))
    assert value(registry, "llm_requests_total", model="gpt-4o-mini", status="success") == 300
    assert value(registry, "llm_time_to_first_token_seconds_count", model="gpt-4o-mini") == 200
    assert value(registry, "llm_tokens_total", model="gpt-4o-mini", type="prompt") == 300 * 120

    first_chunks = [asyncio.Event() for _ in range(100)]

    async def ask_slowly(started: asyncio.Event) -> None:
        async for _ in chain.astream({"question": "slow"}, config=config):
            started.set()
            await asyncio.sleep(0.01)

    tasks = [asyncio.create_task(ask_slowly(started)) for started in first_chunks]
    await asyncio.gather(*(started.wait() for started in first_chunks))
    for task in tasks[::2]:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for _ in range(200):
        if monitor.runs_in_flight == 0:
            break
        gc.collect()  # a cancelled astream's generators end (and send their callbacks) when they are collected
        await asyncio.sleep(0.01)
    finished = sum(
        value(registry, "llm_requests_total", model="gpt-4o-mini", status=status) for status in ("success", "cancelled")
    )
    assert finished == 400
    assert value(registry, "llm_requests_total", model="gpt-4o-mini", status="cancelled") == 50
    assert value(registry, "llm_requests_total", model="gpt-4o-mini", status="error") == 0
    assert value(registry, "llm_active_requests") == 0
    assert monitor.runs_in_flight == 0
