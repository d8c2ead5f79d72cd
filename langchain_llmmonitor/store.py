"""The durable store: invocations, judge evaluations, user feedback, and the outbox of feedback bound for LangSmith.

Everything is written here first, because LangSmith can be down, slow or rate limited and the process can die at any
moment; `outbox.Forwarder` then delivers the outbox. An evaluation or a user rating and its outbox items are written
in one transaction, and outbox ids are stable (they become the LangSmith feedback ids), so a retried write or a
re-sent item never creates a second feedback.

SQLAlchemy Core on SQLite (a file path; WAL mode and a busy timeout, so several threads and processes can share the
file) or PostgreSQL (any `postgresql+...://` URL). Times are timezone-aware UTC.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    create_engine,
    event,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.types import TypeDecorator

from ._metrics import MonitorMetrics

JUDGE, USER = "judge", "user"
JUDGE_CRITERIA = ("faithfulness", "relevance", "completeness")
HALLUCINATION = "hallucination"
USER_RATING_KEY = "user_rating"

_SQLITE_BUSY_TIMEOUT_S = 30.0
_READ_CHUNK = 1_000
_INSERT_CHUNK = 500
_MAX_ERROR_CHARS = 1_000
_ID = 36  # a UUID's text form


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _new_id() -> str:
    return str(uuid.uuid4())


class _UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out; SQLite has no time zones, so it stores naive UTC (which sorts correctly)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: pass a timezone-aware one")
        value = value.astimezone(timezone.utc)
        return value if dialect.name == "postgresql" else value.replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


metadata = MetaData()

invocations_table = Table(
    "invocations",
    metadata,
    Column("run_id", String(_ID), primary_key=True),
    Column("trace_id", String(_ID), nullable=False),
    Column("request_id", String(200), index=True),
    Column("name", String(200), nullable=False),
    Column("status", String(20), nullable=False),
    Column("started_at", _UtcDateTime(), nullable=False, index=True),
    Column("latency_s", Float, nullable=False),
    Column("prompt_tokens", Integer, nullable=False),
    Column("completion_tokens", Integer, nullable=False),
    Column("cost_usd", Float),
    Column("project", String(200)),
)

evaluations_table = Table(
    "evaluations",
    metadata,
    Column("id", String(_ID), primary_key=True),
    Column("created_at", _UtcDateTime(), nullable=False, index=True),
    Column("run_id", String(_ID), nullable=False, index=True),
    Column("trace_id", String(_ID), nullable=False),
    Column("request_id", String(200)),
    Column("project", String(200)),
    Column("judge", String(100), nullable=False),
    Column("judge_model", String(200), nullable=False),
    Column("prompt_version", String(50), nullable=False),
    Column("sampling", String(20), nullable=False),
    Column("sample_reason", String(50), nullable=False),
    Column("status", String(20), nullable=False),
    Column("error_type", String(50)),
    Column("faithfulness", Integer),
    Column("relevance", Integer),
    Column("completeness", Integer),
    Column("hallucination", Boolean),
    Column("reason", Text),
    Column("question", Text),
    Column("answer", Text),
    Column("judge_prompt_tokens", Integer, nullable=False),
    Column("judge_completion_tokens", Integer, nullable=False),
    Column("judge_cost_usd", Float),
)

user_feedback_table = Table(
    "user_feedback",
    metadata,
    Column("id", String(_ID), primary_key=True),
    Column("created_at", _UtcDateTime(), nullable=False, index=True),
    Column("run_id", String(_ID), nullable=False, index=True),
    Column("trace_id", String(_ID), nullable=False),
    Column("request_id", String(200)),
    Column("project", String(200)),
    Column("key", String(100), nullable=False),
    Column("score", Float, nullable=False),
    Column("rating", String(50), nullable=False),
    Column("comment", Text),
    Column("source", String(50), nullable=False),
)

outbox_table = Table(
    "outbox",
    metadata,
    Column("id", String(_ID), primary_key=True),  # the LangSmith feedback id
    Column("kind", String(10), nullable=False),
    Column("created_at", _UtcDateTime(), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", _UtcDateTime(), nullable=False),
    Column("lease_until", _UtcDateTime()),
    Column("delivered_at", _UtcDateTime()),
    Column("dead_at", _UtcDateTime()),
    Column("last_error", Text),
)
_undone = and_(outbox_table.c.delivered_at.is_(None), outbox_table.c.dead_at.is_(None))
Index(
    "ix_outbox_due",
    outbox_table.c.next_attempt_at,
    sqlite_where=_undone,
    postgresql_where=_undone,
)


@dataclass(frozen=True, kw_only=True)
class InvocationRecord:
    """One root invocation (a trace as the application saw it)."""

    run_id: str
    trace_id: str
    name: str
    status: str
    started_at: datetime
    latency_s: float
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = None
    request_id: str | None = None
    project: str | None = None


@dataclass(frozen=True, kw_only=True)
class EvaluationRecord:
    """One judge evaluation of a sampled trace; `status="error"` ones carry `error_type` and no scores."""

    run_id: str
    trace_id: str
    judge: str
    judge_model: str
    prompt_version: str
    sampling: str  # "random" (rate-based, what trends use) or "forced" (always-evaluate rules)
    sample_reason: str
    status: str  # "success" or "error"
    id: str = field(default_factory=_new_id)
    created_at: datetime = field(default_factory=utcnow)
    request_id: str | None = None
    project: str | None = None
    error_type: str | None = None
    faithfulness: int | None = None
    relevance: int | None = None
    completeness: int | None = None
    hallucination: bool | None = None
    reason: str | None = None
    question: str | None = None
    answer: str | None = None
    judge_prompt_tokens: int = 0
    judge_completion_tokens: int = 0
    judge_cost_usd: float | None = None


@dataclass(frozen=True, kw_only=True)
class UserFeedbackRecord:
    """A user's rating of a run; its `id` is also the id of its LangSmith feedback."""

    run_id: str
    trace_id: str
    score: float
    rating: str  # a label: "positive"/"negative", or "1".."5"
    source: str = "api"
    key: str = USER_RATING_KEY
    comment: str | None = None
    id: str = field(default_factory=_new_id)
    created_at: datetime = field(default_factory=utcnow)
    request_id: str | None = None
    project: str | None = None


@dataclass(frozen=True, kw_only=True)
class OutboxItem:
    """A feedback waiting for (or done with) delivery to LangSmith. `payload` holds the `create_feedback` arguments:
    run_id, trace_id, project, key, score, value, comment, source_info, feedback_source_type."""

    id: str
    kind: str
    created_at: datetime
    payload: dict[str, Any]
    attempts: int
    next_attempt_at: datetime
    lease_until: datetime | None = None
    delivered_at: datetime | None = None
    dead_at: datetime | None = None
    last_error: str | None = None


_Record = TypeVar("_Record")


def _from_row(cls: type[_Record], row: Mapping[str, Any]) -> _Record:
    return cls(**{f.name: row[f.name] for f in fields(cls)})  # type: ignore[arg-type]


def _uuid_text(value: Any, what: str) -> str:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError as error:
        raise ValueError(f"{what} must be a UUID, got {value!r}") from error


def _outbox_row(item_id: str, kind: str, created_at: datetime, payload: dict[str, Any]) -> dict[str, Any]:
    return dict(
        id=item_id, kind=kind, created_at=created_at, payload=payload, attempts=0, next_attempt_at=created_at
    )


def judge_feedback_id(evaluation_id: str, key: str) -> str:
    """The LangSmith feedback id of one criterion of an evaluation: derived, so re-inserting never makes a new one."""
    return str(uuid.uuid5(uuid.UUID(evaluation_id), key))


def _judge_outbox_rows(record: EvaluationRecord) -> list[dict[str, Any]]:
    scores: dict[str, float | None] = {name: getattr(record, name) for name in JUDGE_CRITERIA}
    scores[HALLUCINATION] = None if record.hallucination is None else float(record.hallucination)
    source_info = dict(
        judge=record.judge,
        judge_model=record.judge_model,
        prompt_version=record.prompt_version,
        sampling=record.sampling,
        sample_reason=record.sample_reason,
    )
    return [
        _outbox_row(
            judge_feedback_id(record.id, key),
            JUDGE,
            record.created_at,
            dict(
                run_id=record.run_id,
                trace_id=record.trace_id,
                project=record.project,
                key=key,
                score=score,
                value=None,
                comment=record.reason,
                source_info=source_info,
                feedback_source_type="model",
            ),
        )
        for key, score in scores.items()
        if score is not None
    ]


def _user_outbox_row(record: UserFeedbackRecord) -> dict[str, Any]:
    return _outbox_row(
        record.id,
        USER,
        record.created_at,
        dict(
            run_id=record.run_id,
            trace_id=record.trace_id,
            project=record.project,
            key=record.key,
            score=record.score,
            value=record.rating,
            comment=record.comment,
            source_info=dict(source=record.source, request_id=record.request_id),
            feedback_source_type="api",
        ),
    )


class Store:
    """Durable, multi-thread and multi-process safe storage for the monitor (SQLite file or PostgreSQL)."""

    def __init__(self, url_or_path: str | Path = "llmmonitor.db", *, metrics: MonitorMetrics | None = None) -> None:
        """
        Args:
            url_or_path: a file path (SQLite) or a SQLAlchemy URL such as `postgresql+psycopg://user:pw@host/db`.
            metrics: when given, `outbox_pending` grows as feedback is stored (the forwarder sets it exactly).
        """
        self._metrics = metrics
        self.engine = _engine(url_or_path)
        self._dialect = self.engine.dialect.name
        if self._dialect not in ("sqlite", "postgresql"):
            self.engine.dispose()
            raise ValueError(f"unsupported database {self._dialect!r}: use a SQLite file or PostgreSQL")
        try:
            metadata.create_all(self.engine)
        except DBAPIError:  # another process created the tables at the same moment
            metadata.create_all(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    # Writes ---------------------------------------------------------------------------------------------------------

    def _insert_ignoring_duplicates(self, connection: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> int:
        """Insert rows whose primary key is new; returns how many were inserted."""
        insert = postgresql.insert if self._dialect == "postgresql" else sqlite.insert
        inserted = 0
        key = table.primary_key.columns[0]
        for start in range(0, len(rows), _INSERT_CHUNK):
            chunk = list(rows[start : start + _INSERT_CHUNK])
            statement = insert(table).values(chunk).on_conflict_do_nothing().returning(key)
            inserted += len(connection.execute(statement).all())
        return inserted

    def add_invocations(self, records: Iterable[InvocationRecord]) -> None:
        """Store a batch of root invocations; one already stored (same run id) is left as it is."""
        rows = [asdict(replace(record, run_id=str(record.run_id), trace_id=str(record.trace_id))) for record in records]
        if not rows:
            return
        with self.engine.begin() as connection:
            self._insert_ignoring_duplicates(connection, invocations_table, rows)

    def add_evaluation(self, record: EvaluationRecord) -> None:
        """Store an evaluation and, if it succeeded, its LangSmith feedback (one per score) in one transaction.

        Idempotent: adding the same record again (same id) changes nothing.
        """
        record = replace(
            record, id=_uuid_text(record.id, "evaluation id"), run_id=str(record.run_id), trace_id=str(record.trace_id)
        )
        outbox_rows = _judge_outbox_rows(record) if record.status == "success" else []
        with self.engine.begin() as connection:
            self._insert_ignoring_duplicates(connection, evaluations_table, [asdict(record)])
            queued = self._insert_ignoring_duplicates(connection, outbox_table, outbox_rows) if outbox_rows else 0
        self._count_pending(queued)

    def add_user_feedback(self, record: UserFeedbackRecord) -> None:
        """Store a user's rating and its LangSmith feedback in one transaction; idempotent by `record.id`."""
        record = replace(
            record, id=_uuid_text(record.id, "feedback id"), run_id=str(record.run_id), trace_id=str(record.trace_id)
        )
        with self.engine.begin() as connection:
            self._insert_ignoring_duplicates(connection, user_feedback_table, [asdict(record)])
            queued = self._insert_ignoring_duplicates(connection, outbox_table, [_user_outbox_row(record)])
        self._count_pending(queued)

    def _count_pending(self, queued: int) -> None:
        if self._metrics is not None and queued:
            self._metrics.outbox_pending.inc(queued)

    # Lookups --------------------------------------------------------------------------------------------------------

    def find_run(self, run_or_request_id: str) -> InvocationRecord | None:
        """The invocation with this run id, else the latest one with this request id (the application's own id)."""
        table = invocations_table
        with self.engine.connect() as connection:
            row = connection.execute(select(table).where(table.c.run_id == str(run_or_request_id))).mappings().first()
            if row is None:
                row = (
                    connection.execute(
                        select(table)
                        .where(table.c.request_id == str(run_or_request_id))
                        .order_by(table.c.started_at.desc())
                        .limit(1)
                    )
                    .mappings()
                    .first()
                )
        return None if row is None else _from_row(InvocationRecord, row)

    # Review queries: chunked keyset scans, each chunk its own short read -----------------------------------------

    def invocations(self, since: datetime, until: datetime) -> Iterator[InvocationRecord]:
        """Invocations started in [since, until), oldest first."""
        table = invocations_table
        return self._scan(table, table.c.started_at, table.c.run_id, since, until, InvocationRecord)

    def evaluations(self, since: datetime, until: datetime) -> Iterator[EvaluationRecord]:
        """Evaluations (successful and failed) created in [since, until), oldest first."""
        table = evaluations_table
        return self._scan(table, table.c.created_at, table.c.id, since, until, EvaluationRecord)

    def user_feedback(self, since: datetime, until: datetime) -> Iterator[UserFeedbackRecord]:
        """User ratings created in [since, until), oldest first."""
        table = user_feedback_table
        return self._scan(table, table.c.created_at, table.c.id, since, until, UserFeedbackRecord)

    def _scan(
        self,
        table: Table,
        time_column: Column[Any],
        key: Column[Any],
        since: datetime,
        until: datetime,
        cls: type[_Record],
    ) -> Iterator[_Record]:
        after: tuple[datetime, str] | None = None
        while True:
            query = select(table).where(time_column >= since, time_column < until)
            if after is not None:
                query = query.where(or_(time_column > after[0], and_(time_column == after[0], key > after[1])))
            with self.engine.connect() as connection:
                rows = connection.execute(query.order_by(time_column, key).limit(_READ_CHUNK)).mappings().all()
            for row in rows:
                yield _from_row(cls, row)
            if len(rows) < _READ_CHUNK:
                return
            after = (rows[-1][time_column.name], rows[-1][key.name])

    # Outbox ---------------------------------------------------------------------------------------------------------

    def claim_due(self, limit: int, *, lease_seconds: float, now: datetime | None = None) -> list[OutboxItem]:
        """Lease up to `limit` items that are due, oldest first, so no other forwarder sends them until the lease ends.

        One UPDATE ... RETURNING: atomic on SQLite (one writer at a time) and on PostgreSQL, where the candidate rows
        are picked FOR UPDATE SKIP LOCKED so concurrent claimers neither wait for nor overlap each other.
        """
        now = now or utcnow()
        table = outbox_table
        unleased = or_(table.c.lease_until.is_(None), table.c.lease_until <= now)
        due = (
            select(table.c.id)
            .where(_undone, table.c.next_attempt_at <= now, unleased)
            .order_by(table.c.next_attempt_at, table.c.id)
            .limit(limit)
        )
        if self._dialect == "postgresql":
            due = due.with_for_update(skip_locked=True)
        claim = (
            update(table)
            .where(table.c.id.in_(due.scalar_subquery()), unleased)
            .values(lease_until=now + timedelta(seconds=lease_seconds))
            .returning(*table.c)
        )
        with self.engine.begin() as connection:
            rows = connection.execute(claim).mappings().all()
        items = [_from_row(OutboxItem, row) for row in rows]
        return sorted(items, key=lambda item: (item.next_attempt_at, item.id))

    def mark_delivered(self, ids: Sequence[str]) -> None:
        """LangSmith confirmed these items."""
        self._update_undone(ids, attempts=outbox_table.c.attempts + 1, delivered_at=utcnow(), lease_until=None)

    def mark_failed(self, id: str, error: str, retry_at: datetime) -> None:
        """A delivery attempt failed; try again at `retry_at`."""
        self._update_undone(
            [id],
            attempts=outbox_table.c.attempts + 1,
            next_attempt_at=retry_at,
            lease_until=None,
            last_error=error[:_MAX_ERROR_CHARS],
        )

    def mark_dead(self, id: str, error: str) -> None:
        """LangSmith refused the item for good (e.g. 400/422): park it, visible in `dead_items()`, never retried."""
        self._update_undone(
            [id],
            attempts=outbox_table.c.attempts + 1,
            dead_at=utcnow(),
            lease_until=None,
            last_error=error[:_MAX_ERROR_CHARS],
        )

    def release(self, ids: Sequence[str], retry_at: datetime) -> None:
        """Give back claimed items that were not attempted (LangSmith is down): no attempt counted."""
        self._update_undone(ids, next_attempt_at=retry_at, lease_until=None)

    def _update_undone(self, ids: Sequence[str], **values: Any) -> None:
        if not ids:
            return
        table = outbox_table
        with self.engine.begin() as connection:
            connection.execute(update(table).where(table.c.id.in_(list(ids)), _undone).values(**values))

    def pending_count(self) -> int:
        """Items not yet delivered (due now or waiting for a retry); parked ones are not counted."""
        return self._count(_undone)

    def dead_count(self) -> int:
        return self._count(outbox_table.c.dead_at.is_not(None))

    def _count(self, condition: Any) -> int:
        with self.engine.connect() as connection:
            return connection.execute(select(func.count()).select_from(outbox_table).where(condition)).scalar_one()

    def outbox_item(self, id: str) -> OutboxItem | None:
        with self.engine.connect() as connection:
            row = connection.execute(select(outbox_table).where(outbox_table.c.id == id)).mappings().first()
        return None if row is None else _from_row(OutboxItem, row)

    def pending_items(self, limit: int = 100) -> list[OutboxItem]:
        """Items still to deliver, oldest first, without claiming them (for inspection; the forwarder claims)."""
        table = outbox_table
        query = select(table).where(_undone).order_by(table.c.created_at, table.c.id).limit(limit)
        with self.engine.connect() as connection:
            return [_from_row(OutboxItem, row) for row in connection.execute(query).mappings()]

    def dead_items(self, limit: int = 100) -> list[OutboxItem]:
        """Parked items, most recent first, with the error that parked them."""
        table = outbox_table
        query = select(table).where(table.c.dead_at.is_not(None)).order_by(table.c.dead_at.desc()).limit(limit)
        with self.engine.connect() as connection:
            return [_from_row(OutboxItem, row) for row in connection.execute(query).mappings()]

    def purge_delivered(self, before: datetime) -> int:
        """Delete outbox items delivered before `before` (the evaluations and ratings stay); returns how many."""
        table = outbox_table
        with self.engine.begin() as connection:
            result = connection.execute(table.delete().where(table.c.delivered_at < before))
        return result.rowcount


def _engine(url_or_path: str | Path) -> Engine:
    if isinstance(url_or_path, str) and "://" in url_or_path:
        engine = create_engine(url_or_path, pool_pre_ping=True)
        if engine.dialect.name == "sqlite":
            _configure_sqlite(engine)
        return engine
    path = Path(url_or_path).expanduser().resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        f"sqlite:///{path}", connect_args={"timeout": _SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False}
    )
    _configure_sqlite(engine)
    return engine


def _configure_sqlite(engine: Engine) -> None:
    """WAL lets readers run beside the single writer; the busy timeout makes writers queue instead of failing."""

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(_SQLITE_BUSY_TIMEOUT_S * 1000)}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")  # in WAL mode: survives a killed process, not a power cut
        cursor.close()

    event.listen(engine, "connect", on_connect)
