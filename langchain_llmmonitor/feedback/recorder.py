"""User feedback: a rating of one run, validated, stored with its LangSmith outbox item, counted and logged.

    recorder = FeedbackRecorder(store, registry=registry)
    recorder.record(request_id, score=-1, comment="wrong price")     # thumbs down

A rating names its run by the LangChain run id (which is the LangSmith run id) or by the application's own request
id. It is written to the store together with the outbox item that `langsmith.Forwarder` delivers to LangSmith as
feedback `user_rating` on that run, whose LangSmith feedback id is the record's id. Nothing here talks to LangSmith
except `presigned_url`.

The rating scale (thumbs or 1-5) is `core.ratings.RatingScale`; its label set, and so the metric's cardinality, is
fixed.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from uuid import UUID

from prometheus_client import CollectorRegistry

from ..config import FeedbackConfig
from ..core.errors import FeedbackConflictError, FeedbackLimitError, InvalidFeedbackError, UnknownRunError
from ..core.ratings import RatingScale
from ..core.records import RunRef, UserFeedbackRecord
from ..core.text import describe_error, scrub
from ..core.untrusted import text_problem
from ..core.vocabulary import USER_RATING_KEY
from ..telemetry.logs import default_logger
from ..telemetry.metrics import metrics_for

if TYPE_CHECKING:
    from ..storage.store import Store

_MAX_ID_CHARS = 200  # the store's request_id column
_MAX_SOURCE_CHARS = 50  # the store's source column


NegativeHook = Callable[[RunRef], None]
Resolver = Callable[[str], "RunRef | None"]


class FeedbackRecorder:
    """Records users' ratings of runs. Thread safe; each `record` is one short transaction on the store."""

    def __init__(
        self,
        store: Store,
        *,
        config: FeedbackConfig | None = None,
        registry: CollectorRegistry | None = None,
        logger: Any = None,
        resolve: Resolver | None = None,
        on_negative: NegativeHook | None = None,
        langsmith_client: Any = None,
    ) -> None:
        """
        Args:
            store: where ratings and their outbox items are written, and where runs are looked up.
            config: the rating scale and the comment limit (`FeedbackConfig`).
            registry: where `llm_user_feedback_total{rating}` lives; a private registry by default.
            logger: a structlog logger; `structlog.get_logger("langchain_llmmonitor")` by default.
            resolve: looked up first: the run id or request id -> RunRef of a run that may not be in the store yet
                (the Monitor's recent runs, so a rating right after the answer is not a 404). None means "ask the
                store".
            on_negative: called with the run after each new negative rating (e.g. to force a judge evaluation of that
                trace), on the caller's thread: keep it quick. Its exceptions are logged, never raised.
            langsmith_client: a `langsmith.Client`, needed only by `presigned_url`.
        """
        config = config if config is not None else FeedbackConfig()
        self.store = store
        self.scale = RatingScale.named(config.scale)
        self.max_comment_chars = config.max_comment_chars
        self.max_ratings_per_run = config.max_ratings_per_run
        self.max_body_bytes = config.max_body_bytes  # for the HTTP API in front of this recorder
        self._metrics = metrics_for(registry if registry is not None else CollectorRegistry())
        self.logger = logger if logger is not None else default_logger()  # structlog, also used by the API
        self._resolve = resolve
        self._on_negative = on_negative
        self._langsmith = langsmith_client

    # Recording --------------------------------------------------------------------------------------------------------

    def record(
        self,
        run: str | UUID | RunRef,
        *,
        score: float,
        comment: str | None = None,
        source: str = "api",
        feedback_id: str | UUID | None = None,
        replace_rating: bool = False,
    ) -> UserFeedbackRecord:
        """Store a rating of a run and queue it for LangSmith; returns the stored record.

        Args:
            run: the run id or the application's request id (the latest run with it), or an already resolved RunRef.
            score: on the recorder's scale.
            comment: the user's words, at most `max_comment_chars`; blank means none.
            source: where the rating came from ("api", "web", "slack"...), at most 50 characters; kept in the store
                and LangSmith's `source_info`, never a metric label.
            feedback_id: a UUID chosen by the caller to make retries idempotent: a repeat returns the stored record
                and is neither stored, counted, logged nor hooked again. A new id is drawn when None.
            replace_rating: a different rating under an existing `feedback_id` replaces it (here and in LangSmith)
                instead of being refused: a feedback token rates its run once, and the user may change their mind.

        Raises:
            InvalidFeedbackError: a bad score, comment, source or feedback id (checked before any lookup).
            FeedbackConflictError: `feedback_id` was already used for a different rating (and not `replace_rating`).
            FeedbackLimitError: the run already has `max_ratings_per_run` ratings.
            UnknownRunError: neither `resolve` nor the store knows the id.
        """
        value = self.scale.validate(score)
        comment = self._check_comment(comment)
        source = self._check_source(source)
        record_id = _check_feedback_id(feedback_id)
        ref = run if isinstance(run, RunRef) else self.resolve_run(run)
        record = UserFeedbackRecord(
            run_id=ref.run_id,
            trace_id=ref.trace_id,
            request_id=ref.request_id,
            project=ref.project,
            score=value,
            rating=self.scale.label(value),
            comment=comment,
            source=source,
            id=record_id,
        )
        earlier = self.store.user_feedback_by_id(record.id)
        if earlier is None:
            return self._store_new(record, ref)
        if _same_rating(earlier, record):
            self.logger.info("user_feedback_repeated", feedback_id=record.id, run_id=earlier.run_id)
            return earlier
        if not replace_rating or earlier.run_id != record.run_id:
            raise FeedbackConflictError(
                f"feedback id {record.id} was already used for another rating (run {earlier.run_id}, score "
                f"{earlier.score:g}); send a new feedback id to rate again"
            )
        return self._replace(earlier, record, ref)

    def _store_new(self, record: UserFeedbackRecord, ref: RunRef) -> UserFeedbackRecord:
        """Store a first rating under its id (a concurrent twin makes it a retry), within the run's limit."""
        if self.store.user_feedback_count(record.run_id) >= self.max_ratings_per_run:
            raise FeedbackLimitError(
                f"run {record.run_id} already has {self.max_ratings_per_run} ratings, the most one run may get"
            )
        if self.store.add_user_feedback(record):
            self._announce(record, ref)
            return record
        stored = self.store.user_feedback_by_id(record.id)  # a concurrent post with the same id got there first
        if stored is None or _same_rating(stored, record):  # None: purged since (only purging removes one)
            return stored or record
        raise FeedbackConflictError(f"feedback id {record.id} was used for another rating at the same moment")

    def _replace(self, earlier: UserFeedbackRecord, record: UserFeedbackRecord, ref: RunRef) -> UserFeedbackRecord:
        """The user changed their rating: the stored one and its LangSmith feedback take the new values."""
        record = replace(record, created_at=earlier.created_at)
        self.store.replace_user_feedback(record)
        self.logger.info(
            "user_feedback_replaced",
            feedback_id=record.id,
            run_id=record.run_id,
            rating=record.rating,
            previous_rating=earlier.rating,
        )
        newly_negative = record.score in self.scale.negative and earlier.score not in self.scale.negative
        if newly_negative:
            self._call_hook(record, ref)
        return record

    def _announce(self, record: UserFeedbackRecord, ref: RunRef) -> None:
        """Count and log a new rating; a negative one calls the hook."""
        self._metrics.user_feedback(record.rating).inc()
        self.logger.info(
            "user_feedback",
            feedback_id=record.id,
            run_id=record.run_id,
            trace_id=record.trace_id,
            request_id=record.request_id,
            score=record.score,
            rating=record.rating,
            source=record.source,
            comment_chars=len(record.comment or ""),
        )
        if record.score in self.scale.negative:
            self._call_hook(record, ref)

    def _call_hook(self, record: UserFeedbackRecord, ref: RunRef) -> None:
        if self._on_negative is None:
            return
        try:
            self._on_negative(ref)
        except Exception as error:  # noqa: BLE001 - the rating is stored; a hook must not undo the answer
            self.logger.error("user_feedback_hook_failed", feedback_id=record.id, error=describe_error(error))

    def resolve_run(self, run_or_request_id: str | UUID) -> RunRef:
        """The run a run id or request id names: `resolve` first, then the store; UnknownRunError when neither knows."""
        text = str(run_or_request_id).strip()
        if not text:
            raise InvalidFeedbackError("a run id or request id is required")
        problem = text_problem("the id", text, max_chars=_MAX_ID_CHARS)
        if problem is not None:
            raise InvalidFeedbackError(problem)
        candidates = [text]
        canonical = _canonical_uuid(text)
        if canonical is not None and canonical != text:
            candidates.append(canonical)  # e.g. an upper-case run id; request ids are matched as given first
        for candidate in candidates:
            ref = self._from_hook(candidate)
            if ref is not None:
                return ref
        for candidate in candidates:
            found = self.store.find_run(candidate)
            if found is not None:
                return RunRef(
                    run_id=found.run_id, trace_id=found.trace_id, request_id=found.request_id, project=found.project
                )
        raise UnknownRunError(f"no run with run id or request id {text!r}")

    def _from_hook(self, candidate: str) -> RunRef | None:
        if self._resolve is None:
            return None
        try:
            return self._resolve(candidate)
        except Exception as error:  # noqa: BLE001 - fall back to the store
            self.logger.error("user_feedback_resolve_failed", error=describe_error(error))
            return None

    def _check_comment(self, comment: Any) -> str | None:
        if comment is None:
            return None
        if not isinstance(comment, str):
            raise InvalidFeedbackError(f"the comment must be text, got {type(comment).__name__}")
        if not comment.strip():
            return None
        problem = text_problem("the comment", comment, max_chars=self.max_comment_chars, multiline=True)
        if problem is not None:
            raise InvalidFeedbackError(problem)
        return scrub(comment)  # a user may paste a key: it is neither stored nor sent to LangSmith

    @staticmethod
    def _check_source(source: Any) -> str:
        if not isinstance(source, str) or not source.strip():
            raise InvalidFeedbackError(f"the source must be a non-empty text of at most {_MAX_SOURCE_CHARS} characters")
        problem = text_problem("the source", source, max_chars=_MAX_SOURCE_CHARS)
        if problem is not None:
            raise InvalidFeedbackError(problem)
        return source

    # LangSmith presigned URLs -------------------------------------------------------------------------------------

    def presigned_url(self, run_id: str | UUID, *, expires_in: timedelta = timedelta(days=1)) -> str:
        """A LangSmith URL that accepts a `user_rating` feedback for this run from anyone holding it (a browser).

        A network call to LangSmith (`Client.create_presigned_feedback_token`): make it on the application's response
        path only by choice, never from a callback. Feedback sent to the URL goes straight to LangSmith: it bypasses
        this recorder, the store and `llm_user_feedback_total`. To keep those, post ratings to the `/feedback` route
        instead (with a `FeedbackTokens` token for the same protection).

        Args:
            run_id: the LangChain / LangSmith run id (LangSmith knows nothing of request ids).
            expires_in: at least a minute; LangSmith counts it in whole minutes.
        """
        if self._langsmith is None:
            raise RuntimeError(
                "presigned_url needs a LangSmith client: FeedbackRecorder(..., langsmith_client=langsmith.Client())"
            )
        canonical = _canonical_uuid(str(run_id))
        if canonical is None:
            raise InvalidFeedbackError(f"presigned URLs need a run id (a UUID), got {str(run_id)!r}")
        if expires_in < timedelta(minutes=1):
            raise InvalidFeedbackError(f"expires_in must be at least one minute, got {expires_in!r}")
        token = self._langsmith.create_presigned_feedback_token(
            canonical, USER_RATING_KEY, expiration=expires_in, feedback_config=self.scale.feedback_config()
        )
        return str(token.url)


def _canonical_uuid(text: str) -> str | None:
    try:
        return str(uuid.UUID(text))
    except ValueError:
        return None


def _check_feedback_id(feedback_id: str | UUID | None) -> str:
    if feedback_id is None:
        return str(uuid.uuid4())
    canonical = _canonical_uuid(str(feedback_id))
    if canonical is None:
        raise InvalidFeedbackError(f"the feedback id must be a UUID, got {str(feedback_id)[:80]!r}")
    return canonical


def _same_rating(a: UserFeedbackRecord, b: UserFeedbackRecord) -> bool:
    """The same rating sent twice (a retry), whatever its timestamps."""
    return replace(a, created_at=b.created_at) == b
