"""The durable store on a real SQLite file and a real PostgreSQL database: round trips, idempotence, leases, threads."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import text

from langchain_llmmonitor.core.feedback import judge_feedback_id
from langchain_llmmonitor.core.judging import EvaluationInput
from langchain_llmmonitor.core.records import (
    EvaluationJob,
    EvaluationRecord,
    InvocationRecord,
    UserFeedbackRecord,
    evaluation_id,
)
from langchain_llmmonitor.storage.schema import metadata
from langchain_llmmonitor.storage.store import Store
from tests._postgres import postgres_url  # noqa: F401 - the fixture
from tests.conftest import value

T0 = datetime(2026, 3, 2, 9, 30, 15, 123456, tzinfo=UTC)
LONG_AGO, FAR_AHEAD = T0 - timedelta(days=365), T0 + timedelta(days=365)


@pytest.fixture(params=[pytest.param("sqlite", id="sqlite"), pytest.param("postgres", id="postgres")])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Where a store lives: a fresh SQLite file, or the session's PostgreSQL database emptied after each test."""
    if request.param == "sqlite":
        yield str(tmp_path / "monitor.db")
        return
    database_url = request.getfixturevalue("postgres_url")
    yield database_url
    cleaner = Store(database_url)
    metadata.drop_all(cleaner.engine)
    cleaner.close()


@pytest.fixture
def store(url: str, registry: CollectorRegistry) -> Iterator[Store]:
    opened = Store(url, registry=registry)
    yield opened
    opened.close()


def invocation(index: int = 0, **changes: object) -> InvocationRecord:
    run_id = str(uuid.UUID(int=index + 1))
    fields: dict[str, object] = dict(
        run_id=run_id,
        trace_id=run_id,
        name="rag",
        status="success",
        started_at=T0 + timedelta(seconds=index),
        latency_s=1.25,
        prompt_tokens=120,
        completion_tokens=30,
        cost_usd=0.00042,
        request_id=f"req-{index}",
        project="shop-assistant",
    )
    return InvocationRecord(**{**fields, **changes})  # type: ignore[arg-type]


def evaluation(**changes: object) -> EvaluationRecord:
    run_id = str(uuid.uuid4())
    fields: dict[str, object] = dict(
        run_id=run_id,
        trace_id=run_id,
        request_id="req-7",
        project="shop-assistant",
        judge="offline",
        judge_model="offline-v1",
        prompt_version="2026-03",
        sampling="random",
        sample_reason="rate",
        status="success",
        faithfulness=4,
        relevance=5,
        completeness=3,
        hallucination=False,
        reason="grounded except the opening hours",
        question="When does the shop open?",
        answer="At 9.",
        judge_prompt_tokens=800,
        judge_completion_tokens=60,
        judge_cost_usd=0.0003,
        created_at=T0,
    )
    return EvaluationRecord(**{**fields, **changes})  # type: ignore[arg-type]


def rating(**changes: object) -> UserFeedbackRecord:
    run_id = str(uuid.uuid4())
    fields: dict[str, object] = dict(
        run_id=run_id,
        trace_id=run_id,
        score=0.0,
        rating="negative",
        comment="wrong opening hours",
        source="web",
        request_id="req-9",
        project="shop-assistant",
        created_at=T0,
    )
    return UserFeedbackRecord(**{**fields, **changes})  # type: ignore[arg-type]


def claim_all(store: Store, now: datetime | None = None) -> dict[str, dict]:
    return {item.id: item.payload for item in store.claim_due(100, lease_seconds=60, now=now)}


def test_invocations_round_trip_and_duplicates_are_ignored(store: Store) -> None:
    """A batch comes back equal, tz-aware UTC; re-adding a run id keeps the first row."""
    first, second = invocation(0), invocation(1, cost_usd=None, request_id=None, project=None)
    store.add_invocations([first, second])
    store.add_invocations([invocation(0, status="error"), invocation(2)])

    stored = list(store.invocations(LONG_AGO, FAR_AHEAD))
    assert stored == [first, second, invocation(2)]
    assert stored[0].started_at.tzinfo == UTC


def test_review_queries_select_a_half_open_window_across_chunks(store: Store) -> None:
    """More rows than one chunk come back whole, in time order, limited to [since, until)."""
    store.add_invocations(invocation(index) for index in range(1_205))
    for index in (0, 1, 2):
        store.add_evaluation(evaluation(created_at=T0 + timedelta(hours=index)))
        store.add_user_feedback(rating(created_at=T0 + timedelta(hours=index)))

    window = list(store.invocations(T0 + timedelta(seconds=1), T0 + timedelta(seconds=1_202)))
    assert [record.run_id for record in window] == [invocation(index).run_id for index in range(1, 1_202)]
    assert [e.created_at for e in store.evaluations(T0, T0 + timedelta(hours=2))] == [T0, T0 + timedelta(hours=1)]
    assert len(list(store.user_feedback(T0 + timedelta(minutes=1), FAR_AHEAD))) == 2


def test_successful_evaluation_round_trips_with_one_outbox_item_per_score(
    store: Store, registry: CollectorRegistry
) -> None:
    """The row (segments too) comes back equal; four feedback items with derived ids carry score, comment, the judge's
    identity and the segments."""
    record = evaluation(hallucination=True, segments={"app_version": "v2", "chain": "rag"})
    store.add_evaluation(record)

    assert list(store.evaluations(LONG_AGO, FAR_AHEAD)) == [record]
    items = claim_all(store)
    keys = ("faithfulness", "relevance", "completeness", "hallucination")
    assert set(items) == {judge_feedback_id(record.id, key) for key in keys}
    by_key = {payload["key"]: payload for payload in items.values()}
    assert {key: by_key[key]["score"] for key in keys} == {
        "faithfulness": 4,
        "relevance": 5,
        "completeness": 3,
        "hallucination": 1.0,
    }
    assert by_key["relevance"] == {
        "run_id": record.run_id,
        "trace_id": record.trace_id,
        "project": "shop-assistant",
        "key": "relevance",
        "score": 5,
        "value": None,
        "comment": "grounded except the opening hours",
        "source_info": {
            "judge": "offline",
            "judge_model": "offline-v1",
            "prompt_version": "2026-03",
            "sampling": "random",
            "sample_reason": "rate",
            "segments": {"app_version": "v2", "chain": "rag"},
        },
        "feedback_source_type": "model",
    }
    assert value(registry, "llm_feedback_outbox_pending") == 4


def test_retried_add_evaluation_keeps_the_same_ids(store: Store, registry: CollectorRegistry) -> None:
    """Adding the same evaluation again (a retry after a lost commit) creates no row and no new feedback id."""
    record = evaluation()
    store.add_evaluation(record)
    first_ids = set(claim_all(store))
    store.add_evaluation(record)

    assert len(list(store.evaluations(LONG_AGO, FAR_AHEAD))) == 1
    assert store.pending_count() == 4
    after_the_lease = datetime.now(UTC) + timedelta(minutes=2)
    assert set(claim_all(store, now=after_the_lease)) == first_ids
    assert value(registry, "llm_feedback_outbox_pending") == 4


@pytest.mark.parametrize(
    ("changes", "keys"),
    [
        pytest.param(dict(status="error", error_type="parse", faithfulness=None), set(), id="failed-has-none"),
        pytest.param(dict(completeness=None, hallucination=None), {"faithfulness", "relevance"}, id="missing-scores"),
    ],
)
def test_only_present_scores_are_queued(store: Store, changes: dict[str, object], keys: set[str]) -> None:
    """A failed evaluation is stored with no feedback; a missing score is never sent as a number."""
    record = evaluation(**changes)
    store.add_evaluation(record)

    assert list(store.evaluations(LONG_AGO, FAR_AHEAD)) == [record]
    assert {payload["key"] for payload in claim_all(store).values()} == keys


def test_user_feedback_round_trips_and_its_id_is_the_feedback_id(store: Store) -> None:
    """The rating comes back equal and is queued once, under its own id, as API feedback with the rating as value."""
    record = rating()
    store.add_user_feedback(record)
    store.add_user_feedback(record)

    assert list(store.user_feedback(LONG_AGO, FAR_AHEAD)) == [record]
    assert claim_all(store) == {
        record.id: {
            "run_id": record.run_id,
            "trace_id": record.trace_id,
            "project": "shop-assistant",
            "key": "user_rating",
            "score": 0.0,
            "value": "negative",
            "comment": "wrong opening hours",
            "source_info": {"source": "web", "request_id": "req-9"},
            "feedback_source_type": "api",
        }
    }


def test_find_run_by_run_id_or_latest_request_id(store: Store) -> None:
    """A run id finds its invocation; a request id finds the most recent invocation that carried it."""
    older, newer = invocation(0, request_id="checkout-1"), invocation(5, request_id="checkout-1")
    store.add_invocations([newer, older, invocation(9)])

    assert store.find_run(older.run_id) == older
    assert store.find_run("checkout-1") == newer
    assert store.find_run("never-seen") is None


def test_claims_are_disjoint_until_the_lease_expires(store: Store) -> None:
    """Two claims in a row share nothing; once the lease has run out the items are claimable again."""
    for _ in range(5):
        store.add_user_feedback(rating())
    now = datetime.now(UTC)

    first = {item.id for item in store.claim_due(3, lease_seconds=30, now=now)}
    second = {item.id for item in store.claim_due(3, lease_seconds=30, now=now)}
    assert (len(first), len(second), first & second) == (3, 2, set())
    assert store.claim_due(3, lease_seconds=30, now=now + timedelta(seconds=29)) == []
    reclaimed = store.claim_due(10, lease_seconds=30, now=now + timedelta(seconds=30))
    assert {item.id for item in reclaimed} == first | second


def test_delivery_outcomes_move_items_through_their_states(store: Store) -> None:
    """Delivered and dead items leave the queue; failed ones wait for retry_at; released ones cost no attempt."""
    delivered, failed, dead, released = (rating() for _ in range(4))
    for record in (delivered, failed, dead, released):
        store.add_user_feedback(record)
    now = datetime.now(UTC)
    retry_at = now + timedelta(seconds=10)
    assert len(store.claim_due(10, lease_seconds=60, now=now)) == 4

    store.mark_delivered([delivered.id])
    store.mark_failed(failed.id, "HTTP 503", retry_at)
    store.mark_dead(dead.id, "HTTP 422: bad key")
    store.release([released.id], retry_at)
    store.mark_failed(delivered.id, "late failure from a slower forwarder", retry_at)

    assert store.pending_count() == 2
    assert store.claim_due(10, lease_seconds=60, now=now + timedelta(seconds=9)) == []
    due = {item.id: item for item in store.claim_due(10, lease_seconds=60, now=retry_at)}
    assert set(due) == {failed.id, released.id}
    assert (due[failed.id].attempts, due[failed.id].last_error) == (1, "HTTP 503")
    assert due[released.id].attempts == 0
    [parked] = store.dead_items()
    assert (parked.id, parked.last_error, store.dead_count()) == (dead.id, "HTTP 422: bad key", 1)
    finished = store.outbox_item(delivered.id)
    assert finished is not None and finished.delivered_at is not None and finished.last_error is None


def test_purge_delivered_keeps_pending_items_and_the_records(store: Store) -> None:
    """Only delivered outbox items are deleted; the rating itself stays for the review."""
    kept, purged = rating(), rating()
    store.add_user_feedback(kept)
    store.add_user_feedback(purged)
    store.mark_delivered([purged.id])

    assert store.purge_delivered(datetime.now(UTC) + timedelta(seconds=1)) == 1
    assert store.outbox_item(purged.id) is None
    assert store.pending_count() == 1
    assert len(list(store.user_feedback(LONG_AGO, FAR_AHEAD))) == 2


def test_naive_datetimes_are_refused(store: Store) -> None:
    """A time without a zone is ambiguous; the store will not guess."""
    with pytest.raises(Exception, match="naive datetime"):
        store.add_invocations([invocation(0, started_at=datetime(2026, 3, 2, 9, 30))])


def test_concurrent_writers_and_claimers_lose_and_duplicate_nothing(url: str) -> None:
    """Threads writing through separate stores (as processes would), then claiming at once: every item exactly once."""
    stores = [Store(url) for _ in range(4)]
    written: list[str] = []
    errors: list[BaseException] = []

    def write(store: Store) -> None:
        try:
            for _ in range(15):
                record = evaluation()
                store.add_evaluation(record)
                store.add_invocations([invocation(len(written), run_id=record.run_id, trace_id=record.trace_id)])
                written.append(record.id)
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    claimed: list[list[str]] = [[] for _ in stores]

    def claim(store: Store, into: list[str]) -> None:
        try:
            while items := store.claim_due(7, lease_seconds=60):
                into.extend(item.id for item in items)
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    for target, args in ((write, [(s,) for s in stores]), (claim, list(zip(stores, claimed, strict=True)))):
        threads = [threading.Thread(target=target, args=arg) for arg in args]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    all_claimed = [item_id for ids in claimed for item_id in ids]
    assert errors == []
    assert len(list(stores[0].evaluations(LONG_AGO, FAR_AHEAD))) == 60
    assert len(list(stores[0].invocations(LONG_AGO, FAR_AHEAD))) == 60
    assert len(all_claimed) == len(set(all_claimed)) == 240
    for store in stores:
        store.close()


def test_sqlite_file_runs_in_wal_mode(tmp_path: Path) -> None:
    """WAL is what lets the review read while the forwarder writes; it is a property of the file."""
    store = Store(tmp_path / "nested" / "monitor.db")
    with store.engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar_one() == "wal"
    store.close()


def test_pending_items_lists_without_claiming(store: Store) -> None:
    """Inspecting the outbox shows what is waiting, oldest first, and leaves it all to the forwarder."""
    record = evaluation()
    store.add_evaluation(record)
    listed = store.pending_items()
    assert len(listed) == 4 and all(item.lease_until is None and item.attempts == 0 for item in listed)
    assert {item.payload["key"] for item in listed} == {"faithfulness", "relevance", "completeness", "hallucination"}
    assert len(store.claim_due(10, lease_seconds=60)) == 4  # nothing was leased by listing


def job(index: int) -> EvaluationJob:
    run_id = str(uuid.UUID(int=index + 1))
    item = EvaluationInput(question=f"question {index}", context=("passage",), answer="answer")
    return EvaluationJob(
        id=evaluation_id(run_id), run_id=run_id, trace_id=run_id, item=item, sampling="random", sample_reason="rate"
    )


def test_job_claims_take_at_most_the_limit_and_are_disjoint_until_the_lease_ends(store: Store) -> None:
    """Jobs are leased `limit` at a time (PostgreSQL included), never twice at once, and come back after the lease."""
    store.add_invocations([], [job(index) for index in range(5)])
    now = datetime.now(UTC)
    first = store.claim_jobs(2, lease_seconds=30, now=now)
    second = store.claim_jobs(5, lease_seconds=30, now=now)
    assert (len(first), len(second)) == (2, 3)
    assert {j.run_id for j in first} & {j.run_id for j in second} == set()
    assert store.claim_jobs(5, lease_seconds=30, now=now + timedelta(seconds=29)) == []
    assert first[0] == job(0) and len(store.claim_jobs(5, lease_seconds=30, now=now + timedelta(seconds=31))) == 5


def test_the_evaluation_of_a_job_closes_it_once(store: Store) -> None:
    """Storing the evaluation with the job's id closes the job; storing it again changes nothing."""
    store.add_invocations([], [job(0), job(1)])
    (claimed,) = store.claim_jobs(1, lease_seconds=30)
    record = evaluation(id=claimed.id, run_id=claimed.run_id, trace_id=claimed.trace_id)
    store.add_evaluation(record)
    store.add_evaluation(record)
    assert store.pending_jobs() == 1 and store.job_outcomes() == {"judged": 1}
    assert [j.run_id for j in store.claim_jobs(5, lease_seconds=30)] == [job(1).run_id]


def test_a_judgement_request_is_filled_by_its_runs_job_or_expires(store: Store) -> None:
    """A request is not claimable until the process holding the trace stores the job; unanswered ones expire."""
    asked, never = job(0), job(1)
    for wanted in (asked, never):
        assert store.request_judgement(wanted.run_id, wanted.trace_id, request_id=None, project=None)
    assert not store.request_judgement(asked.run_id, asked.trace_id, request_id=None, project=None)
    assert store.requested_runs() == [asked.run_id, never.run_id] and store.claim_jobs(5, lease_seconds=30) == []
    store.add_invocations([], [asked])
    (claimed,) = store.claim_jobs(5, lease_seconds=30)
    assert claimed.item == asked.item and store.requested_runs() == [never.run_id]
    closed = store.expire_jobs(requested_before=datetime.now(UTC) + timedelta(seconds=1))
    assert closed == {"expired": 1, "abandoned": 0} and store.requested_runs() == []


def test_pending_gauges_are_counted_in_the_store_so_every_process_agrees(url: str) -> None:
    """Two stores on one database (two processes) expose the same outbox and job counts as the store holds."""
    registries = [CollectorRegistry(), CollectorRegistry()]
    stores = [Store(url, registry=registry) for registry in registries]
    stores[0].add_user_feedback(rating())
    stores[1].add_evaluation(evaluation())
    stores[1].add_invocations([], [job(0)])
    for registry in registries:
        assert value(registry, "llm_feedback_outbox_pending") == stores[0].pending_count() == 5
        assert value(registry, "llm_judge_jobs_pending") == stores[0].pending_jobs() == 1
    for opened in stores:
        opened.close()


def test_a_delivery_error_with_unstorable_text_is_recorded_made_safe(store: Store) -> None:
    """An error message holding NUL or a lone surrogate (from a proxy, say) is kept, not a failed update forever."""
    feedback = rating()
    store.add_user_feedback(feedback)
    store.mark_failed(feedback.id, "HTTP 502 \x00 from \ud800 proxy", datetime.now(UTC))
    item = store.outbox_item(feedback.id)
    assert item is not None and (item.attempts, item.last_error) == (1, "HTTP 502 \ufffd from \ufffd proxy")


def test_a_changed_rating_is_one_update_item_that_a_stale_send_cannot_mark_sent(store: Store) -> None:
    """A rating changed twice: one update item, rewritten; confirming the older version it carried while the newer one
    was written leaves the newer one pending."""
    first = rating(score=-1.0, rating="negative")
    store.add_user_feedback(first)
    store.replace_user_feedback(replace(first, score=1.0, rating="positive", comment=None))
    claimed = {item.kind: item for item in store.claim_due(10, lease_seconds=30)}
    change = claimed["user_edit"]
    assert (change.payload["feedback_id"], change.payload["score"], change.payload["value"]) == (
        first.id,
        1.0,
        "positive",
    )
    store.replace_user_feedback(replace(first, score=-1.0, rating="negative", comment="no, wrong after all"))
    store.mark_delivered([change.id], version=change.created_at)
    pending = {item.kind: item for item in store.pending_items()}
    assert pending["user_edit"].payload["comment"] == "no, wrong after all"
    stored = store.user_feedback_by_id(first.id)
    assert stored is not None and (stored.score, stored.comment) == (-1.0, "no, wrong after all")
    store.mark_delivered([pending["user_edit"].id], version=pending["user_edit"].created_at)
    assert "user_edit" not in {item.kind for item in store.pending_items()}
