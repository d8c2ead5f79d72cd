"""One lifecycle for every background worker and for the Monitor: lazy start, flush, idempotent close, drain at
interpreter exit, restart in a forked child, and a Monitor that records nothing after it is closed."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from langchain_core.prompts import ChatPromptTemplate

from langchain_llmmonitor import LangSmithConfig, Monitor, MonitorConfig, OfflineJudge, StoreConfig
from langchain_llmmonitor.storage.store import Store
from langchain_llmmonitor.testing.langsmith_server import FakeLangSmith, fast_client
from langchain_llmmonitor.workers import QUEUE_FULL, SHUTDOWN, Worker

from .conftest import fake_model, value

ROOT = Path(__file__).resolve().parent.parent
EVER = (datetime.now(UTC) - timedelta(days=1), datetime.now(UTC) + timedelta(days=1))
PROMPT = ChatPromptTemplate.from_messages([("human", "{question}")])
WAIT_S = 10.0


class Recorder(Worker[int]):
    """A worker that keeps what it processed and what it dropped; `gate` holds it inside its work."""

    def __init__(self, **options: Any) -> None:
        super().__init__(name="test-recorder", **options)
        self.done: list[int] = []
        self.drops: list[tuple[int, str]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.released = 0

    def _work(self, batch: list[int]) -> None:
        self.gate.wait(WAIT_S)
        self.done.extend(batch)

    def _dropped(self, count: int, reason: str) -> None:
        self.drops.append((count, reason))

    def _release(self) -> None:
        self.released += 1


def recorder_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name.startswith("test-recorder")]


def test_threads_start_with_the_first_item_and_flush_waits_for_the_work():
    """No thread before there is work; flush returns once everything accepted is processed."""
    before = len(recorder_threads())
    worker = Recorder(threads=2)
    assert len(recorder_threads()) == before
    assert all(worker.submit(index) for index in range(50))
    assert worker.flush(WAIT_S)
    assert sorted(worker.done) == list(range(50))
    assert len(recorder_threads()) == before + 2
    assert worker.close(WAIT_S)


def test_close_is_idempotent_and_later_items_are_counted_as_shutdown_drops():
    """A second close returns the first's answer without releasing twice; items after close are dropped, counted."""
    worker = Recorder()
    worker.submit(1)
    assert worker.close(WAIT_S) is True
    assert worker.close(WAIT_S) is True
    assert worker.released == 1
    assert worker.submit(2) is False
    assert worker.drops == [(1, SHUTDOWN)]
    assert not any(thread.is_alive() for thread in worker._threads)


def test_a_full_queue_drops_each_item_and_close_counts_what_was_left():
    """With the worker stuck, items beyond the capacity are dropped one by one; close reports the exact rest."""
    worker = Recorder(capacity=3)
    worker.gate.clear()
    assert worker.submit(0)  # taken by the thread, which now waits at the gate
    for _ in range(100):
        if worker._board.in_flight:
            break
        threading.Event().wait(0.01)
    results = [worker.submit(index) for index in range(1, 6)]
    assert results == [True, True, True, False, False]
    assert worker.drops == [(1, QUEUE_FULL), (1, QUEUE_FULL)]
    closing = threading.Thread(target=worker.close, args=(0.2,))
    closing.start()
    closing.join(WAIT_S)
    worker.gate.set()
    assert worker.drops[-1] == (3, SHUTDOWN)
    assert worker.close() is False  # the first close's answer: three items were never done


def test_concurrent_closes_run_the_shutdown_once():
    """Several threads closing at once: one shutdown, one release, the same answer for all."""
    worker = Recorder()
    worker.submit(1)
    answers: list[bool] = []
    closers = [threading.Thread(target=lambda: answers.append(worker.close(WAIT_S))) for _ in range(8)]
    for closer in closers:
        closer.start()
    for closer in closers:
        closer.join(WAIT_S)
    assert answers == [True] * 8 and worker.released == 1


def monitored(monitor: Monitor, count: int, prefix: str = "q") -> None:
    chain = PROMPT | fake_model()
    for index in range(count):
        chain.invoke({"question": f"{prefix}{index}"}, config={"callbacks": [monitor]})


def stored_invocations(path: Path) -> int:
    store = Store(path)
    try:
        return len(list(store.invocations(*EVER)))
    finally:
        store.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX only")
def test_a_forked_child_writes_and_judges_its_own_invocations(tmp_path: Path, registry, logs):
    """After a warm-up in the parent (gunicorn --preload), a forked child's writer and judge pool work again."""
    path = tmp_path / "m.db"
    monitor = Monitor(registry=registry, logger=logs.logger, judge=OfflineJudge(), sample_rate=1.0, store=path)
    monitored(monitor, 1, "parent")
    assert monitor.flush(WAIT_S)
    pid = os.fork()
    if pid == 0:  # the child: report through the exit code only
        try:
            monitored(monitor, 20, "child")
            drained = monitor.flush(WAIT_S)
            written = len(list(monitor.store.invocations(*EVER)))
            os._exit(0 if drained and written == 21 else 1)
        except BaseException:  # noqa: BLE001 - a child must never return into pytest
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert stored_invocations(path) == 21
    monitor.close()


def test_interpreter_exit_writes_what_was_queued(tmp_path: Path):
    """A script that never closes its Monitor still gets every invocation stored before the process ends."""
    path = tmp_path / "exit.db"
    script = textwrap.dedent(
        f"""
        from langchain_core.prompts import ChatPromptTemplate
        from langchain_llmmonitor import Monitor, MonitorConfig, StoreConfig
        from tests.conftest import fake_model

        config = MonitorConfig(store=StoreConfig(url={str(path)!r}, flush_interval_seconds=30.0))
        monitor = Monitor(config, sample_rate=0.0)
        chain = ChatPromptTemplate.from_messages([("human", "{{question}}")]) | fake_model()
        for index in range(40):
            chain.invoke({{"question": str(index)}}, config={{"callbacks": [monitor]}})
        """
    )
    subprocess.run([sys.executable, "-c", script], cwd=ROOT, check=True, timeout=120)
    assert stored_invocations(path) == 40


def test_a_closed_monitor_records_nothing_and_gives_back_runs_in_flight(registry, logs):
    """After close, callbacks do nothing; a stream open at close returns its in-flight count, counted as evicted."""
    chain = PROMPT | fake_model(answer="one two three")
    with Monitor(registry=registry, logger=logs.logger) as monitor:
        chain.invoke({"question": "before"}, config={"callbacks": [monitor]})
        stream = chain.stream({"question": "open at close"}, config={"callbacks": [monitor]})
        next(stream)
        assert value(registry, "llm_active_requests") == 1
    assert value(registry, "llm_active_requests") == 0
    assert value(registry, "llm_monitor_runs_evicted_total", kind="llm", reason="closed") == 1
    list(stream)  # its late end is ignored
    chain.invoke({"question": "after"}, config={"callbacks": [monitor]})
    assert value(registry, "llm_requests_total", model="gpt-4o-mini", status="success") == 1
    assert value(registry, "llm_active_requests") == 0
    assert value(registry, "llm_monitor_handler_errors_total", event="on_llm_end") == 0
    assert monitor.runs_in_flight == 0


def test_monitor_close_is_idempotent_and_drains_the_store(tmp_path: Path, registry, logs):
    """Close writes what was queued, closes the store it opened, and answers the same the second time."""
    config = MonitorConfig(store=StoreConfig(url=str(tmp_path / "m.db"), flush_interval_seconds=30.0))
    monitor = Monitor(config, registry=registry, logger=logs.logger, sample_rate=0.0)
    monitored(monitor, 5)
    assert monitor.close(WAIT_S) is True
    assert monitor.close(WAIT_S) is True
    assert stored_invocations(tmp_path / "m.db") == 5
    assert value(registry, "llm_monitor_dropped_total", what="invocation", reason="shutdown") == 0


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX only")
def test_a_forked_child_forwards_its_ratings_to_langsmith(tmp_path: Path, registry, logs):
    """The forwarder, started in the parent, runs again in a forked child and delivers the child's ratings."""
    with FakeLangSmith() as server:
        client = fast_client(server.url, auto_batch_tracing=False)
        config = MonitorConfig(langsmith=LangSmithConfig(project="support", poll_interval_seconds=0.05))
        monitor = Monitor(
            config,
            registry=registry,
            logger=logs.logger,
            sample_rate=0.0,
            store=tmp_path / "m.db",
            langsmith_client=client,
        )
        assert monitor.forwarder is not None
        pid = os.fork()
        if pid == 0:  # the child: report through the exit code only; it never calls flush, its thread delivers
            try:
                config = {"callbacks": [monitor], "metadata": {"request_id": "child-1"}}
                (PROMPT | fake_model()).invoke({"question": "from the child"}, config=config)
                monitor.feedback("child-1", score=-1)
                deadline = time.monotonic() + WAIT_S
                while monitor.store.pending_count() and time.monotonic() < deadline:
                    time.sleep(0.05)
                os._exit(0 if monitor.store.pending_count() == 0 else 1)
            except BaseException:  # noqa: BLE001 - a child must never return into pytest
                os._exit(2)
        assert monitor.forwarder.close(WAIT_S)  # the parent stops forwarding: only the child's thread can deliver
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert [item["key"] for item in server.feedback] == ["user_rating"]
        monitor.close()
