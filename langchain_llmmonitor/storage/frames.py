"""The store's records over a period as pandas DataFrames (the `frames` extra), for notebooks: `Store.*_frame`.

Without bounds a frame covers the last 7 days up to now, the review's default period. Rows come oldest first, one per
record, with one column per record field (see `langchain_llmmonitor.frames`): so a field added to a record, such as
`segments`, appears without a change here.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from ..core.records import EvaluationRecord, InvocationRecord, UserFeedbackRecord, utcnow
from ..frames import records_frame, require_pandas

if TYPE_CHECKING:
    from .store import Store

DEFAULT_PERIOD = timedelta(days=7)


def period(since: datetime | None, until: datetime | None) -> tuple[datetime, datetime]:
    """[since, until): `until` defaults to now and `since` to 7 days before `until`; both must be timezone-aware."""
    until = utcnow() if until is None else until
    since = until - DEFAULT_PERIOD if since is None else since
    if since.tzinfo is None or until.tzinfo is None:
        raise ValueError("since and until must be timezone-aware datetimes, e.g. datetime.now(timezone.utc)")
    return since, until


def invocations_frame(store: Store, since: datetime | None = None, until: datetime | None = None) -> Any:
    """Root invocations started in [since, until), one row each."""
    require_pandas()  # before reading anything: a missing extra should not cost a scan
    return records_frame(store.invocations(*period(since, until)), InvocationRecord)


def evaluations_frame(store: Store, since: datetime | None = None, until: datetime | None = None) -> Any:
    """Judge evaluations (successful and failed) created in [since, until), one row each."""
    require_pandas()
    return records_frame(store.evaluations(*period(since, until)), EvaluationRecord)


def user_feedback_frame(store: Store, since: datetime | None = None, until: datetime | None = None) -> Any:
    """User ratings created in [since, until), one row each."""
    require_pandas()
    return records_frame(store.user_feedback(*period(since, until)), UserFeedbackRecord)
