"""The outbox forwarder against the fake LangSmith over HTTP, with the real SDK and a real SQLite store.

Every test ends by asserting what LangSmith holds: each feedback id exactly once, whatever failed on the way.
"""

from __future__ import annotations

import select
import subprocess
import sys
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from langsmith.utils import LangSmithWarning, get_env_var
from prometheus_client import CollectorRegistry
from sqlalchemy import update

from langchain_llmmonitor.config import LangSmithConfig
from langchain_llmmonitor.core.feedback import judge_feedback_id
from langchain_llmmonitor.core.records import EvaluationRecord, UserFeedbackRecord
from langchain_llmmonitor.langsmith.forwarder import Forwarder
from langchain_llmmonitor.storage.schema import outbox_table
from langchain_llmmonitor.storage.store import Store
from langchain_llmmonitor.testing.langsmith_server import FakeLangSmith, fast_client
from tests.conftest import LogRecorder, value

REPO_ROOT = Path(__file__).resolve().parents[1]
ITEMS_IN_KILL_TEST = 30
DB_NAME = "monitor.db"
FAR = (datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))
RETRY_AFTER_S = 5
OUTAGE_S = 3.0
PROBE_CAP_S = 0.5


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
def store(tmp_path: Path, registry: CollectorRegistry) -> Iterator[Store]:
    opened = Store(tmp_path / DB_NAME, registry=registry)  # counts llm_feedback_outbox_pending there
    yield opened
    opened.close()


@pytest.fixture
def make_forwarder(
    store: Store, registry: CollectorRegistry, logs: LogRecorder, server: FakeLangSmith, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., Forwarder]]:
    """Forwarders with test-sized backoffs and no jitter, using the default client configured from the environment;
    on the `store` fixture unless given another `outbox`."""
    point_langsmith_at(monkeypatch, server.url)
    made: list[Forwarder] = []

    def make(outbox: Store | None = None, **overrides: Any) -> Forwarder:
        settings: dict[str, Any] = dict(
            poll_interval_seconds=0.01,
            base_backoff_seconds=0.01,
            max_backoff_seconds=0.05,
            max_outage_probe_seconds=0.2,
            lease_seconds=5.0,
            request_timeout_seconds=2.0,
        )
        config = LangSmithConfig(**{**settings, **overrides})
        forwarder = Forwarder(outbox or store, config=config, registry=registry, logger=logs.logger, rng=lambda: 0.0)
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


def backdate(store: Store, item_id: str, **ages: timedelta) -> None:
    """Move an outbox item's times (e.g. delivered_at) into the past: the store stamps them with the current time."""
    now = datetime.now(UTC)
    with store.engine.begin() as connection:
        times = {column: now - age for column, age in ages.items()}
        connection.execute(update(outbox_table).where(outbox_table.c.id == item_id).values(**times))


def probes_within(seconds: float, base: float, cap: float) -> int:
    """Requests a paused forwarder may make in `seconds` of outage: one per pause (doubling from `base` up to `cap`),
    plus the failure that began it and one in flight when the outage ends."""
    elapsed, pause, requests = 0.0, base, 2
    while elapsed + pause < seconds:
        elapsed, pause, requests = elapsed + pause, min(cap, pause * 2), requests + 1
    return requests


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
        segments={"app_version": "v2", "model": "gpt-4o-mini"},
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
            "segments": {"app_version": "v2", "model": "gpt-4o-mini"},
        },
    }
    assert (stored["user_rating"]["value"], stored["user_rating"]["comment"]) == ("negative", "wrong hours")
    assert stored["user_rating"]["feedback_source"]["type"] == "api"
    assert stored["user_rating"]["session_id"] == server.sessions[0]["id"]  # no project: the env default's
    assert (server.count("POST /feedback"), server.count("POST /runs/multipart"), server.duplicates) == (5, 0, [])
    assert value(registry, "llm_feedback_delivered_total", kind="judge") == 4
    assert value(registry, "llm_feedback_delivered_total", kind="user") == 1
    assert value(registry, "llm_feedback_outbox_pending") == 0


def test_project_unknown_to_langsmith_is_created_once_and_carried_by_every_feedback(
    server: FakeLangSmith, store: Store, make_forwarder: Callable[..., Forwarder]
) -> None:
    """A project LangSmith has never seen is created once; every feedback carries its id, none is sent without one."""
    for index in range(3):
        store.add_user_feedback(rating(index, project="never-traced"))

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert make_forwarder().flush(timeout=10)
    [created] = [session for session in server.sessions if session["name"] == "never-traced"]
    assert [feedback["session_id"] for feedback in server.feedback] == [created["id"]] * 3
    assert (server.count("GET /sessions"), server.count("POST /sessions")) == (1, 1)
    assert [warning for warning in caught if issubclass(warning.category, LangSmithWarning)] == []


def test_project_created_by_another_process_meanwhile_is_read_after_the_conflict(
    server: FakeLangSmith, store: Store, make_forwarder: Callable[..., Forwarder], tmp_path: Path
) -> None:
    """Two forwarders both find the project missing; the one whose creation gets 409 reads and uses the other's."""
    other_store = Store(tmp_path / "other.db")
    store.add_user_feedback(rating(0, project="launch"))
    other_store.add_user_feedback(rating(1, project="launch"))
    forwarders = [make_forwarder(), make_forwarder(outbox=other_store)]
    server.set_delay(0.5, path="/sessions")  # both lookups are answered before either creation is

    with ThreadPoolExecutor(max_workers=2) as pool:
        assert list(pool.map(lambda forwarder: forwarder.flush(timeout=10), forwarders)) == [True, True]
    other_store.close()
    [project] = [session for session in server.sessions if session["name"] == "launch"]
    assert sorted(record.status for record in server.request_log if record.endpoint == "POST /sessions") == [200, 409]
    assert [feedback["session_id"] for feedback in server.feedback] == [project["id"]] * 2


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


@pytest.mark.parametrize("driver", [pytest.param("thread", id="thread"), pytest.param("flush", id="flush")])
def test_429_pauses_every_request_for_the_retry_after_then_drains_at_full_speed(
    server: FakeLangSmith, store: Store, make_forwarder: Callable[..., Forwarder], driver: str
) -> None:
    """After a 429 with Retry-After: 5, LangSmith gets no request at all for 5 s, then the whole outbox at once."""
    ids = add_ratings(store, 30)
    server.fail_next(1, status=429, path="/feedback", retry_after=RETRY_AFTER_S)
    forwarder = make_forwarder(batch_size=10, max_backoff_seconds=300.0)

    if driver == "thread":
        forwarder.start()
        assert server.wait_until(lambda: len(server.feedback) == len(ids), timeout=RETRY_AFTER_S + 5)
    else:
        started = time.monotonic()
        assert not forwarder.flush(timeout=1.0)  # the pause outlasts the timeout, which is kept nonetheless
        assert 1.0 <= time.monotonic() - started < 1.5
        assert forwarder.flush(timeout=RETRY_AFTER_S + 5)
    log = server.request_log
    [limited] = [record for record in log if record.status == 429]
    resumed = limited.at + RETRY_AFTER_S
    assert [record for record in log if limited.at < record.at < resumed] == []
    assert max(record.at for record in log) - resumed < 1.0
    assert feedback_ids(server) == sorted(ids)


def test_after_an_outage_the_outbox_lands_within_a_probe_interval_of_recovery(
    server: FakeLangSmith, store: Store, make_forwarder: Callable[..., Forwarder], registry: CollectorRegistry
) -> None:
    """During an outage only one probe per pause reaches LangSmith; when it is back, everything lands in about a
    probe interval, although each item's own backoff could have grown to minutes."""
    ids = add_ratings(store, 40)
    base = 0.05
    forwarder = make_forwarder(
        batch_size=10, base_backoff_seconds=base, max_backoff_seconds=300.0, max_outage_probe_seconds=PROBE_CAP_S
    )
    server.fail_next(10**6, status=503)
    forwarder.start()
    time.sleep(OUTAGE_S)
    server.clear_faults()
    recovered = time.monotonic()

    assert server.wait_until(lambda: len(server.feedback) == len(ids), timeout=10)
    log = server.request_log
    during = [record for record in log if record.at < recovered]
    assert {record.status for record in during} == {503}
    assert len(during) <= probes_within(OUTAGE_S, base, PROBE_CAP_S) < len(ids)
    assert max(record.at for record in log) - recovered < PROBE_CAP_S + 1.0
    assert value(registry, "llm_feedback_delivery_failures_total", reason="unavailable") == len(during)
    assert feedback_ids(server) == sorted(ids)
    assert server.duplicates == []


def test_delivered_items_past_the_retention_are_pruned_every_few_minutes(
    server: FakeLangSmith, store: Store, make_forwarder: Callable[..., Forwarder], logs: LogRecorder
) -> None:
    """Rows delivered more than the retention ago go; younger deliveries and undelivered rows, however old, stay."""
    old, young, waiting, parked, fresh = add_ratings(store, 5)
    store.mark_delivered([old, young])
    backdate(store, old, delivered_at=timedelta(days=8))
    backdate(store, young, delivered_at=timedelta(days=6))
    store.release([waiting], datetime.now(UTC) + timedelta(days=1))
    store.mark_dead(parked, "HTTP 400: refused")
    backdate(store, waiting, created_at=timedelta(days=30))
    backdate(store, parked, created_at=timedelta(days=30), dead_at=timedelta(days=30))
    forwarder = make_forwarder()  # the default retention: 7 days

    assert forwarder.deliver_once() == 1
    assert [item_id for item_id in (old, young, waiting, parked, fresh) if store.outbox_item(item_id)] == [
        young,
        waiting,
        parked,
        fresh,
    ]
    assert store.user_feedback_by_id(old) is not None  # the rating itself stays
    assert [event["items"] for event in logs.named("feedback_outbox_pruned")] == [1]

    backdate(store, fresh, delivered_at=timedelta(days=8))
    forwarder.deliver_once()
    assert store.outbox_item(fresh) is not None  # not pruned again on every pass
    assert len(logs.named("feedback_outbox_pruned")) == 1
    assert feedback_ids(server) == [fresh]


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
