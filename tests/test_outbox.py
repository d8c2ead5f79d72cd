"""The outbox forwarder against the fake LangSmith over HTTP, with the real SDK and a real SQLite store.

Every test ends by asserting what LangSmith holds: each feedback id exactly once, whatever failed on the way.
"""

from __future__ import annotations

import select
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from langsmith.utils import LangSmithWarning, get_env_var
from prometheus_client import CollectorRegistry

from langchain_llmmonitor.config import LangSmithConfig
from langchain_llmmonitor.core.feedback import judge_feedback_id
from langchain_llmmonitor.core.records import EvaluationRecord, UserFeedbackRecord
from langchain_llmmonitor.langsmith.forwarder import Forwarder
from langchain_llmmonitor.storage.store import Store
from langchain_llmmonitor.testing.langsmith_server import FakeLangSmith, fast_client
from tests.conftest import LogRecorder, value

REPO_ROOT = Path(__file__).resolve().parents[1]
ITEMS_IN_KILL_TEST = 30
DB_NAME = "monitor.db"
FAR = (datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))


@pytest.fixture
def server() -> Iterator[FakeLangSmith]:
    with FakeLangSmith() as fake:
        yield fake


def point_langsmith_at(monkeypatch: pytest.MonkeyPatch, url: str, api_key: str = "test") -> None:
    """Configure the SDK through the environment, as an application would; the forwarder builds its own client."""
    for name in ("LANGCHAIN_ENDPOINT", "LANGCHAIN_API_KEY", "LANGSMITH_PROJECT", "LANGCHAIN_PROJECT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LANGSMITH_ENDPOINT", url)
    monkeypatch.setenv("LANGSMITH_API_KEY", api_key)
    get_env_var.cache_clear()


@pytest.fixture(autouse=True)
def fresh_env_cache() -> Iterator[None]:
    yield
    get_env_var.cache_clear()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store(tmp_path / DB_NAME)
    yield opened
    opened.close()


@pytest.fixture
def make_forwarder(
    store: Store, registry: CollectorRegistry, logs: LogRecorder, server: FakeLangSmith, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., Forwarder]]:
    """Forwarders with test-sized backoffs and no jitter, using the default client configured from the environment."""
    point_langsmith_at(monkeypatch, server.url)
    made: list[Forwarder] = []

    def make(**overrides: Any) -> Forwarder:
        settings: dict[str, Any] = dict(
            poll_interval_seconds=0.01,
            base_backoff_seconds=0.01,
            max_backoff_seconds=0.05,
            lease_seconds=5.0,
            request_timeout_seconds=2.0,
        )
        config = LangSmithConfig(**{**settings, **overrides})
        forwarder = Forwarder(store, config=config, registry=registry, logger=logs.logger, rng=lambda: 0.0)
        made.append(forwarder)
        return forwarder

    yield make
    for forwarder in made:
        assert forwarder.close(timeout=5)


def rating(index: int = 0, **changes: Any) -> UserFeedbackRecord:
    run_id = str(uuid.uuid4())
    fields: dict[str, Any] = dict(
        run_id=run_id,
        trace_id=run_id,
        score=1.0,
        rating="positive",
        comment=f"answer {index} was right",
        source="web",
        created_at=datetime.now(UTC) + timedelta(microseconds=index),
    )
    return UserFeedbackRecord(**{**fields, **changes})


def add_ratings(store: Store, count: int) -> list[str]:
    records = [rating(index) for index in range(count)]
    for record in records:
        store.add_user_feedback(record)
    return [record.id for record in records]


def feedback_ids(server: FakeLangSmith) -> list[str]:
    return sorted(feedback["id"] for feedback in server.feedback)


def eventually(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_judge_scores_and_user_rating_land_once_with_every_field(
    server: FakeLangSmith, store: Store, make_forwarder: Callable[..., Forwarder], registry: CollectorRegistry
) -> None:
    """Each score and the rating arrive once, synchronously, on the root run with trace, project, comment and source."""
    admin = fast_client(server.url)
    project = admin.create_project("shop-assistant")
    admin.close(timeout=5)
    run_id = str(uuid.uuid4())
    evaluation = EvaluationRecord(
        run_id=run_id,
        trace_id=run_id,
        project="shop-assistant",
        judge="offline",
        judge_model="offline-v1",
        prompt_version="2026-03",
        sampling="forced",
        sample_reason="feedback",
        status="success",
        faithfulness=2,
        relevance=4,
        completeness=3,
        hallucination=True,
        reason="invents opening hours",
    )
    store.add_evaluation(evaluation)
    user = rating(run_id=run_id, trace_id=run_id, score=0.0, rating="negative", comment="wrong hours")
    store.add_user_feedback(user)
    forwarder = make_forwarder()

    assert forwarder.flush(timeout=10)
    assert forwarder.deliver_once() == 0

    stored = {feedback["key"]: feedback for feedback in server.feedback}
    assert {key: (f["id"], f["score"]) for key, f in stored.items()} == {
        "faithfulness": (judge_feedback_id(evaluation.id, "faithfulness"), 2),
        "relevance": (judge_feedback_id(evaluation.id, "relevance"), 4),
        "completeness": (judge_feedback_id(evaluation.id, "completeness"), 3),
        "hallucination": (judge_feedback_id(evaluation.id, "hallucination"), 1.0),
        "user_rating": (user.id, 0.0),
    }
    assert all((f["run_id"], f["trace_id"]) == (run_id, run_id) for f in stored.values())
    assert stored["faithfulness"]["session_id"] == str(project.id)
    assert stored["faithfulness"]["comment"] == "invents opening hours"
    assert stored["faithfulness"]["feedback_source"] == {
        "type": "model",
        "metadata": {
            "judge": "offline",
            "judge_model": "offline-v1",
            "prompt_version": "2026-03",
            "sampling": "forced",
            "sample_reason": "feedback",
        },
    }
    assert (stored["user_rating"]["value"], stored["user_rating"]["comment"]) == ("negative", "wrong hours")
    assert stored["user_rating"]["feedback_source"]["type"] == "api"
    assert stored["user_rating"]["session_id"] == server.sessions[0]["id"]  # no project: the env default's
    assert (server.count("POST /feedback"), server.count("POST /runs/multipart"), server.duplicates) == (5, 0, [])
    assert value(registry, "llm_feedback_delivered_total", kind="judge") == 4
    assert value(registry, "llm_feedback_delivered_total", kind="user") == 1
    assert value(registry, "llm_feedback_outbox_pending") == 0


def test_project_unknown_to_langsmith_is_sent_without_it_and_looked_up_once(
    server: FakeLangSmith, store: Store, make_forwarder: Callable[..., Forwarder]
) -> None:
    """Feedback for a project LangSmith has never seen still lands; the miss is cached, not asked per item."""
    for index in range(3):
        store.add_user_feedback(rating(index, project="never-traced"))

    with pytest.warns(LangSmithWarning, match="without session_id"):
        assert make_forwarder().flush(timeout=10)
    assert [feedback["session_id"] for feedback in server.feedback] == [None, None, None]
    assert server.count("GET /sessions") == 1


def test_outage_then_restart_on_the_same_port_delivers_everything_once(
    server: FakeLangSmith, store: Store, make_forwarder: Callable[..., Forwarder], registry: CollectorRegistry
) -> None:
    """The thread keeps retrying while LangSmith is down and delivers everything once it is back."""
    forwarder = make_forwarder()
    forwarder.start()
    server.stop()
    ids = add_ratings(store, 6)
    assert eventually(lambda: value(registry, "llm_feedback_delivery_failures_total", reason="unavailable") >= 3)
    assert value(registry, "llm_feedback_outbox_pending") == 6

    server.start()
    assert server.wait_until(lambda: len(server.feedback) == 6, timeout=10)
    assert forwarder.close(timeout=5)

    assert feedback_ids(server) == sorted(ids)
    assert server.duplicates == []
    assert store.pending_count() == 0


def test_a_burst_of_503_costs_one_attempt_per_failure(
    server: FakeLangSmith, store: Store, make_forwarder: Callable[..., Forwarder], registry: CollectorRegistry
) -> None:
    """During a 503 burst each pass stops at the first failure; the untried rest of the batch is not charged."""
    server.fail_next(4, status=503, path="/feedback")
    ids = add_ratings(store, 3)

    assert make_forwarder().flush(timeout=10)
    statuses = [record.status for record in server.request_log if record.endpoint == "POST /feedback"]
    assert statuses == [503] * 4 + [200] * 3
    assert value(registry, "llm_feedback_delivery_failures_total", reason="unavailable") == 4
    assert sum(item.attempts for item in map(store.outbox_item, ids) if item) == 7
    assert feedback_ids(server) == sorted(ids)


def test_429_waits_at_least_the_retry_after(
    server: FakeLangSmith, store: Store, make_forwarder: Callable[..., Forwarder], registry: CollectorRegistry
) -> None:
    """A 429's Retry-After outweighs the (tiny) backoff; once it has passed the item is delivered."""
    server.fail_next(1, status=429, path="/feedback", retry_after=1)
    [item_id] = add_ratings(store, 1)
    forwarder = make_forwarder()
    before = datetime.now(UTC)

    assert forwarder.deliver_once() == 0
    waiting = store.outbox_item(item_id)
    assert waiting is not None and waiting.next_attempt_at >= before + timedelta(seconds=1)
    assert waiting.last_error is not None and waiting.last_error.startswith("HTTP 429")
    assert value(registry, "llm_feedback_delivery_failures_total", reason="rate_limited") == 1
    assert forwarder.flush(timeout=10)
    assert feedback_ids(server) == [item_id]


def test_response_slower_than_the_timeout_is_resent_and_stored_once(
    server: FakeLangSmith, store: Store, make_forwarder: Callable[..., Forwarder], registry: CollectorRegistry
) -> None:
    """The server stores a request whose answer came too late; the re-send with the same id is not a second feedback."""
    server.set_delay(0.8, path="/feedback")
    [item_id] = add_ratings(store, 1)
    forwarder = make_forwarder(request_timeout_seconds=0.3)

    assert forwarder.deliver_once() == 0
    assert value(registry, "llm_feedback_delivery_failures_total", reason="timeout") == 1
    assert server.wait_until(lambda: len(server.feedback) == 1)
    server.set_delay(0)
    assert forwarder.flush(timeout=10)

    assert feedback_ids(server) == [item_id]
    assert server.duplicates == [{"kind": "feedback", "id": item_id, "endpoint": "POST /feedback"}]


@pytest.mark.parametrize(
    ("fault", "bad_changes", "status"),
    [
        pytest.param(400, {}, 400, id="400"),
        pytest.param(None, {"key": ""}, 422, id="422-invalid-feedback"),
    ],
)
def test_refused_item_is_parked_while_the_others_flow(
    server: FakeLangSmith,
    store: Store,
    make_forwarder: Callable[..., Forwarder],
    registry: CollectorRegistry,
    logs: LogRecorder,
    fault: int | None,
    bad_changes: dict[str, Any],
    status: int,
) -> None:
    """An item LangSmith refuses for good is parked with its error, once; the items after it are delivered."""
    if fault is not None:
        server.fail_next(1, status=fault, path="/feedback")
    bad = rating(0, **bad_changes)
    store.add_user_feedback(bad)
    good = add_ratings(store, 3)

    assert make_forwarder().flush(timeout=10)
    [parked] = store.dead_items()
    assert parked.id == bad.id
    assert parked.last_error is not None and parked.last_error.startswith(f"HTTP {status}")
    assert feedback_ids(server) == sorted(good)
    assert value(registry, "llm_feedback_delivery_failures_total", reason="rejected") == 1
    assert [event["feedback_id"] for event in logs.named("feedback_parked")] == [bad.id]
    assert server.count("POST /feedback", status=status) == 1


def test_bad_key_waits_the_longest_backoff_and_is_not_parked(
    store: Store,
    make_forwarder: Callable[..., Forwarder],
    registry: CollectorRegistry,
    logs: LogRecorder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """401 is retried every max_backoff (a key can be fixed), never parked, and the key is not logged."""
    key = "lsv2_pt_0123456789abcdef_wrong"
    with FakeLangSmith(api_key="lsv2_pt_right") as guarded:
        [item_id] = add_ratings(store, 1)
        forwarder = make_forwarder(max_backoff_seconds=30.0)
        point_langsmith_at(monkeypatch, guarded.url, api_key=key)
        before = datetime.now(UTC)

        assert forwarder.deliver_once() == 0
    waiting = store.outbox_item(item_id)
    assert waiting is not None and waiting.dead_at is None
    assert waiting.next_attempt_at >= before + timedelta(seconds=30)
    assert value(registry, "llm_feedback_delivery_failures_total", reason="auth") == 1
    assert logs.named("feedback_delivery_failed")[0]["reason"] == "auth"
    assert "0123456789abcdef" not in repr(logs.events) + (waiting.last_error or "")


def test_conflict_means_the_feedback_already_exists(
    store: Store,
    make_forwarder: Callable[..., Forwarder],
    registry: CollectorRegistry,
    logs: LogRecorder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On a strict server a re-sent id gets 409, which counts as delivered, not as a failure."""
    record = rating()
    store.add_user_feedback(record)
    with FakeLangSmith(duplicate_feedback_status=409) as strict:
        earlier = fast_client(strict.url)
        session_id = strict.sessions[0]["id"]
        earlier.create_feedback(
            run_id=record.run_id, key="user_rating", score=1.0, feedback_id=record.id, session_id=session_id
        )
        earlier.close(timeout=5)
        forwarder = make_forwarder()
        point_langsmith_at(monkeypatch, strict.url)

        assert forwarder.flush(timeout=10)
    assert strict.count("POST /feedback", status=409) == 1
    assert [feedback["id"] for feedback in strict.feedback] == [record.id]
    assert value(registry, "llm_feedback_delivered_total", kind="user") == 1
    assert logs.named("feedback_delivery_failed") == []


def test_client_with_a_background_queue_is_refused(server: FakeLangSmith, store: Store) -> None:
    """A client that would queue feedback unconfirmed is a configuration error, reported at once."""
    queued = fast_client(server.url)
    with pytest.raises(ValueError, match="auto_batch_tracing=False"):
        Forwarder(store, client=queued)
    queued.close(timeout=5)


def test_killed_forwarder_process_loses_nothing_and_doubles_nothing(
    server: FakeLangSmith, store: Store, tmp_path: Path, make_forwarder: Callable[..., Forwarder]
) -> None:
    """SIGKILL mid-delivery, then a new forwarder on the same file: every feedback is in LangSmith exactly once."""
    database = tmp_path / DB_NAME  # the `store` fixture's file
    server.fail_next(3, status=503, path="/feedback")
    server.set_delay(0.1, path="/feedback")
    with open(tmp_path / "worker.log", "w") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "tests._outbox_worker", str(database), server.url, str(ITEMS_IN_KILL_TEST)],
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
        try:
            assert worker.stdout is not None
            assert select.select([worker.stdout], [], [], 30)[0] and worker.stdout.readline().strip() == "ready"
            assert server.wait_until(lambda: len(server.feedback) >= 8, timeout=20)
        finally:
            worker.kill()
            worker.wait()
            assert worker.stdout is not None
            worker.stdout.close()
    landed_before_restart = len(server.feedback)
    assert 8 <= landed_before_restart < ITEMS_IN_KILL_TEST
    server.set_delay(0)

    assert make_forwarder().flush(timeout=15)
    written = sorted(record.id for record in store.user_feedback(*FAR))
    assert len(written) == ITEMS_IN_KILL_TEST
    assert feedback_ids(server) == written
