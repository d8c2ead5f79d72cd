"""The feedback recorder on a real store: validation, run lookup, idempotence, metrics, logs, hooks, LangSmith."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry

from langchain_llmmonitor.config import FeedbackConfig, LangSmithConfig
from langchain_llmmonitor.core.records import InvocationRecord, RunRef
from langchain_llmmonitor.core.vocabulary import NEGATIVE_RATING
from langchain_llmmonitor.feedback import (
    FeedbackConflictError,
    FeedbackRecorder,
    InvalidFeedbackError,
    RatingScale,
    UnknownRunError,
)
from langchain_llmmonitor.langsmith.forwarder import Forwarder
from langchain_llmmonitor.storage.schema import metadata
from langchain_llmmonitor.storage.store import Store
from langchain_llmmonitor.testing.langsmith_server import FakeLangSmith, fast_client
from tests._postgres import postgres_url  # noqa: F401 - the fixture
from tests.conftest import LogRecorder, value

T0 = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
FAR = (datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))
RUN = "6f1c5d3e-8a4b-4c2d-9e0f-1a2b3c4d5e6f"
TRACE = "0b7e2f9a-3c1d-4e5f-8a6b-7c8d9e0f1a2b"
REQUEST = "req-42"


def invocation(run_id: str = RUN, **changes: Any) -> InvocationRecord:
    fields: dict[str, Any] = dict(
        run_id=run_id,
        trace_id=TRACE,
        request_id=REQUEST,
        project="shop",
        name="rag",
        status="success",
        started_at=T0,
        latency_s=1.5,
    )
    return InvocationRecord(**{**fields, **changes})


@pytest.fixture
def store(tmp_path: Path, registry: CollectorRegistry) -> Iterator[Store]:
    opened = Store(tmp_path / "monitor.db", registry=registry)
    opened.add_invocations([invocation()])
    yield opened
    opened.close()


@pytest.fixture(params=[pytest.param("sqlite", id="sqlite"), pytest.param("postgres", id="postgres")])
def any_store(request: pytest.FixtureRequest, tmp_path: Path, registry: CollectorRegistry) -> Iterator[Store]:
    """A seeded store on a SQLite file or on the session's PostgreSQL database (emptied afterwards)."""
    url = str(tmp_path / "monitor.db") if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    opened = Store(url, registry=registry)
    opened.add_invocations([invocation()])
    yield opened
    if request.param == "postgres":
        metadata.drop_all(opened.engine)
    opened.close()


@pytest.fixture
def make_recorder(store: Store, registry: CollectorRegistry, logs: LogRecorder) -> Callable[..., FeedbackRecorder]:
    def make(
        target: Store | None = None, *, scale: RatingScale | None = None, max_comment_chars: int = 2000, **options: Any
    ) -> FeedbackRecorder:
        config = FeedbackConfig(scale=scale.name if scale else "thumbs", max_comment_chars=max_comment_chars)
        return FeedbackRecorder(target or store, config=config, registry=registry, logger=logs.logger, **options)

    return make


def ratings(registry: CollectorRegistry, rating: str) -> float:
    return value(registry, "llm_user_feedback_total", rating=rating)


def test_thumbs_up_by_run_id_is_stored_queued_counted_and_logged(
    store: Store, make_recorder: Callable[..., FeedbackRecorder], registry: CollectorRegistry, logs: LogRecorder
) -> None:
    """One rating: a store row, an outbox item with the same id for LangSmith, a counter tick and a log line."""
    record = make_recorder().record(RUN, score=1, comment="great answer", source="web")
    assert (record.run_id, record.trace_id, record.request_id, record.project) == (RUN, TRACE, REQUEST, "shop")
    assert (record.score, record.rating, record.comment, record.source) == (1.0, "positive", "great answer", "web")
    assert list(store.user_feedback(*FAR)) == [record]
    item = store.outbox_item(record.id)
    assert item is not None and item.kind == "user"
    assert item.payload["run_id"] == RUN and item.payload["trace_id"] == TRACE
    assert (item.payload["key"], item.payload["score"], item.payload["value"]) == ("user_rating", 1.0, "positive")
    assert ratings(registry, "positive") == 1
    assert value(registry, "llm_feedback_outbox_pending") == 1
    [logged] = logs.named("user_feedback")
    assert logged["feedback_id"] == record.id and logged["rating"] == "positive" and logged["comment_chars"] == 12


def test_comment_text_never_reaches_the_logs(make_recorder: Callable[..., FeedbackRecorder], logs: LogRecorder) -> None:
    """Comments can hold personal data: logs carry their length only."""
    make_recorder().record(RUN, score=-1, comment="my card 4111 was charged twice")
    assert logs.events and all("4111" not in str(entry) for entry in logs.events)


def test_request_id_resolves_to_its_latest_run(store: Store, make_recorder: Callable[..., FeedbackRecorder]) -> None:
    """A retried request produces several runs with one request id: the rating goes to the latest."""
    later = str(uuid.uuid4())
    store.add_invocations([invocation(later, trace_id=later, started_at=T0 + timedelta(seconds=5))])
    record = make_recorder().record(REQUEST, score=-1)
    assert (record.run_id, record.trace_id, record.request_id) == (later, later, REQUEST)


def test_upper_case_run_id_finds_the_run(make_recorder: Callable[..., FeedbackRecorder]) -> None:
    """A UUID's spelling does not matter: an upper-case run id (or a UUID object) names the stored run."""
    recorder = make_recorder()
    assert recorder.record(RUN.upper(), score=1).run_id == RUN
    assert recorder.record(uuid.UUID(RUN), score=1).run_id == RUN


@pytest.mark.parametrize(
    ("score", "label", "negative"),
    [
        pytest.param(1, "1", True, id="1"),
        pytest.param(2.0, "2", True, id="2-as-float"),
        pytest.param(3, "3", False, id="3"),
        pytest.param(5, "5", False, id="5"),
    ],
)
def test_five_point_scale_labels_and_negatives(
    make_recorder: Callable[..., FeedbackRecorder],
    registry: CollectorRegistry,
    score: float,
    label: str,
    negative: bool,
) -> None:
    """Five-point ratings are labelled "1".."5" in the metric and LangSmith value; 1 and 2 are negative."""
    hooked: list[RunRef] = []
    recorder = make_recorder(scale=RatingScale.five_point(), on_negative=hooked.append)
    record = recorder.record(RUN, score=score)
    assert (record.score, record.rating) == (float(score), label)
    assert ratings(registry, label) == 1
    assert bool(hooked) is negative


@pytest.mark.parametrize(
    ("scale", "score", "message"),
    [
        pytest.param(
            RatingScale.thumbs(),
            0,
            r"rating 0 is not on the thumbs scale: allowed -1 \(thumbs down\) or 1",
            id="thumbs-zero",
        ),
        pytest.param(RatingScale.thumbs(), 2, "rating 2 is not on the thumbs scale", id="thumbs-two"),
        pytest.param(RatingScale.thumbs(), 0.5, "rating 0.5 is not on", id="thumbs-half"),
        pytest.param(RatingScale.thumbs(), True, "must be a number, got bool", id="bool"),
        pytest.param(RatingScale.thumbs(), "1", "must be a number, got str", id="string"),
        pytest.param(RatingScale.thumbs(), None, "must be a number, got NoneType", id="none"),
        pytest.param(RatingScale.thumbs(), float("nan"), "rating nan is not on", id="nan"),
        pytest.param(RatingScale.five_point(), float("inf"), "rating inf is not on", id="inf"),
        pytest.param(RatingScale.five_point(), 0, "allowed 1, 2, 3, 4 or 5", id="five-zero"),
        pytest.param(RatingScale.five_point(), 6, "rating 6 is not on the five scale", id="five-six"),
        pytest.param(RatingScale.five_point(), 3.5, "rating 3.5 is not on", id="five-fraction"),
    ],
)
def test_scores_off_the_scale_are_refused_saying_what_is_allowed(
    store: Store, make_recorder: Callable[..., FeedbackRecorder], scale: RatingScale, score: Any, message: str
) -> None:
    """A bad score is refused before anything is written, and the message lists the scale's scores."""
    with pytest.raises(InvalidFeedbackError, match=message):
        make_recorder(scale=scale).record(RUN, score=score)
    assert list(store.user_feedback(*FAR)) == []


@pytest.mark.parametrize(
    ("comment", "message"),
    [
        pytest.param("x" * 11, "the comment has 11 characters; at most 10 are allowed", id="too-long"),
        pytest.param("bad\x00byte", r"control character \(U\+0000 at position 3\)", id="nul"),
        pytest.param("a\ud83db", r"lone surrogate \(U\+D83D", id="lone-surrogate"),
        pytest.param("ring\x07bell", r"control character \(U\+0007", id="control"),
        pytest.param(42, "must be text, got int", id="not-text"),
    ],
)
def test_bad_comments_are_refused(
    store: Store, make_recorder: Callable[..., FeedbackRecorder], comment: Any, message: str
) -> None:
    """Overlong comments are refused (not silently cut), and so is what PostgreSQL text cannot hold."""
    with pytest.raises(InvalidFeedbackError, match=message):
        make_recorder(max_comment_chars=10).record(RUN, score=1, comment=comment)
    assert list(store.user_feedback(*FAR)) == []


@pytest.mark.parametrize(
    ("comment", "stored"),
    [
        pytest.param("x" * 10, "x" * 10, id="at-the-limit"),
        pytest.param("   ", None, id="blank-is-none"),
        pytest.param("", None, id="empty-is-none"),
    ],
)
def test_acceptable_comments(make_recorder: Callable[..., FeedbackRecorder], comment: str, stored: str | None) -> None:
    """A comment of exactly the limit is kept; a blank one is no comment."""
    assert make_recorder(max_comment_chars=10).record(RUN, score=1, comment=comment).comment == stored


def test_unknown_id_names_the_id_and_stores_nothing(
    store: Store, make_recorder: Callable[..., FeedbackRecorder], registry: CollectorRegistry
) -> None:
    """A rating of a run nobody knows is refused with the id in the message, and not counted."""
    with pytest.raises(UnknownRunError, match="'req-missing'"):
        make_recorder().record("req-missing", score=1)
    assert list(store.user_feedback(*FAR)) == [] and store.pending_count() == 0
    assert ratings(registry, "positive") == 0


def test_score_is_checked_before_the_lookup(make_recorder: Callable[..., FeedbackRecorder]) -> None:
    """A bad rating of an unknown run is reported as the bad rating: no database work for invalid input."""
    with pytest.raises(InvalidFeedbackError):
        make_recorder().record("req-missing", score=7)


def test_resolve_hook_is_asked_before_the_store(
    store: Store, make_recorder: Callable[..., FeedbackRecorder], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run the Monitor knows in memory is rated although it is not in the store yet, without a store lookup."""
    fresh = RunRef(run_id=str(uuid.uuid4()), trace_id=str(uuid.uuid4()), request_id="req-new", project="shop")

    def no_lookup(_: str) -> None:
        raise AssertionError("the store was asked although the hook knew the run")

    monkeypatch.setattr(store, "find_run", no_lookup)
    record = make_recorder(resolve={"req-new": fresh}.get).record("req-new", score=-1)
    assert (record.run_id, record.trace_id, record.request_id) == (fresh.run_id, fresh.trace_id, "req-new")
    assert [stored.run_id for stored in store.user_feedback(*FAR)] == [fresh.run_id]


def test_store_is_asked_when_the_hook_does_not_know(make_recorder: Callable[..., FeedbackRecorder]) -> None:
    """The hook only knows recent runs: for older ones (None) the store answers."""
    asked: list[str] = []

    def resolve(identifier: str) -> None:
        asked.append(identifier)
        return

    assert make_recorder(resolve=resolve).record(REQUEST, score=1).run_id == RUN
    assert asked == [REQUEST]


def test_failing_hook_falls_back_to_the_store(
    make_recorder: Callable[..., FeedbackRecorder], logs: LogRecorder
) -> None:
    """A bug in the in-memory lookup costs a log line, not the user's rating."""

    def broken(_: str) -> RunRef:
        raise KeyError("boom")

    assert make_recorder(resolve=broken).record(RUN, score=1).run_id == RUN
    assert logs.named("user_feedback_resolve_failed")


@pytest.mark.parametrize(
    ("score", "called"),
    [pytest.param(-1, True, id="thumbs-down"), pytest.param(1, False, id="thumbs-up")],
)
def test_on_negative_hook_runs_for_negative_ratings_only(
    make_recorder: Callable[..., FeedbackRecorder], score: int, called: bool
) -> None:
    """Negative feedback triggers the hook (e.g. forcing a judge run) with the rated run; positive does not."""
    hooked: list[RunRef] = []
    make_recorder(on_negative=hooked.append).record(REQUEST, score=score)
    expected = [RunRef(run_id=RUN, trace_id=TRACE, request_id=REQUEST, project="shop")]
    assert hooked == (expected if called else [])


def test_failing_negative_hook_does_not_lose_the_rating(
    store: Store, make_recorder: Callable[..., FeedbackRecorder], registry: CollectorRegistry, logs: LogRecorder
) -> None:
    """The hook's exception is logged; the rating is stored, counted and returned."""

    def broken(_: RunRef) -> None:
        raise RuntimeError("judge queue gone")

    record = make_recorder(on_negative=broken).record(RUN, score=-1)
    assert list(store.user_feedback(*FAR)) == [record]
    assert ratings(registry, NEGATIVE_RATING) == 1
    [failure] = logs.named("user_feedback_hook_failed")
    assert failure["feedback_id"] == record.id and "judge queue gone" in failure["error"]


def test_repeated_feedback_id_is_recorded_once(
    any_store: Store, make_recorder: Callable[..., FeedbackRecorder], registry: CollectorRegistry, logs: LogRecorder
) -> None:
    """A client retry with the same feedback id returns the first record: one row, one LangSmith item, one count."""
    hooked: list[RunRef] = []
    recorder = make_recorder(any_store, on_negative=hooked.append)
    feedback_id = uuid.uuid4()
    first = recorder.record(RUN, score=-1, comment="wrong", feedback_id=feedback_id)
    again = recorder.record(REQUEST, score=-1, comment="wrong", feedback_id=str(feedback_id).upper())
    assert again == first and first.id == str(feedback_id)
    assert list(any_store.user_feedback(*FAR)) == [first]
    assert any_store.pending_count() == 1
    assert ratings(registry, NEGATIVE_RATING) == 1 and len(hooked) == 1
    assert len(logs.named("user_feedback")) == 1 and len(logs.named("user_feedback_repeated")) == 1


def test_feedback_id_reused_for_another_rating_is_a_conflict(
    any_store: Store, make_recorder: Callable[..., FeedbackRecorder]
) -> None:
    """An id cannot silently change a rating: the reuse is refused and the first rating stays."""
    recorder = make_recorder(any_store)
    feedback_id = str(uuid.uuid4())
    first = recorder.record(RUN, score=1, feedback_id=feedback_id)
    with pytest.raises(FeedbackConflictError, match=feedback_id):
        recorder.record(RUN, score=-1, feedback_id=feedback_id)
    assert list(any_store.user_feedback(*FAR)) == [first]


def test_concurrent_retries_count_once(
    any_store: Store, make_recorder: Callable[..., FeedbackRecorder], registry: CollectorRegistry
) -> None:
    """Simultaneous submissions of one feedback id (double clicks, proxy retries) store and count exactly one."""
    recorder = make_recorder(any_store)
    feedback_id = str(uuid.uuid4())
    barrier = threading.Barrier(8)
    results: list[Any] = []

    def submit() -> None:
        barrier.wait()
        results.append(recorder.record(RUN, score=1, feedback_id=feedback_id))

    threads = [threading.Thread(target=submit) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 8 and len({record.created_at for record in results}) == 1
    assert ratings(registry, "positive") == 1
    assert len(list(any_store.user_feedback(*FAR))) == 1


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        pytest.param({"feedback_id": "not-a-uuid"}, "feedback id must be a UUID", id="feedback-id"),
        pytest.param({"source": ""}, "source must be", id="empty-source"),
        pytest.param({"source": "s" * 51}, "at most 50", id="long-source"),
    ],
)
def test_bad_feedback_id_or_source_is_refused(
    make_recorder: Callable[..., FeedbackRecorder], changes: dict[str, Any], message: str
) -> None:
    """Caller-chosen ids must be UUIDs (they become LangSmith feedback ids); sources must fit the store."""
    with pytest.raises(InvalidFeedbackError, match=message):
        make_recorder().record(RUN, score=1, **changes)


def test_thumbs_down_label_is_the_one_the_dashboard_counts() -> None:
    """The dashboard's thumbs-down share filters on NEGATIVE_RATING: the thumbs scale must emit exactly that."""
    scale = RatingScale.thumbs()
    assert scale.label(-1) == NEGATIVE_RATING and scale.label(1) == "positive"
    assert scale.is_negative(-1) and not scale.is_negative(1)
    assert RatingScale.named("five") == RatingScale.five_point()
    with pytest.raises(ValueError, match="'thumbs' or 'five'"):
        RatingScale.named("stars")


def test_recorded_rating_lands_on_langsmith_with_the_record_id(
    store: Store, make_recorder: Callable[..., FeedbackRecorder], registry: CollectorRegistry
) -> None:
    """The real forwarder and SDK deliver the queued rating to the run's trace, under the record's id, once."""
    record = make_recorder().record(RUN, score=-1, comment="wrong price", source="web")
    with FakeLangSmith() as server:
        client = fast_client(server.url, auto_batch_tracing=False)
        client.create_project("shop")
        forwarder = Forwarder(
            store, client=client, config=LangSmithConfig(poll_interval_seconds=0.01), registry=registry
        )
        assert forwarder.flush(timeout=10)
        [feedback] = server.feedback
        client.close(timeout=5)
    assert feedback["id"] == record.id
    assert (feedback["run_id"], feedback["trace_id"], feedback["key"]) == (RUN, TRACE, "user_rating")
    assert (feedback["score"], feedback["value"], feedback["comment"]) == (-1, "negative", "wrong price")
    assert feedback["session_id"] == next(s["id"] for s in server.sessions if s["name"] == "shop")
    assert value(registry, "llm_feedback_delivered_total", kind="user") == 1


def test_presigned_url_accepts_a_browser_rating_on_langsmith(make_recorder: Callable[..., FeedbackRecorder]) -> None:
    """The URL is LangSmith's token endpoint for this run and key; posting a score to it (no API key) lands it there."""
    with FakeLangSmith(api_key="secret-key") as server:
        client = fast_client(server.url, api_key="secret-key")
        before = datetime.now(UTC)
        url = make_recorder(langsmith_client=client).presigned_url(RUN.upper(), expires_in=timedelta(hours=2))
        after = datetime.now(UTC)
        [token] = server.tokens
        assert url == token["url"] and url.startswith(server.url + "/feedback/tokens/")
        assert (token["run_id"], token["feedback_key"]) == (RUN, "user_rating")
        assert token["feedback_config"] == {"type": "continuous", "min": -1, "max": 1}
        expires_at = datetime.fromisoformat(token["expires_at"])
        assert before + timedelta(hours=2) <= expires_at <= after + timedelta(hours=2)
        answer = httpx.post(url, json={"score": -1, "comment": "slow"})
        assert answer.status_code == 200
        [feedback] = server.feedback
        client.close(timeout=5)
    assert (feedback["run_id"], feedback["key"]) == (RUN, "user_rating")
    assert (feedback["score"], feedback["comment"]) == (-1, "slow")


def test_presigned_url_needs_a_client_and_a_run_id(make_recorder: Callable[..., FeedbackRecorder]) -> None:
    """Without a LangSmith client the error says how to pass one; a request id (not a UUID) is refused."""
    with pytest.raises(RuntimeError, match=r"langsmith_client=langsmith\.Client"):
        make_recorder().presigned_url(RUN)
    with pytest.raises(InvalidFeedbackError, match="need a run id"):
        make_recorder(langsmith_client=object()).presigned_url(REQUEST)
