"""The durable store: invocations, judge evaluations, user feedback, the judge job queue, and the outbox of feedback
bound for LangSmith.

Everything is written here first, because LangSmith can be down, slow or rate limited and the process can die at any
moment; `langsmith.Forwarder` then delivers the outbox. An evaluation or a user rating and its outbox items are
written in one transaction, and outbox ids are stable (they become the LangSmith feedback ids), so a retried write or
a re-sent item never creates a second feedback.

Judge jobs (a sampled trace's captured question, context and answer) are written with their invocations and claimed
by judge workers under a lease, in this process or any other on the store; the evaluation that completes a job has
the job's id and closes it in the same transaction, so a job is stored as judged once, whoever judged it. Text is made
storable for both backends (`core.text.storable`) and cut to its column's length before any write.

SQLAlchemy Core on SQLite (a file path; WAL mode and a busy timeout, so several threads and processes can share the
file) or PostgreSQL (any `postgresql+...://` URL). Times are timezone-aware UTC.
"""

from __future__ import annotations

import functools
import os
import uuid
import weakref
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, fields, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from prometheus_client import CollectorRegistry
from sqlalchemy import (
    JSON,
    Column,
    String,
    Table,
    Text,
    and_,
    create_engine,
    event,
    func,
    inspect,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from ..core.feedback import judge_feedback_items, user_feedback_change_item, user_feedback_item
from ..core.judging import EvaluationInput
from ..core.records import (
    EvaluationJob,
    EvaluationRecord,
    InvocationRecord,
    OutboxItem,
    UserFeedbackRecord,
    evaluation_id,
    utcnow,
)
from ..core.text import scrub, storable
from ..core.vocabulary import FEEDBACK_REASON, FORCED, SUCCESS
from ..telemetry.metrics import StoreGauges
from .schema import (
    evaluations_table,
    invocations_table,
    judge_jobs_table,
    metadata,
    open_jobs,
    outbox_table,
    undone,
    user_feedback_table,
)

_SQLITE_BUSY_TIMEOUT_S = 30.0
_READ_CHUNK = 1_000
_INSERT_CHUNK = 500
_MAX_ERROR_CHARS = 1_000
MAX_JOB_ATTEMPTS = 5
"""Claims after which a job is closed as `abandoned` (e.g. it killed every process that judged it)."""
JUDGED, BUDGET, EXPIRED, ABANDONED = "judged", "budget", "expired", "abandoned"
"""Why a judge job was closed (`judge_jobs.outcome`)."""
_OUTAGES = (OperationalError, InterfaceError, DisconnectionError, PoolTimeoutError)
_SQLITE_OUTAGE_WORDS = ("locked", "busy", "disk", "full", "unable to open", "i/o")


_Record = TypeVar("_Record")


def _from_row(cls: type[_Record], row: Mapping[str, Any]) -> _Record:
    values = {f.name: row[f.name] for f in fields(cls)}
    if "segments" in values and values["segments"] is None:  # a row stored before segments existed
        values["segments"] = {}
    return cls(**values)  # type: ignore[arg-type]


def _storable_value(value: Any, limit: int | None) -> Any:
    if isinstance(value, str):
        return storable(value, limit)
    if isinstance(value, dict):
        return {storable(str(key)): _storable_value(item, None) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_storable_value(item, None) for item in value]
    return value


def _text_columns(table: Table) -> dict[str, int | None]:
    """The columns of `table` that hold text, with their length limit (None: unbounded)."""
    return {
        column.name: getattr(column.type, "length", None)
        for column in table.columns
        if isinstance(column.type, (String, Text, JSON))
    }


_TEXT_COLUMNS = {
    table.name: _text_columns(table)
    for table in (invocations_table, evaluations_table, user_feedback_table, outbox_table, judge_jobs_table)
}


def storable_rows(table: Table, rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows with every text value storable on both backends and cut to its column's length."""
    columns = _TEXT_COLUMNS[table.name]
    return [
        {name: _storable_value(value, columns[name]) if name in columns else value for name, value in row.items()}
        for row in rows
    ]


def is_outage(error: BaseException) -> bool:
    """True when the database could not be reached, was busy or full (retrying can succeed), False when the statement
    itself failed (retrying the same rows cannot). SQLite reports both kinds as OperationalError: its message tells."""
    if not isinstance(error, _OUTAGES):
        return False
    original = getattr(error, "orig", None)
    if type(original).__module__ != "sqlite3":
        return True
    message = str(original).lower()
    return any(word in message for word in _SQLITE_OUTAGE_WORDS)


def _uuid_text(value: Any, what: str) -> str:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError as error:
        raise ValueError(f"{what} must be a UUID, got {value!r}") from error


class Store:
    """Durable, multi-thread and multi-process safe storage for the monitor (SQLite file or PostgreSQL)."""

    def __init__(
        self,
        url_or_path: str | Path = "llmmonitor.db",
        *,
        registry: CollectorRegistry | None = None,
        outbox: bool = True,
        busy_timeout_seconds: float = _SQLITE_BUSY_TIMEOUT_S,
    ) -> None:
        """
        Args:
            url_or_path: a file path (SQLite) or a SQLAlchemy URL such as `postgresql+psycopg://user:pw@host/db`.
            registry: when given, `llm_feedback_outbox_pending` and `llm_judge_jobs_pending` there are counted in
                this store at scrape time, so every process and `/readyz` report the same numbers.
            outbox: queue evaluations and ratings for LangSmith; False when nothing will forward them, so the outbox
                does not grow without end.
            busy_timeout_seconds: SQLite only: how long a write waits for another writer's lock before it fails.
        """
        self.outbox = outbox
        self.gauges = StoreGauges(outbox_pending=self.pending_count, jobs_pending=self.pending_jobs)
        self.engine = _engine(url_or_path, busy_timeout_seconds)
        self._dialect = self.engine.dialect.name
        self._insert = postgresql.insert if self._dialect == "postgresql" else sqlite.insert  # with ON CONFLICT
        if self._dialect not in ("sqlite", "postgresql"):
            self.engine.dispose()
            raise ValueError(f"unsupported database {self._dialect!r}: use a SQLite file or PostgreSQL")
        try:
            metadata.create_all(self.engine)
        except DBAPIError:  # another process created the tables at the same moment
            metadata.create_all(self.engine)
        _add_missing_columns(self.engine)
        if registry is not None:
            self.gauges.register(registry)
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=functools.partial(_forget_connections_after_fork, weakref.ref(self)))

    is_outage = staticmethod(is_outage)

    def close(self) -> None:
        self.engine.dispose()

    # Writes ---------------------------------------------------------------------------------------------------------

    def _insert_ignoring_duplicates(self, connection: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> int:
        """Insert rows whose primary key is new; returns how many were inserted."""
        inserted = 0
        key = table.primary_key.columns[0]
        for start in range(0, len(rows), _INSERT_CHUNK):
            chunk = storable_rows(table, rows[start : start + _INSERT_CHUNK])
            statement = self._insert(table).values(chunk).on_conflict_do_nothing().returning(key)
            inserted += len(connection.execute(statement).all())
        return inserted

    def add_invocations(self, records: Iterable[InvocationRecord], jobs: Iterable[EvaluationJob] = ()) -> None:
        """Store a batch of root invocations and the judge jobs of the sampled ones, in one transaction.

        An invocation already stored (same run id) is left as it is; a job fills in a pending request to judge its
        run (`request_judgement`) and leaves any other job with its id as it is.
        """
        rows = [asdict(replace(record, run_id=str(record.run_id), trace_id=str(record.trace_id))) for record in records]
        job_rows = [_job_row(job) for job in jobs]
        if not rows and not job_rows:
            return
        with self.engine.begin() as connection:
            if rows:
                self._insert_ignoring_duplicates(connection, invocations_table, rows)
            if job_rows:
                self._upsert_jobs(connection, job_rows)

    def _upsert_jobs(self, connection: Connection, rows: list[dict[str, Any]]) -> None:
        table = judge_jobs_table
        insert = self._insert(table)
        captured = ("sampling", "sample_reason", "question", "context", "answer", "segments")
        statement = insert.on_conflict_do_update(
            index_elements=[table.c.id],
            set_={name: insert.excluded[name] for name in captured},
            where=and_(table.c.question.is_(None), open_jobs),
        )
        for start in range(0, len(rows), _INSERT_CHUNK):
            connection.execute(statement.values(storable_rows(table, rows[start : start + _INSERT_CHUNK])))

    def add_evaluation(self, record: EvaluationRecord) -> None:
        """Store an evaluation and, if it succeeded, its LangSmith feedback (one per score) in one transaction; the
        judge job with the evaluation's id, if any, is closed in it too.

        Idempotent: adding the same record again (same id) changes nothing.
        """
        record = replace(
            record, id=_uuid_text(record.id, "evaluation id"), run_id=str(record.run_id), trace_id=str(record.trace_id)
        )
        outbox = self.outbox and record.status == SUCCESS
        outbox_rows = [asdict(item) for item in judge_feedback_items(record)] if outbox else []
        with self.engine.begin() as connection:
            self._insert_ignoring_duplicates(connection, evaluations_table, [asdict(record)])
            if outbox_rows:
                self._insert_ignoring_duplicates(connection, outbox_table, outbox_rows)
            self._close_jobs(connection, [record.id], JUDGED)

    def add_user_feedback(self, record: UserFeedbackRecord) -> bool:
        """Store a user's rating and its LangSmith feedback in one transaction; idempotent by `record.id`. False when a
        rating with this id was already stored (nothing was written)."""
        record = replace(
            record, id=_uuid_text(record.id, "feedback id"), run_id=str(record.run_id), trace_id=str(record.trace_id)
        )
        with self.engine.begin() as connection:
            inserted = self._insert_ignoring_duplicates(connection, user_feedback_table, [asdict(record)]) == 1
            if inserted and self.outbox:
                self._insert_ignoring_duplicates(connection, outbox_table, [asdict(user_feedback_item(record))])
        return inserted

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

    def user_feedback_count(self, run_id: str) -> int:
        """How many ratings the run has."""
        table = user_feedback_table
        with self.engine.connect() as connection:
            query = select(func.count()).select_from(table).where(table.c.run_id == str(run_id))
            return connection.execute(query).scalar_one()

    def replace_user_feedback(self, record: UserFeedbackRecord) -> None:
        """A user changed their rating (same id): store the new values and queue the update of its LangSmith feedback
        (one outbox item per rating, rewritten and due again at each change), in one transaction."""
        table = user_feedback_table
        changed = dict(score=record.score, rating=record.rating, comment=record.comment, source=record.source)
        values = storable_rows(table, [changed])[0]
        with self.engine.begin() as connection:
            connection.execute(update(table).where(table.c.id == record.id).values(**values))
            if self.outbox:
                self._upsert_outbox(connection, user_feedback_change_item(record, utcnow()))

    def _upsert_outbox(self, connection: Connection, item: OutboxItem) -> None:
        table = outbox_table
        insert = self._insert(table)
        row = storable_rows(table, [asdict(item)])[0]
        fresh = dict(delivered_at=None, dead_at=None, lease_until=None, last_error=None, attempts=0)
        changed = {name: insert.excluded[name] for name in ("created_at", "payload", "next_attempt_at")}
        connection.execute(
            insert.values(row).on_conflict_do_update(index_elements=[table.c.id], set_={**changed, **fresh})
        )

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
        with self.engine.begin() as connection:
            for table, records in (
                (invocations_table, invocations),
                (evaluations_table, evaluations),
                (user_feedback_table, feedback),
            ):
                rows = storable_rows(table, [asdict(record) for record in records])
                for begin in range(0, len(rows), 1_000):
                    connection.execute(self._insert(table).on_conflict_do_nothing(), rows[begin : begin + 1_000])

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

    # Judge jobs -----------------------------------------------------------------------------------------------------

    def claim_jobs(self, limit: int, *, lease_seconds: float, now: datetime | None = None) -> list[EvaluationJob]:
        """Lease up to `limit` captured jobs that nobody holds, oldest first (as `claim_due` leases outbox items)."""
        now = now or utcnow()
        table = judge_jobs_table
        due = and_(open_jobs, table.c.question.is_not(None), table.c.attempts < MAX_JOB_ATTEMPTS)
        order = (table.c.created_at, table.c.id)
        rows = self._claim(table, due, order, limit, now, lease_seconds, attempts=table.c.attempts + 1)
        return [_job(row) for row in sorted(rows, key=lambda row: (row["created_at"], row["id"]))]

    def close_jobs(self, ids: Sequence[str], outcome: str) -> None:
        """Close open jobs without an evaluation (`BUDGET`: the judge's budget was spent)."""
        with self.engine.begin() as connection:
            self._close_jobs(connection, ids, outcome)

    def _close_jobs(self, connection: Connection, ids: Sequence[str], outcome: str) -> int:
        table = judge_jobs_table
        closing = update(table).where(table.c.id.in_(list(ids)), open_jobs)
        return connection.execute(closing.values(done_at=utcnow(), outcome=outcome, lease_until=None)).rowcount

    def request_judgement(self, run_id: str, trace_id: str, *, request_id: str | None, project: str | None) -> bool:
        """Ask whichever process still holds this run's trace to judge it (a thumbs-down reached another process).

        False when the run already has a job (sampled, or asked for before): it is judged, or will be, once.
        """
        job_id = evaluation_id(str(run_id))
        row = dict(
            id=job_id,
            created_at=utcnow(),
            run_id=str(run_id),
            trace_id=str(trace_id),
            request_id=request_id,
            project=project,
            sampling=FORCED,
            sample_reason=FEEDBACK_REASON,
            attempts=0,
        )
        with self.engine.begin() as connection:
            return self._insert_ignoring_duplicates(connection, judge_jobs_table, [row]) == 1

    def requested_runs(self, limit: int = 100) -> list[str]:
        """Run ids that a user's rating asked to judge and whose trace nobody has captured into a job yet."""
        table = judge_jobs_table
        query = select(table.c.run_id).where(open_jobs, table.c.question.is_(None)).order_by(table.c.created_at)
        with self.engine.connect() as connection:
            return list(connection.execute(query.limit(limit)).scalars())

    def expire_jobs(self, requested_before: datetime) -> dict[str, int]:
        """Close requests older than `requested_before` (no process held the trace) and jobs claimed
        `MAX_JOB_ATTEMPTS` times; returns how many of each were closed."""
        table = judge_jobs_table
        now = utcnow()
        unleased = or_(table.c.lease_until.is_(None), table.c.lease_until <= now)
        stale = {
            EXPIRED: and_(table.c.question.is_(None), table.c.created_at < requested_before),
            ABANDONED: and_(table.c.attempts >= MAX_JOB_ATTEMPTS, unleased),
        }
        closed = {}
        with self.engine.begin() as connection:
            for outcome, condition in stale.items():
                closing = update(table).where(open_jobs, condition).values(done_at=now, outcome=outcome)
                closed[outcome] = connection.execute(closing).rowcount
        return closed

    def pending_jobs(self, created_before: datetime | None = None) -> int:
        """Captured jobs not yet judged (waiting or being judged), optionally only those stored before a moment."""
        table = judge_jobs_table
        condition = and_(open_jobs, table.c.question.is_not(None))
        if created_before is not None:
            condition = and_(condition, table.c.created_at < created_before)
        with self.engine.connect() as connection:
            return connection.execute(select(func.count()).select_from(table).where(condition)).scalar_one()

    def job_outcomes(self) -> dict[str, int]:
        """How many jobs were closed, by outcome (judged, budget, expired, abandoned)."""
        table = judge_jobs_table
        query = select(table.c.outcome, func.count()).where(table.c.outcome.is_not(None)).group_by(table.c.outcome)
        with self.engine.connect() as connection:
            return {outcome: int(count) for outcome, count in connection.execute(query).all()}

    # Outbox ---------------------------------------------------------------------------------------------------------

    def claim_due(self, limit: int, *, lease_seconds: float, now: datetime | None = None) -> list[OutboxItem]:
        """Lease up to `limit` items that are due, oldest first, so no other forwarder sends them until the lease ends."""
        now = now or utcnow()
        table = outbox_table
        due = and_(undone, table.c.next_attempt_at <= now)
        rows = self._claim(table, due, (table.c.next_attempt_at, table.c.id), limit, now, lease_seconds)
        items = [_from_row(OutboxItem, row) for row in rows]
        return sorted(items, key=lambda item: (item.next_attempt_at, item.id))

    def _claim(
        self,
        table: Table,
        due: Any,
        order: tuple[Any, ...],
        limit: int,
        now: datetime,
        lease_seconds: float,
        **values: Any,
    ) -> list[Mapping[str, Any]]:
        """Lease up to `limit` unleased rows matching `due` in `order`, setting `values` too; the leased rows.

        One UPDATE ... RETURNING: atomic on SQLite (one writer at a time) and on PostgreSQL, where the candidates are
        picked FOR UPDATE SKIP LOCKED in a materialized CTE (so the LIMIT holds: as a subquery PostgreSQL may rescan
        it and lease more), and concurrent claimers neither wait for nor overlap each other.
        """
        unleased = or_(table.c.lease_until.is_(None), table.c.lease_until <= now)
        candidates = select(table.c.id).where(due, unleased).order_by(*order).limit(limit)
        if self._dialect == "postgresql":
            candidates = candidates.with_for_update(skip_locked=True)
        picked = candidates.cte("picked").prefix_with("MATERIALIZED", dialect="postgresql")
        claim = (
            update(table)
            .where(table.c.id.in_(select(picked.c.id)), unleased)
            .values(lease_until=now + timedelta(seconds=lease_seconds), **values)
            .returning(*table.c)
        )
        with self.engine.begin() as connection:
            return list(connection.execute(claim).mappings().all())

    def mark_delivered(self, ids: Sequence[str], *, version: datetime | None = None) -> None:
        """LangSmith confirmed these items; with `version` (the sent item's `created_at`), only if the item was not
        rewritten meanwhile (a changed rating sent while an older version was in flight)."""
        table = outbox_table
        unchanged = () if version is None else (table.c.created_at == version,)
        self._update_undone(ids, *unchanged, attempts=table.c.attempts + 1, delivered_at=utcnow(), lease_until=None)

    def mark_failed(self, id: str, error: str, retry_at: datetime) -> None:
        """A delivery attempt failed; try again at `retry_at`."""
        self._update_undone(
            [id],
            attempts=outbox_table.c.attempts + 1,
            next_attempt_at=retry_at,
            lease_until=None,
            last_error=storable(scrub(error), _MAX_ERROR_CHARS),  # any caller's text may quote a key
        )

    def mark_dead(self, id: str, error: str) -> None:
        """LangSmith refused the item for good (e.g. 400/422): park it, visible in `dead_items()`, never retried."""
        self._update_undone(
            [id],
            attempts=outbox_table.c.attempts + 1,
            dead_at=utcnow(),
            lease_until=None,
            last_error=storable(scrub(error), _MAX_ERROR_CHARS),  # any caller's text may quote a key
        )

    def release(self, ids: Sequence[str], retry_at: datetime) -> None:
        """Give back claimed items that were not attempted (LangSmith is down): no attempt counted."""
        self._update_undone(ids, next_attempt_at=retry_at, lease_until=None)

    def _update_undone(self, ids: Sequence[str], *conditions: Any, **values: Any) -> None:
        if not ids:
            return
        table = outbox_table
        with self.engine.begin() as connection:
            connection.execute(update(table).where(table.c.id.in_(list(ids)), undone, *conditions).values(**values))

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

    # DataFrames for notebooks (pandas, the `frames` extra); [since, until) defaults to the 7 days up to now ------------

    def invocations_frame(self, since: datetime | None = None, until: datetime | None = None) -> Any:
        """A pandas DataFrame of the invocations started in [since, until), one row each, oldest first."""
        from .frames import invocations_frame

        return invocations_frame(self, since, until)

    def evaluations_frame(self, since: datetime | None = None, until: datetime | None = None) -> Any:
        """A pandas DataFrame of the evaluations created in [since, until), one row each, oldest first."""
        from .frames import evaluations_frame

        return evaluations_frame(self, since, until)

    def user_feedback_frame(self, since: datetime | None = None, until: datetime | None = None) -> Any:
        """A pandas DataFrame of the user ratings created in [since, until), one row each, oldest first."""
        from .frames import user_feedback_frame

        return user_feedback_frame(self, since, until)


def _forget_connections_after_fork(ref: weakref.ReferenceType[Store]) -> None:
    """A forked child must not use the parent's pooled connections (SQLite handles, PostgreSQL sockets): it opens its
    own, and leaves the parent's to the parent."""
    store = ref()
    if store is not None:
        store.engine.dispose(close=False)


def _job_row(job: EvaluationJob) -> dict[str, Any]:
    item = job.item
    return dict(
        id=job.id,
        created_at=utcnow(),
        run_id=job.run_id,
        trace_id=job.trace_id,
        request_id=job.request_id,
        project=job.project,
        sampling=job.sampling,
        sample_reason=job.sample_reason,
        question=item.question,
        context=list(item.context),
        answer=item.answer,
        attempts=0,
        segments=dict(job.segments),
    )


def _job(row: Mapping[str, Any]) -> EvaluationJob:
    item = EvaluationInput(question=row["question"], context=tuple(row["context"] or ()), answer=row["answer"] or "")
    return EvaluationJob(
        id=row["id"],
        run_id=row["run_id"],
        trace_id=row["trace_id"],
        item=item,
        sampling=row["sampling"],
        sample_reason=row["sample_reason"],
        request_id=row["request_id"],
        project=row["project"],
        segments=row["segments"] or {},
    )


def _add_missing_columns(engine: Engine) -> None:
    """Columns added since a store was created (all nullable), so an existing database keeps working after an
    upgrade. Another process may add one at the same moment: its duplicate is ignored."""
    existing = inspect(engine)
    for table in metadata.sorted_tables:
        present = {column["name"] for column in existing.get_columns(table.name)}
        for column in table.columns:
            if column.name in present or not column.nullable:
                continue
            column_type = column.type.compile(dialect=engine.dialect)
            try:
                with engine.begin() as connection:
                    connection.execute(text(f'ALTER TABLE "{table.name}" ADD COLUMN "{column.name}" {column_type}'))
            except DBAPIError:
                if column.name not in {c["name"] for c in inspect(engine).get_columns(table.name)}:
                    raise


def _engine(url_or_path: str | Path, busy_timeout: float) -> Engine:
    if isinstance(url_or_path, str) and "://" in url_or_path:
        engine = create_engine(url_or_path, pool_pre_ping=True)
        if engine.dialect.name == "sqlite":
            _configure_sqlite(engine, busy_timeout)
        return engine
    path = Path(url_or_path).expanduser().resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(f"sqlite:///{path}", connect_args={"timeout": busy_timeout, "check_same_thread": False})
    _configure_sqlite(engine, busy_timeout)
    return engine


def _configure_sqlite(engine: Engine, busy_timeout: float) -> None:
    """WAL lets readers run beside the single writer; the busy timeout makes writers queue instead of failing."""

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")  # in WAL mode: survives a killed process, not a power cut
        cursor.close()

    event.listen(engine, "connect", on_connect)
