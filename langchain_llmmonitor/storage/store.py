"""The durable store: invocations, judge evaluations, user feedback, and the outbox of feedback bound for LangSmith.

Everything is written here first, because LangSmith can be down, slow or rate limited and the process can die at any
moment; `langsmith.Forwarder` then delivers the outbox. An evaluation or a user rating and its outbox items are
written in one transaction, and outbox ids are stable (they become the LangSmith feedback ids), so a retried write or
a re-sent item never creates a second feedback.

SQLAlchemy Core on SQLite (a file path; WAL mode and a busy timeout, so several threads and processes can share the
file) or PostgreSQL (any `postgresql+...://` URL). Times are timezone-aware UTC.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, fields, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from prometheus_client import CollectorRegistry
from sqlalchemy import Column, Table, and_, create_engine, event, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from ..core.feedback import judge_feedback_items, user_feedback_item
from ..core.records import EvaluationRecord, InvocationRecord, OutboxItem, UserFeedbackRecord, utcnow
from ..core.vocabulary import SUCCESS
from ..telemetry.metrics import metrics_for
from .schema import evaluations_table, invocations_table, metadata, outbox_table, undone, user_feedback_table

_SQLITE_BUSY_TIMEOUT_S = 30.0
_READ_CHUNK = 1_000
_INSERT_CHUNK = 500
_MAX_ERROR_CHARS = 1_000


_Record = TypeVar("_Record")


def _from_row(cls: type[_Record], row: Mapping[str, Any]) -> _Record:
    return cls(**{f.name: row[f.name] for f in fields(cls)})  # type: ignore[arg-type]


def _uuid_text(value: Any, what: str) -> str:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError as error:
        raise ValueError(f"{what} must be a UUID, got {value!r}") from error


class Store:
    """Durable, multi-thread and multi-process safe storage for the monitor (SQLite file or PostgreSQL)."""

    def __init__(self, url_or_path: str | Path = "llmmonitor.db", *, registry: CollectorRegistry | None = None) -> None:
        """
        Args:
            url_or_path: a file path (SQLite) or a SQLAlchemy URL such as `postgresql+psycopg://user:pw@host/db`.
            registry: when given, `llm_feedback_outbox_pending` there grows as feedback is stored (the forwarder sets
                it exactly).
        """
        self._metrics = metrics_for(registry) if registry is not None else None
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
        outbox_rows = [asdict(item) for item in judge_feedback_items(record)] if record.status == SUCCESS else []
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
            queued = self._insert_ignoring_duplicates(connection, outbox_table, [asdict(user_feedback_item(record))])
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

    def user_feedback_by_id(self, feedback_id: str) -> UserFeedbackRecord | None:
        """The rating stored under this id (the first one written, when two raced)."""
        table = user_feedback_table
        with self.engine.connect() as connection:
            row = connection.execute(select(table).where(table.c.id == feedback_id)).mappings().first()
        return None if row is None else _from_row(UserFeedbackRecord, row)

    def import_history(
        self,
        invocations: Sequence[InvocationRecord],
        evaluations: Sequence[EvaluationRecord],
        feedback: Sequence[UserFeedbackRecord],
    ) -> None:
        """Bulk-insert past records in one transaction, without outbox items (nothing of it goes to LangSmith).

        As executemany: the multi-row VALUES of the other writes compiles slowly at this size. Rows already stored
        are left as they are.
        """
        insert = postgresql.insert if self._dialect == "postgresql" else sqlite.insert
        with self.engine.begin() as connection:
            for table, records in (
                (invocations_table, invocations),
                (evaluations_table, evaluations),
                (user_feedback_table, feedback),
            ):
                rows = [asdict(record) for record in records]
                for begin in range(0, len(rows), 1_000):
                    connection.execute(insert(table).on_conflict_do_nothing(), rows[begin : begin + 1_000])

    @property
    def location(self) -> str:
        """Where the store is, with any password hidden."""
        return self.engine.url.render_as_string(hide_password=True)

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
            .where(undone, table.c.next_attempt_at <= now, unleased)
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
            connection.execute(update(table).where(table.c.id.in_(list(ids)), undone).values(**values))

    def pending_count(self) -> int:
        """Items not yet delivered (due now or waiting for a retry); parked ones are not counted."""
        return self._count(undone)

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
        query = select(table).where(undone).order_by(table.c.created_at, table.c.id).limit(limit)
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
