"""Nothing lost between the callback and the store: database outages during traffic, bad rows, `kill -9`, a normal
exit with jobs queued, several `llmmonitor worker` processes, ratings that reach another process, and an outbox that
only exists when something forwards it. Real SQLite files, a real PostgreSQL, real processes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from langchain_llmmonitor import Monitor, MonitorConfig
from langchain_llmmonitor.config import StoreConfig
from langchain_llmmonitor.core.records import InvocationRecord
from langchain_llmmonitor.demo.app import build_chain
from langchain_llmmonitor.quality.judges import OfflineJudge
from langchain_llmmonitor.storage.schema import metadata
from langchain_llmmonitor.storage.store import Store
from langchain_llmmonitor.storage.writer import StoreWriter
from langchain_llmmonitor.telemetry.metrics import metrics_for
from tests._outages import lock_sqlite, stop_postgres_database
from tests._postgres import postgres_url  # noqa: F401 - the fixture
from tests.conftest import value

ROOT = Path(__file__).resolve().parent.parent
QUESTION = "How long do I have to return an item?"
EVER = (datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))
OUTAGE_S = 5.0


@pytest.fixture(params=[pytest.param("sqlite", id="sqlite"), pytest.param("postgres", id="postgres")])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """("sqlite" | "postgres", where the store lives); the PostgreSQL tables are dropped after the test."""
    if request.param == "sqlite":
        yield "sqlite", str(tmp_path / "monitor.db")
        return
    url = request.getfixturevalue("postgres_url")
    yield "postgres", url
    cleaner = Store(url)
    metadata.drop_all(cleaner.engine)
    cleaner.close()


def _invocation(index: int, **changes: object) -> InvocationRecord:
    run_id = str(uuid.UUID(int=index + 1))
    fields: dict[str, object] = dict(
        run_id=run_id,
        trace_id=run_id,
        name="rag",
        status="success",
        started_at=datetime(2026, 11, 30, tzinfo=UTC) + timedelta(seconds=index),
        latency_s=0.5,
        request_id=f"req-{index}",
    )
    return InvocationRecord(**{**fields, **changes})  # type: ignore[arg-type]


def _traffic(monitor: Monitor, stop: threading.Event, sent: list[int]) -> threading.Thread:
    chain = build_chain()

    def send() -> None:
        while not stop.is_set():
            chain.invoke(QUESTION, config={"callbacks": [monitor]})
            sent[0] += 1
            time.sleep(0.005)

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    return thread


def test_an_outage_of_five_seconds_during_traffic_loses_no_row_and_no_evaluation(
    backend: tuple[str, str], registry: CollectorRegistry, logs
) -> None:
    """SQLite locked / PostgreSQL refusing connections for 5 s while requests flow: every invocation and every
    sampled evaluation is stored, once, and nothing is counted as dropped."""
    kind, url = backend
    store = Store(url, busy_timeout_seconds=0.2)
    monitor = Monitor(registry=registry, logger=logs.logger, judge=OfflineJudge(), sample_rate=0.3, store=store)
    stop, sent = threading.Event(), [0]
    sender = _traffic(monitor, stop, sent)
    time.sleep(0.5)
    outage = lock_sqlite(url, OUTAGE_S) if kind == "sqlite" else stop_postgres_database(url, OUTAGE_S)
    outage.join()
    time.sleep(0.5)
    stop.set()
    sender.join()
    assert monitor.flush(60)
    invocations = list(store.invocations(*EVER))
    evaluations = list(store.evaluations(*EVER))
    sampled = value(registry, "llm_quality_samples_total", reason="rate")
    assert len(invocations) == sent[0] > 100
    assert len(evaluations) == len({e.run_id for e in evaluations}) == sampled > 0
    assert b"llm_monitor_dropped_total{" not in generate_latest(registry)
    assert value(registry, "llm_judge_dropped_total", reason="queue_full") == 0
    assert logs.named("store_unavailable") and logs.named("store_available")
    monitor.close()
    store.close()


@pytest.mark.parametrize(
    "bad, stored_as",
    [
        pytest.param("req-\x00-nul", "req-\ufffd-nul", id="nul"),
        pytest.param("req-\ud800-surrogate", "req-\ufffd-surrogate", id="lone-surrogate"),
        pytest.param("r" * 500, "r" * 200, id="too-long"),
    ],
)
def test_a_row_with_unstorable_text_among_99_good_ones_is_stored_made_safe(
    backend: tuple[str, str], bad: str, stored_as: str
) -> None:
    """NUL (PostgreSQL refuses it), a lone surrogate (SQLite refuses it) or an over-long id: 100 of 100 rows stored."""
    store = Store(backend[1])
    store.add_invocations([_invocation(index) for index in range(99)] + [_invocation(99, request_id=bad)])
    stored = list(store.invocations(*EVER))
    assert len(stored) == 100
    assert stored[-1].request_id == stored_as
    store.close()


def test_a_row_the_database_refuses_loses_only_itself(tmp_path: Path, registry: CollectorRegistry, logs) -> None:
    """A batch of 100 with one row breaking a constraint: the batch is split, 99 stored, exactly 1 counted and logged."""
    store = Store(tmp_path / "monitor.db")
    writer = StoreWriter(store, metrics=metrics_for(registry), logger=logs.logger, config=StoreConfig(batch_size=100))
    for index in range(100):
        assert writer.submit(_invocation(index, name=None if index == 42 else "rag"))
    assert writer.flush(10)
    writer.close()
    assert len(list(store.invocations(*EVER))) == 99
    assert value(registry, "llm_monitor_dropped_total", what="invocation", reason="bad_row") == 1
    assert [(e["reason"], e["lost"]) for e in logs.named("store_rows_dropped")] == [("bad_row", 1)]
    assert "IntegrityError" in logs.named("store_rows_dropped")[0]["error"]
    store.close()


def test_beyond_the_buffer_rows_are_dropped_counted_and_logged_with_their_number(
    tmp_path: Path, registry: CollectorRegistry, logs
) -> None:
    """While the store is locked the writer holds `queue_size` rows; the rest are dropped, each counted, and logged
    with the exact number; the held rows are stored when the lock goes."""
    path = tmp_path / "monitor.db"
    store = Store(path, busy_timeout_seconds=0.05)
    config = StoreConfig(queue_size=50, batch_size=10, flush_interval_seconds=0.01)
    writer = StoreWriter(store, metrics=metrics_for(registry), logger=logs.logger, config=config)
    lock = lock_sqlite(path, 1.5)
    accepted = sum(writer.submit(_invocation(index)) for index in range(200))
    lock.join()
    assert writer.flush(10)
    writer.close()
    dropped = value(registry, "llm_monitor_dropped_total", what="invocation", reason="queue_full")
    assert accepted + dropped == 200 and dropped >= 140
    assert len(list(store.invocations(*EVER))) == accepted
    assert sum(e["lost"] for e in logs.named("store_rows_dropped")) == dropped
    store.close()


def _app(store: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests._durable_app", store, *args],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def _worker(store: str, *args: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "langchain_llmmonitor.cli", "worker", "--store", store, "--no-forward", *args]
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _judged_once(store: Store, expected: int) -> None:
    evaluations = list(store.evaluations(*EVER))
    assert len(evaluations) == expected
    assert Counter(e.run_id for e in evaluations).most_common(1)[0][1] == 1
    assert store.pending_jobs() == 0 and store.job_outcomes() == {"judged": expected}


@pytest.mark.slow
def test_jobs_of_a_killed_process_are_judged_once_by_the_next_worker(tmp_path: Path) -> None:
    """`kill -9` with 20 sampled traces queued: a `llmmonitor worker` on the same store judges each exactly once."""
    path = str(tmp_path / "monitor.db")
    app = _app(path, "kill", "20")
    assert app.stdout.readline().strip() == "stored"  # type: ignore[union-attr]
    app.kill()
    app.wait(10)
    store = Store(path)
    assert len(list(store.evaluations(*EVER))) < 20 < store.pending_jobs() + 20
    worker = _worker(path, "--judge", "offline", "--idle-exit", "0.5")
    assert worker.wait(60) == 0, worker.stderr.read()  # type: ignore[union-attr]
    _judged_once(store, 20)
    store.close()


@pytest.mark.slow
def test_a_normal_exit_leaves_queued_jobs_pending_and_the_next_process_judges_them(
    tmp_path: Path, registry: CollectorRegistry, logs
) -> None:
    """An exit with a slow judge and a short drain: jobs stay pending in the store, and the next Monitor on it
    judges every one exactly once."""
    path = str(tmp_path / "monitor.db")
    app = _app(path, "exit", "20")
    assert app.stdout.readline().strip() == "stored"  # type: ignore[union-attr]
    assert app.wait(30) == 0
    store = Store(path)
    left = store.pending_jobs()
    assert left > 0 and len(list(store.evaluations(*EVER))) + left == 20
    with Monitor(registry=registry, logger=logs.logger, judge=OfflineJudge(), store=store) as monitor:
        assert monitor.flush(30)
    _judged_once(store, 20)
    store.close()


@pytest.mark.slow
def test_two_workers_on_one_postgres_store_share_the_jobs_without_double_work(
    postgres_url: str,  # noqa: F811 - the fixture
    registry: CollectorRegistry,
    logs,
) -> None:
    """40 jobs stored by an application that does not judge; two `llmmonitor worker` processes judge each once,
    and both take part."""
    config = MonitorConfig.from_mapping({"judge": {"in_process": False}, "sampling": {"rate": 1.0}})
    with Monitor(config, registry=registry, logger=logs.logger, store=postgres_url) as monitor:
        chain = build_chain()
        for _ in range(40):
            chain.invoke(QUESTION, config={"callbacks": [monitor]})
        assert monitor.flush(10)
        assert monitor.store.pending_jobs() == 40  # type: ignore[union-attr]
    workers = [
        _worker(postgres_url, "--judge", "tests._durable_app:slow_judge", "--threads", "2", "--idle-exit", "1")
        for _ in range(2)
    ]
    outputs = [worker.communicate(timeout=120)[0] for worker in workers]
    assert [worker.returncode for worker in workers] == [0, 0]
    judged = [output.count("quality_eval") for output in outputs]
    assert sum(judged) == 40 and min(judged) > 0
    store = Store(postgres_url)
    try:
        _judged_once(store, 40)
    finally:
        metadata.drop_all(store.engine)
        store.close()


@pytest.mark.slow
def test_a_thumbs_down_that_reaches_another_process_is_judged_by_the_one_holding_the_trace(
    tmp_path: Path, registry: CollectorRegistry, logs
) -> None:
    """Process A answered (not sampled); the rating reaches this process, which never saw the trace: A judges it."""
    path = str(tmp_path / "monitor.db")
    app = _app(path, "hold")
    run_id = app.stdout.readline().strip()  # type: ignore[union-attr]
    with Monitor(registry=registry, logger=logs.logger, judge=OfflineJudge(), store=path) as monitor:
        deadline = time.monotonic() + 10
        while monitor.store.find_run(run_id) is None and time.monotonic() < deadline:  # type: ignore[union-attr]
            time.sleep(0.05)
        monitor.feedback(run_id, score=-1)
        deadline = time.monotonic() + 20
        while not list(monitor.store.evaluations(*EVER)) and time.monotonic() < deadline:  # type: ignore[union-attr]
            time.sleep(0.1)
        (evaluation,) = list(monitor.store.evaluations(*EVER))  # type: ignore[union-attr]
    app.stdin.close()  # type: ignore[union-attr]
    assert app.wait(20) == 0
    assert (evaluation.run_id, evaluation.sample_reason) == (run_id, "feedback")


@pytest.mark.parametrize(
    "outbox, queued",
    [pytest.param(None, False, id="nothing-forwards"), pytest.param(True, True, id="another-process-forwards")],
)
def test_the_outbox_only_grows_when_something_forwards_it_and_its_gauge_is_the_store_count(
    tmp_path: Path, registry: CollectorRegistry, logs, outbox: bool | None, queued: bool
) -> None:
    """Without LangSmith nothing is queued for it; when another process forwards, the gauge equals the store count."""
    config = MonitorConfig.from_mapping({"store": {"url": str(tmp_path / "m.db"), "outbox": outbox}})
    with Monitor(config, registry=registry, logger=logs.logger, judge=OfflineJudge(), sample_rate=1.0) as monitor:
        chain = build_chain()
        for _ in range(20):
            chain.invoke(QUESTION, config={"callbacks": [monitor], "run_id": (run_id := uuid.uuid4())})
        assert monitor.flush(20)
        monitor.feedback(str(run_id), score=-1)
        pending = monitor.store.pending_count()  # type: ignore[union-attr]
        assert (pending > 0) == queued and pending == (20 * 4 + 1 if queued else 0)
        assert value(registry, "llm_feedback_outbox_pending") == pending


def test_jobs_left_to_workers_need_a_store(registry: CollectorRegistry) -> None:
    """`judge.in_process=False` without a store would judge nothing anywhere: refused at construction."""
    config = MonitorConfig.from_mapping({"judge": {"in_process": False}})
    with pytest.raises(ValueError, match="needs a store"):
        Monitor(config, registry=registry)


@pytest.mark.parametrize(
    "spec, problem",
    [
        pytest.param("nonsense", "must be auto, offline, openai or module:attribute", id="not-a-judge-spec"),
        pytest.param("tests._durable_app:QUESTION", "is not a judge", id="not-a-judge"),
    ],
)
def test_worker_refuses_a_judge_it_cannot_use(tmp_path: Path, spec: str, problem: str) -> None:
    """`llmmonitor worker --judge` that names no judge exits 2 before touching the store, saying what is allowed."""
    worker = _worker(str(tmp_path / "m.db"), "--judge", spec)
    assert worker.wait(60) == 2
    assert problem in worker.stderr.read()  # type: ignore[union-attr]
    assert not (tmp_path / "m.db").exists()


@pytest.mark.slow
def test_two_app_processes_judge_every_thumbs_down_whichever_one_it_reaches(tmp_path: Path) -> None:
    """Two uvicorn app processes on one store (as `--workers 2`, but each on its own port so that which process gets
    a rating is chosen, not left to the kernel): 12 answers from the first, rated down alternately on the first and
    on the second, which never saw them; every one is judged once."""
    path = tmp_path / "monitor.db"
    ports = [_free_port(), _free_port()]
    servers = [
        subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "tests._fleet_app:app", "--port", str(port)],
            cwd=ROOT,
            env={**os.environ, "LLMMONITOR_TEST_STORE": str(path)},
            stderr=subprocess.DEVNULL,
        )
        for port in ports
    ]
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    try:
        for url in urls:
            _wait_for(lambda url=url: httpx.get(f"{url}/docs").status_code == 200, timeout=30)
        answered = [httpx.post(f"{urls[0]}/ask") for _ in range(12)]
        rated = [_rate_down(urls[index % 2], answer.json()["run_id"]) for index, answer in enumerate(answered)]
        pids = {answer.headers["X-Worker-Pid"] for answer in answered}
        assert len(pids) == 1 and sum(r.headers["X-Worker-Pid"] not in pids for r in rated) == 6
        store = Store(path)
        _wait_for(lambda: len(list(store.evaluations(*EVER))) == 12, timeout=30)
        evaluations = list(store.evaluations(*EVER))
        assert sorted(e.run_id for e in evaluations) == sorted(a.json()["run_id"] for a in answered)
        assert {e.sample_reason for e in evaluations} == {"feedback"}
        store.close()
    finally:
        for server in servers:
            server.terminate()
            server.wait(30)


def _rate_down(url: str, run_id: str) -> Any:
    """POST a thumbs-down until it is taken (404 while the run is not yet in the store for the other worker)."""
    deadline = time.monotonic() + 10
    while (rated := httpx.post(f"{url}/feedback", json={"run_id": run_id, "rating": -1})).status_code == 404:
        assert time.monotonic() < deadline, rated.text
        time.sleep(0.1)
    assert rated.status_code == 201, rated.text
    return rated


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if condition():
                return
        except httpx.TransportError:  # not listening yet
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout} s")
        time.sleep(0.05)


def test_worker_errors_never_print_the_store_password(tmp_path: Path) -> None:
    """A store URL that cannot be opened is reported without its password."""
    worker = _worker("postgresql+psycopg://app:s3cr3t-pw@127.0.0.1:1/db", "--judge", "offline")
    assert worker.wait(60) == 2
    error = worker.stderr.read()  # type: ignore[union-attr]
    assert error.startswith("llmmonitor worker: error:") and "s3cr3t-pw" not in error
