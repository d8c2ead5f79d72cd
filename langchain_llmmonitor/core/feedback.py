"""How a judge's verdict or a user's rating becomes LangSmith feedback: its keys, its stable ids, its payload.

Ids are derived (a verdict's) or chosen once (a rating's), so a retried write or a re-sent item never creates a
second feedback in LangSmith.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from .records import EvaluationRecord, OutboxItem, UserFeedbackRecord
from .text import scrub
from .vocabulary import CRITERIA, HALLUCINATION, JUDGE_FEEDBACK, USER_FEEDBACK, USER_FEEDBACK_CHANGE


def judge_feedback_id(evaluation_id: str, key: str) -> str:
    """The LangSmith feedback id of one criterion of an evaluation: derived, so re-inserting never makes a new one."""
    return str(uuid.uuid5(uuid.UUID(evaluation_id), key))


def judge_feedback_items(record: EvaluationRecord) -> list[OutboxItem]:
    """One feedback per score a successful evaluation gave, each with the judge's identity in `source_info`."""
    scores: dict[str, float | None] = {name: getattr(record, name) for name in CRITERIA}
    scores[HALLUCINATION] = None if record.hallucination is None else float(record.hallucination)
    source_info = dict(
        judge=record.judge,
        judge_model=record.judge_model,
        prompt_version=record.prompt_version,
        sampling=record.sampling,
        sample_reason=record.sample_reason,
        segments=dict(record.segments),  # so a review reading LangSmith sees which release each score is about
    )
    comment = _scrubbed(record.reason)
    return [
        _item(
            judge_feedback_id(record.id, key),
            JUDGE_FEEDBACK,
            record,
            dict(key=key, score=score, value=None, comment=comment, source_info=source_info),
            source_type="model",
        )
        for key, score in scores.items()
        if score is not None
    ]


def _scrubbed(reason: str | None) -> str | None:
    """A judge's reason may quote the answer: what LangSmith receives is scrubbed, whoever built the record (a user's
    comment was scrubbed when the rating was recorded)."""
    return None if reason is None else scrub(reason)


def user_feedback_item(record: UserFeedbackRecord) -> OutboxItem:
    """A user's rating as LangSmith feedback: its id is the rating's, its value the rating's label."""
    payload = dict(
        key=record.key,
        score=record.score,
        value=record.rating,
        comment=record.comment,
        source_info=dict(source=record.source, request_id=record.request_id),
    )
    return _item(record.id, USER_FEEDBACK, record, payload, source_type="api")


def user_feedback_change_item(record: UserFeedbackRecord, changed_at: datetime) -> OutboxItem:
    """A changed rating as an update of its LangSmith feedback. One item per rating, rewritten at each change; its
    `created_at` is the change's moment, so a forwarder that sent an older version does not mark the newer one sent."""
    item = user_feedback_item(record)
    payload = dict(item.payload, feedback_id=record.id)
    return OutboxItem(
        id=str(uuid.uuid5(uuid.UUID(record.id), USER_FEEDBACK_CHANGE)),
        kind=USER_FEEDBACK_CHANGE,
        created_at=changed_at,
        payload=payload,
        next_attempt_at=changed_at,
    )


def _item(
    item_id: str, kind: str, record: EvaluationRecord | UserFeedbackRecord, fields: dict, *, source_type: str
) -> OutboxItem:
    payload = dict(run_id=record.run_id, trace_id=record.trace_id, project=record.project, **fields)
    payload["feedback_source_type"] = source_type
    return OutboxItem(
        id=item_id, kind=kind, created_at=record.created_at, payload=payload, next_attempt_at=record.created_at
    )
