"""The records every layer passes around: what happened (invocations, evaluations, ratings) and what is to be done
(evaluation jobs, feedback bound for LangSmith). Plain frozen dataclasses, no behaviour beyond their defaults."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .judging import EvaluationInput
from .vocabulary import USER_RATING_KEY


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return str(uuid.uuid4())


_EVALUATIONS = uuid.UUID("6f1c5d2e-8a47-4b0e-9d61-3c2a7e5f9b10")


def evaluation_id(run_id: str) -> str:
    """The id of a run's judge job and of the evaluation that completes it: one per run, in every process."""
    return str(uuid.uuid5(_EVALUATIONS, run_id))


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
    segments: Mapping[str, str] = field(default_factory=dict)  # app_version, model, ... (core.segments)


@dataclass(frozen=True, kw_only=True)
class EvaluationRecord:
    """One judge evaluation of a sampled trace; `status="error"` ones carry `error_type` and no scores."""

    run_id: str
    trace_id: str
    judge: str
    judge_model: str
    prompt_version: str
    sampling: str  # RANDOM (rate-based, what trends use) or FORCED (always-evaluate rules)
    sample_reason: str
    status: str  # SUCCESS or ERROR
    id: str = field(default_factory=new_id)
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
    segments: Mapping[str, str] = field(default_factory=dict)  # those of the judged invocation


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
    id: str = field(default_factory=new_id)
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
    attempts: int = 0
    next_attempt_at: datetime | None = None
    lease_until: datetime | None = None
    delivered_at: datetime | None = None
    dead_at: datetime | None = None
    last_error: str | None = None


@dataclass(frozen=True, slots=True)
class RunRef:
    """The run a rating is about: the LangSmith run id and trace id, and what the application knows it by."""

    run_id: str
    trace_id: str
    request_id: str | None = None
    project: str | None = None


@dataclass(frozen=True, slots=True)
class EvaluationJob:
    """One sampled trace to judge, with what the scores attach to and why it was sampled."""

    run_id: str  # root run id (the LangSmith run the scores attach to)
    trace_id: str
    item: EvaluationInput  # already redacted and capped by the handler
    sampling: str  # RANDOM or FORCED
    sample_reason: str  # "rate", "metadata", "error", "tag", "feedback"
    request_id: str | None = None
    project: str | None = None
    segments: Mapping[str, str] = field(default_factory=dict)
    id: str = field(default_factory=new_id)  # `evaluation_id(run_id)` for a trace's job; the evaluation's id too
