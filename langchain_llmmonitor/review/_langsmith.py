"""Scores and ratings that reached LangSmith but not this store (other replicas' stores, LangSmith's own evaluators).

Root runs of the project started in the review's history (`list_runs`), then their feedback in chunks of run ids
(`list_feedback`), with a tqdm progress bar on stderr. A feedback whose id the store already has is skipped: the
monitor's outbox sends judge scores under `judge_feedback_id(evaluation id, key)` and ratings under their own id, so a
score forwarded from this store is never counted twice. Judge scores are dated by their run's start time (a feedback's
creation time is when it was delivered, possibly hours later); ratings by their creation time, as in the store.
Scores are merged only when their `source_info` names judge, model and prompt version, as the monitor's do: a score
from an unnamed evaluator cannot be kept apart from another judge's, so it is counted under "other" and left out.

`list_runs` is deprecated in langsmith 0.15 in favour of `client.runs.query`, which needs a LangSmith server >= 0.16;
it still works everywhere, so it is used with its deprecation warning silenced.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..core.vocabulary import SCORE_KEYS, USER_RATING_KEY
from ._records import Judged, Rating, aware, judge_key

_RUN_FIELDS = ["id", "name", "run_type", "start_time", "trace_id", "session_id"]
_RUN_IDS_PER_REQUEST = 100


@dataclass
class RemoteData:
    """What LangSmith added, and the ids that make exact run links."""

    judged: list[Judged] = field(default_factory=list)
    ratings: list[Rating] = field(default_factory=list)
    runs: int = 0
    merged: int = 0
    already_local: int = 0
    other_keys: int = 0
    tenant_id: str | None = None
    project_id: str | None = None


def fetch(
    client: Any,
    project: str,
    start: datetime,
    end: datetime,
    *,
    known_ids: set[str],
    progress: bool | None = None,
) -> RemoteData:
    """Feedback on root runs of `project` started in [start, end) whose ids are not in `known_ids`."""
    from tqdm import tqdm

    bar_options: dict[str, Any] = dict(file=sys.stderr, disable=None if progress is None else not progress)
    session = client.read_project(project_name=project)
    data = RemoteData(tenant_id=str(session.tenant_id), project_id=str(session.id))
    runs = {}
    with tqdm(desc="LangSmith runs", unit=" runs", **bar_options) as bar:
        for run in _root_runs(client, str(session.id), start):
            if aware(run.start_time) < end:
                runs[str(run.id)] = run
            bar.update()
    data.runs = len(runs)
    scores: dict[tuple[str, str], dict[str, Any]] = {}
    with tqdm(total=len(runs), desc="LangSmith feedback", unit=" runs", **bar_options) as bar:
        for chunk in chunks(list(runs), _RUN_IDS_PER_REQUEST):
            for feedback in client.list_feedback(run_ids=chunk):
                if str(feedback.id) in known_ids:
                    data.already_local += 1
                elif feedback.key in SCORE_KEYS and feedback.score is not None and _is_monitor_judge(feedback):
                    _add_score(scores, feedback, runs[str(feedback.run_id)])
                    data.merged += 1
                elif feedback.key == USER_RATING_KEY:
                    data.ratings.append(_rating(feedback, runs[str(feedback.run_id)], project))
                    data.merged += 1
                else:
                    data.other_keys += 1
            bar.update(len(chunk))
    data.judged = [_judged(entry, project) for entry in scores.values()]
    return data


def _root_runs(client: Any, project_id: str, start: datetime) -> Iterator[Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        yield from client.list_runs(project_id=project_id, start_time=start, is_root=True, select=_RUN_FIELDS)


def chunks(items: Sequence[str], size: int) -> Iterable[list[str]]:
    """`items` in lists of at most `size`: LangSmith takes ids a page at a time."""
    for begin in range(0, len(items), size):
        yield list(items[begin : begin + size])


def _source_metadata(feedback: Any) -> dict[str, Any]:
    source = feedback.feedback_source
    metadata = source.get("metadata") if isinstance(source, dict) else getattr(source, "metadata", None)
    return dict(metadata or {})


def _is_monitor_judge(feedback: Any) -> bool:
    """Only scores that name their judge can be merged: the review compares one judge (model, prompt) at a time."""
    metadata = _source_metadata(feedback)
    return all(metadata.get(name) for name in ("judge", "judge_model", "prompt_version"))


def _add_score(scores: dict[tuple[str, str], dict[str, Any]], feedback: Any, run: Any) -> None:
    """Group a run's scores by judge: the monitor's judge sends one feedback per criterion of one evaluation."""
    metadata = _source_metadata(feedback)
    key = judge_key(str(metadata["judge"]), str(metadata["judge_model"]), str(metadata["prompt_version"]))
    entry = scores.setdefault(
        (str(run.id), key),
        dict(
            run=run,
            judge_key=key,
            sampling=str(metadata.get("sampling", "random")),
            sample_reason=str(metadata.get("sample_reason", "langsmith")),  # sent by newer monitors only
            segments=_segments(metadata.get("segments")),
            scores={},
            reason=None,
        ),
    )
    entry["scores"][feedback.key] = float(feedback.score)
    entry["reason"] = entry["reason"] or feedback.comment


def _segments(sent: Any) -> dict[str, str]:
    """The segments a monitor sent with its scores (none from older monitors or other evaluators): text only."""
    if not isinstance(sent, dict):
        return {}
    return {str(key): value for key, value in sent.items() if isinstance(value, str)}


def _judged(entry: dict[str, Any], project: str) -> Judged:
    run = entry["run"]
    return Judged(
        at=aware(run.start_time),
        run_id=str(run.id),
        trace_id=str(run.trace_id or run.id),
        project=project,
        judge_key=entry["judge_key"],
        sampling=entry["sampling"],
        sample_reason=entry["sample_reason"],
        scores=entry["scores"],
        reason=entry["reason"],
        question=None,
        answer=None,
        source="langsmith",
        segments=entry["segments"],
    )


def _rating(feedback: Any, run: Any, project: str) -> Rating:
    score = None if feedback.score is None else float(feedback.score)
    label = feedback.value if isinstance(feedback.value, str) else "" if score is None else f"{score:g}"
    return Rating(
        at=aware(feedback.created_at),
        run_id=str(run.id),
        trace_id=str(run.trace_id or run.id),
        project=project,
        rating=label,
        score=score,
        comment=feedback.comment,
        source="langsmith",
    )
