"""The store's tables: invocations, judge evaluations, user feedback, the queue of judge jobs, and the outbox of
feedback bound for LangSmith.

SQLAlchemy Core, portable between SQLite and PostgreSQL. Times are timezone-aware UTC in and out.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Column, DateTime, Float, Index, Integer, MetaData, String, Table, Text, and_
from sqlalchemy.types import TypeDecorator

_ID = 36  # a UUID's text form


class _UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out; SQLite has no time zones, so it stores naive UTC (which sorts correctly)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: pass a timezone-aware one")
        value = value.astimezone(UTC)
        return value if dialect.name == "postgresql" else value.replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = MetaData()


def _about_a_run() -> list[Column[Any]]:
    """The leading columns of a row that is about one run (an evaluation, a rating): its id, when, and which run."""
    return [
        Column("id", String(_ID), primary_key=True),
        Column("created_at", _UtcDateTime(), nullable=False, index=True),
        Column("run_id", String(_ID), nullable=False, index=True),
        Column("trace_id", String(_ID), nullable=False),
        Column("request_id", String(200)),
        Column("project", String(200)),
    ]


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
    Column("segments", JSON),  # {"app_version": "v2", "model": ..., "chain": ...} (core.segments)
)

evaluations_table = Table(
    "evaluations",
    metadata,
    *_about_a_run(),
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
    Column("segments", JSON),
)

user_feedback_table = Table(
    "user_feedback",
    metadata,
    *_about_a_run(),
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
undone = and_(outbox_table.c.delivered_at.is_(None), outbox_table.c.dead_at.is_(None))
Index(
    "ix_outbox_due",
    outbox_table.c.next_attempt_at,
    sqlite_where=undone,
    postgresql_where=undone,
)

judge_jobs_table = Table(
    "judge_jobs",
    metadata,
    Column("id", String(_ID), primary_key=True),  # also the id of the evaluation that completes it
    Column("created_at", _UtcDateTime(), nullable=False),
    Column("run_id", String(_ID), nullable=False),
    Column("trace_id", String(_ID), nullable=False),
    Column("request_id", String(200)),
    Column("project", String(200)),
    Column("sampling", String(20), nullable=False),
    Column("sample_reason", String(50), nullable=False),
    Column("question", Text),  # NULL: a request to judge a run whose trace only the process that ran it holds
    Column("context", JSON),
    Column("answer", Text),
    Column("attempts", Integer, nullable=False),
    Column("lease_until", _UtcDateTime()),
    Column("done_at", _UtcDateTime()),
    Column("outcome", String(20)),  # judged, budget, expired
    Column("segments", JSON),
)
open_jobs = judge_jobs_table.c.done_at.is_(None)
Index("ix_judge_jobs_open", judge_jobs_table.c.created_at, sqlite_where=open_jobs, postgresql_where=open_jobs)
